"""The `mnist-edge` command: train, convert, publish and export a model; serve it, or run the whole product (up);
read the numbers written in image files (read); measure it (drawn-eval, numbers-eval, bench); keep the
corrections people make on the canvas (feedback). Each subcommand imports what it needs when it runs."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from mnist_edge import __version__
from mnist_edge.convert.floor import MIN_ACCURACY
from mnist_edge.runtime.config import default_models_dir
from mnist_edge.runtime.errors import MnistEdgeError

DATA_HELP = ("MNIST: a folder of the four IDX files (gzip or raw) or a mnist.npz "
             "(default: $MNIST_DATA, then Keras' cache ~/.keras/datasets/mnist.npz; never downloaded)")
EXAMPLES = """examples:
  mnist-edge train --data ../shared/data/mnist       # -> a new runs/<timestamp>/ with model.keras
  mnist-edge convert --data ../shared/data/mnist     # the newest run -> every format + manifest.json
  mnist-edge publish --data ../shared/data/mnist     # the newest run -> the served models, unless worse
  mnist-edge export --triton /tmp/triton             # the served models -> a Triton/KServe repository
  mnist-edge serve                                   # the served models on http://127.0.0.1:8000
  mnist-edge up                                      # the API and the drawing canvas on http://127.0.0.1:8501
  mnist-edge read examples/number_2024.png          # the number written in an image
  mnist-edge feedback stats                          # the corrections people made on the canvas
  mnist-edge drawn-eval --data ../shared/data/mnist  # drawn test digits through a running API
  mnist-edge numbers-eval --data ../shared/data/mnist  # handwritten numbers of test digits read by /v1/read
  mnist-edge bench --data ../shared/data/mnist       # every model in-process and the server under load"""


class LazyParser(argparse.ArgumentParser):
    """A subcommand parser whose flags are added only when it is chosen, so `mnist-edge` starts without them."""

    def __init__(self, *args, populate: Callable[[argparse.ArgumentParser], None] | None = None,
                 extra: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.populate = populate
        self.extra = extra  # the pip extra its imports come from, for the install hint

    def parse_known_args(self, args=None, namespace=None):
        """Add the deferred flags (importing what they need), then parse as usual."""
        if self.populate:
            populate, self.populate = self.populate, None
            try:
                populate(self)
            except ModuleNotFoundError as exc:
                self.exit(1, missing_extra(self.prog.split()[-1], self.extra, exc) + "\n")
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:  # here, not in the top-level parser: the usage and the flags offered are this subcommand's
            self.error(f"unrecognized arguments: {' '.join(extras)}{self.closest(extras)}")
        return namespace, extras

    def closest(self, extras: list[str]) -> str:
        """' (did you mean --port?)' for the first unknown flag that is close to one of this subcommand's."""
        flags = [flag for action in self._actions for flag in action.option_strings if flag.startswith("--")]
        for extra in extras:
            if extra.startswith("-"):
                match = difflib.get_close_matches(extra.partition("=")[0], flags, n=1, cutoff=0.6)
                if match:
                    return f" (did you mean {match[0]}?)"
        return ""


def missing_extra(command: str, extra: str | None, exc: ModuleNotFoundError) -> str:
    """One line naming the missing module and the install that brings it."""
    install = f'pip install "mnist-edge[{extra or "all"}]"'
    return f"mnist-edge: error: `{command}` needs the {extra or 'full'} install (no module {exc.name!r}): {install}"


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    return _whole(text, 1)


def count_int(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    return _whole(text, 0)


# Training holds back a tenth of its images (train/fit.py) to calibrate the not-a-digit threshold on: fewer
# than ten leave it nothing.
MIN_LIMIT = 10


def limit_int(text: str) -> int:
    """An argparse type: a --limit large enough to hold back one image to calibrate on."""
    value = _whole(text, 1)
    if value < MIN_LIMIT:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_LIMIT}: a tenth of the images is held back to "
                                         "calibrate the not-a-digit threshold")
    return value


