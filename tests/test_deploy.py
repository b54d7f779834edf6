"""Deployment files: the Pi's systemd units (the API and the canvas), the KServe InferenceService, and the Triton
repository they serve."""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import yaml
from api_fixtures import canvas_png
from browser import CHROMIUM_ARGS, Process, chromium_path, free_port, wait_http

from mnist_edge.cli import build_parser
from mnist_edge.convert.triton import MAX_BATCH, export_triton
from mnist_edge.runtime.config import ServeConfig
from mnist_edge.runtime.feedback import default_path
from mnist_edge.runtime.manifest import read_manifest
from mnist_edge.webui.client import TOKEN_VAR, URL_VAR
from mnist_edge.webui.up import ui_command

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
API_UNIT, UI_UNIT = DEPLOY / "mnist-edge.service", DEPLOY / "mnist-edge-ui.service"
UNITS = (API_UNIT, UI_UNIT)
GUIDE = REPO / "docs" / "raspberry-pi.md"
HARDENING = {"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
             "CapabilityBoundingSet": "", "Restart": "on-failure"}
# [Service] keys that say what a unit runs and with how much memory; every other key must be the same in both units.
OWN_KEYS = {"ExecStart", "Environment", "UnsetEnvironment", "RuntimeDirectory", "RuntimeDirectoryMode", "MemoryMax",
            "StateDirectory", "StateDirectoryMode"}
ENV_FILE = "/etc/mnist-edge/env"
PHONE = {"viewport": {"width": 412, "height": 915}, "device_scale_factor": 2.625, "is_mobile": True, "has_touch": True}
ANSWER = '.mnist-edge-answer[data-state="{state}"]'


def unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values]}} (keys may repeat, as Environment= does)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert current is not None and equals and re.fullmatch(r"[A-Za-z]+", key), f"line {number}: {line!r}"
        current.setdefault(key, []).append(value)
    return sections


def service(unit: Path) -> dict[str, list[str]]:
    """A unit's [Service] section."""
    return unit_sections(unit.read_text())["Service"]


def exec_start(unit: Path) -> list[str]:
    """A unit's one ExecStart= command line, as words."""
    [line] = service(unit)["ExecStart"]
    return shlex.split(line)


def streamlit_flags(argv: list[str]) -> dict[str, str]:
    """The --section.option value pairs after `streamlit run SCRIPT`."""
    rest = argv[argv.index("run") + 2:]
    assert len(rest) % 2 == 0 and all(flag.startswith("--") for flag in rest[::2]), rest
    return dict(zip(rest[::2], rest[1::2]))


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_each_unit_has_the_sections_and_hardening_it_needs(unit):
    sections = unit_sections(unit.read_text())
    assert set(sections) == {"Unit", "Service", "Install"}
    settings = sections["Service"]
    for key, value in HARDENING.items():
        assert settings[key] == [value], key
    assert re.fullmatch(r"\d+[KMG]", settings["MemoryMax"][0])
    assert settings["EnvironmentFile"] == [f"-{ENV_FILE}"]  # one settings file for both, optional
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_api_unit_serves_loopback_with_a_private_metrics_folder():
    settings = service(API_UNIT)
    assert exec_start(API_UNIT)[:2] == ["/opt/mnist-edge/venv/bin/mnist-edge", "serve"]
    runtime_dir = settings["RuntimeDirectory"][0]
    assert f"PROMETHEUS_MULTIPROC_DIR=/run/{runtime_dir}" in settings["Environment"]
    assert "MNIST_EDGE_HOST=127.0.0.1" in settings["Environment"]  # loopback unless /etc/mnist-edge/env says otherwise


def test_the_api_unit_keeps_corrections_in_its_state_directory():
    settings = service(API_UNIT)
    [state] = settings["StateDirectory"]
    assert settings["StateDirectoryMode"] == ["0700"]
    # What systemd sets for StateDirectory=, and where `serve` then keeps corrections (ProtectSystem=strict allows it).
    assert default_path({"STATE_DIRECTORY": f"/var/lib/{state}"}) == Path(f"/var/lib/{state}/feedback.sqlite3")


def test_both_units_have_the_same_hardening():
    api, ui = service(API_UNIT), service(UI_UNIT)
    shared = (set(api) | set(ui)) - OWN_KEYS
    assert {key: api.get(key) for key in shared} == {key: ui.get(key) for key in shared}


def test_the_canvas_unit_asks_the_local_api_and_keeps_the_token_from_browsers():
    api, ui = unit_sections(API_UNIT.read_text()), unit_sections(UI_UNIT.read_text())
    port = next(v.split("=", 1)[1] for v in api["Service"]["Environment"] if v.startswith("MNIST_EDGE_PORT="))
    assert f"{URL_VAR}=http://127.0.0.1:{port}" in ui["Service"]["Environment"]
    assert ui["Service"]["UnsetEnvironment"] == [TOKEN_VAR]  # with it, the UI would answer anyone who opens the page
    assert API_UNIT.name in ui["Unit"]["Wants"][0].split() and API_UNIT.name in ui["Unit"]["After"][0].split()


