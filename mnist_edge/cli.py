"""The `mnist-edge` command: train, convert, serve. Heavy imports happen inside each subcommand."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mnist_edge import __version__
from mnist_edge.runtime.errors import MnistEdgeError

DEFAULT_MODELS = Path("models")


def _quiet_tensorflow() -> None:
    # TF's C++ start-up chatter (CUDA probes, oneDNN notes) buries the progress bars on a CPU box.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def cmd_train(args: argparse.Namespace) -> int:
    """Train a CNN on MNIST and write model.keras, training.json and confusion_matrix.png."""
    _quiet_tensorflow()
    from mnist_edge.train.data import load_mnist
    from mnist_edge.train.fit import TrainConfig, save, train

    cfg = TrainConfig(arch=args.arch, seed=args.seed, augment=not args.no_augment, limit=args.limit)
    if args.epochs is not None:
        cfg.epochs = args.epochs
    mnist = load_mnist(args.data)
    # Keras' live bar on a terminal; one line per epoch in logs and CI.
    model, report = train(mnist, cfg, verbose=1 if sys.stdout.isatty() else 2)
    save(model, report, args.out)
    test = report["test"]
    print(f"{cfg.arch}: test accuracy {test['accuracy']:.2%} ({test['errors']} errors in {test['count']}), "
          f"{report['params']:,} params, trained in {report['train_seconds']:.0f} s -> {args.out}")
    worst = sorted(test["per_class_accuracy"].items(), key=lambda kv: kv[1])[:3]
    print("weakest digits: " + ", ".join(f"{d}: {a:.2%}" for d, a in worst))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Convert model.keras to every format, verify each and write manifest.json."""
    _quiet_tensorflow()
    from mnist_edge.convert.pipeline import convert
    from mnist_edge.train.data import load_mnist

    manifest = convert(args.models, load_mnist(args.data), out=args.out, triton=args.triton)
    print(f"{'artifact':<16}{'size':>10}{'accuracy':>10}{'agree':>9}{'max|dp|':>10}")
    for name, entry in manifest["artifacts"].items():
        print(f"{name:<16}{entry['size_bytes'] / 1024:>8.1f}KB{entry['accuracy']:>10.2%}"
              f"{entry['agreement']:>9.2%}{entry['max_abs_diff']:>10.4f}")
    print(f"manifest -> {Path(args.out or args.models) / 'manifest.json'}")
    if args.triton:
        print(f"Triton/KServe repository -> {args.triton}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the models over HTTP with waitress (no TensorFlow needed)."""
    from mnist_edge.runtime.server import serve

    return serve(args)


def cmd_drawn_eval(args: argparse.Namespace) -> int:
    """Accuracy on MNIST test digits drawn the way people draw on a 280x280 canvas, through the API."""
    from mnist_edge.train.drawn import evaluate_cli

    return evaluate_cli(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subcommand per stage."""
    parser = argparse.ArgumentParser(prog="mnist-edge", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    data_help = "MNIST: IDX folder or mnist.npz (default: $MNIST_DATA, then Keras' cache/download)"

    train = sub.add_parser("train", help=cmd_train.__doc__)
    train.add_argument("--data", type=Path, help=data_help)
    train.add_argument("--arch", default="cnn", help="cnn (default) or seed (the tutorial's network)")
    train.add_argument("--epochs", type=int, help="default: the architecture's recipe (12)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--limit", type=int, help="train on the first N images only")
    train.add_argument("--no-augment", action="store_true", help="train on plain MNIST")
    train.add_argument("--out", type=Path, default=DEFAULT_MODELS, help="output folder (default: models)")
    train.set_defaults(func=cmd_train)

    conv = sub.add_parser("convert", help=cmd_convert.__doc__)
    conv.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="folder with model.keras (default: models)")
    conv.add_argument("--data", type=Path, help=data_help)
    conv.add_argument("--out", type=Path, help="output folder (default: --models)")
    conv.add_argument("--triton", type=Path, metavar="DIR", help="also write a Triton/KServe model repository")
    conv.set_defaults(func=cmd_convert)

    serve = sub.add_parser("serve", help=cmd_serve.__doc__)
    from mnist_edge.runtime.server import add_arguments as add_serve_arguments  # light: no model code

    add_serve_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    drawn = sub.add_parser("drawn-eval", help=cmd_drawn_eval.__doc__)
    drawn.add_argument("--data", type=Path, help=data_help)
    drawn.add_argument("--url", default="http://127.0.0.1:8000", help="the API to send the drawings to")
    drawn.add_argument("--count", type=int, default=1000, help="how many test digits to draw")
    drawn.add_argument("--seed", type=int, default=0)
    drawn.add_argument("--model", help="model name (default: the server's default)")
    drawn.add_argument("--token", help="bearer token, if the server wants one")
    drawn.add_argument("--save", type=Path, metavar="DIR", help="also write the drawings as PNGs here")
    drawn.set_defaults(func=cmd_drawn_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run, and turn every expected failure into one line and exit status 1."""
    args = build_parser().parse_args(argv)
    if getattr(args, "epochs", None) is not None and args.epochs < 1:
        print("mnist-edge: error: --epochs must be at least 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except MnistEdgeError as exc:
        print(f"mnist-edge: error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mnist-edge: interrupted; nothing was published", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
