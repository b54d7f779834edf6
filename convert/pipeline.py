"""The conversion run: build every artifact in a staging folder, verify each, then move them all into the run folder."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mnist_edge.convert.floor import MIN_ACCURACY, check_accuracy
from mnist_edge.convert.formats import FORMATS, KERAS_FILE, Format
from mnist_edge.convert.manifest import SCHEMA_VERSION, artifact_entry, write_manifest
from mnist_edge.convert.verify import check, compare, predict_all
from mnist_edge.runtime.answers import split
from mnist_edge.runtime.backends import backend_class
from mnist_edge.runtime.errors import ConversionError, DataError
from mnist_edge.runtime.preprocess import scale_pixels
from mnist_edge.train.calibrate import choose_threshold
from mnist_edge.train.data import Mnist
from mnist_edge.train.fit import TrainConfig, validation_drawings
from mnist_edge.train.training_report import REPORT_FILE
from mnist_edge.train.runs import refuse_served

DEFAULT_MODEL = "tflite-int8"  # smallest and fastest on a Pi's CPU; served unless told otherwise
CALIBRATION_SEED = 0
GATE_NEGATIVES = 100  # per not-a-digit generator; the is-digit agreement is measured on them and the test digits
TOOLS = ("tensorflow", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "numpy")


def tool_versions() -> dict:
    """Versions of the libraries that made and verified the artifacts."""
    found = {}
    for name in TOOLS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _calibration(mnist: Mnist) -> np.ndarray:
    # A fixed random draw from the training set (never the test set, which judges the result).
    pick = np.random.default_rng(CALIBRATION_SEED).choice(len(mnist.x_train), size=min(1000, len(mnist.x_train)), replace=False)
    return scale_pixels(mnist.x_train[np.sort(pick)])


def _measure(fmt: Format, path: Path, gate: tuple[np.ndarray, np.ndarray], drawn: np.ndarray,
             reference: tuple[np.ndarray, float]):
    """The artifact's own not-a-digit threshold, chosen on the held-back drawn digits as training chose Keras'
    (quantization moves digit scores near it), and how it compares with Keras on the gate images."""
    backend = backend_class(fmt.format)(path)
    backend.load()
    threshold = choose_threshold(split(predict_all(backend, drawn))[1])
    metrics = compare(predict_all(backend, gate[0]), gate[1], reference, threshold=threshold)
    return {"threshold": threshold, **metrics}, backend.tensors()  # unrounded: rounding up rejects one more


def _decision(training: dict, run: Path) -> dict:
    """The not-a-digit threshold and what training measured of it; a run without one cannot be served."""
    decision = training.get("not_a_digit") or {}
    if not isinstance(decision.get("threshold"), float) or not isinstance(decision.get("held_back_sha256"), str):
        raise DataError(f"{run / REPORT_FILE} has no not_a_digit threshold and held-back digits' sha256: train the "
                        "model again with this version")
    return {key: decision[key] for key in ("threshold", "temperature", "held_back_sha256", "validation",
                                           "drawn_test", "not_digits") if key in decision}


def _gate_images(mnist: Mnist, not_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """The test set's digits, then drawings of every not-a-digit generator: what every artifact must agree on."""
    from mnist_edge.train.negatives import GENERATORS, negative_images

    negatives, _ = negative_images(tuple(GENERATORS), not_digits, mnist.x_test, mnist.y_test, seed=CALIBRATION_SEED,
                                   stream="evaluation")
    return np.concatenate([scale_pixels(mnist.x_test), negatives]), mnist.y_test


def convert(run: Path, mnist: Mnist, *, triton: Path | None = None, not_digits: int = GATE_NEGATIVES,
            min_accuracy: float = MIN_ACCURACY) -> dict:
    """Convert run/model.keras to every format, written beside it with manifest.json; return the manifest.
    A model that reads fewer than `min_accuracy` of the test digits right is refused before any conversion."""
    import keras

    run = Path(run)
    refuse_served(run, "convert")
    if triton:
        refuse_served(triton, "convert --triton")
    keras_path = run / KERAS_FILE
    if not keras_path.is_file():
        raise DataError(f"no {KERAS_FILE} in {run}: run `mnist-edge train` first")
    training = json.loads((run / REPORT_FILE).read_text()) if (run / REPORT_FILE).is_file() else {}
    decision = _decision(training, run)
    model = keras.models.load_model(keras_path, compile=False)
    (images, labels), calibration = _gate_images(mnist, not_digits), _calibration(mnist)
    drawn, digest = validation_drawings(mnist, TrainConfig.from_report(training.get("config", {})))
    if digest != decision["held_back_sha256"]:  # thresholds chosen on other digits, some of them fitted on
        raise DataError(f"the training digits this data holds back are not the ones {run} held back: convert with "
                        "the data it was trained on")

    keras_backend = backend_class("keras")(keras_path)
    keras_backend.load()
    reference = (predict_all(keras_backend, images), decision["threshold"])
    reference_accuracy = compare(reference[0], labels, reference)["accuracy"]
    check_accuracy(reference_accuracy, labels, min_accuracy, run)

    entries: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(dir=run, prefix=".convert-") as tmp:
        staging = Path(tmp)
        staged: dict[str, Path] = {}
        progress = tqdm(FORMATS.values(), desc="convert", unit="artifact")
        for fmt in progress:
            progress.set_postfix_str(fmt.name)
            started = time.perf_counter()
            path = staging / fmt.file
            if fmt.convert is None:
                shutil.copyfile(keras_path, path)
            else:
                source = model if fmt.source == "keras" else staged[fmt.source].read_bytes()
                try:
                    path.write_bytes(fmt.convert(source, calibration=calibration))
                except Exception as exc:  # noqa: BLE001 - converters raise anything; name the artifact
                    raise ConversionError(f"{fmt.name}: conversion failed: {type(exc).__name__}: {exc}") from exc
            seconds = time.perf_counter() - started
            metrics, tensors = _measure(fmt, path, (images, labels), drawn, reference)
            check(fmt, metrics, reference_accuracy)
            staged[fmt.name] = path
            entries[fmt.name] = artifact_entry(fmt, path, tensors, metrics, seconds)

        manifest = {
            "schema_version": SCHEMA_VERSION,
            "default": DEFAULT_MODEL,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "training": {key: training[key] for key in ("config", "params", "train_images", "cut_pieces", "train_seconds",
                                                        "data_source", "versions", "date") if key in training},
            "not_a_digit": decision,
            "conversion": {"test_images": len(labels), "not_digit_images": len(images) - len(labels),
                           "reference_accuracy": round(reference_accuracy, 5), "versions": tool_versions()},
            "artifacts": entries,
        }
        # Everything verified: move the files into the run, then write the manifest that names them.
        for name, path in staged.items():
            if name != "keras":  # the trained file stays as it is; its staged copy was only measured
                path.replace(run / path.name)
        write_manifest(run, manifest)
    if triton:
        from mnist_edge.convert.triton import export_triton

        export_triton(run, manifest, triton)
    return manifest
