"""`mnist-edge up` as a user runs it: both servers up, one line and a non-zero exit when it cannot, nothing left behind."""

from __future__ import annotations

import signal
import socket
import sys
import tomllib
from pathlib import Path

import requests
from browser import Process, cli, free_port, port_closed

from mnist_edge.runtime.config import ServeConfig
from mnist_edge.webui.up import lan_address, ui_command, upload_limit_mb

ROOT = Path(__file__).resolve().parent.parent


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


def test_up_on_every_interface_prints_the_address_another_device_types():
    api_port, ui_port = free_port(), free_port()
    process = Process(cli("up", "--host", "0.0.0.0", "--api-port", str(api_port), "--ui-port", str(ui_port),
                          "--model", "tflite-int8"))
    try:
        line = process.wait_for("mnist-edge is up", timeout=120)
        lan = lan_address()
        assert not lan.startswith("127.") and lan != "localhost", lan
        assert line == (f"mnist-edge is up: open http://{lan}:{ui_port} to draw "
                        f"(API at http://{lan}:{api_port}); Ctrl-C stops both")
        # The printed address is one this machine answers on, not a guess.
        assert requests.get(f"http://{lan}:{ui_port}/_stcore/health", timeout=10).text == "ok"
        assert process.stop(signal.SIGTERM) == 0
    finally:
        process.kill_group()


def test_with_no_route_the_address_is_the_hostname(monkeypatch):
    def unreachable(*_args):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket.socket, "connect", unreachable)
    assert lan_address() == socket.gethostname()


def test_the_uploader_takes_what_the_api_takes(monkeypatch):
    monkeypatch.delenv("MNIST_EDGE_MAX_BODY_MB", raising=False)
    assert upload_limit_mb() * 1024 * 1024 == ServeConfig().max_body_bytes
    monkeypatch.setenv("MNIST_EDGE_MAX_BODY_MB", "12")  # the variable `serve` reads, so up's API and UI agree
    assert "--server.maxUploadSize" in (command := ui_command("127.0.0.1", 8501))
    assert command[command.index("--server.maxUploadSize") + 1] == "12"
    assert upload_limit_mb({"MNIST_EDGE_MAX_BODY_MB": "0.5"}) == 1  # Streamlit counts whole MB


def test_a_bare_streamlit_run_gets_ups_settings_from_the_checkouts_config():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    flags = ui_command("127.0.0.1", 8501)[5:]  # after `python -m streamlit run app.py`
    expected = {flag.removeprefix("--"): value for flag, value in zip(flags[::2], flags[1::2])}
    expected["server.maxUploadSize"] = str(ServeConfig().max_body_bytes // (1024 * 1024))  # the API's default
    given = {f"{section}.{name}": str(value).lower() if isinstance(value, bool) else str(value)
             for section, options in config.items() for name, value in options.items()}
    assert given == expected


def test_the_readmes_standalone_ui_listens_on_loopback_quietly():
    port = free_port()
    # The README's line, run from the checkout as it says, on a free port instead of 8501.
    process = Process([sys.executable, "-m", "streamlit", "run", "webui/app.py", "--server.port", str(port)],
                      env={"MNIST_EDGE_API_URL": "http://127.0.0.1:8000"}, cwd=ROOT)
    try:
        assert process.wait_for("URL:", timeout=90).strip() == f"URL: http://127.0.0.1:{port}"
        assert requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=10).text == "ok"
        lan = lan_address()
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex((lan, port)) != 0, f"the UI also answers on {lan}"
        said = "\n".join(process.lines)
        assert "usage statistics" not in said and "Network URL" not in said, said
    finally:
        process.stop()
        process.kill_group()
