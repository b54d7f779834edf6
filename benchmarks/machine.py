"""The machine a benchmark ran on: CPU, cores, memory, OS, Python and the libraries that set the figures."""

from __future__ import annotations

import os
import platform
from importlib import metadata

# The distributions whose versions move the figures; a missing one is recorded as absent.
LIBRARIES = ("numpy", "pillow", "onnxruntime", "ai-edge-litert", "tensorflow", "keras", "flask", "waitress",
             "gunicorn", "granian", "orjson", "pytest-benchmark", "mnist-edge")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def library_versions() -> dict[str, str | None]:
    """Installed version of each library that matters here (None when it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def describe() -> dict:
    """CPU model, cores (all and usable), memory, OS, architecture, Python and library versions."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gb": _memory_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "architecture": platform.machine(),
        "python": platform.python_version(),
        "libraries": library_versions(),
    }


def one_line(machine: dict) -> str:
    """A short human description, e.g. 'AMD EPYC, 2 cores, 23.5 GB, Linux 6.1 x86_64, Python 3.11.7'."""
    memory = f", {machine['memory_gb']} GB" if machine.get("memory_gb") else ""
    return (f"{machine['cpu_model']}, {machine['usable_cores']} cores{memory}, {machine['os']} "
            f"{machine['architecture']}, Python {machine['python']}")
