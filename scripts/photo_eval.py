"""How many synthetic phone photos of one digit (train/synthetic_photos.py, test digits, every style) the served
model reads right, through the shared preprocessing and the model's backend in this process.

    python scripts/photo_eval.py --data ../shared/data/mnist                 # 300 at 2 MP and 100 at 12 MP, seed 1
    python scripts/photo_eval.py --data ../shared/data/mnist --count 50 --size 2mp

The figures in docs/preprocessing.md come from the first line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="MNIST (default: $MNIST_DATA)")
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="the served set (default: models)")
    parser.add_argument("--model", default="tflite-int8", help="the artifact to read with (default: %(default)s)")
    parser.add_argument("--size", choices=["2mp", "12mp"], help="one size only (default: both)")
    parser.add_argument("--count", type=int, help="photos per size (default: 300 at 2 MP, 100 at 12 MP)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the photos (default: %(default)s)")
    args = parser.parse_args()

    from tqdm import tqdm

    from mnist_edge.runtime.preprocess import preprocess
    from mnist_edge.runtime.registry import ModelRegistry
    from mnist_edge.train.data import load_mnist
    from mnist_edge.train.synthetic_photos import iter_photos

    predict = ModelRegistry.from_manifest(args.models_dir, names=[args.model]).get(args.model).backend.predict
    mnist = load_mnist(args.data)
    for size, count in (("2mp", 300), ("12mp", 100)):
        if args.size not in (None, size):
            continue
        count = args.count or count
        photos = iter_photos(mnist.x_test, mnist.y_test, count, seed=args.seed, size=size, split="held-out")
        right = [int(predict(preprocess(p.jpeg)).argmax()) == p.label for p in tqdm(photos, total=count, desc=size)]
        print(f"{args.model} in {args.models_dir}, held-out photos at {size}: {np.mean(right):.1%} of {count} read right")


if __name__ == "__main__":
    main()
