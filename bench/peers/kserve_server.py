"""Start KServe's Python model server (from ``.peers/kserve``, see setup_kserve.sh) serving a
model of Lumen's registry through ``kserve_runtime.OnnxModel`` (no server-side batching)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.peers.mlserver import model_ready
from bench.peers.process_tree import tree_peak_rss_bytes
from tests.support.stack import REPO, free_port

VENV = REPO / ".peers" / "kserve"
RUNTIME = Path(__file__).with_name("kserve_runtime.py")


def available() -> bool:
    return (VENV / "lib" / "python3.11" / "site-packages" / "kserve").exists()


@dataclass
class KServe:
    proc: subprocess.Popen[bytes]
    log_path: Path
    grpc_port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def peak_rss_bytes(self) -> int:
        return tree_peak_rss_bytes(self.proc.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_path.unlink(missing_ok=True)


def start(model_name: str, model_path: Path, timeout: float = 120.0) -> KServe:
    if not available():
        raise RuntimeError(f"KServe is not installed: run bench/peers/setup_kserve.sh ({VENV})")
    grpc_port = free_port()
    env = {
        **os.environ,
        "PEER_MODEL_NAME": model_name,
        "PEER_MODEL_PATH": str(model_path),
        "PEER_HTTP_PORT": str(free_port()),
        "PEER_GRPC_PORT": str(grpc_port),
    }
    env.pop("PYTHONPATH", None)
    handle, name = tempfile.mkstemp(prefix="lumen-bench-kserve-", suffix=".log")
    os.close(handle)
    log_path = Path(name)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(VENV / "bin" / "python"), str(RUNTIME)],
            cwd=tempfile.gettempdir(),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = KServe(proc, log_path, grpc_port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = server.log()[-3000:]
            server.stop()
            raise RuntimeError(f"KServe exited at start-up:\n{text}")
        if model_ready(server.target, model_name):
            return server
        time.sleep(0.5)
    text = server.log()[-3000:]
    server.stop()
    raise RuntimeError(f"KServe was not ready within {timeout} s:\n{text}")
