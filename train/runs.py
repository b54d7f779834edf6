"""Run folders: every `train` writes a new runs/<timestamp>/, and `convert` and `publish` find the newest one."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from mnist_edge.runtime.errors import DataError

RUNS_DIR = Path("runs")  # relative: under the folder the command runs in, never inside the installed package
STAMP = "%Y%m%d-%H%M%S"  # sorts by name in time order
PREVIOUS = ".previous"  # what `publish` keeps in a folder it replaced a set in: only served folders hold one


def served_folders() -> list[Path]:
    """The folders `serve` reads unless told otherwise: this install's models/ and $MNIST_EDGE_MODELS_DIR."""
    from mnist_edge.runtime.config import default_models_dir, env_name

    folders = [default_models_dir()]
    if os.environ.get(env_name("models_dir")):
        folders.append(Path(os.environ[env_name("models_dir")]).expanduser())
    return [folder.resolve() for folder in folders]


def refuse_served(path: Path, doing: str) -> None:
    """Raise when `path` is in a served models folder (or one `publish` has replaced a set in): only `publish`
    writes there, after its check and with a backup."""
    resolved = Path(path).resolve()
    served = [folder for folder in served_folders() if resolved.is_relative_to(folder)]
    served += [folder for folder in (resolved, *resolved.parents) if (folder / PREVIOUS).is_dir()][:1]
    if served:
        raise DataError(f"{path} is in the served models folder {served[0]}: {doing} never writes there "
                        "(only `mnist-edge publish` does, after its check and with a backup)")


def out_folder(out: Path, *, overwrite: bool) -> Path:
    """`train --out`, checked before anything trains: never in a served folder, and an existing folder that holds
    anything only with `overwrite`."""
    refuse_served(out, "train")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DataError(f"--out {out} already holds files: name a new folder, leave --out out for a new run under "
                        f"{RUNS_DIR}/, or add --overwrite")
    return out


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


def find_run(run: Path | None, *, holding: str, missing: str) -> Path:
    """`run`, checked to hold the file `holding`, or the newest run that does; `missing` says what to do when a
    named run lacks it. Checked before any data loads, so a wrong folder is the first thing reported."""
    if run is None:
        return newest_run(holding=holding)
    if not run.is_dir():
        raise DataError(f"run folder {run} does not exist")
    if not (run / holding).is_file():
        raise DataError(f"no {holding} in {run}: {missing}")
    return run


def _order(path: Path) -> tuple[str, int]:
    # "...-120000-10" must sort after "...-120000-9": compare the stamp, then the suffix as a number.
    width = len(datetime(2000, 1, 1).strftime(STAMP))
    suffix = path.name[width + 1 :]
    return path.name[:width], int(suffix) if suffix.isdigit() else 1
