"""Run folders: every `train` writes a new runs/<timestamp>/, and `convert` and `publish` find the newest one."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from mnist_edge.runtime.errors import DataError

RUNS_DIR = Path("runs")  # relative: under the folder the command runs in, never inside the installed package
STAMP = "%Y%m%d-%H%M%S"  # sorts by name in time order


def new_run(runs_dir: Path = RUNS_DIR, *, now: datetime | None = None) -> Path:
    """Create and return a fresh, empty run folder named for the local time (suffixed when two start in one second)."""
    stamp = (now or datetime.now()).strftime(STAMP)
    runs_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        path = runs_dir / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        try:
            path.mkdir()  # exclusive: two runs never share a folder
        except FileExistsError:
            continue
        return path
    raise DataError(f"cannot create a run folder for {stamp} in {runs_dir}")


def newest_run(runs_dir: Path = RUNS_DIR, *, holding: str) -> Path:
    """The newest run folder that holds the file `holding` (model.keras to convert, manifest.json to publish)."""
    runs = sorted((p for p in runs_dir.glob("*/") if (p / holding).is_file()), key=_order) if runs_dir.is_dir() else []
    if not runs:
        raise DataError(f"no run with {holding} in {runs_dir.resolve()}: run `mnist-edge train` first, "
                        "or name the run folder")
    return runs[-1]


def _order(path: Path) -> tuple[str, int]:
    # "...-120000-10" must sort after "...-120000-9": compare the stamp, then the suffix as a number.
    width = len(datetime(2000, 1, 1).strftime(STAMP))
    suffix = path.name[width + 1 :]
    return path.name[:width], int(suffix) if suffix.isdigit() else 1
