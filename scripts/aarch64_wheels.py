"""Prove an install set resolves to binary wheels for a 64-bit Raspberry Pi (linux aarch64) and report its size.

    python scripts/aarch64_wheels.py                       # .[serve] and .[serve,ui] on CPython 3.11 and 3.13
    python scripts/aarch64_wheels.py --extras serve --python 3.11

It reads the extras from pyproject.toml and asks pip to download them with --only-binary=:all: for every manylinux
aarch64 tag (pip matches each --platform exactly, so one tag alone misses wheels such as ai-edge-litert's). It needs
the package registry; pip's cache makes a second run fast. Exit status 1 if any set does not resolve.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
PYTHONS = ("3.11", "3.13")  # Raspberry Pi OS bookworm, trixie
EXTRA_SETS = ("serve", "serve,ui")


def requirements(extras: str) -> list[str]:
    """The project's dependencies plus those of the named extras (comma-separated), from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    return [*project["dependencies"], *(req for extra in extras.split(",") for req in optional[extra])]


def download(extras: str, python: str, dest: Path, *, timeout: float) -> tuple[bool, int, str]:
    """pip download the set for linux aarch64 into dest: (resolved, total bytes, pip's last lines)."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--implementation", "cp",
               "--python-version", python, "--dest", str(dest), *(arg for tag in PLATFORMS for arg in ("--platform", tag)),
               *requirements(extras)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    size = sum(path.stat().st_size for path in dest.glob("*.whl"))
    return result.returncode == 0, size, "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])


def main(argv: list[str] | None = None) -> int:
    """Check each extra set on each Python; print one line per set with its wheel count and size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", action="append", help=f"extras set, e.g. serve,ui (default: {' and '.join(EXTRA_SETS)})")
    parser.add_argument("--python", action="append", help=f"CPython version (default: {' and '.join(PYTHONS)})")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per pip run")
    args = parser.parse_args(argv)
    failed = 0
    for extras in args.extras or EXTRA_SETS:
        for python in args.python or PYTHONS:
            with tempfile.TemporaryDirectory() as tmp:
                ok, size, tail = download(extras, python, Path(tmp), timeout=args.timeout)
                count = len(list(Path(tmp).glob("*.whl")))
            status = "ok" if ok else "FAILED"
            print(f".[{extras}] cp{python.replace('.', '')} linux_aarch64: {status}, {count} wheels, {size / 1e6:.1f} MB")
            if not ok:
                failed += 1
                print(tail)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
