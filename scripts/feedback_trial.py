"""Does training on corrections help one writer? One writer style (train/writer_styles.py) sends its corrections
through the real pre-forked server; `train --feedback`, `convert`; then the served model before and the run after
are measured through the API on other drawings of that style and on the drawn test digits, next to MNIST test.

    MNIST_DATA=../shared/data/mnist python scripts/feedback_trial.py --style slanted --corrections 500

Prints a table and writes WORK/trial.json. Needs the full install (TensorFlow trains and converts).
`--survey` only measures the served model on every style, to choose one it reads worse."""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mnist_edge.benchmarks.serve_process import SERVE, free_port, launched
from mnist_edge.runtime.manifest import read_manifest
from mnist_edge.train.data import load_mnist
from mnist_edge.train.drawn import iter_drawn, to_png
from mnist_edge.train.writer_styles import STYLES, iter_style

CLI = [sys.executable, "-P", "-m", "mnist_edge.cli"]
CORRECTION_DIGITS = 50_000  # corrections are drawn from the first training digits; the style is measured on test ones


def _call(url: str, body: bytes, content_type: str) -> dict:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@contextmanager
def _serving(models_dir: Path, log: Path, *, db: Path | None = None):
    """`mnist-edge serve` with two pre-forked workers; storing corrections in `db`, or with no feedback routes."""
    port = free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--models-dir", str(models_dir),
             *(["--feedback-db", str(db)] if db else ["--no-feedback"])]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_EDGE_")}  # nothing set here changes it
    with launched([*SERVE, *flags], flags=flags, url=f"http://127.0.0.1:{port}", ready_path="/readyz", log=log,
                  env=env) as server:
        yield server.url


def _accuracy(url: str, drawings, desc: str, total: int) -> dict:
    """Share of drawings whose answer's digit is the label, and whose whole answer is (a digit, that digit)."""
    digit, answer = [], []
    for image, label in tqdm(drawings, desc=desc, total=total, unit="drawing", leave=False):
        body = _call(f"{url}/v1/predict", to_png(image), "image/png")
        digit.append(body["digit"] == label)
        answer.append(body["digit"] == label and body["is_digit"])
    return {"count": len(digit), "digit": round(float(np.mean(digit)), 5), "answer": round(float(np.mean(answer)), 5)}


def _measure(url: str, models_dir: Path, mnist, args) -> dict:
    manifest = read_manifest(models_dir)
    return {
        "style": _accuracy(url, iter_style(args.style, mnist.x_test, mnist.y_test, args.evaluate, seed=args.seed),
                           f"{args.style} (test digits)", args.evaluate),
        "drawn_test": _accuracy(url, ((i, l) for i, l, _ in iter_drawn(mnist.x_test, mnist.y_test, args.drawn,
                                                                        args.seed)), "drawn test digits", args.drawn),
        # All 10,000, as convert measured the served artifact on them (no resizing: MNIST is normalized already).
        "mnist_test": manifest["artifacts"][manifest["default"]]["accuracy"],
    }


def _send_corrections(url: str, mnist, args) -> float:
    """POST the style's corrections as the canvas does: ask, then say what it was; the seconds it took."""
    started = time.perf_counter()
    drawings = iter_style(args.style, mnist.x_train[:CORRECTION_DIGITS], mnist.y_train[:CORRECTION_DIGITS],
                          args.corrections, seed=args.seed + 1)
    for image, label in tqdm(drawings, total=args.corrections, desc="corrections", unit="POST"):
        png = to_png(image)
        answer = _call(f"{url}/v1/predict", png, "image/png")
        body = {"image": base64.b64encode(png).decode(), "label": label,
                "answer": {"digit": answer["digit"], "is_digit": answer["is_digit"]}}
        _call(f"{url}/v1/feedback", json.dumps(body).encode(), "application/json")
    return time.perf_counter() - started


def _run(*argv: str) -> float:
    started = time.perf_counter()
    subprocess.run([*CLI, *argv], check=True)
    return time.perf_counter() - started


