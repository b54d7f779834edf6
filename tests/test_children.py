"""The Python processes mnist-edge starts (`up`'s API and canvas, `bench`'s server) run the installed package, even
when started inside a checkout, whose own mnist_edge/ folder (the CLI, without runtime/) would otherwise shadow it."""

from __future__ import annotations

import os
import subprocess

import pytest

from mnist_edge.benchmarks.serve_process import SERVE
from mnist_edge.cli import build_parser
from mnist_edge.webui.up import _commands


def up_child(which: int) -> tuple[list[str], dict[str, str]]:
    """`up`'s API (0) or canvas (1) command line, with the environment `up` starts it in."""
    commands = _commands(build_parser().parse_args(["up"]))
    return commands[which], commands[2]


CHILDREN = {
    "up's API": lambda: up_child(0),
    "up's canvas": lambda: up_child(1),
    "bench's server": lambda: (SERVE, dict(os.environ)),
}


@pytest.fixture
def inside_a_checkout(tmp_path, monkeypatch):
    """A working folder holding packages named like the installed ones, which fail if imported."""
    for name in ("mnist_edge", "streamlit"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('imported from the working folder')\n")
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("child", CHILDREN)
def test_child_imports_the_installed_package_inside_a_checkout(child, inside_a_checkout):
    argv, env = CHILDREN[child]()
    interpreter = argv[: argv.index("-m") + 2]  # python, its flags, -m and the module: the rest is the command's own
    done = subprocess.run([*interpreter, "--version"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "imported from the working folder" not in done.stderr
