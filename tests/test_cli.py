"""The mnist-edge command: a happy path from training to a Triton repository, and every error as one line."""

from __future__ import annotations

import json
import os
import re
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
for argv in (["--help"], ["train", "--help"], ["convert", "--help"], ["publish", "--help"], ["export", "--help"],
             ["drawn-eval", "--help"]):
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


@pytest.mark.parametrize("command", ["train", "convert", "publish", "export", "read", "drawn-eval"])
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


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    """No MNIST anywhere: a command that reached the data would say so."""
    from mnist_edge.train import data

    monkeypatch.delenv("MNIST_DATA", raising=False)
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "no-cache.npz")


@pytest.mark.parametrize(("argv", "expected"), [
    (["convert", "runs/20250101-120000", "--triton", "{tmp}/triton"], "run folder runs/20250101-120000 does not exist"),
    (["publish", "runs/doesnotexist"], "run folder runs/doesnotexist does not exist"),
    (["convert", "{tmp}/empty"], "no model.keras in {tmp}/empty: run `mnist-edge train` first"),
    (["publish", "{tmp}/empty"], "no manifest.json in {tmp}/empty: convert it first (mnist-edge convert {tmp}/empty)"),
])
def test_a_missing_run_is_reported_before_the_data(argv, expected, capsys, tmp_path, monkeypatch, no_mnist):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, *(arg.format(tmp=tmp_path) for arg in argv))
    assert code == 1 and one_line_error(err) == f"mnist-edge: error: {expected.format(tmp=tmp_path)}"
    assert not (tmp_path / "triton").exists()


def test_convert_triton_without_a_run_names_the_export_of_the_served_models(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a fresh clone: no runs/
    code, _, err = run(capsys, "convert", "--triton", "/tmp/triton")
    assert code == 1 and one_line_error(err).endswith(
        "; to export the served models: mnist-edge export --triton /tmp/triton")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_export_writes_the_served_models_triton_repository_and_nothing_into_models(capsys, tmp_path, shipped_models):
    before = snapshot(shipped_models)
    code, out, err = run(capsys, "export", "--triton", str(tmp_path / "triton"), "--models-dir", str(shipped_models))
    assert code == 0, err
    for name in ("onnx-fp32", "onnx-int8"):
        assert (tmp_path / "triton" / name / "1" / "model.onnx").is_file() and name in out
        assert f'name: "{name}"' in (tmp_path / "triton" / name / "config.pbtxt").read_text()
    code, _, err = run(capsys, "export", "--triton", str(shipped_models / "triton"))
    assert code == 1 and "is in the served models folder" in one_line_error(err)
    assert snapshot(shipped_models) == before


def test_export_checks_the_models_against_their_manifest(capsys, tmp_path, shipped_models):
    import shutil

    models = Path(shutil.copytree(shipped_models, tmp_path / "models"))
    (models / "model_int8.onnx").write_bytes(b"changed")
    code, _, err = run(capsys, "export", "--triton", str(tmp_path / "triton"), "--models-dir", str(models))
    assert code == 1 and "model_int8.onnx does not match its manifest sha256" in one_line_error(err)
    assert not (tmp_path / "triton").exists()


def test_nothing_but_publish_writes_into_the_served_folder(capsys, tmp_path, monkeypatch, shipped_models, no_mnist):
    from mnist_edge.runtime.config import default_models_dir

    before = snapshot(default_models_dir())
    served = tmp_path / "served"
    served.mkdir()
    (served / "manifest.json").write_text("{}")
    published = tmp_path / "published"
    (published / ".previous").mkdir(parents=True)  # publish replaced a set here once
    monkeypatch.setenv("MNIST_EDGE_MODELS_DIR", str(served))
    for argv in (["train", "--out", str(default_models_dir())], ["train", "--out", str(default_models_dir() / "x")],
                 ["train", "--out", str(served), "--overwrite"], ["train", "--out", str(published / "run")],
                 ["convert", str(default_models_dir())], ["convert", str(served)]):
        code, _, err = run(capsys, *argv)
        line = one_line_error(err)
        assert code == 1 and "is in the served models folder" in line and "only `mnist-edge publish`" in line, argv
    code, _, err = run(capsys, "convert", str(tmp_path / "run"), "--triton", str(default_models_dir() / "triton"))
    assert code == 1 and "is in the served models folder" in one_line_error(err)
    assert snapshot(default_models_dir()) == before and list(served.iterdir()) == [served / "manifest.json"]


def test_train_out_refuses_a_folder_with_files_unless_told(capsys, tmp_path, no_mnist):
    out = tmp_path / "old-run"
    out.mkdir()
    (out / "model.keras").write_bytes(b"an earlier model")
    code, _, err = run(capsys, "train", "--out", str(out))
    assert code == 1 and one_line_error(err) == (f"mnist-edge: error: --out {out} already holds files: name a new "
                                                 "folder, leave --out out for a new run under runs/, or add --overwrite")
    code, _, err = run(capsys, "train", "--out", str(out), "--overwrite")  # allowed: on to the data, which is missing
    assert code == 1 and "MNIST not found" in one_line_error(err)
    assert (out / "model.keras").read_bytes() == b"an earlier model"
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "train", "--out", str(tmp_path / "empty"))
    assert code == 1 and "MNIST not found" in one_line_error(err)


