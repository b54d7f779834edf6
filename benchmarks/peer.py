"""The peer for `bench --peer mlserver`: find Seldon MLServer, write its settings, run it on the same ONNX file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mnist_edge.benchmarks.serve_process import Server, free_port, launched
from mnist_edge.runtime.errors import BenchmarkError

PEERS = ("mlserver",)
VENV_VAR = "MNIST_EDGE_MLSERVER_VENV"
# uvloop 0.22 breaks MLServer 1.7.1's inference workers at start (SeldonIO/MLServer#2286): the pool never loads.
INSTALL = "python3 -m venv DIR && DIR/bin/pip install mlserver==1.7.1 'uvloop<0.22' onnxruntime"
RUNTIME = Path(__file__).resolve().parent / "mlserver_onnx.py"  # copied next to the settings, imported by MLServer
# MLServer's two ways to run a model: inside the HTTP process, or (its default) in a pool of one inference worker.
SETTINGS = {"in-process (parallel_workers 0)": 0, "default (one inference worker)": None}


@dataclass(frozen=True)
class MLServer:
    """An installed MLServer: its executable and the versions of it and of the ONNX Runtime it would load."""

    executable: Path
    version: str
    onnxruntime: str


def _interpreter(executable: Path) -> Path:
    """The Python a console script runs under: its #! line's (direct or through env), else the python beside it."""
    with open(executable, "rb") as script:
        words = script.readline().decode(errors="replace").removeprefix("#!").split()
    if len(words) > 1 and Path(words[0]).name == "env":  # #!/usr/bin/env python3
        words = [shutil.which(words[1]) or words[1]]
    if words and "python" in Path(words[0]).name:
        return Path(words[0])
    beside = executable.parent / "python"  # pip writes a /bin/sh trampoline for long interpreter paths
    if beside.is_file():
        return beside
    raise BenchmarkError(f"--peer mlserver: cannot tell which Python runs {executable}; pass --peer-venv with its venv")


def _release(version: str) -> tuple[int, ...]:
    """'1.7.1' -> (1, 7, 1); a pre-release or local tail ('rc1', '+cpu') is left out."""
    leading = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(n) for n in leading.group().split(".")) if leading else ()


def find_mlserver(venv: Path | None = None) -> MLServer:
    """MLServer from --peer-venv, else $MNIST_EDGE_MLSERVER_VENV, else `mlserver` on PATH; a one-line error if none."""
    venv = venv or (Path(os.environ[VENV_VAR]) if os.environ.get(VENV_VAR) else None)
    if venv is not None:
        executable = venv / "bin" / "mlserver"
        if not executable.is_file():
            install = INSTALL.replace("DIR", str(venv))
            raise BenchmarkError(f"--peer mlserver: no {executable}; install it with {install}")
    else:
        found = shutil.which("mlserver")
        if found is None:
            raise BenchmarkError(f"--peer mlserver: MLServer not found; install it in its own venv ({INSTALL}) and "
                                 f"pass --peer-venv DIR or set {VENV_VAR}")
        executable = Path(found)
    probe = ("from importlib.metadata import version; import mlserver, onnxruntime; "
             "print(mlserver.__version__, onnxruntime.__version__, version('uvloop'))")
    done = subprocess.run([str(_interpreter(executable)), "-c", probe], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchmarkError(f"--peer mlserver: {executable} cannot load mlserver, onnxruntime and uvloop ({last}); "
                             f"install them: {INSTALL}")
    version, onnxruntime, uvloop = done.stdout.split()
    if _release(version) <= (1, 7, 1) and _release(uvloop) >= (0, 22):
        raise BenchmarkError(f"--peer mlserver: MLServer {version}'s inference workers fail with uvloop {uvloop} "
                             f"(SeldonIO/MLServer#2286); in its venv: pip install 'uvloop<0.22'")
    return MLServer(executable, version, onnxruntime)


def write_model_repository(folder: Path, *, name: str, model_file: Path, parallel_workers: int | None,
                           ports: tuple[int, int, int]) -> None:
    """settings.json, model-settings.json and the runtime module: MLServer's defaults but for loopback ports."""
    folder.mkdir(parents=True, exist_ok=True)
    http, grpc, metrics = ports
    settings: dict = {"host": "127.0.0.1", "http_port": http, "grpc_port": grpc, "metrics_port": metrics}
    if parallel_workers is not None:
        settings["parallel_workers"] = parallel_workers
    (folder / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    model = {"name": name, "implementation": f"{RUNTIME.stem}.OnnxModel",
             "parameters": {"uri": str(model_file.resolve())}}
    (folder / "model-settings.json").write_text(json.dumps(model, indent=2) + "\n")
    shutil.copyfile(RUNTIME, folder / RUNTIME.name)


@contextmanager
def running_mlserver(peer: MLServer, workdir: Path, log: Path, *, name: str, model_file: Path,
                     parallel_workers: int | None, timeout: float = 180) -> Iterator[Server]:
    """`mlserver start` on settings generated under `workdir`; yield once the model answers ready, stop it on exit."""
    folder = workdir / name  # MLServer warns when a model's folder is not named after it
    port = free_port()
    write_model_repository(folder, name=name, model_file=model_file, parallel_workers=parallel_workers,
                           ports=(port, free_port(), free_port()))
    # MLSERVER_* variables would override the generated settings; its .metrics and .envs go in the folder (cwd).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSERVER", "MNIST_EDGE_"))}
    flags = [] if parallel_workers is None else ["parallel_workers", str(parallel_workers)]
    with launched([str(peer.executable), "start", str(folder)], flags=flags, url=f"http://127.0.0.1:{port}",
                  ready_path=f"/v2/models/{name}/ready", log=log, env=env, cwd=folder, timeout=timeout) as server:
        yield server
