"""pyproject.toml's pins: each dependency whose internals the code uses has an upper bound, and what is installed (what
the tests ran against) lies inside its range."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from mnist_edge.runtime.api.workers import GUNICORN_TESTED

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# The packages whose private modules, hooks, file names or folder layout the code relies on.
INTERNALS_USED = ["gunicorn", "waitress", "prometheus-client", "flask-swagger-ui", "streamlit"]


def requirements() -> dict[str, Requirement]:
    """Every requirement of the project and its extras, by package name (the self-referencing `all` left out)."""
    found = {}
    for line in PROJECT["dependencies"] + sum(PROJECT["optional-dependencies"].values(), []):
        requirement = Requirement(line)
        if requirement.name != "mnist-edge":
            found.setdefault(requirement.name, requirement)
    return found


@pytest.mark.parametrize("name", INTERNALS_USED)
def test_internals_are_pinned_to_the_tested_range(name):
    specifier = requirements()[name].specifier
    assert any(spec.operator == "<" for spec in specifier), f"{name} {specifier} has no upper bound"
    assert Version(version(name)) in specifier, f"installed {name} {version(name)} is outside {specifier}"


def test_gunicorn_pin_is_the_worker_check():
    # runtime/api/workers.py refuses a gunicorn outside GUNICORN_TESTED at start: pip must not install one.
    low, high = GUNICORN_TESTED
    assert set(map(str, requirements()["gunicorn"].specifier)) == {f">={low[0]}.{low[1]}", f"<{high[0]}"}


def test_pillow_pin_has_load_default_size():
    # train/negatives.py calls ImageFont.load_default(96): the size argument is Pillow 10.1's.
    specifier = requirements()["pillow"].specifier
    assert Version("10.0.1") not in specifier and Version("10.1.0") in specifier


def test_python_pin_has_tomllib():
    # The tests import tomllib, which Python 3.11 brought.
    python = SpecifierSet(PROJECT["requires-python"])
    assert Version("3.10.14") not in python and Version("3.11.0") in python
