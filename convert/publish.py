"""Publishing a converted run into the served models folder: staged, atomic, manifest last, the old set kept."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mnist_edge.runtime.errors import DataError, MnistEdgeError, PublishRefusedError
from mnist_edge.runtime.manifest import MANIFEST_FILE, read_manifest, sha256_file
from mnist_edge.train.data import Mnist
from mnist_edge.train.training_report import CONFUSION_FILE, RELIABILITY_FILE, REPORT_FILE
from mnist_edge.train.runs import PREVIOUS  # inside the models folder: the set the last publish replaced, for --rollback

COMPANIONS = (REPORT_FILE, CONFUSION_FILE, RELIABILITY_FILE)  # travel with the model they describe
CORRECTIONS_TRADE = 0.002  # issue 22's bound: what learning a writer may cost on MNIST and the drawn digits
FALSE_REJECTION_TARGET = 0.01  # drawn digits wrongly called "not a digit"; above it (and its noise) a set is worse


@dataclass(frozen=True)
class Score:
    """How a model set's served (default) artifact measures, each figure at that artifact's not-a-digit threshold."""

    artifact: str
    test_accuracy: float  # from its manifest: all 10,000 test images, measured by convert
    drawn_accuracy: float  # measured here, on the same seeded drawings for both sets
    false_rejection: float  # share of those drawings answered is_digit: false
    held_out_flagged: float  # share of the held-out non-digit generators' drawings answered is_digit: false
    drawings: int  # how many drawn digits the drawn figures come from
    # Share of the candidate run's held-back corrections answered as people said (None: not trained on corrections).
    corrections: float | None = None


def score(folder: Path, manifest: dict, drawings: list, not_digits, corrections=None) -> Score:
    """Score a set's default artifact, loaded with the backend that serves it, on the given drawings and
    non-digits (normalized N x 28 x 28 x 1), and on held-back corrections (images, labels) when given."""
    from mnist_edge.runtime.backends import backend_class
    from mnist_edge.runtime.registry import digit_threshold, model_path
    from mnist_edge.train.calibrate import flagged
    from mnist_edge.train.drawn import accuracy
    from mnist_edge.train.feedback import answer_accuracy

    name = manifest["default"]
    entry = manifest["artifacts"][name]
    threshold = digit_threshold(entry)
    backend = backend_class(entry["format"])(model_path(folder, entry["file"]))
    backend.load()
    drawn = accuracy(backend.predict, drawings, threshold=threshold)
    corrected = None if corrections is None else answer_accuracy(backend.predict(corrections[0]), corrections[1],
                                                                 threshold)
    return Score(name, entry["accuracy"], drawn["accuracy"], drawn["false_rejection"],
                 flagged(backend.predict(not_digits), threshold), len(drawings), corrected)


def rejection_allowance(drawings: int) -> float:
    """The false-rejection target plus two standard errors of a share measured on `drawings` drawings, so that
    a set meeting the target is seldom refused for the luck of the draw."""
    return FALSE_REJECTION_TARGET + 2 * math.sqrt(FALSE_REJECTION_TARGET * (1 - FALSE_REJECTION_TARGET) / drawings)


def shortfalls(candidate: Score, current: Score) -> list[str]:
    """Where the candidate measures below the current set; empty when it is at least as good on every figure
    (false rejections count only above the 1 % target, give or take the noise of the drawings measured; a run
    better on its held-back corrections may be up to CORRECTIONS_TRADE below on MNIST and drawn accuracy, and at
    least one drawing below on the drawn digits)."""
    found = []
    # A run that reads its writers' held-back corrections better may trade a little of MNIST and the drawn digits.
    learned = candidate.corrections is not None and current.corrections is not None \
        and candidate.corrections > current.corrections
    slack = CORRECTIONS_TRADE if learned else 0.0
    # At least one drawing: on a few hundred, 0.2 points is less than one drawing can tell.
    drawn_slack = max(slack, 1 / candidate.drawings + 1e-9) if learned else 0.0  # + 1e-9: 298/300 - 1/300 in floats
    if candidate.test_accuracy < current.test_accuracy - slack:
        found.append(f"MNIST test accuracy {candidate.test_accuracy:.2%} < {current.test_accuracy - slack:.2%}")
    if candidate.drawn_accuracy < current.drawn_accuracy - drawn_slack:
        floor = current.drawn_accuracy - drawn_slack
        found.append(f"drawn-digit accuracy {candidate.drawn_accuracy:.2%} < {floor:.2%}")
    if candidate.held_out_flagged < current.held_out_flagged:
        found.append(f"held-out non-digits flagged {candidate.held_out_flagged:.2%} < {current.held_out_flagged:.2%}")
    if candidate.corrections is not None and current.corrections is not None \
            and candidate.corrections < current.corrections:
        found.append(f"held-back corrections {candidate.corrections:.2%} < {current.corrections:.2%}")
    allowed = max(current.false_rejection, rejection_allowance(candidate.drawings))
    if candidate.false_rejection > allowed:
        found.append(f"drawn digits rejected {candidate.false_rejection:.2%} > {allowed:.2%}")
    return found


def publish(run: Path, models_dir: Path, mnist: Mnist, *, count: int, seed: int = 0,
            force: bool = False) -> tuple[Score, Score | None]:
    """Compare run's set with models_dir's and install it unless it is worse (or `force`); return both scores.
    Both are scored on `count` drawn test digits and `count` / 3 drawings of each held-out non-digit generator,
    and, when the run was trained on corrections, on the corrections it held back."""
    from mnist_edge.train.drawn import drawn_set
    from mnist_edge.train.feedback import read_held_back
    from mnist_edge.train.negatives import HELD_OUT, negative_images

    if run.resolve() == models_dir.resolve():
        raise DataError(f"{run} is the models folder itself: name a run folder to publish")
    manifest, _ = checked_set(run)
    drawings = drawn_set(mnist.x_test, mnist.y_test, count, seed)
    not_digits, _ = negative_images(HELD_OUT, max(1, count // 3), mnist.x_test, mnist.y_test, seed=seed,
                                    stream="evaluation")
    held_back = read_held_back(run)
    candidate = score(run, manifest, drawings, not_digits, held_back)
    current = None
    if (models_dir / MANIFEST_FILE).is_file():
        try:
            current = score(models_dir, read_manifest(models_dir), drawings, not_digits, held_back)
        except MnistEdgeError as exc:  # a broken published set can only be replaced on purpose
            if not force:
                raise PublishRefusedError(f"cannot measure the published model ({exc.message}); "
                                          "--force replaces it unmeasured") from exc
        problems = shortfalls(candidate, current) if current else []
        if problems and not force:
            raise PublishRefusedError(f"{run} is worse than the published model: " + "; ".join(problems)
                                      + " (--force publishes it anyway)", problems=problems)
    install(run, models_dir)
    return candidate, current


def checked_set(folder: Path) -> tuple[dict, list[str]]:
    """A folder's manifest and the files of its set (artifacts, then companions), each checked against its sha256."""
    manifest = read_manifest(folder)
    for name, entry in manifest["artifacts"].items():
        path = folder / entry["file"]
        if not path.is_file():
            raise DataError(f"{folder}: {name}'s file {entry['file']} is missing")
        if sha256_file(path) != entry["sha256"]:
            raise DataError(f"{folder}: {entry['file']} does not match its manifest sha256 (changed after convert?)")
    return manifest, _files(folder, manifest)


