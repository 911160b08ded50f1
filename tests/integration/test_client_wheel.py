"""The lumen-client wheel, built from clients/python, installed into a clean virtual environment
of other Python versions than the project's (3.9, the oldest supported, and 3.13, the newest)
and used over mTLS with a bearer token against a real inference server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pymongo import MongoClient

from tests.integration.inference_helpers import start_inference, tiny_registry
from tests.security.certificates import Certificates, make_certificates
from tests.support.stack import ServiceProcess, Stack

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("3.9", "3.13")
TOKEN = "client-wheel-token"
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


def interpreter(version: str) -> Path | None:
    """A working ``pythonX.Y``: the newest pyenv build of that version, else one on PATH
    (pyenv's shims are on PATH too but fail for a version that is not selected)."""
    found = shutil.which(f"python{version}")
    candidates = [*sorted(PYENV.glob(f"{version}.*/bin/python{version}"), reverse=True)]
    candidates += [Path(found)] if found else []
    for candidate in candidates:
        probe = subprocess.run([candidate, "-c", "import ssl, venv"], capture_output=True)
        if probe.returncode == 0:
            return candidate
    return None


def uv() -> str:
    found = shutil.which("uv") or str(ROOT / "var/tools/bin/uv")
    if not Path(found).exists():
        pytest.fail("uv is missing: run scripts/bootstrap.sh (it installs uv into var/tools)")
    return found


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_CACHE_DIR": str(ROOT / "var/cache/uv"), "UV_PYTHON_DOWNLOADS": "never"}
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, timeout=300, cwd=cwd
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("client-dist")
    run(uv(), "build", "--wheel", "--out-dir", dist, ROOT / "clients/python")
    (built,) = dist.glob("lumen_client-*.whl")
    return built


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("client-tls"))


@pytest.fixture(scope="module")
def server(stack: Stack, certs: Certificates) -> Iterator[ServiceProcess]:
    """Inference on the tiny test models, TLS with client certificates and a bearer token."""
    credentials = grpc.ssl_channel_credentials(
        certs.ca.read_bytes(), certs.key.read_bytes(), certs.cert.read_bytes()
    )
    service = start_inference(
        stack,
        tiny_registry(),
        credentials=credentials,
        LUMEN_INFERENCE_AUTH_TOKEN=TOKEN,
        LUMEN_INFERENCE_TLS_CERT_FILE=str(certs.cert),
        LUMEN_INFERENCE_TLS_KEY_FILE=str(certs.key),
        LUMEN_INFERENCE_TLS_CLIENT_CA_FILE=str(certs.ca),
    )
    yield service
    service.stop()


def test_the_wheel_holds_only_lumen_client(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {
        "lumen_client",
        wheel.name.split("-py")[0] + ".dist-info",
    }
    assert "lumen_client/py.typed" in names
    assert "lumen_client/_proto/lumen/v1/inference_pb2.pyi" in names
    assert not [n for n in names if "__pycache__" in n]
    metadata = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("dist-info/METADATA")))
        .decode()
    )
    requires = sorted(
        line.split(": ", 1)[1]
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ")
    )
    assert requires == ["grpcio<2,>=1.76", "protobuf<7,>=6.31"]
    assert "Requires-Python: >=3.9" in metadata


@pytest.mark.parametrize("version", VERSIONS)
def test_installed_on_another_python_it_serves_real_calls(
    version: str,
    wheel: Path,
    server: ServiceProcess,
    certs: Certificates,
    stack: Stack,
    tmp_path: Path,
) -> None:
    python = interpreter(version)
    if python is None:
        pytest.fail(
            f"Python {version} is not installed, so the client wheel cannot be tested on it: "
            f"install it (`pyenv install {version}` or the distribution's python{version} "
            "package) so python{version} is on PATH or under ~/.pyenv/versions"
        )
    assert sys.version_info[:2] != tuple(int(p) for p in version.split("."))
    venv = tmp_path / "venv"
    run(uv(), "venv", "--quiet", "--python", python, venv)
    run(uv(), "pip", "install", "--quiet", "--python", venv / "bin/python", wheel)
    installed = run(uv(), "pip", "freeze", "--python", venv / "bin/python").stdout
    names = {line.split("==")[0].split(" @ ")[0] for line in installed.splitlines()}
    # Only the client, its two dependencies and what grpcio itself requires.
    assert names == {"lumen-client", "grpcio", "protobuf", "typing-extensions"}

    user = f"wheel-{uuid.uuid4().hex[:8]}"
    mongo: MongoClient[dict[str, object]] = MongoClient(stack.mongo_uri)
    mongo[stack.mongo_database]["profiles"].insert_one(
        {"_id": user, "recentItems": ["m1"], "purchasedItems": ["m2"]}
    )
    mongo.close()
    script = Path(__file__).with_name("client_wheel_script.py")
    target = f"127.0.0.1:{server.ports['grpc']}"
    # Run outside the repository so nothing of it is importable: only the installed wheel.
    result = run(
        venv / "bin/python",
        script,
        target,
        certs.ca,
        certs.cert,
        certs.key,
        TOKEN,
        user,
        cwd=tmp_path,
    )
    out = json.loads(result.stdout)
    assert out["python"] == [int(p) for p in version.split(".")]
    assert out["sync_intent"]["prediction"]["intent"] == "refund"
    assert out["sync_intent"]["model"]["name"] == "intent-classifier"
    for key in ("sync_recommend", "async_recommend"):
        assert out[key]["source"] == "personalised"
        assert out[key]["items"][0]["title"] == "Space Robots"
        assert out[key]["items"][0]["reason"] == "because you viewed Toy Story"
    assert out["async_intents"] == ["refund", "transfer"]
    assert out["async_anonymous_source"] in ("trending", "trending_degraded")
    assert out["wrong_token"] == "UNAUTHENTICATED"
    assert out["lumen_importable"] is False
