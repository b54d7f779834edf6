"""Check that two mnist-edge servers give the same answers: the aarch64 one under test and one on this machine.

    python scripts/aarch64_compare.py --guest http://127.0.0.1:PORT --data ../shared/data/mnist

It starts `mnist-edge serve` from this Python's venv on the models folder (unless --host names a running server),
checks that both servers loaded the same models (names and sha256), then sends every loaded model the same drawings
the way the canvas page does (a one-channel PNG to /v1/predict): MNIST test digits drawn by train/drawn.py and
non-digits from train/negatives.py. Each model must give the same is_digit decision on every drawing, and the same
digit wherever either server calls the drawing a digit (`differ`). One line per model; exit status 1, with a one-line
reason, on any difference or failure. It reports no timings: an emulated server's speed says nothing about a
Raspberry Pi.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_edge.runtime.config import default_models_dir
from mnist_edge.train.data import load_mnist
from mnist_edge.train.drawn import iter_drawn
from mnist_edge.train.negatives import GENERATORS, negative
from mnist_edge.webui.client import ApiClient, ApiError
from mnist_edge.webui.drawing import canvas_png

TIMEOUT = 120  # seconds per request: an emulated server answers in tens of milliseconds, a stuck one never
START_TIMEOUT = 120  # seconds for the local server to say where it serves


class CheckFailed(Exception):
    """The check could not run or found a difference: one line for the log."""


@dataclass
class Drawing:
    """One drawing as the page sends it, and what it shows (a digit 0-9, or the non-digit generator's name)."""

    png: bytes
    shows: str


@dataclass
class Agreement:
    """One model's comparison over every drawing."""

    model: str
    total: int
    differing: list[str]  # one description per drawing answered differently
    not_digits: int  # drawings the x86 server answered is_digit: false (so the decision was tested both ways)
    largest_difference: float  # the largest gap between the two servers' probabilities


def _client(url: str) -> ApiClient:
    return ApiClient(url=url, token=None, timeout=(10.0, TIMEOUT))


def _asked(call, url: str) -> dict:
    """One API call; its failure as CheckFailed with the API client's one line."""
    try:
        return call()
    except ApiError as exc:
        raise CheckFailed(f"{url}: {exc.message}") from None


def loaded_models(url: str) -> dict[str, str]:
    """GET /v1/models: the loaded models' names and the sha256 of their files."""
    return {m["name"]: m["sha256"] for m in _asked(_client(url).models, url)["models"] if m["loaded"]}


def same_models(guest: dict[str, str], host: dict[str, str]) -> list[str]:
    """The models both servers loaded from identical files, sorted; CheckFailed naming the first mismatch."""
    if not host:
        raise CheckFailed("the x86 server loaded no model")
    if set(guest) != set(host):
        raise CheckFailed(f"the servers loaded different models: aarch64 {sorted(guest)}, x86 {sorted(host)}")
    changed = [name for name in host if guest[name] != host[name]]
    if changed:
        raise CheckFailed(f"the servers' {', '.join(sorted(changed))} files differ (sha256): not the same models")
    return sorted(host)


def on_page(image: np.ndarray) -> np.ndarray:
    """An RGBA drawing in any style (transparent canvas, dark or light page) as the page's canvas holds it: white ink
    on an opaque black box."""
    alpha, grey = image[:, :, 3], image[:, :, :3].max(axis=2)
    ink = alpha if alpha.min() < 255 else 255 - grey if grey.mean() > 127 else grey
    return np.dstack([ink, ink, ink, np.full_like(ink, 255)])


def drawings(data: str | None, count: int, not_digits: int, seed: int) -> list[Drawing]:
    """`count` MNIST test digits drawn on the canvas and `not_digits` drawings of each non-digit kind, as PNGs."""
    mnist = load_mnist(data)
    images = [(image, str(label)) for image, label, _ in iter_drawn(mnist.x_test, mnist.y_test, count, seed)]
    images += [(negative(name, i, mnist.x_test, mnist.y_test, seed=seed, stream="evaluation"), name)
               for name in GENERATORS for i in range(not_digits)]
    made = []
    for image, shows in images:
        png = canvas_png(on_page(image))
        if png is None:  # the page sends nothing for a blank canvas, so neither can this
            raise CheckFailed(f"a drawing of {shows} is blank to the canvas page")
        made.append(Drawing(png, shows))
    return made


def _answer(body: dict) -> tuple[int, bool, np.ndarray]:
    return int(body["digit"]), bool(body["is_digit"]), np.asarray(body["probabilities"], dtype=np.float64)


def differ(a: tuple[int, bool, np.ndarray], x: tuple[int, bool, np.ndarray]) -> bool:
    """Whether two answers (digit, is_digit, probabilities) to one drawing differ: in the decision, or in the digit of
    a drawing either calls a digit. When both call it no digit, its ten digit probabilities are what is left beside
    P(not a digit) ~ 1: an int8 model's output holds them in steps of 1/256, so their argmax is rounding, and two
    CPUs' int8 kernels may round it differently."""
    return a[1] != x[1] or ((a[1] or x[1]) and a[0] != x[0])


def compare_model(model: str, guest: str, host: str, drawn: list[Drawing], *, threads: int = 4) -> Agreement:
    """Send every drawing to `model` on both servers; count the drawings whose answers `differ`."""
    clients = _client(guest), _client(host)

    def both(drawing: Drawing) -> tuple[tuple, ...]:
        return tuple(_answer(_asked(lambda: c.predict(drawing.png, model=model, return_image=False), c.url))
                     for c in clients)

    differing, largest, not_digits = [], 0.0, 0
    with ThreadPoolExecutor(threads) as pool:  # the servers run several workers: keep them busy
        for index, (drawing, (a, x)) in enumerate(zip(drawn, pool.map(both, drawn))):
            largest = max(largest, float(np.abs(a[2] - x[2]).max()))
            not_digits += not x[1]
            if differ(a, x):
                differing.append(f"drawing {index} (shows {drawing.shows}): aarch64 digit {a[0]} is_digit {a[1]}, "
                                 f"x86 digit {x[0]} is_digit {x[1]}")
    return Agreement(model, len(drawn), differing, not_digits, largest)


def line(result: Agreement) -> str:
    """The log line of one model's comparison."""
    same = result.total - len(result.differing)
    verdict = "ok" if not result.differing else "DIFFERENT"
    return (f"{result.model}: {same}/{result.total} drawings the same answer on aarch64 and x86 "
            f"({same / result.total:.2%}; {result.not_digits} not a digit), "
            f"largest probability gap {result.largest_difference:.2g}: {verdict}")


@contextmanager
def local_server(models_dir: Path) -> Iterator[str]:
    """`mnist-edge serve` from this Python's venv on `models_dir`, on a free loopback port; yields its URL."""
    command = [str(Path(sys.executable).parent / "mnist-edge"), "serve", "--models-dir", str(models_dir.resolve()),
               "--port", "0", "--workers", "1"]
    with tempfile.TemporaryDirectory(prefix="mnist-edge-x86-") as tmp:
        log_path = Path(tmp) / "serve.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not (match := re.search(r"serving on (http://\S+)", log_path.read_text())):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = " | ".join(log_path.read_text().strip().splitlines()[-3:])
                    raise CheckFailed(f"the x86 server did not start: {tail or 'no output'}")
                time.sleep(0.2)
            yield match.group(1)
        finally:
            process.terminate()
            process.wait(timeout=30)


def check(guest: str, host: str, drawn: list[Drawing]) -> list[Agreement]:
    """Compare every model both servers loaded, printing one line per model as it finishes."""
    results = []
    for model in same_models(loaded_models(guest), loaded_models(host)):
        results.append(compare_model(model, guest, host, drawn))
        print(line(results[-1]), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; 0 when every model agrees on every drawing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guest", required=True, help="URL of the server under test (the aarch64 one)")
    parser.add_argument("--host", help="URL of a running reference server (default: start one here)")
    parser.add_argument("--models-dir", type=Path, default=default_models_dir(),
                        help="models folder of the reference server it starts (default: the shipped models)")
    parser.add_argument("--data", help="MNIST folder (default: $MNIST_DATA)")
    parser.add_argument("--count", type=int, default=200, help="drawn MNIST test digits (default: 200)")
    parser.add_argument("--not-digits", type=int, default=4, help="drawings per non-digit kind (default: 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawings (default: 0)")
    args = parser.parse_args(argv)
    guest = args.guest.rstrip("/")
    try:
        drawn = drawings(args.data, args.count, args.not_digits, args.seed)
        print(f"{len(drawn)} drawings: {args.count} MNIST test digits, {len(drawn) - args.count} non-digits",
              flush=True)
        if args.host:
            results = check(guest, args.host.rstrip("/"), drawn)
        else:
            with local_server(args.models_dir) as host:
                results = check(guest, host, drawn)
    except CheckFailed as exc:
        print(f"aarch64 check: error: {exc}", file=sys.stderr)
        return 1
    failed = [r for r in results if r.differing]
    if failed:
        first = failed[0]
        print(f"aarch64 check: error: {len(failed)} of {len(results)} models answered differently; "
              f"{first.model}: {first.differing[0]}", file=sys.stderr)
        return 1
    print(f"aarch64 check: all {len(results)} models agree on all {len(drawn)} drawings")
    return 0


if __name__ == "__main__":
    # A TERM (the check script's clean-up, a CI timeout) unwinds like an error, so the x86 server is stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
