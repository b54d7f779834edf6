"""Training on corrections: the seeded held-back split, export = database, a small fine-tune end to end through the
command (then convert), and every bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnist_edge.cli import main
from mnist_edge.runtime.feedback import FeedbackStore
from mnist_edge.train.drawn import iter_drawn, to_png
from mnist_edge.train.feedback import HELD_BACK_FILE, held_back_mask, load_corrections
from mnist_edge.train.negatives import negative
from mnist_edge.train.writer_styles import STYLES, iter_style

CORRECTIONS = 40  # a few dozen: 30 drawn digits, 4 slanted ones, 6 drawings people said are not digits


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("mnist-edge: error:") and "\n" not in err, err
    return err


@pytest.fixture(scope="module")
def small_mnist(mnist, tmp_path_factory) -> Path:
    """The slice of MNIST the session's tiny model trained on, as an .npz `--data` takes: seconds, not minutes."""
    part = mnist.subset(n_train=4000, n_test=2000)
    path = tmp_path_factory.mktemp("small_mnist") / "mnist.npz"
    np.savez(path, x_train=part.x_train, y_train=part.y_train, x_test=part.x_test, y_test=part.y_test)
    return path


@pytest.fixture(scope="module")
def corrections_db(mnist, tmp_path_factory) -> Path:
    """A feedback database holding CORRECTIONS corrections, stored as the API stores them."""
    path = tmp_path_factory.mktemp("feedback") / "feedback.sqlite3"
    store = FeedbackStore(path)
    for image, label, _ in iter_drawn(mnist.x_train[-1000:], mnist.y_train[-1000:], 30, seed=5):
        store.add(to_png(image), label, {"digit": (label + 1) % 10, "is_digit": True})
    for image, label in iter_style("slanted", mnist.x_train[-1000:], mnist.y_train[-1000:], 4, seed=5):
        store.add(to_png(image), label)
    for i in range(6):
        store.add(to_png(negative("faces", i, mnist.x_test, mnist.y_test, seed=5, stream="evaluation")), None)
    store.close()
    return path


def test_the_held_back_split_is_seeded_disjoint_and_stable_as_corrections_arrive():
    ids = np.arange(1, 2001)
    held = held_back_mask(ids, share=0.2, seed=0)
    assert np.array_equal(held, held_back_mask(ids, share=0.2, seed=0))  # the same seed, the same split
    assert not np.array_equal(held, held_back_mask(ids, share=0.2, seed=1))
    assert 0.17 < held.mean() < 0.23
    kept, trained = set(ids[held]), set(ids[~held])
    assert not kept & trained and kept | trained == set(ids.tolist())
    # A correction stays on its side when more arrive: a later run never trains on what an earlier one measured on.
    assert np.array_equal(held_back_mask(ids[:500], share=0.2, seed=0), held[:500])


def test_an_export_folder_gives_what_the_database_gives(corrections_db, tmp_path):
    store = FeedbackStore(corrections_db)
    assert store.export(tmp_path / "export") == CORRECTIONS
    store.close()
    (from_db, skipped_db), (from_export, skipped_export) = (load_corrections(corrections_db),
                                                            load_corrections(tmp_path / "export"))
    assert skipped_db == skipped_export == 0 and len(from_db) == CORRECTIONS
    for field in ("ids", "images", "labels"):
        assert np.array_equal(getattr(from_db, field), getattr(from_export, field))
    assert (from_db.labels == 10).sum() == 6  # "not a digit" trains the eleventh class


def test_train_on_corrections_end_to_end_then_convert(corrections_db, tiny_models, small_mnist, tmp_path, capsys):
    from mnist_edge.convert.pipeline import convert
    from mnist_edge.train.data import load_mnist

    run = tmp_path / "run"
    assert main(["train", "--feedback", str(corrections_db), "--from", str(tiny_models), "--out", str(run),
                 "--epochs", "1", "--seed", "3", "--data", str(small_mnist)]) == 0
    out = capsys.readouterr().out
    assert "before" in out and "after" in out and f"run folder: {run}" in out
    report = json.loads((run / "training.json").read_text())
    feedback = report["feedback"]
    held = held_back_mask(np.arange(1, CORRECTIONS + 1), share=0.2, seed=3)
    assert feedback["held_back_ids"] == (np.flatnonzero(held) + 1).tolist()  # the ids start at 1
    assert feedback["trained_on"] == CORRECTIONS - held.sum() and feedback["config"]["epochs"] == 1
    for when in ("before", "after"):
        figures = feedback[when]
        for key in ("held_back_corrections", "mnist_test", "drawn_test", "drawn_test_rejected",
                    "held_out_not_digits_flagged", "threshold"):
            assert 0 <= figures[key] <= 1, (when, key)
    with np.load(run / HELD_BACK_FILE) as kept:
        assert kept["ids"].tolist() == feedback["held_back_ids"] and kept["images"].shape[1:] == (28, 28, 1)
    manifest = convert(run, load_mnist(small_mnist), not_digits=20)  # convert takes the run unchanged
    assert manifest["not_a_digit"]["threshold"] == report["not_a_digit"]["threshold"]


