"""The edge sets resolve to binary wheels for a 64-bit Raspberry Pi (needs the package registry: CI or opt-in)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "aarch64_wheels.py"

pytestmark = pytest.mark.skipif(not (os.environ.get("CI") or os.environ.get("MNIST_EDGE_NETWORK_TESTS") == "1"),
                                reason="needs the package registry: set CI or MNIST_EDGE_NETWORK_TESTS=1")


def test_serve_and_ui_sets_resolve_to_aarch64_wheels_on_cpython_311_and_313():
    result = subprocess.run([sys.executable, str(SCRIPT), "--timeout", "400"], capture_output=True, text=True,
                            timeout=1800)
    print(result.stdout)  # the sizes, for the CI log
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if "linux_aarch64" in line]
    assert len(lines) == 4 and all(": ok," in line for line in lines)
