"""Start Seldon MLServer (from ``.peers/mlserver``, see setup_mlserver.sh) serving a model of
Lumen's registry through ``mlserver_runtime.OnnxModel``, with adaptive batching on or off."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.peers.process_tree import tree_peak_rss_bytes
from tests.support.stack import REPO, free_port

VENV = REPO / ".peers" / "mlserver"
RUNTIME = Path(__file__).with_name("mlserver_runtime.py")


def available() -> bool:
    return (VENV / "bin" / "mlserver").exists()


@dataclass
class MLServer:
    proc: subprocess.Popen[bytes]
    folder: Path
    grpc_port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def peak_rss_bytes(self) -> int:
        return tree_peak_rss_bytes(self.proc.pid)

    def log(self) -> str:
        return (self.folder / "mlserver.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start(
    model_name: str,
    model_path: Path,
    *,
    max_batch_size: int,
    max_batch_time_s: float,
    parallel_workers: int = 0,
    timeout: float = 120.0,
) -> MLServer:
    """Serve ``model_path`` as ``model_name``; batching is off when ``max_batch_size`` <= 1.

    ``parallel_workers`` 0 runs inference in the server process, like Lumen's single process;
    >0 moves it to worker processes. On this 2-core machine 0 was measured 3-4x faster than 1
    (ModelInfer at 32 streams: ~750-800 vs ~200-265 req/s), so 0 is MLServer's fair setting.
    """
    if not available():
        raise RuntimeError(f"MLServer is not installed: run bench/peers/setup_mlserver.sh ({VENV})")
    folder = Path(tempfile.mkdtemp(prefix="lumen-bench-mlserver-"))
    model_dir = folder / model_name
    model_dir.mkdir()
    shutil.copy(RUNTIME, model_dir / RUNTIME.name)
    grpc_port = free_port()
    (folder / "settings.json").write_text(
        json.dumps(
            {
                "debug": False,
                "host": "127.0.0.1",
                "http_port": free_port(),
                "grpc_port": grpc_port,
                "metrics_port": free_port(),
                "parallel_workers": parallel_workers,
                "load_models_at_startup": True,
            }
        )
    )
    model_settings: dict[str, object] = {
        "name": model_name,
        "implementation": "mlserver_runtime.OnnxModel",
        "parameters": {"uri": str(model_path)},
    }
    if max_batch_size > 1:
        model_settings.update(max_batch_size=max_batch_size, max_batch_time=max_batch_time_s)
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings))
    with open(folder / "mlserver.log", "wb") as log:
        proc = subprocess.Popen(
            [str(VENV / "bin" / "mlserver"), "start", str(folder)],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = MLServer(proc, folder, grpc_port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = server.log()[-3000:]
            server.stop()
            raise RuntimeError(f"MLServer exited at start-up:\n{text}")
        if model_ready(server.target, model_name):
            return server
        time.sleep(0.5)
    text = server.log()[-3000:]
    server.stop()
    raise RuntimeError(f"MLServer was not ready within {timeout} s:\n{text}")


def model_ready(target: str, model_name: str) -> bool:
    import grpc
    import inference.grpc_service_pb2 as oip
    import inference.grpc_service_pb2_grpc as oip_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            reply = oip_grpc.GRPCInferenceServiceStub(channel).ModelReady(
                oip.ModelReadyRequest(name=model_name), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(reply.ready)
