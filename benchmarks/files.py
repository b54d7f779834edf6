"""Per-image inference time of the model files of several model sets, side by side in one process.

python -m mnist_edge.benchmarks.files models runs/20250101-120000    # the first set against each other one

Each file is loaded by the backend that serves it (one thread, as `serve` runs it) and timed on one drawn-like
image in alternating rounds, so every set sees the same machine; figures are medians of the rounds."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from mnist_edge.runtime.backends import backend_class
from mnist_edge.runtime.manifest import read_manifest

ROUNDS = 15
CALLS = 300  # per round and file: ~0.1 s of a fast file, long enough to swamp the timer


def _backends(folder: Path) -> dict[str, object]:
    manifest = read_manifest(folder)
    loaded = {}
    for name, entry in manifest["artifacts"].items():
        if entry["format"] == "keras":  # not served on a device; its own bench row covers it
            continue
        backend = backend_class(entry["format"])(folder / entry["file"])
        backend.load()
        loaded[name] = backend
    return loaded


def per_image_us(folders: list[Path], *, rounds: int = ROUNDS, calls: int = CALLS) -> dict[str, dict[str, float]]:
    """Median microseconds per single-image predict, by artifact name, then by folder."""
    sets = {str(folder): _backends(folder) for folder in folders}
    image = (np.random.default_rng(0).random((1, 28, 28, 1)) > 0.8).astype(np.float32)
    times: dict[str, dict[str, list[float]]] = {}
    for _ in range(rounds):
        for folder, backends in sets.items():
            for name, backend in backends.items():
                for _ in range(calls // 10):  # settle caches after the other files ran
                    backend.predict(image)
                started = time.perf_counter()
                for _ in range(calls):
                    backend.predict(image)
                times.setdefault(name, {}).setdefault(folder, []).append((time.perf_counter() - started) / calls * 1e6)
    return {name: {folder: statistics.median(t) for folder, t in by_folder.items()} for name, by_folder in times.items()}


def main(argv: list[str] | None = None) -> int:
    """Print a table of per-image times and the first set's ratio to each other set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", metavar="DIR", help="model sets (folders with manifest.json)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"alternating rounds (default: {ROUNDS})")
    args = parser.parse_args(argv)
    figures = per_image_us(args.folders, rounds=args.rounds)
    first, others = str(args.folders[0]), [str(f) for f in args.folders[1:]]
    print("| file | " + " | ".join(str(f) for f in args.folders) + "".join(f" | ratio to {o}" for o in others) + " |")
    print("| --- " * (1 + len(args.folders) + len(others)) + "|")
    for name, by_folder in figures.items():
        cells = [f"{by_folder[f]:.0f} us" if f in by_folder else "-" for f in [first, *others]]
        ratios = [f"{by_folder[first] / by_folder[o]:.2f}x" if first in by_folder and o in by_folder else "-"
                  for o in others]
        print(f"| {name} | " + " | ".join(cells + ratios) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
