"""docs/raspberry-pi.md as written: what it installs is used, what it copies is what the Pi needs, every `mnist-edge`
command parses, and its Pi steps are the ones scripts/aarch64_check.sh runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from mnist_edge.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
GUIDE = (REPO / "docs" / "raspberry-pi.md").read_text()
CHECK = (REPO / "scripts" / "aarch64_check.sh").read_text()


def blocks() -> list[str]:
    """The guide's bash blocks."""
    return re.findall(r"```bash\n(.*?)```", GUIDE, flags=re.S)


def commands() -> list[str]:
    """Every command in the bash blocks and in inline code, continuation lines joined, split at && ; |."""
    lines = [line for block in blocks() for line in block.replace("\\\n", " ").splitlines()]
    for span in re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", GUIDE, flags=re.S)):
        try:
            shlex.split(span)
        except ValueError:  # prose in code type, such as an address with an apostrophe: no command
            continue
        lines.append(span)
    found = []
    for line in map(str.strip, lines):
        remote = re.fullmatch(r"(ssh \S+) '(.*)'", line)  # ssh runs its quoted argument as commands of their own
        parts = [remote.group(1), *re.split(r"&&|;|\|", remote.group(2))] if remote else re.split(r"&&|;|\|", line)
        found += [part.strip() for part in parts if part.strip() and not part.strip().startswith("#")]
    return found


def words(command: str) -> list[str]:
    """A command's words, without its comment and a leading sudo."""
    argv = shlex.split(command, comments=True)
    return argv[1:] if argv[:1] == ["sudo"] else argv


def pi_block() -> list[str]:
    """The commands of the block the guide runs on the Pi to install, comments dropped."""
    [block] = re.findall(r"On the Pi \(.*?\):\n\n```bash\n(.*?)```", GUIDE, flags=re.S)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_guide_has_commands_of_each_kind():
    assert len(blocks()) >= 6
    firsts = {words(command)[0] for command in commands() if words(command)}
    assert {"python", "python3", "rsync", "ssh", "systemctl", "journalctl", "ln"} <= firsts, firsts


def test_it_installs_no_package_it_does_not_use():
    installed = {package for found in re.findall(r"apt(?:-get)? install ((?:[\w.+-]+ ?)+)", GUIDE)
                 for package in found.split() if not package.startswith("-")}
    assert "python3-venv" in installed  # what the Pi's install needs, for `python3 -m venv`
    used = {words(command)[0] for command in commands() if words(command)}
    assert "git" not in installed or "git" in used, "the guide installs git and never runs it"


def test_every_copy_of_a_models_folder_leaves_out_previous():
    copies = [words(c) for c in commands() if words(c)[:1] == ["rsync"] and "models/" in words(c)]
    assert len(copies) >= 2  # the install and the update
    for argv in copies:
        # rsync: a pattern without a slash matches a path component of that name anywhere in the transfer.
        assert any(argv[i:i + 2] == ["--exclude", ".previous"] for i in range(len(argv))) \
            or "--exclude=.previous" in argv, argv


def test_the_code_reaches_the_pi_by_laptop_steps_and_pi_steps():
    # Each install step is a block of its own, said to run on the laptop or on the Pi; none hides in a comment.
    assert re.search(r"On your laptop, in the checkout:\n\n```bash\n", GUIDE)
    assert re.search(r"On the Pi \(.*?\):\n\n```bash\n", GUIDE, flags=re.S)
    commented = [line for block in blocks() for line in block.splitlines()
                 if re.match(r"\s*#.*\b(rsync|scp|ssh)\b", line)]
    assert not commented, commented


# `mnist-edge` alone names the unit; a command has a subcommand.
MNIST_EDGE = [command for command in commands() if len(words(command)) >= 2
              and (words(command)[0] == "mnist-edge" or words(command)[0].endswith("/bin/mnist-edge"))]


def test_the_guide_runs_mnist_edge():
    assert {words(command)[1] for command in MNIST_EDGE} >= {"serve", "publish"}


@pytest.mark.parametrize("command", MNIST_EDGE)
def test_every_mnist_edge_command_parses(command):
    try:
        build_parser().parse_args(words(command)[1:])  # a flag or value the CLI does not take exits with status 2
    except SystemExit as exc:  # --help prints and exits 0
        assert exc.code == 0 and "--help" in command, command


def test_the_pi_install_is_the_one_the_aarch64_check_runs():
    steps = pi_block()
    assert steps and steps[0].startswith("python3 -m venv")
    missing = [step for step in steps if step not in CHECK]
    assert not missing, f"scripts/aarch64_check.sh no longer runs these steps of the guide: {missing}"
    [guide_extras] = re.findall(r'"\$\(ls /tmp/pi-wheels/mnist_edge-\*\.whl\)\[([a-z,]+)\]"', GUIDE)
    [check_extras] = re.findall(r'mnist_edge-\*\.whl\)\[([a-z,]+)\]"', CHECK)
    assert guide_extras == check_extras == "serve,ui"


def test_the_canvas_link_finds_the_app_a_real_install_has(serve_venv):
    [link] = [words(step) for step in pi_block() if words(step)[:1] == ["ln"] and "canvas.py" in step]
    pattern = link[2].removeprefix("/opt/mnist-edge/venv/")
    found = list(serve_venv.glob(pattern))  # a non-editable `pip install .[serve]`: the Pi's layout
    assert len(found) == 1 and found[0].read_text().startswith('"""`streamlit run webui/app.py`'), found
