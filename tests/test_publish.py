"""Publishing a run into the served folder: the quality gate, atomic install, the kept previous set and rollback."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mnist_edge.cli import main
from mnist_edge.convert import publish as publishing
from mnist_edge.convert.publish import PREVIOUS, Score, install, publish, rollback, shortfalls
from mnist_edge.runtime.config import default_models_dir
from mnist_edge.runtime.errors import DataError, PublishRefusedError
from mnist_edge.runtime.manifest import sha256_file
from mnist_edge.train.feedback import Corrections, save_held_back

DRAWN = 100  # drawings per comparison: the weak model is far behind; fewer would leave the gate at the luck of a few digits


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under a folder (dot-folders included) with its sha256."""
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


@pytest.fixture
def served(shipped_models, tmp_path) -> Path:
    """A copy of the shipped set, standing in for the served folder (the real models/ must never change)."""
    return Path(shutil.copytree(shipped_models, tmp_path / "models", ignore=shutil.ignore_patterns(PREVIOUS)))


@pytest.fixture
def worse_run(tiny_models, tmp_path) -> Path:
    """A real, converted, much worse candidate (the session's 2-epoch model), copied as a run folder under runs/."""
    return Path(shutil.copytree(tiny_models, tmp_path / "runs" / "20250101-120000"))


def test_worse_run_is_refused_and_nothing_changes(served, worse_run, mnist):
    before = snapshot(served)
    with pytest.raises(PublishRefusedError) as refused:
        publish(worse_run, served, mnist, count=DRAWN)
    message = refused.value.message
    # The 2-epoch model reads MNIST far worse; which other figures it loses on depends on the shipped model.
    assert "MNIST test accuracy" in message and "--force" in message
    named = re.findall(r"([\d.]+)% < ([\d.]+)%", message)
    assert len(named) >= 1 and all(float(worse) < float(better) for worse, better in named)
    assert refused.value.status == 409 and refused.value.code == "publish_refused"
    assert snapshot(served) == before  # no file touched, no .previous, no staging left behind


def test_force_publishes_keeps_the_previous_set_and_rollback_toggles(served, worse_run, mnist):
    shipped = snapshot(served)
    candidate, current = publish(worse_run, served, mnist, force=True, count=DRAWN)
    assert current.test_accuracy > candidate.test_accuracy and current.artifact == "tflite-int8"
    assert manifest_of(served) == manifest_of(worse_run)
    for entry in manifest_of(served)["artifacts"].values():
        assert sha256_file(served / entry["file"]) == entry["sha256"]
    assert (served / "training.json").read_bytes() == (worse_run / "training.json").read_bytes()
    assert snapshot(served / PREVIOUS) == shipped  # the replaced set, whole, to roll back to
    assert sorted(p.name for p in served.iterdir() if p.name.startswith(".")) == [PREVIOUS]

    rollback(served)
    assert {k: v for k, v in snapshot(served).items() if not k.startswith(PREVIOUS)} == shipped
    assert manifest_of(served / PREVIOUS) == manifest_of(worse_run)
    rollback(served)  # a rollback is itself undone by the next one
    assert manifest_of(served) == manifest_of(worse_run)


@pytest.mark.parametrize(("change", "problem"), [
    ({"held_out_flagged": 0.70}, "held-out non-digits flagged 70.00% < 75.00%"),
    # 1 % plus two standard errors of a share of 400 drawings: 1.99 %.
    ({"false_rejection": 0.025}, "drawn digits rejected 2.50% > 1.99%"),
    ({"false_rejection": 0.015}, None),  # above the target, but within what 400 drawings can tell
    ({"false_rejection": 0.009}, None),  # more than the published set's, but within the 1 % target
    ({"held_out_flagged": 0.80, "false_rejection": 0.0}, None),
    ({"test_accuracy": 0.99}, "MNIST test accuracy 99.00% < 99.50%"),
    ({"drawn_accuracy": 0.98}, "drawn-digit accuracy 98.00% < 99.00%"),
    ({"test_accuracy": 0.996, "drawn_accuracy": 0.995}, None),
])
def test_not_a_digit_figures_gate_a_publish(change, problem):
    current = Score("tflite-int8", 0.995, 0.99, 0.005, 0.75, 400)
    candidate = Score(**{**current.__dict__, **change})
    assert shortfalls(candidate, current) == ([problem] if problem else [])


