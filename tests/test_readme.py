"""README.md's commands, as written: the curl and Python examples against a live server, every `mnist-edge` line through
the real argument parser, every extra, file and link it names; and the same for the `mnist-edge` lines and links of
docs/, which the README links to."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from browser import Process, cli, free_port, wait_http

from mnist_edge.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
DOCS = sorted((REPO / "docs").glob("*.md"))  # the reference the README links to
DOCUMENTED = "127.0.0.1:8000"  # the address the examples use; the test's server listens elsewhere


def blocks(language: str, text: str = README) -> list[str]:
    """The fenced code blocks in one language of the README (or of another Markdown text)."""
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def commands(text: str = README) -> list[str]:
    """Every shell command line in the README's (or another text's) bash blocks, continuation lines joined."""
    lines = []
    for block in blocks("bash", text):
        lines += [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    return lines


def words(command: str) -> list[str]:
    """A command's words, without its comment and its leading VAR=value assignments."""
    argv = shlex.split(command, comments=True)
    while argv and re.fullmatch(r"[A-Z_]+=.*", argv[0]):
        argv.pop(0)
    return argv


@pytest.fixture(scope="module")
def server():
    """`mnist-edge serve` as shipped (pre-fork, one worker) on a free port."""
    port = free_port()
    process = Process(cli("serve", "--port", str(port), "--workers", "1"))
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout=120)
        yield f"127.0.0.1:{port}"
    finally:
        process.stop()
        process.kill_group()


def test_the_readme_has_examples_of_each_kind():
    assert len([c for c in commands() if c.startswith("curl ")]) >= 4
    assert len([c for c in commands() if words(c)[:1] == ["mnist-edge"]]) >= 10
    assert blocks("python")


@pytest.mark.parametrize("command", [c for c in commands() if c.startswith("curl ")])
def test_every_curl_runs_as_written(server, command):
    result = subprocess.run(["bash", "-c", command.replace(DOCUMENTED, server)], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert "error" not in body, body
    named = re.search(r"examples/\w+_(\d+)\.", command)  # the example files are named for their digit or number
    if "/v1/read" in command:
        assert body["number"] == named.group(1)
    elif "/v2/" in command:
        probabilities = body["outputs"][0]["data"]
        assert probabilities.index(max(probabilities)) == int(named.group(1))
    elif "/compare" in command:
        assert {r["digit"] for r in body["results"]} == {int(named.group(1))}
    else:
        assert body["digit"] == int(named.group(1))


def test_the_python_example_runs_as_written(server):
    (code,) = [block for block in blocks("python") if "tritonclient" in block]
    result = subprocess.run([sys.executable, "-c", code.replace(DOCUMENTED, server)], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[7]"


@pytest.mark.parametrize("command", [c for c in commands() if words(c)[:1] == ["mnist-edge"]])
def test_every_mnist_edge_command_parses(command):
    build_parser().parse_args(words(command)[1:])  # a flag or value the CLI does not take exits with status 2


@pytest.mark.parametrize("command", [c for doc in DOCS for c in commands(doc.read_text())
                                     if words(c)[:1] == ["mnist-edge"]])
def test_every_mnist_edge_command_in_docs_parses(command):
    build_parser().parse_args(words(command)[1:])


def test_every_pip_extra_exists():
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = {extra for spec in re.findall(r'"\.\[([a-z,]+)\]"', README) for extra in spec.split(",")}
    assert named and named <= extras, named - extras


def test_every_local_link_and_path_exists():
    links = re.findall(r"\]\(((?!https?://)[^)#]+)\)", README)
    paths = re.findall(r"(?:@|\s)((?:examples|docs|webui|benchmarks|deploy)/[\w./-]+\.\w+)", README)
    assert links and paths
    missing = [p for p in links + paths if not (REPO / p).exists()]
    assert not missing, missing


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_local_link_in_docs_exists(doc):
    links = re.findall(r"\]\(((?!https?://)[^)#]+)", doc.read_text())  # relative to the doc's own folder
    missing = [link for link in links if not (doc.parent / link).exists()]
    assert not missing, missing


def test_the_readme_links_to_every_doc():
    linked = {Path(link).name for link in re.findall(r"\]\(docs/([\w.-]+\.md)", README)}
    assert linked == {doc.name for doc in DOCS}, {doc.name for doc in DOCS} ^ linked


def section(title: str) -> str:
    """One `## title` section of the README, up to the next section of the same level."""
    return re.search(rf"^## {title}\n(.*?)(?=^## )", README, flags=re.S | re.M).group(1)


def quick_trial() -> list[str]:
    """The README's quick trial: the `mnist-edge train` line whose comment calls it that."""
    (line,) = [c for c in commands() if words(c)[:2] == ["mnist-edge", "train"] and "quick trial" in c]
    return words(line)


def test_the_quick_trial_is_the_one_train_help_gives():
    examples = build_parser()._subparsers._group_actions[0].choices["train"].epilog
    (line,) = [line for line in examples.splitlines() if "quick trial" in line]
    assert quick_trial() == words(line.strip())


@pytest.mark.slow
def test_the_quick_trial_trains_a_model_convert_takes(tmp_path, mnist):
    """The quick trial as written (its data path swapped for $MNIST_DATA): a model above convert's floor."""
    from mnist_edge.convert.floor import MIN_ACCURACY

    argv = quick_trial()[1:]
    argv[argv.index("--data") + 1] = mnist.source
    result = subprocess.run(cli(*argv), cwd=tmp_path, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = float(re.search(r"test accuracy ([\d.]+)%", result.stdout).group(1)) / 100
    assert accuracy >= MIN_ACCURACY and "(next: mnist-edge convert runs/" in result.stdout, result.stdout


def test_the_train_section_promises_no_download():
    train = section("Train")
    assert "MNIST_DATA" in train and "--data" in train
    assert "download" not in train  # the loader never downloads: nothing here can, and a device is often offline


def test_the_triton_client_snippet_says_what_to_install():
    (code,) = [block for block in blocks("python") if "tritonclient" in block]
    before = README[: README.index("```python\n" + code)].rstrip("\n")
    said = before[before.rindex("\n\n") :] + code  # the paragraph that introduces the snippet, and the snippet
    assert 'pip install "tritonclient[http]"' in said


def test_the_standalone_ui_line_is_the_one_test_up_runs():
    line = re.search(r"`(MNIST_EDGE_API_URL=\S+ streamlit run [^`]+)`", section("Draw")).group(1)
    assert line.split(" ", 1)[1] == "streamlit run webui/app.py"  # test_up runs exactly this from the checkout
    assert (REPO / ".streamlit" / "config.toml").is_file()


def test_the_draw_section_gives_the_apis_upload_limit():
    from mnist_edge.runtime.config import ServeConfig

    assert f"limit ({ServeConfig().max_body_bytes // 2**20} MB" in section("Draw")
