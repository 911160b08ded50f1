"""A Kafka broker and a mongod of their own for tests that kill, stop or reconfigure them.

Fault-injection, security and fuzz tests must never disturb the shared test stack (Kafka 19092,
mongod 27018). This one lives in ``var/test-faults/p<pid>`` on free ports and is started once per test
process, whichever suite asks first; the last suite to release it stops it.

The platform modules read their configuration from the environment, so every call into them runs
with this platform's variables set and the caller's environment restored afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from lumen_cli.platform import kafka, mongo, processes
from tests.support.stack import REPO, Stack, free_port

# One folder per test process: two suites run at once (by two people) never share pid files.
VAR_DIR = REPO / "var" / "test-faults" / f"p{os.getpid()}"


@dataclass
class PrivatePlatform:
    kafka_port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    mongo_port: int = field(default_factory=free_port)

    def variables(self) -> dict[str, str]:
        return {
            "LUMEN_VAR_DIR": str(VAR_DIR),
            "LUMEN_CACHE_DIR": str(REPO / "var" / "cache"),
            "LUMEN_LOCAL_KAFKA_PORT": str(self.kafka_port),
            "LUMEN_LOCAL_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "LUMEN_LOCAL_KAFKA_HEAP": "320m",
            "LUMEN_LOCAL_MONGO_PORT": str(self.mongo_port),
            "LUMEN_LOCAL_MONGO_CACHE_GB": "0.25",
        }

    @contextmanager
    def _env(self) -> Iterator[None]:
        saved = {name: os.environ.get(name) for name in self.variables()}
        os.environ.update(self.variables())
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/?replicaSet={mongo.REPLICA_SET}"

    def stack(self, database: str | None = None) -> Stack:
        """This platform in the shape the shared helpers take (``start_worker``, ``produce``)."""
        return Stack(
            self.bootstrap, self.mongo_uri, database or f"lumen_faults_{uuid.uuid4().hex[:8]}"
        )

    # -- starting and stopping ---------------------------------------------------------------
    def start(self) -> None:
        with self._env():
            kafka.stop()  # left over from an interrupted run (its pid file says so)
            mongo.stop()
            shutil.rmtree(VAR_DIR / "data", ignore_errors=True)
        self.start_kafka()
        self.start_mongo()

    def start_kafka(self) -> float:
        """Start (or restart) the broker; return the seconds it took to answer metadata."""
        started = time.monotonic()
        with self._env():
            kafka.start()
        return time.monotonic() - started

    def restart_kafka(self) -> tuple[float, float]:
        """Start the broker again after a kill; return (monotonic time its port opened, the
        monotonic time it answered metadata). The port is the clients' view of "back"."""
        done: list[BaseException | None] = []

        def run() -> None:
            try:
                self.start_kafka()
                done.append(None)
            except BaseException as exc:
                done.append(exc)

        thread = threading.Thread(target=run, name="kafka-restart")
        thread.start()
        while not processes.port_open("127.0.0.1", self.kafka_port, timeout=0.1):
            if not thread.is_alive():
                break
            time.sleep(0.05)
        listening = time.monotonic()
        thread.join()
        if done and done[0] is not None:
            raise done[0]
        return listening, time.monotonic()

    def start_mongo(self) -> float:
        started = time.monotonic()
        with self._env():
            mongo.start()
        return time.monotonic() - started

    def stop(self) -> None:
        with self._env():
            kafka.stop()
            mongo.stop()
        shutil.rmtree(VAR_DIR / "data", ignore_errors=True)

    def _pid(self, component: str) -> int:
        with self._env():
            pid = processes.read_pid(component)
        assert pid is not None, f"{component} of the private platform is not running"
        return pid

    def kill(self, component: str) -> None:
        """SIGKILL the broker (``kafka``) or mongod (``mongod``): no flush, no clean shutdown."""
        pid = self._pid(component)
        os.kill(pid, signal.SIGKILL)
        port = self.kafka_port if component == kafka.COMPONENT else self.mongo_port
        deadline = time.monotonic() + 15
        while (processes.pid_alive(pid) or processes.port_open("127.0.0.1", port)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)

    def kill_kafka(self) -> None:
        self.kill(kafka.COMPONENT)

    def kill_mongo(self) -> None:
        self.kill(mongo.COMPONENT)


_shared: PrivatePlatform | None = None
_users = 0


def acquire() -> PrivatePlatform:
    """The process-wide private platform, started on first use."""
    global _shared, _users
    if _shared is None:
        platform = PrivatePlatform()
        platform.start()
        _shared = platform
    _users += 1
    return _shared


def release() -> None:
    global _shared, _users
    _users -= 1
    if _users <= 0 and _shared is not None:
        _shared.stop()
        _shared = None
