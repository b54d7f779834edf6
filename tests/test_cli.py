"""The mnist-edge command: a happy path from training to a Triton repository, and every error as one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_edge.cli import build_parser, main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("mnist-edge: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_convert_without_any_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "convert")
    assert code == 1 and "no run with model.keras" in one_line_error(err)


def test_missing_data_path(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--data", str(tmp_path / "nowhere"))
    assert code == 1 and "does not exist" in one_line_error(err)


def test_corrupt_data_folder(capsys, tmp_path):
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (tmp_path / stem).write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05garbage")
    (tmp_path / "model.keras").write_bytes(b"not a model")
    code, _, err = run(capsys, "convert", str(tmp_path), "--data", str(tmp_path))
    assert code == 1 and "train-images-idx3-ubyte" in one_line_error(err) and "truncated or corrupt" in err


def test_convert_without_a_trained_model(capsys, tmp_path, mnist):
    code, _, err = run(capsys, "convert", str(tmp_path), "--data", mnist.source)
    assert code == 1 and "run `mnist-edge train` first" in one_line_error(err)
    assert list(tmp_path.iterdir()) == []


def test_data_pointing_at_one_file_is_explained(capsys, tmp_path, mnist):
    one = next(Path(mnist.source).glob("t10k-images*"))
    code, _, err = run(capsys, "train", "--data", str(one))
    assert code == 1 and f"pass the folder that holds all four (--data {one.parent})" in one_line_error(err)
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = run(capsys, "train", "--data", str(tmp_path / "notes.txt"))
    assert code == 1 and "four MNIST IDX files" in one_line_error(err) and "pickle" not in err


def test_unknown_architecture(capsys, tmp_path, mnist):
    code, _, err = run(capsys, "train", "--data", mnist.source, "--arch", "resnet", "--out", str(tmp_path))
    assert code == 1 and "valid: cnn, seed" in one_line_error(err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["train", "--epochs", "0"], ["train", "--limit", "-5"], ["publish", "--drawn", "0"]])
def test_counts_below_one_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and f"argument {argv[1]}: must be at least 1" in capsys.readouterr().err


def test_console_script_exit_status_and_message(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mnist_edge.cli", "train", "--data", str(tmp_path / "x")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("mnist-edge: error: MNIST path")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", [[], ["train", "--epochs", "many"], ["fly"]])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


# What must never load while the parser is built or a subcommand's --help is printed.
HEAVY = ("flask", "werkzeug", "waitress", "numpy", "PIL", "tensorflow", "keras", "onnxruntime", "ai_edge_litert",
         "onnx")
IMPORTS_SCRIPT = """
import contextlib, io, json, sys
from mnist_edge.cli import build_parser
for argv in (["--help"], ["train", "--help"], ["convert", "--help"], ["publish", "--help"], ["drawn-eval", "--help"]):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(argv)
        except SystemExit:
            pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[1].split(",")))))
"""


def test_parser_and_help_import_nothing_heavy():
    result = subprocess.run([sys.executable, "-c", IMPORTS_SCRIPT, ",".join(HEAVY)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("command", ["train", "convert", "publish", "drawn-eval"])
def test_help_has_examples_and_every_default(command):
    parser = build_parser()
    sub = next(a for a in parser._subparsers._group_actions if a.dest == "command").choices[command]
    text = sub.format_help()
    assert "examples:\n  mnist-edge " + command in text
    for action in sub._actions:
        if action.dest != "help":
            assert action.help and "default" in action.help, f"{command} {action.option_strings or action.dest}"


def test_train_help_defaults_are_the_config_defaults():
    from mnist_edge.train.fit import TrainConfig

    train_help = " ".join(next(a for a in build_parser()._subparsers._group_actions
                               if a.dest == "command").choices["train"].format_help().split())
    config = TrainConfig()
    assert f"passes over the training set (default: {config.epochs})" in train_help
    assert f"(default: {config.arch})" in train_help
    assert f"same seed gives bit-identical weights (default: {config.seed})" in train_help


# Runs the CLI with some modules made unimportable, as on an install without their extra.
MISSING_SCRIPT = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # `import name` now raises ModuleNotFoundError, as if it were not installed
from mnist_edge.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(("missing", "argv", "extra"), [
    ("tensorflow,keras", ["train"], "train"),
    ("tensorflow,keras", ["convert", "{run}"], "train"),
    ("flask,waitress", ["serve", "--port", "0"], "serve"),
])
def test_missing_extra_is_a_one_line_install_hint(missing, argv, extra, mnist, tmp_path):
    (tmp_path / "model.keras").write_bytes(b"")
    argv = [arg.format(run=tmp_path) for arg in argv] + (["--data", mnist.source] if argv[0] != "serve" else [])
    result = subprocess.run([sys.executable, "-c", MISSING_SCRIPT, missing, *argv], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("mnist-edge")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"mnist-edge: error: `{argv[0]}` needs the {extra} install (no module ")
    assert lines[0].endswith(f'): pip install "mnist-edge[{extra}]"') and lines[0].split("'")[1] in missing
    assert "Traceback" not in result.stderr
