"""`mnist-edge numbers-eval`: handwritten numbers (train/numbers.py) read by POST /v1/read, scored exactly per kind."""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from mnist_edge.runtime.api.read_files import ReadFailed, at_url, in_process
from mnist_edge.runtime.segment import IN_A_NUMBER
from mnist_edge.train.drawn import iter_drawn, to_png
from mnist_edge.train.numbers import KINDS, iter_numbers

# What the issue asks of each measurement: the share of numbers read exactly, and of single digits read as
# /v1/predict answers them.
TARGETS = {"separate": 0.97, "touching": 0.90, "photo": 0.95, "single": 0.999}


def miss(body: dict | None, text: str) -> str | None:
    """What is wrong with a reading of `text`, or None when it is exact: every digit right, none missing, none extra
    (an item the model calls not a digit is an extra one). `body` is None when the API refused the image."""
    if body is None:
        return "refused"
    items = body["digits"]
    if len(items) != len(text):
        return "too few characters" if len(items) < len(text) else "too many characters"
    if not all(item["is_digit"] for item in items):
        return "a character called no digit"
    return None if body["number"] == text else "a digit misread"


def agrees(read: dict, predicted: dict) -> bool:
    """One character found, with the digit and the is-digit decision /v1/predict gives the same image."""
    items = read["digits"]
    return len(items) == 1 and items[0]["digit"] == predicted["digit"] and items[0]["is_digit"] == predicted["is_digit"]


def _ask(ask, route: str, data: bytes) -> dict | None:
    try:
        return ask(route, data)
    except ReadFailed:
        return None  # a refusal (blank, too many characters) is a wrong reading, not the end of the run


def _numbers(ask, images, labels, args, split: str) -> dict[str, dict]:
    from tqdm import tqdm

    results: dict[str, dict] = {}
    for kind in KINDS:
        scored, latencies, groups, misses, perfect = [], [], defaultdict(list), Counter(), []
        for number in tqdm(iter_numbers(images, labels, args.count, kind=kind, seed=args.seed, split=split),
                           total=args.count, desc=kind, unit="number"):
            start = time.perf_counter()
            body = _ask(ask, "/v1/read", number.data)
            latencies.append((time.perf_counter() - start) * 1000)
            wrong = miss(body, number.text)
            right = wrong is None
            scored.append(right)
            if wrong:
                misses[wrong] += 1
            groups[f"{len(number.text)} digits"].append(right)
            groups["broken strokes" if number.conditions["broken"] else "whole strokes"].append(right)
            if number.alone:
                perfect.append(_read_alone(ask, number))
            if args.save and not right:
                suffix = "jpg" if kind == "photo" else "png"
                got = body["number"] if body else "refused"
                (args.save / f"{kind}_{number.conditions['index']:04d}_{number.text}_read-{got or 'none'}.{suffix}"
                 ).write_bytes(number.data)
        results[kind] = {"count": len(scored), "exact": float(np.mean(scored)),
                         "median_ms": statistics.median(latencies),
                         "groups": {name: (float(np.mean(v)), len(v)) for name, v in sorted(groups.items())},
                         "misses": dict(misses.most_common())}
        if perfect:
            results[kind]["perfect_cuts"] = float(np.mean(perfect))
    return results


def _read_alone(ask, number) -> bool:
    """Whether every digit of a canvas number, drawn by itself, is read right by /v1/predict and passes as a digit in a
    number (IN_A_NUMBER): the number read exactly if /v1/read cut it perfectly. What separates this from the exact
    share is the cutting's; what it lacks of 100 % is the model's."""
    for png, text in zip(number.alone, number.text):
        body = _ask(ask, "/v1/predict", png)
        if body is None or str(body["digit"]) != text or body["digit_score"] < IN_A_NUMBER:
            return False
    return True


def _singles(ask, images, labels, args) -> dict:
    from tqdm import tqdm

    agreed = []
    for image, _, conditions in tqdm(iter_drawn(images, labels, args.singles, args.seed), total=args.singles,
                                     desc="single", unit="digit"):
        png = to_png(image)
        read, predicted = _ask(ask, "/v1/read", png), _ask(ask, "/v1/predict", png)
        agreed.append(read is not None and predicted is not None and agrees(read, predicted))
        if args.save and not agreed[-1]:
            (args.save / f"single_{conditions['index']:04d}.png").write_bytes(png)
    return {"count": len(agreed), "exact": float(np.mean(agreed)) if agreed else 0.0}


def evaluate_cli(args) -> int:
    """`mnist-edge numbers-eval`: read numbers of each kind and single digits; print exact-read rates per kind."""
    from mnist_edge.train.data import load_mnist

    mnist = load_mnist(args.data)
    if args.tune:  # the numbers the segmentation's constants may be tuned on
        images, labels, split = mnist.x_train, mnist.y_train, "tune"
    else:
        images, labels, split = mnist.x_test, mnist.y_test, "held-out"
    ask = at_url(args.url, args.model, args.token) if args.url else in_process(args.models_dir, args.model)
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
    results = _numbers(ask, images, labels, args, split)
    if args.singles:
        results["single"] = _singles(ask, images, labels, args)
    digits = "training" if args.tune else "test"
    where = args.url or "in process"
    print(f"numbers of MNIST {digits} digits read by /v1/read ({where}), seed {args.seed}:")
    for kind, result in results.items():
        what = "agree with /v1/predict" if kind == "single" else "read exactly"
        line = f"  {kind:<9}{result['exact']:>8.2%} {what} of {result['count']} (target {TARGETS[kind]:.1%})"
        if "median_ms" in result:
            line += f", median {result['median_ms']:.1f} ms"
        print(line)
        if "perfect_cuts" in result:
            print(f"      {'perfect cuts':<15}{result['perfect_cuts']:>8.2%} (each digit drawn alone, /v1/predict)")
        for name, (share, count) in result.get("groups", {}).items():
            print(f"      {name:<15}{share:>8.2%} of {count}")
        if result.get("misses"):
            print("      misses: " + ", ".join(f"{count} {name}" for name, count in result["misses"].items()))
    return 0