def test_better_run_is_published_without_force(served, worse_run, mnist, tmp_path):
    install(worse_run, served)  # the served set is now the weak one
    better = Path(shutil.copytree(served / PREVIOUS, tmp_path / "better"))
    candidate, current = publish(better, served, mnist, count=DRAWN)
    assert candidate.test_accuracy > current.test_accuracy and candidate.drawn_accuracy >= current.drawn_accuracy
    assert manifest_of(served) == manifest_of(better)


def test_first_publish_into_an_empty_folder(worse_run, mnist, tmp_path):
    candidate, current = publish(worse_run, tmp_path / "fresh", mnist, count=DRAWN)
    assert current is None and 0 < candidate.drawn_accuracy <= 1
    assert manifest_of(tmp_path / "fresh") == manifest_of(worse_run)
    assert not (tmp_path / "fresh" / PREVIOUS).exists()


def test_changed_run_file_is_rejected(served, worse_run, mnist):
    with open(worse_run / "model_int8.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(DataError, match="model_int8.onnx does not match its manifest sha256"):
        publish(worse_run, served, mnist, force=True, count=DRAWN)


def test_failed_install_keeps_the_old_manifest_and_rollback_repairs(served, worse_run, monkeypatch):
    before = snapshot(served)
    real_replace = publishing.os.replace

    def replace_then_fail(src, dst):  # the disk fills up after model.keras, the first file, is in place
        if Path(dst).name == "model_fp32.tflite":
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(publishing.os, "replace", replace_then_fail)
    with pytest.raises(OSError, match="No space"):
        install(worse_run, served)
    assert manifest_of(served) == manifest_of(served / PREVIOUS)  # the manifest, written last, was never replaced
    assert not [p for p in served.iterdir() if p.name.startswith(".publish-")]  # staging cleaned up
    monkeypatch.undo()
    rollback(served)  # and the kept set brings every file back
    assert {k: v for k, v in snapshot(served).items() if not k.startswith(PREVIOUS)} == before


def test_rollback_without_a_previous_set(served):
    with pytest.raises(DataError, match="nothing to roll back to"):
        rollback(served)


def test_publish_command_refuses_then_forces_then_rolls_back(served, worse_run, mnist, capsys, monkeypatch):
    monkeypatch.delenv("MNIST_EDGE_MODELS_DIR", raising=False)
    base = ["publish", str(worse_run), "--models-dir", str(served), "--data", mnist.source, "--drawn", str(DRAWN)]
    assert main(base) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mnist-edge: error:") and "\n" not in err and "--force" in err
    assert main([*base, "--force"]) == 0
    out = capsys.readouterr().out
    assert "published" in out and "candidate" in out and "--rollback" in out and "non-digits flagged" in out
    # Which folder serves: here not the one published into, so the user is told how to serve it.
    assert (f"`mnist-edge serve` reads {default_models_dir()} (its default), not this folder: serve this one with "
            f"`mnist-edge serve --models-dir {served.resolve()}`") in out
    assert manifest_of(served) == manifest_of(worse_run)
    monkeypatch.setenv("MNIST_EDGE_MODELS_DIR", str(served))  # what `serve` reads now
    assert main(["publish", "--rollback", "--models-dir", str(served)]) == 0
    out = capsys.readouterr().out
    assert "rolled back" in out and f"`mnist-edge serve` reads {served.resolve()} ($MNIST_EDGE_MODELS_DIR)" in out
    assert manifest_of(served) != manifest_of(worse_run)


def test_publish_picks_the_newest_converted_run(served, worse_run, mnist, monkeypatch, capsys):
    (worse_run.parent / "20240101-000000").mkdir()  # older, and never converted
    (worse_run.parent / "20990101-000000").mkdir()  # newer, but not converted: skipped
    monkeypatch.chdir(worse_run.parent.parent)
    assert main(["publish", "--models-dir", str(served), "--data", mnist.source, "--drawn", "5", "--force"]) == 0
    assert f"published {Path('runs') / worse_run.name}" in capsys.readouterr().out


# The gate without TensorFlow: two copies of the shipped set, each given a fixed score instead of a measured one.
CURRENT = Score("tflite-int8", 0.99, 0.95, 0.005, 0.80, 90)
NO_DATA = SimpleNamespace(x_test=None, y_test=None)  # the drawings are never made


@pytest.fixture
def scored_as(served, tmp_path, monkeypatch):
    """A run folder (a copy of the shipped set) whose publish scores it with the given Score and the served set
    with CURRENT; no drawings are made."""
    run = Path(shutil.copytree(served, tmp_path / "run"))
    monkeypatch.setattr("mnist_edge.train.drawn.drawn_set", lambda *args: [])
    monkeypatch.setattr("mnist_edge.train.negatives.negative_images", lambda *args, **kwargs: (None, None))

    def given(candidate: Score) -> Path:
        monkeypatch.setattr(publishing, "score", lambda folder, *rest: candidate if folder == run else CURRENT)
        return run

    return given


@pytest.mark.parametrize("change", [{"test_accuracy": 0.98}, {"drawn_accuracy": 0.94}, {"held_out_flagged": 0.7}])
def test_a_candidate_worse_on_one_figure_is_refused(served, scored_as, change):
    run = scored_as(Score(**{**CURRENT.__dict__, **change}))
    before = snapshot(served)
    with pytest.raises(PublishRefusedError):
        publish(run, served, NO_DATA, count=1)
    assert snapshot(served) == before


def test_a_candidate_as_good_everywhere_is_published(served, scored_as):
    run = scored_as(Score(**{**CURRENT.__dict__, "test_accuracy": 0.991, "drawn_accuracy": 0.96}))
    manifest = manifest_of(run)
    manifest["created"] = "a later convert"
    (run / "manifest.json").write_text(json.dumps(manifest))
    publish(run, served, NO_DATA, count=1)
    assert manifest_of(served)["created"] == "a later convert" and (served / PREVIOUS).is_dir()


def test_a_changed_file_fails_the_set_check(served):
    publishing.checked_set(served)  # the shipped set as it is passes
    with open(served / manifest_of(served)["artifacts"]["onnx-int8"]["file"], "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(DataError, match="does not match its manifest sha256"):
        publishing.checked_set(served)


def test_a_run_worse_on_its_held_back_corrections_is_refused_better_published(served, scored_as, monkeypatch):
    run = scored_as(CURRENT)
    labels = np.array([1, 7, 10])  # 10: a drawing people said is not a digit
    save_held_back(Corrections(np.arange(3), np.zeros((3, 28, 28, 1), np.float32), labels), run)
    given = []

    def corrected_share(candidate_share: float):
        def fake(folder, manifest, drawings, not_digits, corrections=None):
            given.append(corrections[1].tolist())
            return Score(**{**CURRENT.__dict__, "corrections": candidate_share if folder == run else 0.95})
        monkeypatch.setattr(publishing, "score", fake)

    before = snapshot(served)
    corrected_share(0.90)
    with pytest.raises(PublishRefusedError, match=r"held-back corrections 90\.00% < 95\.00%"):
        publish(run, served, NO_DATA, count=1)
    assert snapshot(served) == before and given == [labels.tolist()] * 2  # both sets scored on the run's own
    corrected_share(0.96)
    publish(run, served, NO_DATA, count=1)
    assert (served / PREVIOUS).is_dir()


@pytest.mark.parametrize(("change", "problem"), [
    ({"test_accuracy": 0.994, "drawn_accuracy": 0.989}, None),  # 0.1 point each: within what learning a writer may cost
    ({"test_accuracy": 0.992}, "MNIST test accuracy 99.20% < 99.30%"),
    ({"drawn_accuracy": 0.9876}, None),  # one of the 400 drawings: more than 0.2 points, less than one can tell
    ({"drawn_accuracy": 0.987}, "drawn-digit accuracy 98.70% < 98.75%"),
    ({"test_accuracy": 0.994, "corrections": 0.90}, "MNIST test accuracy 99.40% < 99.50%"),  # no better: no trade
])
def test_a_run_better_on_its_corrections_may_trade_a_little_mnist(change, problem):
    current = Score("tflite-int8", 0.995, 0.99, 0.005, 0.75, 400, 0.90)
    candidate = Score(**{**current.__dict__, "corrections": 0.97, **change})
    assert shortfalls(candidate, current) == ([problem] if problem else [])


def test_on_300_drawings_the_trade_is_one_drawing():
    current = Score("tflite-int8", 0.995, 298 / 300, 0.005, 0.75, 300, 0.90)
    one_fewer = Score(**{**current.__dict__, "drawn_accuracy": 297 / 300, "corrections": 0.97})
    assert shortfalls(one_fewer, current) == []
    two_fewer = Score(**{**one_fewer.__dict__, "drawn_accuracy": 296 / 300})
    assert shortfalls(two_fewer, current) == ["drawn-digit accuracy 98.67% < 99.00%"]
