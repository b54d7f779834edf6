"""Training on corrections: fine-tune a served or trained model on the drawings people corrected, replaying MNIST,
drawn digits and non-digits so that nothing is forgotten, then calibrate it again as `train` does."""

from __future__ import annotations

import io
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnist_edge.convert.formats import KERAS_FILE
from mnist_edge.runtime.answers import NOT_A_DIGIT, split
from mnist_edge.runtime.errors import DataError, MnistEdgeError
from mnist_edge.runtime.preprocess import preprocess, scale_pixels
from mnist_edge.train.data import Mnist
from mnist_edge.train.training_report import REPORT_FILE

if TYPE_CHECKING:  # TensorFlow loads only when a model is fine-tuned: `publish` reads held-back corrections here
    from mnist_edge.train.fit import TrainConfig

CORRECTION = 100  # added to a correction's label in the training set, apart from the eleven classes
HELD_BACK_FILE = "feedback_held_back.npz"  # the held-back corrections, normalized: `publish` scores both sets on them


@dataclass
class FeedbackConfig:
    """How the corrections are split and mixed into the fine-tuning; recorded in the run's report."""

    seed: int = 0
    held_back: float = 0.2  # share of the corrections kept out of training, to measure on
    epochs: int = 3
    # A third of training's peak. 3e-4 moved a slanted writer's 500 corrections too little: +2.5 points on their
    # style through the API, against +3.6 at 1e-3 (docs/training.md), MNIST and drawn digits within 0.2 at both.
    learning_rate: float = 1e-3
    batch_size: int = 128
    # Each training correction is seen this many times per epoch, each time distorted anew: a few hundred drawings
    # among thousands of replayed ones must still move the weights.
    repeats: int = 4
    # MNIST training digits replayed per correction seen, and at least this many: enough old digits that the new
    # ones teach a writer's hand rather than a new prior over the digits.
    replay: float = 2.0
    min_replay: int = 2000
    # Weight of matching the model as it was on replayed images, its answers softened by `temperature`.
    keep: float = 1.0
    temperature: float = 2.0


@dataclass(frozen=True)
class Corrections:
    """Corrections as training reads them: ids, normalized images (N x 28 x 28 x 1) and labels (10: not a digit)."""

    ids: np.ndarray
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, mask: np.ndarray) -> Corrections:
        """The corrections where `mask` is true."""
        return Corrections(self.ids[mask], self.images[mask], self.labels[mask])


def load_corrections(source: Path) -> tuple[Corrections, int]:
    """The corrections in a feedback database or export folder, each drawing through the serving preprocessing;
    and how many were skipped because their drawing holds nothing to read (a blank canvas)."""
    from tqdm import tqdm

    from mnist_edge.runtime.feedback import read_corrections

    try:
        rows = read_corrections(source)
    except MnistEdgeError as exc:
        raise DataError(f"--feedback {source}: {exc.message}") from None
    if not rows:
        raise DataError(f"--feedback {source} holds no corrections yet: mark some answers on the canvas first")
    ids, images, labels, skipped = [], [], [], 0
    for row in tqdm(rows, desc="corrections", unit="drawing", leave=False):
        try:
            images.append(preprocess(row.png)[0])
        except MnistEdgeError:
            skipped += 1
            continue
        ids.append(row.id)
        labels.append(NOT_A_DIGIT if row.label is None else row.label)
    if not ids:
        raise DataError(f"--feedback {source}: none of its {len(rows)} drawings holds anything to read")
    return Corrections(np.array(ids, np.int64), np.stack(images), np.array(labels, np.int64)), skipped


def held_back_mask(ids: np.ndarray, *, share: float, seed: int) -> np.ndarray:
    """Which corrections are held back: each by a draw seeded by (seed, its id), so a correction stays on its side
    as the database grows, and a model fine-tuned again never trains on what an earlier run measured on."""
    return np.array([np.random.default_rng([seed, int(i)]).random() < share for i in ids], dtype=bool)


