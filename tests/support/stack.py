"""The real Kafka and mongod that integration tests run against.

Tests use their own instance (``var/test``, Kafka on 19092, mongod on 27018) so that they never
touch a developer's running platform; each test session gets a fresh MongoDB database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lumen_cli.platform import paths

REPO = paths.REPO_ROOT
TEST_VAR = Path(os.environ.get("LUMEN_TEST_VAR_DIR", REPO / "var" / "test"))
KAFKA_PORT = int(os.environ.get("LUMEN_TEST_KAFKA_PORT", "19092"))
MONGO_PORT = int(os.environ.get("LUMEN_TEST_MONGO_PORT", "27018"))


@dataclass
class Stack:
    kafka_bootstrap: str
    mongo_uri: str
    mongo_database: str
    started_here: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """Environment for a Lumen service process pointed at this stack."""
        return {
            "LUMEN_KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "LUMEN_MONGO_URI": self.mongo_uri,
            "LUMEN_MONGO_DATABASE": self.mongo_database,
            "LUMEN_LOG_FORMAT": "text",
            "LUMEN_DEV_MODE": "1",
            **self.extra,
        }


def configure_test_platform_env() -> None:
    os.environ["LUMEN_VAR_DIR"] = str(TEST_VAR)
    # Downloads are shared with the developer's platform: no second fetch of jars or mongod.
    os.environ.setdefault("LUMEN_CACHE_DIR", str(REPO / "var" / "cache"))
    os.environ["LUMEN_LOCAL_KAFKA_PORT"] = str(KAFKA_PORT)
    os.environ["LUMEN_LOCAL_KAFKA_CONTROLLER_PORT"] = str(KAFKA_PORT + 1)
    os.environ["LUMEN_LOCAL_MONGO_PORT"] = str(MONGO_PORT)


def start_stack() -> Stack:
    from lumen_cli.platform import kafka, mongo, processes
    from shared.settings import KafkaSettings
    from shared.topics import ensure_topics

    configure_test_platform_env()
    already = (
        processes.read_pid(kafka.COMPONENT) is not None
        and processes.read_pid(mongo.COMPONENT) is not None
    )
    if not already:
        kafka.stop()
        mongo.stop()
        # A fresh test platform each session: no events left over from an earlier run.
        shutil.rmtree(TEST_VAR / "data", ignore_errors=True)
    bootstrap = kafka.start()
    uri = mongo.start()
    ensure_topics(KafkaSettings(bootstrap_servers=bootstrap))
    return Stack(bootstrap, uri, f"lumen_test_{uuid.uuid4().hex[:8]}", started_here=not already)


def stop_stack(stack: Stack) -> None:
    from lumen_cli.platform import kafka, mongo

    configure_test_platform_env()
    if stack.started_here and not os.environ.get("LUMEN_TEST_KEEP_PLATFORM"):
        mongo.stop()
        kafka.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    ports: dict[str, int]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_service(
    name: str,
    module: str,
    env: dict[str, str],
    ready: object,
    ports: dict[str, int],
    timeout: float = 90.0,
) -> ServiceProcess:
    """Start ``python -m module`` with ``env``; wait until ``ready()`` is true."""
    log_dir = TEST_VAR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
    service = ServiceProcess(name, proc, log_path, ports)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited at start-up:\n{service.log()[-3000:]}")
        if ready():  # type: ignore[operator]
            return service
        time.sleep(0.2)
    service.kill()
    raise RuntimeError(f"{name} was not ready within {timeout} s:\n{service.log()[-3000:]}")


@contextmanager
def running(service: ServiceProcess) -> Iterator[ServiceProcess]:
    try:
        yield service
    finally:
        service.stop()


def wait_for(check: object, timeout: float = 30.0, interval: float = 0.1) -> object:
    """Poll ``check()`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()  # type: ignore[operator]
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


def start_group_at_end(bootstrap: str, group: str, topic: str) -> None:
    """Commit ``group``'s offsets at the current end of ``topic``, so that a new consumer in
    that group reads only what is written from now on (no race with auto_offset_reset)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(
        bootstrap_servers=[bootstrap], group_id=group, enable_auto_commit=False
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        consumer.commit({tp: OffsetAndMetadata(end, "", -1) for tp, end in ends.items()})
    finally:
        consumer.close()
