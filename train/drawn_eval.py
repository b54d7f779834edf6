"""`mnist-edge drawn-eval`: drawn MNIST test digits and non-digits sent to a running API as PNGs, its answers scored."""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from mnist_edge.train.drawn import GROUPS, iter_drawn, summarize, to_png
from mnist_edge.webui.client import PATIENT, ApiClient, ApiError


def _report(summary: dict, latencies: list[float], rejected: float, flagged: dict[str, list[bool]]) -> None:
    from mnist_edge.train.negatives import GENERATORS

    print(f"drawn digits: accuracy {summary['accuracy']:.2%} on {summary['count']}, "
          f"median latency {statistics.median(latencies):.1f} ms")
    for g in GROUPS:
        parts = [f"{k} {v['accuracy']:.2%} ({v['count']})" for k, v in summary[f"by_{g}"].items()]
        print(f"  by {g}: " + ", ".join(parts))
    print(f"not a digit: {rejected:.2%} of the drawn digits wrongly answered is_digit: false")
    for held_out in (True, False):
        names = [n for n in flagged if GENERATORS[n][0] == held_out]
        if names:
            every = [f for n in names for f in flagged[n]]
            parts = ", ".join(f"{n} {np.mean(flagged[n]):.1%}" for n in names)
            print(f"  {'held-out' if held_out else 'training'} generators flagged {np.mean(every):.2%} of "
                  f"{len(every)} ({parts})")


def evaluate_cli(args) -> int:
    """`mnist-edge drawn-eval`: POST drawn test digits and non-digits to the API as PNGs; print accuracy and flags."""
    from tqdm import tqdm

    from mnist_edge.train.data import load_mnist
    from mnist_edge.train.negatives import GENERATORS, negative

    mnist = load_mnist(args.data)
    client = ApiClient(url=args.url, token=args.token, timeout=PATIENT)

    def ask(png: bytes) -> dict:
        return client.predict(png, model=args.model, return_image=False)

    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
    results, latencies, rejected = [], [], []
    flagged: dict[str, list[bool]] = defaultdict(list)
    # Drawn lazily, so the bar moves from the first request on.
    progress = tqdm(iter_drawn(mnist.x_test, mnist.y_test, args.count, args.seed),
                    total=min(args.count, len(mnist.x_test)), unit="digit")
    negatives = [(name, i) for name in GENERATORS for i in range(args.not_digits)]
    try:
        for image, label, conditions in progress:
            png = to_png(image)
            if args.save:
                file_name = f"{conditions['index']:04d}_label-{label}_{conditions['style']}.png"
                (Path(args.save) / file_name).write_bytes(png)
            start = time.perf_counter()
            body = ask(png)
            latencies.append((time.perf_counter() - start) * 1000)
            results.append((conditions, int(body["digit"]) == label))
            rejected.append(not body["is_digit"])
        progress.close()
        for name, i in tqdm(negatives, unit="drawing", desc="not digits"):
            png = to_png(negative(name, i, mnist.x_test, mnist.y_test, seed=args.seed, stream="evaluation"))
            if args.save:
                (Path(args.save) / f"not-digit_{name}_{i:04d}.png").write_bytes(png)
            flagged[name].append(not ask(png)["is_digit"])
    except ApiError as exc:
        progress.close()  # the bar's last line must not land after the error's
        print(f"mnist-edge: error: {exc.message}", file=sys.stderr)
        return 1
    if not results:
        print("mnist-edge: error: --count must be at least 1", file=sys.stderr)
        return 1
    _report(summarize(results), latencies, float(np.mean(rejected)), flagged)
    return 0