def percent(text: str) -> float:
    """An argparse type: a percentage from 0 to 100, returned as a share."""
    try:
        value = float(text.removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError("must be a percentage from 0 to 100")
    return value / 100


def _quiet_tensorflow() -> None:
    # TF's C++ start-up chatter (CUDA probes, oneDNN notes) buries the progress bars on a CPU box.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def cmd_train(args: argparse.Namespace) -> int:
    """Train a CNN on MNIST into a new run folder: model.keras, training.json, confusion_matrix.png."""
    _quiet_tensorflow()
    if args.feedback or args.from_dir:
        from mnist_edge.train.feedback import train_cli

        return train_cli(args)
    from mnist_edge.train.data import load_mnist
    from mnist_edge.train.runs import new_run, out_folder

    if args.out:  # before the data: a folder that must not be written is the first thing said
        out_folder(args.out, overwrite=args.overwrite)
    mnist = load_mnist(args.data)  # before TensorFlow loads: a wrong --data fails in a second, not ten
    from mnist_edge.train.fit import TrainConfig, save, train

    teacher, teacher_report = _teacher(args) if args.teacher else (None, None)
    if teacher_report:  # the teacher's own recipe: the same split, drawings and seed
        cfg = TrainConfig.from_report(teacher_report["config"])
        cfg.distill, cfg.stroke_views, cfg.limit = True, False, args.limit or cfg.limit
    else:
        cfg = TrainConfig(arch=args.arch, seed=args.seed or 0, augment=not args.no_augment,
                          distill=not args.no_augment, stroke_views=args.stroke_views, limit=args.limit)
    if args.epochs is not None:
        cfg.epochs = args.epochs
    if args.limit:  # a quick trial measures its not-a-digit report on fewer drawings too (MNIST test stays whole)
        cfg.drawn_test = min(cfg.drawn_test, args.limit // 10 + 10)
        cfg.test_negatives = min(cfg.test_negatives, args.limit // 100 + 10)
    # Keras' live bar on a terminal; one line per epoch in logs and CI.
    model, report = train(mnist, cfg, teacher=teacher, verbose=1 if sys.stdout.isatty() else 2)
    if teacher_report:
        from mnist_edge.convert.formats import KERAS_FILE
        from mnist_edge.runtime.manifest import sha256_file

        report["teacher"] = {"folder": str(args.teacher), "sha256": sha256_file(args.teacher / KERAS_FILE)}
    out = args.out or new_run()  # made only now, so a failed training leaves no empty run behind
    save(model, report, out)
    test = report["test"]
    print(f"{cfg.arch}: test accuracy {test['accuracy']:.2%} ({test['errors']} errors in {test['count']}), "
          f"{report['params']:,} params, trained in {report['train_seconds']:.0f} s")
    worst = sorted(test["per_class_accuracy"].items(), key=lambda kv: kv[1])[:3]
    print("weakest digits: " + ", ".join(f"{d}: {a:.2%}" for d, a in worst))
    decision = report["not_a_digit"]
    drawn, flagged = decision["drawn_test"], decision["not_digits"]
    print(f"not a digit: threshold {decision['threshold']:.4f} (temperature {decision['temperature']:.2f}); "
          f"held-out non-digits flagged {flagged['held_out_flagged']:.1%}, training kinds {flagged['training_generators_flagged']:.1%}; "
          f"drawn test digits {drawn['accuracy']:.2%} right, {drawn['false_rejection']:.2%} rejected, "
          f"ECE {drawn['calibration']['ece']:.2%}")
    if test["accuracy"] < MIN_ACCURACY:  # said now, not after the user has waited for convert to load it
        print(f"run folder: {out} (too weak to convert: {test['accuracy']:.2%} is below convert's "
              f"{MIN_ACCURACY:.0%} floor, --min-accuracy; train longer: more --epochs or a larger --limit)")
    else:
        print(f"run folder: {out} (next: mnist-edge convert {out})")
    return 0


def _teacher(args: argparse.Namespace):
    """The stroke-view model and training report in --teacher's folder, or a one-line error."""
    import json

    import keras

    from mnist_edge.convert.formats import KERAS_FILE
    from mnist_edge.runtime.errors import ConfigError, DataError
    from mnist_edge.train.training_report import REPORT_FILE

    if args.arch != "cnn" or args.epochs is not None or args.no_augment or args.seed is not None or args.stroke_views:
        raise ConfigError("--teacher distills with the teacher's own recipe: drop --arch, --epochs, --seed, "
                          "--no-augment and --stroke-views")
    paths = args.teacher / KERAS_FILE, args.teacher / REPORT_FILE
    for path in paths:
        if not path.is_file():
            raise DataError(f"--teacher {args.teacher}: no {path.name} there (a run folder or models/)")
    model = keras.models.load_model(paths[0], compile=False)
    if "views" not in {layer.name for layer in model.layers}:
        raise DataError(f"--teacher {args.teacher}: its model reads each image once; a teacher has stroke views")
    return model, json.loads(paths[1].read_text())


def cmd_convert(args: argparse.Namespace) -> int:
    """Convert a run's model.keras to every format, verify each and write the run's manifest.json."""
    _quiet_tensorflow()
    from mnist_edge.convert.formats import KERAS_FILE
    from mnist_edge.runtime.errors import DataError
    from mnist_edge.train.data import load_mnist
    from mnist_edge.train.runs import find_run, refuse_served

    # The folders first, then the data: a wrong folder is the first thing said.
    for path, doing in ((args.run, "convert"), (args.triton, "convert --triton")):
        if path:
            refuse_served(path, doing)
    try:
        run = find_run(args.run, holding=KERAS_FILE, missing="run `mnist-edge train` first")
    except DataError as exc:
        if args.triton and not args.run:  # the served models have their own way to Triton
            raise DataError(f"{exc.message}; to export the served models: "
                            f"mnist-edge export --triton {args.triton}") from None
        raise
    mnist = load_mnist(args.data)
    from mnist_edge.convert.pipeline import convert

    manifest = convert(run, mnist, triton=args.triton, min_accuracy=args.min_accuracy)
    print(f"{'artifact':<16}{'size':>10}{'accuracy':>10}{'agree':>9}{'is-digit':>10}{'max|dp|':>10}{'threshold':>11}")
    for name, entry in manifest["artifacts"].items():
        print(f"{name:<16}{entry['size_bytes'] / 1024:>8.1f}KB{entry['accuracy']:>10.2%}{entry['agreement']:>9.2%}"
              f"{entry['is_digit_agreement']:>10.2%}{entry['max_abs_diff']:>10.4f}{entry['threshold']:>11.4f}")
    if args.triton:
        print(f"Triton/KServe repository -> {args.triton}")
    print(f"run folder: {run} (next: mnist-edge publish {run})")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish a converted run into the served models folder if it is not worse, or roll the last publish back."""
    from mnist_edge.convert.publish import PREVIOUS, publish, rollback
    from mnist_edge.runtime.manifest import MANIFEST_FILE
    from mnist_edge.train.data import load_mnist
    from mnist_edge.train.runs import find_run

    if args.rollback:
        manifest = rollback(args.models_dir)
        print(f"rolled back: {args.models_dir} holds the set converted {manifest.get('created', '?')} again "
              f"(the replaced one is in {PREVIOUS}/; --rollback again undoes this); {_serves(args.models_dir)}")
        return 0
    run = find_run(args.run, holding=MANIFEST_FILE, missing=f"convert it first (mnist-edge convert {args.run})")
    candidate, current = publish(run, args.models_dir, load_mnist(args.data), force=args.force,
                                 count=args.drawn, seed=args.seed)
    print(f"{'':<11}{'artifact':<16}{'MNIST test':>11}{f'drawn ({args.drawn})':>13}{'rejected':>10}"
          f"{'non-digits flagged':>20}")
    for label, score in (("published", current), ("candidate", candidate)):
        if score:
            corrections = "" if score.corrections is None else f"  held-back corrections {score.corrections:.2%}"
            print(f"{label:<11}{score.artifact:<16}{score.test_accuracy:>11.2%}{score.drawn_accuracy:>13.2%}"
                  f"{score.false_rejection:>10.2%}{score.held_out_flagged:>20.2%}{corrections}")
    kept = f" (the replaced set is in {args.models_dir / PREVIOUS}; undo: mnist-edge publish --rollback)"
    print(f"published {run} -> {args.models_dir}" + (kept if current else ""))
    print(_serves(args.models_dir))
    return 0


def _serves(models_dir: Path) -> str:
    """Whether a plain `mnist-edge serve` reads this folder, which one it reads if not (a non-editable install
    reads its own copy in site-packages), and how to serve this one."""
    from mnist_edge.runtime.config import env_name

    variable = env_name("models_dir")
    default = Path(os.environ.get(variable) or default_models_dir()).expanduser().resolve()
    source = f"${variable}" if os.environ.get(variable) else "its default"
    folder = models_dir.resolve()
    if folder == default:
        return f"`mnist-edge serve` reads {folder} ({source}): restart it to load this set"
    return (f"`mnist-edge serve` reads {default} ({source}), not this folder: "
            f"serve this one with `mnist-edge serve --models-dir {folder}`")


def cmd_export(args: argparse.Namespace) -> int:
    """Export the served models (checked against their manifest) as a Triton/KServe repository; models/ is only read."""
    from mnist_edge.convert.triton import export_served

    names = export_served(args.models_dir, args.triton)
    print(f"Triton/KServe repository -> {args.triton} ({', '.join(names)} from {args.models_dir.resolve()})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the models over HTTP (no TensorFlow): gunicorn's pre-fork workers on Linux, waitress's threads elsewhere."""
    from mnist_edge.runtime.api.server import serve

    return serve(args)


def cmd_read(args: argparse.Namespace) -> int:
    """Print the handwritten number in each image file (one line of digits), as POST /v1/read reads it."""
    from mnist_edge.runtime.api.read_files import at_url, in_process, read_files

    read = at_url(args.url, args.model, args.token) if args.url else in_process(args.models_dir, args.model)
    return read_files(args.files, read, out=sys.stdout, err=sys.stderr)


def cmd_drawn_eval(args: argparse.Namespace) -> int:
    """Accuracy on MNIST test digits drawn the way people draw on a 280x280 canvas, through the API."""
    from mnist_edge.train.drawn_eval import evaluate_cli

    return evaluate_cli(args)


def cmd_numbers_eval(args: argparse.Namespace) -> int:
    """How many handwritten numbers made of MNIST test digits /v1/read reads exactly: separate, touching, photos."""
    from mnist_edge.train.numbers_eval import evaluate_cli

    return evaluate_cli(args)


def cmd_bench(args: argparse.Namespace) -> int:
    """Benchmark every model in-process and the server under wrk; write JSON, a Markdown table and charts."""
    from mnist_edge.benchmarks.run import bench

    return bench(args)


def _bench_flags(parser: argparse.ArgumentParser) -> None:
    from mnist_edge.benchmarks.run import add_arguments

    add_arguments(parser)


def _serve_flags(parser: argparse.ArgumentParser) -> None:
    from mnist_edge.runtime.api.server import add_arguments  # imports Flask: only when `serve` is chosen

    add_arguments(parser)


def cmd_feedback(args: argparse.Namespace) -> int:
    """Count, export or delete the corrections people made on the canvas (the database `serve` keeps)."""
    from mnist_edge.runtime.feedback_cli import run

    return run(args)


def _feedback_flags(parser: argparse.ArgumentParser) -> None:
    from mnist_edge.runtime.feedback_cli import add_arguments

    add_arguments(parser)


def _command(sub, name: str, func: Callable[[argparse.Namespace], int], *, extra: str | None, examples: str,
             populate: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=func.__doc__, description=func.__doc__, epilog=f"examples:\n{examples}",
                            formatter_class=argparse.RawDescriptionHelpFormatter, populate=populate, extra=extra)
    parser.set_defaults(func=func, extra=extra)
    return parser


def cmd_up(args: argparse.Namespace) -> int:
    """Run the whole product, the API and the canvas UI, until Ctrl-C."""
    from mnist_edge.webui.up import UpError, up

    try:
        return up(args)
    except UpError as exc:
        print(f"mnist-edge: error: {exc}", file=sys.stderr)
        return 1


def _up_flags(parser: argparse.ArgumentParser) -> None:
    import streamlit  # noqa: F401 - fail at parse time with the install hint, not after the API has started
    from mnist_edge.webui.up import add_arguments

    add_arguments(parser)


def _reader_flags(parser: argparse.ArgumentParser, url_help: str) -> None:
    """Where numbers are read: a running API (--url, --token) or the models here (--models-dir), and which model."""
    parser.add_argument("--url", help=url_help)
    parser.add_argument("--models-dir", type=Path, default=default_models_dir(), metavar="DIR",
                        help="the models to read with, without --url (default: %(default)s)")
    parser.add_argument("--model", help="model name (default: the manifest's default, or the server's)")
    parser.add_argument("--token", help="bearer token, if the server at --url wants one (default: none)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subcommand per stage; it imports no model, data or web code."""
    parser = argparse.ArgumentParser(prog="mnist-edge", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=LazyParser)

    train = _command(sub, "train", cmd_train, extra="train", examples="""\
  mnist-edge train --data ../shared/data/mnist                       # fit, then distill into one read per image
  mnist-edge train --data ../shared/data/mnist --stroke-views --out /tmp/teacher   # the shipped model's teacher ...
  mnist-edge train --data ../shared/data/mnist --teacher /tmp/teacher              # ... and the shipped model
  mnist-edge train --data ../shared/data/mnist --epochs 5 --limit 2000 --seed 3   # a quick trial
  mnist-edge train --data ~/mnist.npz --arch seed --no-augment --out /tmp/seed
  mnist-edge train --feedback ~/.local/share/mnist-edge/feedback.sqlite3 --from models  # learn from corrections""")
    train.add_argument("--data", type=Path, metavar="PATH", help=DATA_HELP)
    train.add_argument("--arch", default="cnn", help="cnn, or seed for the tutorial's network (default: cnn)")
    train.add_argument("--epochs", type=positive_int, metavar="N", help="passes over the training set (default: 15)")
    train.add_argument("--seed", type=int, metavar="N",
                       help="seeds the weights, shuffling, augmentation and drawings: the same seed gives "
                            "bit-identical weights (default: 0)")
    train.add_argument("--limit", type=limit_int, metavar="N",
                       help="train on the first N of the 60,000 training images, for quick trials; the report "
                            "still tests on all 10,000 test images, and on at most N/10+10 drawn test digits and "
                            "N/100+10 drawings of each non-digit kind (default: all, 2,000 and 300)")
    train.add_argument("--no-augment", action="store_true",
                       help="train on plain MNIST, without distortions, drawn digits or distillation from stroke views "
                            "(default: augment)")
    train.add_argument("--stroke-views", action="store_true",
                       help="serve the fitted network reading each image at three stroke weights (the shipped "
                            "model's teacher) instead of distilling it into one that reads each image once (a little "
                            "more accurate, three times the work per image; default: distill)")
    train.add_argument("--teacher", type=Path, metavar="DIR",
                       help="a run folder or models/ whose model reads each image at three stroke weights: a new "
                            "network that reads each image once learns from its answers and the labels from the "
                            "start, with its recipe (default: none, fit a network, then distill its stroke views)")
    train.add_argument("--feedback", type=Path, metavar="DB_OR_DIR",
                       help="fine-tune the --from model on the corrections in this feedback database or `feedback "
                            "export` folder, replaying MNIST, drawn digits and non-digits; a seeded 20%% is held back "
                            "and measured before and after (--epochs: passes, default 3; default: train from scratch)")
    train.add_argument("--from", dest="from_dir", type=Path, metavar="DIR",
                       help="with --feedback: the models folder or run folder whose model.keras and training.json "
                            "are fine-tuned (default: none)")
    train.add_argument("--out", type=Path, metavar="DIR",
                       help="write here instead: a new or empty folder, never the served models (default: a new "
                            "runs/<timestamp>/ under the current folder)")
    train.add_argument("--overwrite", action="store_true",
                       help="let --out be a folder that already holds files, replacing its model and report "
                            "(default: refuse)")

    conv = _command(sub, "convert", cmd_convert, extra="train", examples="""\
  mnist-edge convert --data ../shared/data/mnist                     # the newest run under runs/
  mnist-edge convert runs/20250101-120000 --triton /tmp/triton       # a named run, plus a Triton repository""")
    conv.add_argument("run", type=Path, nargs="?", metavar="RUN",
                      help="run folder holding model.keras; the artifacts and manifest.json are written there "
                           "(default: the newest under runs/)")
    conv.add_argument("--data", type=Path, metavar="PATH", help=DATA_HELP)
    conv.add_argument("--triton", type=Path, metavar="DIR",
                      help="also write the run's Triton/KServe model repository here; the served models' comes from "
                           "`mnist-edge export` (default: none)")
    conv.add_argument("--min-accuracy", type=percent, default=MIN_ACCURACY, metavar="PCT",
                      help="refuse a model that reads fewer MNIST test digits right, in percent; one no better than "
                           "always answering the commonest digit is refused whatever this says "
                           f"(default: {MIN_ACCURACY * 100:g})")

    pub = _command(sub, "publish", cmd_publish, extra="train", examples="""\
  mnist-edge publish --data ../shared/data/mnist                     # the newest converted run, if not worse
  mnist-edge publish runs/20250101-120000 --force                    # even if it measures worse
  mnist-edge publish --rollback                                      # serve the replaced set again""")
    pub.add_argument("run", type=Path, nargs="?", metavar="RUN",
                     help="converted run folder (with manifest.json) to publish (default: the newest under runs/)")
    pub.add_argument("--models-dir", type=Path, default=default_models_dir(), metavar="DIR",
                     help="the served models folder to replace; `serve` reads it (default: %(default)s)")
    pub.add_argument("--data", type=Path, metavar="PATH", help=DATA_HELP)
    # 300 drawings tell a broken model from a good one in about ten seconds of drawing.
    pub.add_argument("--drawn", type=positive_int, default=300, metavar="N",
                     help="canvas drawings of MNIST test digits both models are scored on, with N/3 drawings of "
                          "each held-out non-digit kind (default: %(default)s)")
    pub.add_argument("--seed", type=int, default=0, metavar="N", help="seed of those drawings (default: 0)")
    pub.add_argument("--force", action="store_true",
                     help="publish even if the run is worse on MNIST test or drawn accuracy, false rejections or "
                          "held-out non-digits flagged (default: refuse)")
    pub.add_argument("--rollback", action="store_true",
                     help="restore the set the last publish replaced, kept in DIR/.previous/ (default: publish RUN)")

    export = _command(sub, "export", cmd_export, extra="train", examples="""\
  mnist-edge export --triton /tmp/triton                             # the served models -> a Triton repository
  mnist-edge export --triton /tmp/triton --models-dir /srv/models""")
    export.add_argument("--triton", type=Path, metavar="DIR", required=True,
                        help="write a Triton/KServe model repository of the served ONNX models here, outside "
                             "the models folder (required: no default)")
    export.add_argument("--models-dir", type=Path, default=default_models_dir(), metavar="DIR",
                        help="the models folder to export; it is only read (default: %(default)s)")

    _command(sub, "serve", cmd_serve, extra="serve", populate=_serve_flags, examples="""\
  mnist-edge serve                                                   # http://127.0.0.1:8000
  mnist-edge serve --host 0.0.0.0 --port 8080 --model tflite-int8,onnx-int8""")

    _command(sub, "up", cmd_up, extra="serve,ui", populate=_up_flags, examples="""\
  mnist-edge up                                                      # draw at http://127.0.0.1:8501
  mnist-edge up --host 0.0.0.0 --ui-port 8080 --api-port 8081        # serve the canvas to the network""")

    read = _command(sub, "read", cmd_read, extra="serve", examples="""\
  mnist-edge read examples/number_2024.png photo.jpg                 # prints "2024  examples/number_2024.png", ...
  mnist-edge read --url http://pi.local:8000 meter.jpg               # asks a running server instead""")
    read.add_argument("files", type=Path, nargs="+", metavar="FILE",
                      help="PNG, JPEG or any image Pillow reads, one line of handwriting each (required: no default)")
    _reader_flags(read, "a running API to ask (default: none, read here with the models in --models-dir)")

    _command(sub, "feedback", cmd_feedback, extra=None, populate=_feedback_flags, examples="""\
  mnist-edge feedback stats                                          # how many corrections, per label
  mnist-edge feedback export /tmp/corrections                        # PNGs + corrections.csv (train --feedback)
  mnist-edge feedback purge --yes                                    # delete them all""")

    drawn = _command(sub, "drawn-eval", cmd_drawn_eval, extra=None, examples="""\
  mnist-edge drawn-eval --data ../shared/data/mnist --count 200 --save /tmp/drawn""")
    drawn.add_argument("--data", type=Path, metavar="PATH", help=DATA_HELP)
    drawn.add_argument("--url", default="http://127.0.0.1:8000",
                       help="the API to send the drawings to (default: %(default)s)")
    drawn.add_argument("--count", type=positive_int, default=1000, metavar="N",
                       help="how many test digits to draw (default: %(default)s)")
    drawn.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the drawings (default: 0)")
    drawn.add_argument("--not-digits", type=count_int, default=100, metavar="N",
                       help="also send N drawings of each not-a-digit generator (letters, symbols, faces, ...) and "
                            "count how many come back is_digit: false; 0 skips them (default: 100)")
    drawn.add_argument("--model", help="model name (default: the server's default)")
    drawn.add_argument("--token", help="bearer token, if the server wants one (default: none)")
    drawn.add_argument("--save", type=Path, metavar="DIR", help="also write the drawings as PNGs here (default: no)")

    numbers = _command(sub, "numbers-eval", cmd_numbers_eval, extra="serve", examples="""\
  mnist-edge numbers-eval --data ../shared/data/mnist                # in process, on the shipped models
  mnist-edge numbers-eval --data ../shared/data/mnist --url http://127.0.0.1:8000 --save /tmp/misread""")
    numbers.add_argument("--data", type=Path, metavar="PATH", help=DATA_HELP)
    _reader_flags(numbers, "a running API to send the numbers to "
                           "(default: none, an app in this process on --models-dir)")
    numbers.add_argument("--count", type=positive_int, default=300, metavar="N",
                         help="numbers of each kind: separate digits, touching digits, photos (default: %(default)s)")
    numbers.add_argument("--singles", type=count_int, default=1000, metavar="N",
                         help="drawn single digits sent to both /v1/read and /v1/predict, whose answers must agree; "
                              "0 skips them (default: %(default)s)")
    numbers.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the numbers (default: 0)")
    numbers.add_argument("--tune", action="store_true",
                         help="make the numbers of MNIST training digits and the tuning photo styles, the only ones "
                              "to tune segmentation on (default: test digits and held-out styles)")
    numbers.add_argument("--save", type=Path, metavar="DIR", help="also write each misread image here (default: no)")

    _command(sub, "bench", cmd_bench, extra="all", populate=_bench_flags, examples="""\
  mnist-edge bench --data ../shared/data/mnist                       # -> docs/benchmarks/, a few minutes
  mnist-edge bench --data ../shared/data/mnist --quick --out /tmp/b  # CI smoke: every suite once, 1 s load cells
  mnist-edge bench --data ../shared/data/mnist --peer mlserver --peer-venv /opt/mlserver  # + MLServer's rows""")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run, and turn every expected failure into one line and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MnistEdgeError as exc:
        print(f"mnist-edge: error: {exc.message}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        if not exc.name or exc.name.partition(".")[0] == "mnist_edge":
            raise  # our own module missing is a bug, not an install to hint at
        print(missing_extra(args.command, args.extra, exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mnist-edge: interrupted; nothing was published", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
