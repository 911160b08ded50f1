"""The exporter against its own Kafka and mongod (not the shared test stack): each is stopped
and started again while the exporter runs; /metrics keeps answering, reports the dependency
down, and recovers."""

from __future__ import annotations

import os
import re
import shutil
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from lumen_cli.platform import kafka, mongo
from lumen_cli.platform.services import http_ok
from tests.support.stack import REPO, ServiceProcess, free_port, start_service, wait_for

VAR = REPO / "var" / "test-exporter"


@dataclass
class OwnPlatform:
    kafka: kafka.KafkaConfig
    mongo: mongo.MongoConfig


@contextmanager
def own_platform_env(platform: OwnPlatform) -> Iterator[None]:
    """LUMEN_VAR_DIR and ports of this platform only while (re)starting or stopping it."""
    saved = {k: os.environ.get(k) for k in ("LUMEN_VAR_DIR", "LUMEN_CACHE_DIR")}
    os.environ["LUMEN_VAR_DIR"] = str(VAR)
    os.environ["LUMEN_CACHE_DIR"] = str(REPO / "var" / "cache")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def platform() -> Iterator[OwnPlatform]:
    own = OwnPlatform(
        kafka.KafkaConfig(port=free_port(), controller_port=free_port(), heap="256m"),
        mongo.MongoConfig(port=free_port(), cache_size_gb=0.25),
    )
    shutil.rmtree(VAR / "data", ignore_errors=True)  # a fresh cluster on fresh ports
    with own_platform_env(own):
        kafka.start(own.kafka)
        mongo.start(own.mongo)
    try:
        yield own
    finally:
        with own_platform_env(own):
            mongo.stop()
            kafka.stop()
        shutil.rmtree(VAR / "data", ignore_errors=True)


@pytest.fixture(scope="module")
def exporter(platform: OwnPlatform) -> Iterator[ServiceProcess]:
    port = free_port()
    service = start_service(
        "exporter-deps",
        "services.exporter",
        {
            "LUMEN_KAFKA_BOOTSTRAP_SERVERS": platform.kafka.bootstrap,
            "LUMEN_MONGO_URI": platform.mongo.uri,
            "LUMEN_MONGO_DATABASE": f"deps_{uuid.uuid4().hex[:6]}",
            "LUMEN_MONGO_TIMEOUT_MS": "1000",
            "LUMEN_LOG_FORMAT": "text",
            "LUMEN_EXPORTER_PORT": str(port),
            "LUMEN_EXPORTER_KAFKA_POLL_SECONDS": "1",
            "LUMEN_EXPORTER_MONGO_POLL_SECONDS": "1",
        },
        ready=lambda: http_ok(f"http://127.0.0.1:{port}/metrics"),
        ports={"metrics": port},
    )
    yield service
    service.stop()


def dependency_up(exporter: ServiceProcess) -> dict[str, float]:
    """Scrape /metrics (fails the test if it does not answer) -> dependency -> up value."""
    url = f"http://127.0.0.1:{exporter.ports['metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=3) as response:
        assert response.status == 200
        text = response.read().decode()
    found = re.findall(r'^lumen_exporter_dependency_up\{dependency="(\w+)"\} (\S+)$', text, re.M)
    return {name: float(value) for name, value in found}


def has_series(exporter: ServiceProcess, prefix: str) -> bool:
    url = f"http://127.0.0.1:{exporter.ports['metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=3) as response:
        return any(line.startswith(prefix) for line in response.read().decode().splitlines())


def test_both_dependencies_up_at_start(exporter: ServiceProcess) -> None:
    wait_for(lambda: dependency_up(exporter) == {"kafka": 1.0, "mongodb": 1.0}, timeout=30)
    assert has_series(exporter, "lumen_mongodb_collection_documents")


def test_stopped_mongod_is_reported_down_and_recovers(
    platform: OwnPlatform, exporter: ServiceProcess
) -> None:
    with own_platform_env(platform):
        assert mongo.stop()
    try:
        wait_for(lambda: dependency_up(exporter).get("mongodb") == 0.0, timeout=30)
        assert dependency_up(exporter)["kafka"] == 1.0  # the other dependency is unaffected
        assert not has_series(exporter, "lumen_mongodb_collection_documents")  # no stale figures
    finally:
        with own_platform_env(platform):
            mongo.start(platform.mongo)
    wait_for(lambda: dependency_up(exporter).get("mongodb") == 1.0, timeout=60)
    assert has_series(exporter, "lumen_mongodb_collection_documents")


def test_stopped_kafka_is_reported_down_and_recovers(
    platform: OwnPlatform, exporter: ServiceProcess
) -> None:
    with own_platform_env(platform):
        assert kafka.stop()
    try:
        wait_for(lambda: dependency_up(exporter).get("kafka") == 0.0, timeout=60)
        assert dependency_up(exporter)["mongodb"] == 1.0
        assert exporter.proc.poll() is None  # still running and serving
    finally:
        with own_platform_env(platform):
            kafka.start(platform.kafka)
    wait_for(lambda: dependency_up(exporter).get("kafka") == 1.0, timeout=90)
    assert exporter.proc.poll() is None
