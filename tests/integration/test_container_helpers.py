"""The scripts every Lumen image carries (deploy/docker/): health check and bootstrap."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from kafka.admin import KafkaAdminClient
from pymongo import MongoClient

from shared.topics import ALL_TOPICS
from tests.support.stack import ServiceProcess, Stack, free_port, wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "docker"


def run(script: str, args: list[str], env: dict[str, str], timeout: float = 60) -> int:
    result = subprocess.run(
        [sys.executable, str(DEPLOY / script), *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result.returncode


def test_healthcheck_reports_a_ready_http_service(ingest: ServiceProcess) -> None:
    env = {"LUMEN_INGEST_HTTP_PORT": str(ingest.ports["http"])}
    # /readyz turns ready once ingest's Kafka producer has connected.
    args = ["http", "LUMEN_INGEST_HTTP_PORT", "1", "/readyz"]
    assert wait_for(lambda: run("healthcheck.py", args, env) == 0, timeout=30)
    # The default port is used when the variable is unset: nothing listens there.
    assert run("healthcheck.py", ["http", "UNSET_PORT", str(free_port()), "/readyz"], {}) == 1


def test_healthcheck_reports_a_serving_grpc_service(inference: ServiceProcess) -> None:
    env = {"LUMEN_INFERENCE_GRPC_PORT": str(inference.ports["grpc"])}
    assert run("healthcheck.py", ["grpc", "LUMEN_INFERENCE_GRPC_PORT", "1"], env) == 0
    assert run("healthcheck.py", ["grpc", "UNSET_PORT", str(free_port())], {}) == 1


def test_bootstrap_creates_topics_and_indexes(stack: Stack) -> None:
    database = f"deploy_bootstrap_{uuid.uuid4().hex[:8]}"
    env = {**stack.env(), "LUMEN_MONGO_DATABASE": database}
    assert run("bootstrap.py", [], env) == 0
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    try:
        assert {t.name for t in ALL_TOPICS} <= set(admin.list_topics())
    finally:
        admin.close()
    client: MongoClient = MongoClient(stack.mongo_uri)
    try:
        indexes = set(client[database]["profiles"].index_information())
        assert {"anonymousIds", "lastSeen"} <= indexes and "userId" not in indexes
        # Idempotent: a second run (an upgrade's Job, a compose restart) succeeds too.
        assert run("bootstrap.py", [], env) == 0
    finally:
        client.drop_database(database)
        client.close()


def test_bootstrap_gives_up_when_kafka_never_answers(stack: Stack) -> None:
    env = {
        **stack.env(),
        "LUMEN_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "LUMEN_BOOTSTRAP_TIMEOUT_SECONDS": "3",
    }
    assert run("bootstrap.py", [], env, timeout=60) == 1
