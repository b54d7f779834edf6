"""train.drawn_eval: `mnist-edge drawn-eval` against a real API, and against one that cannot be reached."""

from __future__ import annotations

import argparse
import os
import socket

import pytest

from mnist_edge.benchmarks.background import start_background
from mnist_edge.train.drawn_eval import evaluate_cli


def test_evaluate_cli_reports_an_unreachable_api_in_one_line(capsys, tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago and has nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    args = argparse.Namespace(data=os.environ.get("MNIST_DATA"), url=url, count=2, seed=0, model="onnx-fp32",
                              token="t", save=tmp_path / "png", not_digits=1)
    if not args.data:
        pytest.skip("MNIST_DATA is not set")
    assert evaluate_cli(args) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mnist-edge: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"mnist-edge: error: Cannot reach the API at {url}: ")
    assert sorted(p.name for p in (tmp_path / "png").iterdir())[0].startswith("0000_label-7_")


def test_evaluate_cli_scores_a_real_api(capsys, app, mnist):
    running = start_background(app)
    try:
        args = argparse.Namespace(data=os.environ["MNIST_DATA"], url=running.url, count=40, seed=0, model=None,
                                  token=None, save=None, not_digits=2)
        assert evaluate_cli(args) == 0
    finally:
        running.close()
    out = capsys.readouterr().out
    accuracy = float(out.split("drawn digits: accuracy ", 1)[1].split("%", 1)[0])
    assert accuracy >= 90 and "on 40," in out, out
    assert "held-out generators flagged" in out and "training generators flagged" in out