def answer_accuracy(outputs: np.ndarray, labels: np.ndarray, threshold: float) -> float | None:
    """Share of N x 11 outputs whose answer is the label: the digit, read as a digit, or not a digit (label 10);
    None when there are none (a handful of corrections may hold none back)."""
    if not len(labels):
        return None
    probabilities, score = split(outputs)
    is_digit = score >= threshold
    right = np.where(labels == NOT_A_DIGIT, ~is_digit, is_digit & (probabilities.argmax(axis=1) == labels))
    return round(float(right.mean()), 5)


def source_report(folder: Path) -> dict:
    """The training report of the model in a models folder or run folder, checked to have what fine-tuning needs,
    or a one-line error; read before anything heavy loads."""
    for name, what in ((KERAS_FILE, "the Keras model"), (REPORT_FILE, "its training report")):
        if not (folder / name).is_file():
            raise DataError(f"--from {folder}: no {name} there ({what}; name models/ or a run folder)")
    try:
        report = json.loads((folder / REPORT_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"--from {folder}: cannot read its {REPORT_FILE}: {exc}") from None
    if not isinstance(report, dict) or not isinstance((report.get("not_a_digit") or {}).get("threshold"), float):
        raise DataError(f"--from {folder}: its {REPORT_FILE} has no not-a-digit threshold: train it again")
    return report


def _replay(mnist: Mnist, base: TrainConfig, count: int, corrections: int,
            seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` of the digits training trained on (never its held-back ones), a share redrawn on a canvas as
    training drew them, and non-digits from its generators in training's proportion to all the digits seen."""
    from mnist_edge.train.drawn import redraw
    from mnist_edge.train.fit import mnist_split, not_digits_per_generator
    from mnist_edge.train.negatives import TRAINING, negative_images

    x, y, _, _ = mnist_split(mnist, base)
    rng = np.random.default_rng([seed, 1])
    pick = np.sort(rng.choice(len(x), size=min(count, len(x)), replace=False))
    images = scale_pixels(x[pick])
    drawn = rng.random(len(pick)) < base.drawn_fraction
    if drawn.any():
        images[drawn] = redraw(x[pick[drawn]], pick[drawn], seed=base.seed)
    negatives, _ = negative_images(TRAINING, not_digits_per_generator(len(pick) + corrections, base), x, y,
                                   seed=seed, stream="train")
    labels = np.concatenate([y[pick].astype(np.int64), np.full(len(negatives), NOT_A_DIGIT, np.int64)])
    return np.concatenate([images, negatives]), labels


def _figures(model, corrections: Corrections, test: np.ndarray, y_test: np.ndarray, sets: tuple,
             threshold: float) -> tuple[dict, dict, np.ndarray]:
    """A model on the held-back corrections, the MNIST test set and `evaluation_sets`, at a threshold: the
    before/after figures, the not-a-digit figures as `train` reports them, and the test set's outputs."""
    from mnist_edge.train.honesty import measure_on

    outputs = model.predict(corrections.images, batch_size=1000, verbose=0)
    test_outputs = model.predict(test, batch_size=1000, verbose=0)
    probabilities = split(test_outputs)[0]
    drawn = measure_on(model, sets, threshold)
    return {"held_back_corrections": answer_accuracy(outputs, corrections.labels, threshold),
            "mnist_test": round(float((probabilities.argmax(axis=1) == y_test).mean()), 5),
            "drawn_test": drawn["drawn_test"]["accuracy"],
            "drawn_test_rejected": drawn["drawn_test"]["false_rejection"],
            "held_out_not_digits_flagged": drawn["not_digits"]["held_out_flagged"],
            "threshold": round(threshold, 6)}, drawn, test_outputs


def _fit(model, teacher, dataset, cfg: FeedbackConfig, *, steps: int, verbose: int) -> None:
    """Train `model` in place: the labels on every image, and on replayed ones also the `teacher`'s (the model as
    it was) softened answers, so what it read well it keeps reading so (learning without forgetting)."""
    import keras
    import tensorflow as tf

    from mnist_edge.train.distill import logits_model, matching, run_epochs

    teacher_logits, student_logits = logits_model(teacher), logits_model(model)
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate, decay_steps=max(steps * cfg.epochs, 1), alpha=0.05))
    optimizer.build(model.trainable_variables)
    t = cfg.temperature

    @tf.function(reduce_retracing=True)
    def step(images, labels):
        replayed = tf.cast(labels < CORRECTION, tf.float32)
        labels = labels % CORRECTION
        soft = tf.nn.softmax(teacher_logits(images, training=False) / t)
        with tf.GradientTape() as tape:
            logits = student_logits(images, training=True)
            hard = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            loss = tf.reduce_mean(hard + cfg.keep * replayed * matching(soft, logits, t))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    run_epochs(step, dataset, steps=steps, epochs=cfg.epochs, verbose=verbose, name="fine-tune")


def fine_tune(folder: Path, report: dict, corrections: Corrections, mnist: Mnist, cfg: FeedbackConfig, *,
              verbose: int = 1):
    """Fine-tune the model in `folder` (trained as its `report` says) on the corrections not held back, mixed with
    replayed training data; calibrate it again; return it, the new report and the held-back corrections."""
    import keras

    from mnist_edge.train.fit import TrainConfig, batches, mnist_split, validation_drawings, versions
    from mnist_edge.train.honesty import calibrate, evaluation_sets
    from mnist_edge.train.training_report import summarize

    base = TrainConfig.from_report(report["config"])  # convert holds back and draws the same digits from it
    keras.utils.set_random_seed(cfg.seed)  # before loading: dropout's seed generators are made as the model loads
    model = keras.models.load_model(folder / KERAS_FILE, compile=False)
    held = held_back_mask(corrections.ids, share=cfg.held_back, seed=cfg.seed)
    measured, learned = corrections.take(held), corrections.take(~held)
    if not len(learned):
        raise DataError(f"all {len(corrections)} corrections fell in the held-back share: add more")
    test = scale_pixels(mnist.x_test)
    sets = evaluation_sets(mnist.x_test, mnist.y_test, seed=base.seed, drawn_count=base.drawn_test,
                           negatives=base.test_negatives)
    before, _, _ = _figures(model, measured, test, mnist.y_test, sets, report["not_a_digit"]["threshold"])
    started = time.perf_counter()
    seen = len(learned) * cfg.repeats
    replay_images, replay_labels = _replay(mnist, base, max(cfg.min_replay, round(seen * cfg.replay)), seen, cfg.seed)
    images = np.concatenate([np.repeat(learned.images, cfg.repeats, axis=0), replay_images])
    # A correction's label is carried as label + CORRECTION: the training step reads off which images are replayed.
    labels = np.concatenate([np.repeat(learned.labels, cfg.repeats) + CORRECTION, replay_labels])
    dataset = batches(images, labels, replace(base, seed=cfg.seed, batch_size=cfg.batch_size))
    teacher = keras.models.clone_model(model)
    teacher.set_weights(model.get_weights())
    # Batch norm keeps the statistics of all of MNIST: a few hundred drawings of one hand must not redefine them.
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.trainable = False
    _fit(model, teacher, dataset, cfg, steps=-(-len(images) // cfg.batch_size), verbose=verbose)
    for layer in norms:  # saved as a model trains, for whatever trains it next
        layer.trainable = True
    drawn, digest = validation_drawings(mnist, base)
    _, _, val_x, val_y = mnist_split(mnist, base)
    decision = {**calibrate(model, drawn, val_x, val_y, seed=base.seed, negatives=base.test_negatives),
                "held_back_sha256": digest}
    seconds = time.perf_counter() - started
    after, measured_now, outputs = _figures(model, measured, test, mnist.y_test, sets, decision["threshold"])
    decision.update(measured_now)
    probabilities, score = split(outputs)
    summary = summarize(mnist.y_test, probabilities)
    summary["false_rejection"] = round(float((score < decision["threshold"]).mean()), 5)
    new_report = {
        "config": asdict(base),
        "params": int(model.count_params()),
        "train_images": len(images),
        "train_seconds": round(seconds, 1),
        "test": summary,
        "not_a_digit": decision,
        "feedback": {"config": asdict(cfg), "corrections": len(corrections), "trained_on": len(learned),
                     "held_back_ids": measured.ids.tolist(), "before": before, "after": after},
        "data_source": mnist.source,
        "versions": versions(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return model, new_report, measured


def save_held_back(measured: Corrections, out: Path) -> None:
    """Write the held-back corrections into the run, where `publish` finds them."""
    from mnist_edge.convert.files import write_atomic

    buffer = io.BytesIO()
    np.savez_compressed(buffer, ids=measured.ids, images=measured.images, labels=measured.labels)
    write_atomic(out / HELD_BACK_FILE, buffer.getvalue())


def read_held_back(run: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """A run's held-back corrections (images, labels), or None when it was not trained on corrections or held
    none back."""
    path = run / HELD_BACK_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path) as held:
            images, labels = held["images"], held["labels"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    return (images, labels) if len(labels) else None


def _check(args) -> None:
    from mnist_edge.runtime.errors import ConfigError

    if not (args.feedback and args.from_dir):
        raise ConfigError("--feedback DB_OR_EXPORT and --from MODELS_OR_RUN go together: name both")
    if args.arch != "cnn" or args.teacher or args.stroke_views or args.no_augment or args.limit:
        raise ConfigError("--feedback fine-tunes the --from model with its own recipe: drop --arch, --teacher, "
                          "--stroke-views, --no-augment and --limit")


def train_cli(args) -> int:
    """`mnist-edge train --feedback DB --from DIR`: fine-tune, calibrate, write a run folder and print the figures."""
    from mnist_edge.runtime.manifest import sha256_file
    from mnist_edge.train.data import load_mnist
    from mnist_edge.train.fit import save
    from mnist_edge.train.runs import new_run, out_folder

    _check(args)
    if args.out:
        out_folder(args.out, overwrite=args.overwrite)
    report = source_report(args.from_dir)  # the cheap checks first: the model folder, the corrections, MNIST
    corrections, skipped = load_corrections(args.feedback)
    mnist = load_mnist(args.data)
    cfg = FeedbackConfig(seed=args.seed or 0, **({"epochs": args.epochs} if args.epochs else {}))
    model, new_report, measured = fine_tune(args.from_dir, report, corrections, mnist, cfg,
                                            verbose=1 if sys.stdout.isatty() else 2)
    new_report["feedback"].update(source=str(args.feedback), skipped=skipped, model_folder=str(args.from_dir),
                                  model_sha256=sha256_file(args.from_dir / KERAS_FILE))
    out = args.out or new_run()
    save(model, new_report, out)
    save_held_back(measured, out)
    feedback = new_report["feedback"]
    blank = f", {skipped} blank ones skipped" if skipped else ""
    print(f"corrections: {feedback['corrections']} ({feedback['trained_on']} trained on, {len(measured)} held "
          f"back{blank}); fine-tuned in {new_report['train_seconds']:.0f} s")
    print(f"{'':<8}{'held-back corrections':>23}{'MNIST test':>12}{'drawn test':>12}{'rejected':>10}"
          f"{'non-digits flagged':>20}")
    for name in ("before", "after"):
        f = feedback[name]
        held = "-" if f["held_back_corrections"] is None else f"{f['held_back_corrections']:.2%}"
        print(f"{name:<8}{held:>23}{f['mnist_test']:>12.2%}{f['drawn_test']:>12.2%}"
              f"{f['drawn_test_rejected']:>10.2%}{f['held_out_not_digits_flagged']:>20.2%}")
    print(f"run folder: {out} (next: mnist-edge convert {out})")
    return 0