def test_the_api_unit_runs_flags_serve_takes():
    args = build_parser().parse_args(exec_start(API_UNIT)[1:])  # an unknown flag exits with status 2
    assert args.command == "serve" and Path(args.models_dir) == Path("/opt/mnist-edge/models")


def test_the_canvas_unit_runs_streamlit_as_up_runs_the_ui():
    argv = exec_start(UI_UNIT)
    assert argv[:3] == ["/opt/mnist-edge/venv/bin/streamlit", "run", "/opt/mnist-edge/canvas.py"]
    flags = streamlit_flags(argv)
    expected = streamlit_flags(ui_command("0.0.0.0", 8501))
    expected.setdefault("--server.maxUploadSize", str(ServeConfig.max_body_bytes // (1024 * 1024)))  # the API's limit
    assert flags == expected
    help_text = subprocess.run([sys.executable, "-m", "streamlit", "run", "--help"], capture_output=True, text=True,
                               timeout=60, check=True).stdout
    assert all(re.search(rf"^\s+{re.escape(flag)}\b", help_text, flags=re.M) for flag in flags), flags


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_documentation_is_a_file_the_install_copies(unit):
    [link] = unit_sections(unit.read_text())["Unit"]["Documentation"]
    assert link.startswith("file:///opt/mnist-edge/"), link
    installed = Path(link.removeprefix("file://"))
    # The guide's laptop steps copy files of the checkout into /opt/mnist-edge/ on the Pi.
    copied = {}
    for sources in re.findall(r"^rsync -a ((?:\S+ )+)pi\.local:/opt/mnist-edge/$", GUIDE.read_text(), flags=re.M):
        copied |= {f"/opt/mnist-edge/{Path(source).name}": REPO / source for source in sources.split()}
    assert str(installed) in copied, (installed, copied)
    assert copied[str(installed)].is_file()
    assert {f"/opt/mnist-edge/{unit.name}" for unit in UNITS} <= set(copied)  # the units themselves go along


def local_unit(unit: Path, tmp_path: Path) -> Path:
    """A copy of the unit whose programs exist here (systemd-analyze verify checks ExecStart's binary)."""
    app = tmp_path / "canvas.py"
    app.unlink(missing_ok=True)
    app.symlink_to(REPO / "webui" / "app.py")
    text = (unit.read_text()
            .replace("/opt/mnist-edge/venv/bin/mnist-edge serve", f"{sys.executable} -m mnist_edge.cli serve")
            .replace("/opt/mnist-edge/venv/bin/streamlit run", f"{sys.executable} -m streamlit run")
            .replace("/opt/mnist-edge/canvas.py", str(app)))
    copy = tmp_path / unit.name
    copy.write_text(text)
    return copy


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_both_units(tmp_path):
    copies = [str(local_unit(unit, tmp_path)) for unit in UNITS]
    result = subprocess.run(["systemd-analyze", "verify", *copies], capture_output=True, text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if any(u.name in line for u in UNITS)]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def unit_environment(unit: Path, env_file: Path) -> dict[str, str]:
    """What systemd hands the unit's process: Environment=, then EnvironmentFile= over it, then UnsetEnvironment=."""
    settings = service(unit)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8"}
    for line in settings.get("Environment", []):
        env |= dict(word.split("=", 1) for word in shlex.split(line))
    for line in env_file.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    for name in settings.get("UnsetEnvironment", []):
        env.pop(name, None)
    return env


def network_address() -> str:
    """This machine's address on its network, as a phone beside it would type it (loopback when it has none)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # UDP connect only picks the outgoing interface: nothing is sent
            return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"


@pytest.fixture
def pi(tmp_path, shipped_models):
    """Both units' commands with their environments, from / as systemd starts them, on free ports: the API (one
    worker, to spare this machine) and the canvas. The settings file holds a token and the moved port, as the guide
    says to write it."""
    token, api_port, ui_port = "phone-test-token-5b1f", free_port(), free_port()
    env_file = tmp_path / "env"
    env_file.write_text(f"{TOKEN_VAR}={token}\nMNIST_EDGE_PORT={api_port}\nMNIST_EDGE_WORKERS=1\n"
                        f"{URL_VAR}=http://127.0.0.1:{api_port}\n")
    api_env = unit_environment(API_UNIT, env_file) | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "run")}
    (tmp_path / "run").mkdir()
    api_argv = [sys.executable, "-m", "mnist_edge.cli", *exec_start(API_UNIT)[1:]]
    api_argv[api_argv.index("/opt/mnist-edge/models")] = str(shipped_models)
    ui_argv = shlex.split(service(local_unit(UI_UNIT, tmp_path))["ExecStart"][0])
    ui_argv[ui_argv.index("--server.port") + 1] = str(ui_port)
    processes = [Process(api_argv, env=api_env, cwd=Path("/"))]
    try:
        wait_http(f"http://127.0.0.1:{api_port}/readyz", timeout=120)
        processes.append(Process(ui_argv, env=unit_environment(UI_UNIT, env_file), cwd=Path("/")))
        wait_http(f"http://127.0.0.1:{ui_port}/_stcore/health", timeout=120)
        yield {"ui": f"http://{network_address()}:{ui_port}", "token": token}
    finally:
        for process in reversed(processes):
            process.kill_group()
            process.wait()


def test_a_phone_draws_on_the_canvas_unit_with_the_token_it_types(pi, mnist, tmp_path):
    from playwright.sync_api import sync_playwright

    four = tmp_path / "four.png"
    four.write_bytes(canvas_png(mnist.x_test[int(np.flatnonzero(mnist.y_test == 4)[0])]))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(**PHONE)
            page.goto(pi["ui"])
            page.wait_for_selector(ANSWER.format(state="blank"), state="attached", timeout=60_000)
            # The token is in the canvas unit's settings file, yet nowhere in what the page sends a browser.
            values = page.eval_on_selector_all("input", "inputs => inputs.map(input => input.value)")
            assert pi["token"] not in page.content() and pi["token"] not in values
            page.get_by_text("Upload a photo or scan").click()
            page.locator('input[type="file"]').set_input_files(str(four))
            refused = page.wait_for_selector(ANSWER.format(state="error"), state="attached", timeout=30_000)
            assert refused.get_attribute("data-status") == "401"
            assert "The API wants a token" in page.locator("body").inner_text()
            page.get_by_test_id("stExpandSidebarButton").click()  # the phone's sidebar starts folded away
            token = page.get_by_label("Token", exact=True)
            token.fill(pi["token"])
            token.press("Enter")
            answer = page.wait_for_selector(ANSWER.format(state="answer"), state="attached", timeout=30_000)
            assert answer.get_attribute("data-prediction") == "4"
        finally:
            browser.close()


def test_the_inference_service_serves_the_triton_repository_over_v2():
    service = yaml.safe_load((DEPLOY / "kserve-inferenceservice.yaml").read_text())
    assert service["apiVersion"] == "serving.kserve.io/v1beta1" and service["kind"] == "InferenceService"
    model = service["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == "triton" and model["protocolVersion"] == "v2"
    assert model["runtime"] == "kserve-tritonserver" and model["storageUri"].endswith("/triton")


def test_the_triton_repository_matches_the_onnx_models_it_holds(shipped_models, mnist, tmp_path):
    from mnist_edge.runtime.answers import split
    from mnist_edge.runtime.backends.onnx import OnnxBackend
    from mnist_edge.runtime.preprocess import scale_pixels

    manifest = read_manifest(shipped_models)
    onnx_names = sorted(n for n, e in manifest["artifacts"].items() if e["format"] == "onnx")
    names = export_triton(shipped_models, manifest, tmp_path / "triton")
    assert sorted(names) == onnx_names and onnx_names
    assert sorted(p.name for p in (tmp_path / "triton").iterdir()) == onnx_names  # no staging folders left behind
    images = scale_pixels(mnist.x_test[:200])
    for name in names:
        folder = tmp_path / "triton" / name
        assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == ["1", "1/model.onnx", "config.pbtxt"]
        model = folder / "1" / "model.onnx"
        config = (folder / "config.pbtxt").read_text()
        assert f'name: "{name}"' in config and 'platform: "onnxruntime_onnx"' in config
        assert f"max_batch_size: {MAX_BATCH}" in config and "dynamic_batching { }" in config
        threshold = manifest["artifacts"][name]["threshold"]
        assert f'parameters {{ key: "digit_threshold" value {{ string_value: "{threshold}" }} }}' in config
        session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        [given], answers = session.get_inputs(), session.get_outputs()
        # Triton's batching needs the model's first dimension free, and config.pbtxt must name its real tensors.
        assert not isinstance(given.shape[0], int) and list(given.shape[1:]) == [28, 28, 1]
        assert re.search(rf'name: "{re.escape(given.name)}"\s+data_type: TYPE_FP32\s+dims: \[ 28, 28, 1 \]', config)
        assert [(a.name, a.shape[1]) for a in answers] == [("probabilities", 10), ("digit_score", 1)]
        for answer in answers:
            assert re.search(rf'name: "{answer.name}"\s+data_type: TYPE_FP32\s+dims: \[ {answer.shape[1]} \]', config)
        # Triton answers what mnist-edge's /v2 answers: the served model's outputs, read apart the same way. (ONNX
        # Runtime fuses an int8 graph's last quantize-dequantize pair differently once nodes follow it: one int8 step.)
        probabilities, score = session.run(None, {given.name: images})
        served = OnnxBackend(shipped_models / manifest["artifacts"][name]["file"])
        served.load()
        expected_probabilities, expected_score = split(served.predict(images))
        atol = 1e-5 if manifest["artifacts"][name]["precision"] == "fp32" else 1 / 127
        np.testing.assert_allclose(probabilities, expected_probabilities, atol=atol)
        np.testing.assert_allclose(score[:, 0], expected_score, atol=atol)
        assert (probabilities.argmax(axis=1) == expected_probabilities.argmax(axis=1)).mean() >= 0.995
        assert (probabilities.argmax(axis=1) == mnist.y_test[:200]).mean() > 0.97