@pytest.mark.parametrize(("argv", "hint"), [
    (["serve", "--prot", "8080"], "(did you mean --port?)"),
    (["train", "--epohcs", "3"], "(did you mean --epochs?)"),
    (["publish", "--models-dri=/tmp/m"], "(did you mean --models-dir?)"),
    (["convert", "--zzz"], ""),
])
def test_an_unknown_flag_gets_the_subcommands_usage_and_the_closest_flag(argv, hint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith(f"usage: mnist-edge {argv[0]} ")
    assert err.strip().splitlines()[-1] == (f"mnist-edge {argv[0]}: error: unrecognized arguments: "
                                            f"{' '.join(argv[1:])}{' ' + hint if hint else ''}")


@pytest.mark.parametrize("limit", ["1", "5", "9"])
def test_a_limit_too_small_to_train_is_a_usage_error(limit, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--limit", limit])
    assert exit_info.value.code == 2
    assert "argument --limit: must be at least 10: a tenth of the images is held back" in capsys.readouterr().err


def test_train_help_gives_no_time_of_its_own():
    # The recipe's measured time, with its machine, is said once: in the README's Train section.
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert not re.search(r"\d+(:\d\d| ?min)", text), text


@pytest.mark.parametrize(("value", "expected"), [("80", 0.8), ("99.5%", 0.995), ("0", 0.0)])
def test_min_accuracy_is_a_percentage(value, expected):
    assert build_parser().parse_args(["convert", "--min-accuracy", value]).min_accuracy == expected


@pytest.mark.slow
def test_a_model_at_chance_is_flagged_by_train_and_refused_by_convert(capsys, tmp_path, mnist, monkeypatch):
    """--limit 10 (one image held back) trains; the model it gives reads digits at about chance, which train says
    at once and convert refuses in one line, before converting anything."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "train", "--data", mnist.source, "--limit", "10", "--epochs", "1", "--seed", "3")
    assert code == 0, err
    assert re.search(r"run folder: runs/\S+ \(too weak to convert: [\d.]+% is below convert's 80% floor", out), out
    (run_folder,) = (tmp_path / "runs").iterdir()
    files = sorted(p.name for p in run_folder.iterdir())
    code, _, err = run(capsys, "convert", "--data", mnist.source)
    line = one_line_error(err)
    assert code == 1 and line.startswith(f"mnist-edge: error: runs/{run_folder.name}: its model reads "), line
    assert re.search(r"of 10,000 MNIST test digits right, (below the 80\.00% floor \(--min-accuracy\)|no better than "
                     r"always answering the commonest digit \(11\.35%\)); train it longer \(more --epochs or a "
                     r"larger --limit\)$", line), line
    assert sorted(p.name for p in run_folder.iterdir()) == files  # nothing converted, no manifest


def test_an_unknown_default_model_is_one_line(tmp_path, shipped_models):
    result = subprocess.run([sys.executable, "-m", "mnist_edge.cli", "serve", "--default-model", "onnx-fp16", "--port",
                             "0"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1
    artifacts = json.loads((shipped_models / "manifest.json").read_text())["artifacts"]
    loaded = ", ".join(sorted(name for name, entry in artifacts.items() if entry["format"] != "keras"))
    said = [line for line in result.stderr.splitlines() if "onnx-fp16" in line]  # no "not loaded; using ..." first
    assert said == [f"mnist-edge: error: unknown default model 'onnx-fp16'; valid: {loaded}"], result.stderr


def test_drawn_eval_without_mnist_or_keras_names_the_data_options_only(tmp_path):
    """As in the serve-only install: no Keras, no MNIST anywhere; the one line says where to point, not to download."""
    env = {key: value for key, value in os.environ.items() if key != "MNIST_DATA"} | {"HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", MISSING_SCRIPT, "tensorflow,keras", "drawn-eval", "--count", "10"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        "mnist-edge: error: MNIST not found: pass --data PATH (a folder of the four IDX files, gzip or raw, or a "
        "mnist.npz) or set MNIST_DATA=PATH"], result.stderr


def test_top_level_help_names_every_command_and_shows_each():
    parser = build_parser()
    for command in parser._subparsers._group_actions[0].choices:
        assert re.search(rf"(?<![\w-]){command}(?![\w-])", parser.description), f"the description omits {command}"
        assert f"\n  mnist-edge {command} " in parser.epilog + "\n", f"the examples omit {command}"


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_serve_help_names_the_server_serve_starts(platform, monkeypatch):
    import contextlib

    from mnist_edge.runtime.api import server, workers

    started = []
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(workers, "check_gunicorn", lambda: None)
    monkeypatch.setattr(workers, "metrics_dir", contextlib.nullcontext)
    monkeypatch.setattr(server, "check_models", lambda config: True)
    monkeypatch.setattr(workers, "run_workers", lambda *args, **kwargs: started.append("gunicorn") or 0)
    monkeypatch.setattr(server, "_serve_waitress", lambda *args: started.append("waitress") or 0)
    assert main(["serve", "--port", "0"]) == 0

    parser = build_parser()
    serve_help = " ".join(parser._subparsers._group_actions[0].choices["serve"].format_help().split())
    said = re.search(r"(\w+)'s [\w -]+ on Linux, (\w+)'s [\w -]+ elsewhere", serve_help)
    assert said, serve_help
    assert started == [said[1] if platform == "linux" else said[2]]
    assert " ".join(parser.format_help().split()).count(said[0]) == 1  # the command list says the same


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_read_prints_each_files_number_in_process(capsys):
    files = [EXAMPLES / "canvas_7.png", EXAMPLES / "photo_2.jpg"]
    code, out, err = run(capsys, "read", *map(str, files))
    assert code == 0 and out.splitlines() == [f"7  {files[0]}", f"2  {files[1]}"], err


def test_read_a_bad_file_is_one_line_and_the_others_are_still_read(capsys, tmp_path):
    from PIL import Image

    (tmp_path / "notes.txt").write_text("2024")
    Image.new("L", (200, 80), 255).save(tmp_path / "blank.png")
    good = EXAMPLES / "canvas_7.png"
    code, out, err = run(capsys, "read", str(tmp_path / "notes.txt"), str(good), str(tmp_path / "blank.png"),
                         str(tmp_path / "missing.png"))
    assert code == 1 and out.splitlines() == [f"7  {good}"]
    errors = [line for line in err.splitlines() if line.startswith("mnist-edge: error:")]
    assert len(errors) == 3
    assert "notes.txt: not an image" in errors[0] and "blank.png: the image has no ink" in errors[1]
    assert "missing.png: No such file" in errors[2]


def test_read_asks_a_running_server_with_url(capsys, app):
    from mnist_edge.benchmarks.background import start_background

    server = start_background(app)
    try:
        good = EXAMPLES / "canvas_7.png"
        code, out, _ = run(capsys, "read", "--url", server.url, str(good), str(EXAMPLES / "v2_7.json"))
        assert code == 1 and out.splitlines() == [f"7  {good}"]
    finally:
        server.close()
    code, _, err = run(capsys, "read", "--url", server.url, str(good))
    assert code == 1 and "Cannot reach the API" in one_line_error(err)