def survey(models_dir: Path, mnist, count: int, seed: int) -> None:
    """The served model in this process on each style's drawings of test digits, next to the same digits drawn
    plainly: which writers it reads worse."""
    from mnist_edge.runtime.answers import split
    from mnist_edge.runtime.backends import backend_class
    from mnist_edge.runtime.preprocess import normalize
    from mnist_edge.runtime.registry import digit_threshold, model_path

    manifest = read_manifest(models_dir)
    entry = manifest["artifacts"][manifest["default"]]
    backend = backend_class(entry["format"])(model_path(models_dir, entry["file"]))
    backend.load()

    def right(drawings) -> tuple[float, float]:
        drawings = list(drawings)
        probabilities, score = split(backend.predict(np.stack([normalize(image) for image, _ in drawings])))
        digit = probabilities.argmax(axis=1) == np.array([label for _, label in drawings])
        return float(digit.mean()), float((digit & (score >= digit_threshold(entry))).mean())

    print(f"{manifest['default']} in {models_dir}, {count} test digits each: digit read / answer right")
    for name, shapes in STYLES.items():
        mask = np.isin(mnist.y_test, list(shapes))
        plain = right((i, l) for i, l, _ in iter_drawn(mnist.x_test[mask], mnist.y_test[mask], count, seed))
        styled = right(iter_style(name, mnist.x_test, mnist.y_test, count, seed=seed))
        print(f"  {name:<15} {styled[0]:.2%} / {styled[1]:.2%}   the same digits drawn plainly "
              f"{plain[0]:.2%} / {plain[1]:.2%}")


def main(argv: list[str] | None = None) -> int:
    """Run the trial and print before and after."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--style", choices=list(STYLES), default="slanted", help="the writer (default: %(default)s)")
    parser.add_argument("--corrections", type=int, default=500, help="corrections sent (default: %(default)s)")
    parser.add_argument("--evaluate", type=int, default=1000,
                        help="other drawings of the style measured, from MNIST test digits (default: %(default)s)")
    parser.add_argument("--drawn", type=int, default=2000, help="drawn test digits measured (default: %(default)s)")
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="the served set (default: models)")
    parser.add_argument("--data", type=Path, help="MNIST (default: $MNIST_DATA)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every drawing and of training (default: 0)")
    parser.add_argument("--survey", action="store_true",
                        help="only measure the served model on every style, in this process (default: the trial)")
    parser.add_argument("--work", type=Path, help="folder for the database, the run and logs (default: a temp one)")
    args = parser.parse_args(argv)
    if args.survey:
        survey(args.models_dir, load_mnist(args.data), args.evaluate, args.seed)
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="feedback-trial-"))
    work.mkdir(parents=True, exist_ok=True)
    mnist = load_mnist(args.data)
    data = ["--data", mnist.source]
    db, run = work / "feedback.sqlite3", work / "run"
    with _serving(args.models_dir, work / "serve-before.log", db=db) as url:
        before = _measure(url, args.models_dir, mnist, args)
        posting = _send_corrections(url, mnist, args)
    train_s = _run("train", "--feedback", str(db), "--from", str(args.models_dir), "--out", str(run),
                   "--seed", str(args.seed), *data)
    convert_s = _run("convert", str(run), *data)
    with _serving(run, work / "serve-after.log") as url:
        after = _measure(url, run, mnist, args)
    result = {"style": args.style, "corrections": args.corrections, "seed": args.seed, "before": before,
              "after": after, "seconds": {"post_corrections": round(posting, 1), "train": round(train_s, 1),
                                          "convert": round(convert_s, 1)},
              "report": json.loads((run / "training.json").read_text())["feedback"]}
    (work / "trial.json").write_text(json.dumps(result, indent=2) + "\n")
    style = f"{args.style} ({before['style']['count']})"
    print(f"{'':<8}{style:>20}{f'drawn test ({args.drawn})':>20}{'MNIST test':>12}")
    for name, figures in (("before", before), ("after", after)):
        print(f"{name:<8}{figures['style']['answer']:>20.2%}{figures['drawn_test']['digit']:>20.2%}"
              f"{figures['mnist_test']:>12.2%}")
    print(f"style answers right: {after['style']['answer'] - before['style']['answer']:+.2%} points; drawn test "
          f"{after['drawn_test']['digit'] - before['drawn_test']['digit']:+.2%}; MNIST test "
          f"{after['mnist_test'] - before['mnist_test']:+.2%} (posting {posting:.0f} s, train {train_s:.0f} s, "
          f"convert {convert_s:.0f} s; {work / 'trial.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
