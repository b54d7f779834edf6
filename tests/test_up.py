"""`mnist-edge up` as a user runs it: both servers up, one line and a non-zero exit when it cannot, nothing left behind."""

from __future__ import annotations

import signal
import socket

import requests
from browser import Process, cli, free_port, port_closed


def test_up_serves_both_and_sigterm_stops_everything(tmp_path):
    api_port, ui_port = free_port(), free_port()
    process = Process(cli("up", "--api-port", str(api_port), "--ui-port", str(ui_port), "--model", "tflite-int8"))
    try:
        line = process.wait_for("mnist-edge is up", timeout=120)
        assert line == (f"mnist-edge is up: open http://127.0.0.1:{ui_port} to draw "
                        f"(API at http://127.0.0.1:{api_port}); Ctrl-C stops both")
        assert requests.get(f"http://127.0.0.1:{api_port}/readyz", timeout=10).json()["ready"] is True
        assert requests.get(f"http://127.0.0.1:{ui_port}/_stcore/health", timeout=10).text == "ok"
        assert process.stop(signal.SIGTERM) == 0
        assert process.lines[-1] == "mnist-edge: stopped the API and the UI"
        assert port_closed(api_port) and port_closed(ui_port), "a child outlived `mnist-edge up`"
    finally:
        process.kill_group()


def test_a_port_in_use_is_one_line_and_starts_nothing():
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        ui_port = free_port()
        process = Process(cli("up", "--api-port", str(free_port()), "--ui-port", str(port)))
        assert process.wait(30) == 1
    assert process.lines == [f"mnist-edge: error: port {port} on 127.0.0.1 is in use (another mnist-edge?); "
                             "pick another UI port with --ui-port"]
    assert port_closed(ui_port)


def test_an_api_that_dies_at_start_is_one_line_and_stops_the_ui(tmp_path):
    api_port, ui_port = free_port(), free_port()
    process = Process(cli("up", "--api-port", str(api_port), "--ui-port", str(ui_port), "--models-dir", str(tmp_path)))
    try:
        assert process.wait(120) == 1
        errors = [line for line in process.lines if line.startswith("mnist-edge: error:")]
        assert len(errors) == 1 and errors[0].startswith("mnist-edge: error: the API exited at start (status 1): ")
        assert str(tmp_path) in errors[0] or "manifest" in errors[0]
        assert port_closed(ui_port) and port_closed(api_port)
    finally:
        process.kill_group()


def test_an_api_that_cannot_start_is_all_that_is_said():
    api_port, ui_port = free_port(), free_port()
    process = Process(cli("up", "--api-port", str(api_port), "--ui-port", str(ui_port), "--model", "nope"))
    try:
        assert process.wait(120) == 1
        # The UI starts only once the API serves: none of Streamlit's start-up lines before the error.
        assert not [line for line in process.lines if line.startswith(" ui |")], process.lines
        errors = [line for line in process.lines if line.startswith("mnist-edge: error:")]
        assert len(errors) == 1 and "unknown model 'nope'" in errors[0], process.lines
        assert port_closed(ui_port) and port_closed(api_port)
    finally:
        process.kill_group()