def _files(folder: Path, manifest: dict) -> list[str]:
    named = [entry["file"] for entry in manifest["artifacts"].values()]
    return [name for name in (*named, *COMPANIONS) if (folder / name).is_file()]


def install(source: Path, models_dir: Path) -> dict:
    """Make models_dir serve source's set: staged copies renamed into place, manifest last, the old set in .previous."""
    manifest, files = checked_set(source)
    models_dir.mkdir(parents=True, exist_ok=True)
    # The set being replaced is kept as it is, even when broken: a rollback must not depend on its health.
    old_files = set(_files(models_dir, read_manifest(models_dir))) if (models_dir / MANIFEST_FILE).is_file() else set()
    # Staging in the target folder keeps every rename on one file system, so each one is atomic.
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".publish-") as tmp:
        staging = Path(tmp)
        for name in [*files, MANIFEST_FILE]:
            shutil.copyfile(source / name, staging / name)
        if old_files:
            _keep_previous(models_dir, [*old_files, MANIFEST_FILE])
        for name in files:
            os.replace(staging / name, models_dir / name)
        # A server that reads the manifest now finds every file it names, with the right sha256.
        os.replace(staging / MANIFEST_FILE, models_dir / MANIFEST_FILE)
    for name in old_files - set(files):  # named by no manifest any more
        (models_dir / name).unlink(missing_ok=True)
    return manifest


def _keep_previous(models_dir: Path, files: list[str]) -> None:
    fresh = Path(tempfile.mkdtemp(dir=models_dir, prefix=f"{PREVIOUS}-new-"))
    try:
        for name in files:
            shutil.copyfile(models_dir / name, fresh / name)
    except BaseException:
        shutil.rmtree(fresh)  # the old .previous stays as it was
        raise
    previous = models_dir / PREVIOUS
    if previous.exists():
        stale = Path(tempfile.mkdtemp(dir=models_dir, prefix=f"{PREVIOUS}-old-"))
        previous.replace(stale / PREVIOUS)
        fresh.replace(previous)
        shutil.rmtree(stale)
    else:
        fresh.replace(previous)


def rollback(models_dir: Path) -> dict:
    """Serve the set the last publish replaced; the replaced one becomes .previous, so a rollback undoes itself."""
    previous = models_dir / PREVIOUS
    if not (previous / MANIFEST_FILE).is_file():
        raise DataError(f"nothing to roll back to: {previous} holds no model set")
    return install(previous, models_dir)