def test_the_same_seed_gives_the_same_weights(corrections_db, tiny_models, mnist):
    from mnist_edge.train.feedback import FeedbackConfig, fine_tune

    report = json.loads((tiny_models / "training.json").read_text())
    corrections, _ = load_corrections(corrections_db)
    small = mnist.subset(n_train=4000, n_test=500)
    cfg = FeedbackConfig(seed=2, epochs=1, min_replay=300)  # a few steps: enough for dropout and shuffling to act
    first, second = (fine_tune(tiny_models, report, corrections, small, cfg, verbose=0)[0] for _ in range(2))
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), second.get_weights()))


def test_a_missing_or_empty_database_is_one_line(tmp_path, tiny_models, capsys):
    base = ["train", "--from", str(tiny_models), "--out", str(tmp_path / "run")]
    assert main([*base, "--feedback", str(tmp_path / "nowhere.sqlite3")]) == 1
    assert "no feedback database or export folder" in one_line_error(capsys)
    FeedbackStore(tmp_path / "empty.sqlite3").stats()  # created, with its table, and nothing in it
    assert main([*base, "--feedback", str(tmp_path / "empty.sqlite3")]) == 1
    assert "holds no corrections yet" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_a_folder_without_a_keras_model_is_one_line(corrections_db, tmp_path, capsys, shipped_models):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "manifest.json").write_bytes((shipped_models / "manifest.json").read_bytes())
    assert main(["train", "--feedback", str(corrections_db), "--from", str(tmp_path / "models")]) == 1
    assert "no model.keras there" in one_line_error(capsys)


@pytest.mark.parametrize("argv", [["--feedback", "x.sqlite3"], ["--from", "models"],
                                  ["--feedback", "x.sqlite3", "--from", "models", "--limit", "1000"]])
def test_feedback_flags_that_do_not_go_together_are_one_line(argv, capsys):
    assert main(["train", *argv]) == 1
    assert "--feedback" in one_line_error(capsys)


def test_every_writer_style_reshapes_only_its_digits(mnist):
    for name, shapes in STYLES.items():
        drawings = list(iter_style(name, mnist.x_test, mnist.y_test, 5, seed=0))
        assert len(drawings) == 5 and {label for _, label in drawings} <= set(shapes), name
        assert drawings[0][0].shape == (280, 280, 4)
    again = next(iter_style("slanted", mnist.x_test, mnist.y_test, 1, seed=0))[0]
    assert np.array_equal(again, next(iter_style("slanted", mnist.x_test, mnist.y_test, 1, seed=0))[0])


def test_a_run_that_held_nothing_back_is_compared_as_any_run(tmp_path):
    from mnist_edge.train.feedback import Corrections, answer_accuracy, read_held_back, save_held_back

    assert read_held_back(tmp_path) is None  # not trained on corrections
    save_held_back(Corrections(np.empty(0, np.int64), np.empty((0, 28, 28, 1), np.float32), np.empty(0, np.int64)),
                   tmp_path)
    assert read_held_back(tmp_path) is None
    assert answer_accuracy(np.empty((0, 11), np.float32), np.empty(0, np.int64), 0.5) is None
    outputs = np.zeros((3, 11), np.float32)
    outputs[0, 4] = outputs[1, 10] = 1  # a 4; not a digit
    outputs[2, :2] = 0.5  # a 0 or a 1, as a digit
    assert answer_accuracy(outputs, np.array([4, 10, 1]), 0.5) == pytest.approx(2 / 3, abs=1e-5)
