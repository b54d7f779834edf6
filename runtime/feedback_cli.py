"""`mnist-edge feedback stats | export DIR | purge --yes`: the corrections database from the shell."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mnist_edge.runtime.config import env_name
from mnist_edge.runtime.errors import MnistEdgeError
from mnist_edge.runtime.feedback import FeedbackStore, default_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The feedback command's action, folder and flags."""
    parser.add_argument("action", choices=("stats", "export", "purge"),
                        help="stats: count the corrections; export: write them as PNGs + corrections.csv into DIR "
                             "(what `train --feedback` reads); purge: delete them all")
    parser.add_argument("dir", type=Path, nargs="?", metavar="DIR", help="export's folder (created if missing)")
    parser.add_argument("--db", type=Path, metavar="PATH",
                        help=f"the corrections database (default: ${env_name('feedback_db')}, else where `serve` "
                             f"keeps it: {default_path()})")
    parser.add_argument("--yes", action="store_true", help="purge: really delete every correction (default: refuse)")


def database(args: argparse.Namespace) -> Path:
    """The database the command works on: --db, $MNIST_EDGE_FEEDBACK_DB, or serve's default; it must exist."""
    path = args.db or Path(os.environ.get(env_name("feedback_db")) or default_path())
    if not path.is_file():
        raise MnistEdgeError(f"no corrections database at {path}: `serve` makes it on the first correction "
                             "(--db names another)")
    return path


def run(args: argparse.Namespace) -> int:
    """Do the action and print one summary; exit status 0."""
    if args.action == "export" and args.dir is None:
        raise MnistEdgeError("export needs a folder: mnist-edge feedback export DIR")
    if args.action != "export" and args.dir is not None:
        raise MnistEdgeError(f"{args.action} takes no folder ({args.dir})")
    store = FeedbackStore(database(args))
    try:
        if args.action == "stats":
            stats = store.stats()
            labels = "  ".join(f"{'not a digit' if label == 'none' else label}: {n}"
                               for label, n in stats["by_label"].items())
            noun = "correction" if stats["count"] == 1 else "corrections"
            print(f"{stats['count']} {noun} in {store.path} ({stats['db_bytes'] / 1e6:.2f} MB), "
                  f"{stats['corrected']} of them answered wrong by the model")
            if labels:
                print(f"by label: {labels}")
        elif args.action == "export":
            count = store.export(args.dir)
            print(f"{count} corrections -> {args.dir} (corrections.csv and one PNG each)")
        else:
            count = store.stats()["count"]
            if not args.yes:
                raise MnistEdgeError(f"purge deletes all {count} corrections in {store.path} for good; add --yes "
                                     "(keep a copy first: mnist-edge feedback export DIR)")
            print(f"deleted {store.purge()} corrections from {store.path}")
    finally:
        store.close()
    return 0
