"""The local platform scripts: data survives a restart, and bad start-up conditions are
reported with a clear message (exit code 3, no traceback).

Each test runs its own Kafka/mongod under a temporary LUMEN_VAR_DIR on its own ports, so the
shared test stack is never touched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pymongo import MongoClient

from lumen_cli.platform import paths
from tests.support.stack import free_port

REPO = paths.REPO_ROOT


def platform_env(var_dir: Path, kafka_port: int, mongo_port: int) -> dict[str, str]:
    return {
        "LUMEN_VAR_DIR": str(var_dir),
        "LUMEN_CACHE_DIR": str(REPO / "var" / "cache"),
        "LUMEN_LOCAL_KAFKA_PORT": str(kafka_port),
        "LUMEN_LOCAL_KAFKA_CONTROLLER_PORT": str(free_port()),
        "LUMEN_LOCAL_MONGO_PORT": str(mongo_port),
    }


def lumen(
    *args: str, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lumen_cli", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def own_platform(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = platform_env(tmp_path / "var", free_port(), free_port())
    yield env
    lumen("down", env=env)


def test_restart_keeps_topics_messages_and_documents(own_platform: dict[str, str]) -> None:
    env = own_platform
    up = lumen("up", "--infra-only", env=env)
    assert up.returncode == 0, up.stderr
    bootstrap = f"127.0.0.1:{env['LUMEN_LOCAL_KAFKA_PORT']}"
    mongo_uri = f"mongodb://127.0.0.1:{env['LUMEN_LOCAL_MONGO_PORT']}/?replicaSet=lumen"
    client: MongoClient[dict[str, Any]]

    producer = KafkaProducer(bootstrap_servers=[bootstrap], acks="all")
    producer.send("events.raw", key=b"u-restart", value=b'{"kept": true}').get(timeout=30)
    producer.close()
    with MongoClient(mongo_uri, serverSelectionTimeoutMS=5000, document_class=dict) as client:
        client.lumen.profiles.insert_one({"_id": "u-restart", "kept": True})

    assert lumen("down", env=env).returncode == 0
    again = lumen("up", "--infra-only", env=env)
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout  # the topics were still there

    consumer = KafkaConsumer(
        bootstrap_servers=[bootstrap], auto_offset_reset="earliest", consumer_timeout_ms=10_000
    )
    partitions = [
        TopicPartition("events.raw", p) for p in consumer.partitions_for_topic("events.raw")
    ]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    values = [record.value for record in consumer]
    consumer.close()
    assert values == [b'{"kept": true}']
    with MongoClient(mongo_uri, serverSelectionTimeoutMS=5000, document_class=dict) as client:
        assert client.lumen.profiles.find_one({"_id": "u-restart"}) == {
            "_id": "u-restart",
            "kept": True,
        }

    status = lumen("status", "--json", env=env)
    assert '"name": "kafka"' in status.stdout


def test_port_taken_is_reported(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        env = platform_env(tmp_path / "var", taken, free_port())
        result = lumen("up", "--infra-only", env=env)
    assert result.returncode == 3
    assert f"port 127.0.0.1:{taken} is already taken" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_java_is_reported(tmp_path: Path) -> None:
    env = platform_env(tmp_path / "var", free_port(), free_port())
    env["PATH"] = str(tmp_path / "empty-bin")
    env["JAVA_HOME"] = ""
    result = lumen("up", "--infra-only", env=env)
    assert result.returncode == 3
    assert "Java was not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_maven_repository_is_reported(tmp_path: Path) -> None:
    env = platform_env(tmp_path / "var", free_port(), free_port())
    env["LUMEN_CACHE_DIR"] = str(tmp_path / "cache")  # no jars yet: Maven must fetch them
    settings = tmp_path / "settings.xml"
    closed = free_port()  # nothing listens there
    settings.write_text(
        f"""<settings><localRepository>{tmp_path / "m2"}</localRepository>
        <mirrors><mirror><id>nowhere</id><mirrorOf>*</mirrorOf>
        <url>http://127.0.0.1:{closed}/maven2</url></mirror></mirrors></settings>"""
    )
    env["LUMEN_MAVEN_SETTINGS"] = str(settings)
    result = lumen("up", "--infra-only", env=env)
    assert result.returncode == 3
    assert "Maven could not fetch Kafka's jars" in result.stderr
    assert "Traceback" not in result.stderr


def test_locked_mongod_data_folder_is_reported(own_platform: dict[str, str]) -> None:
    env = own_platform
    first = lumen("up", "--infra-only", env=env)
    assert first.returncode == 0, first.stderr
    # A second platform that shares the data folder but forgot the first one's PID file.
    var_dir = Path(env["LUMEN_VAR_DIR"])
    pid_file = var_dir / "run" / "mongod.pid"
    saved = pid_file.read_text()
    pid_file.unlink()
    try:
        second = lumen(
            "up", "--infra-only", env={**env, "LUMEN_LOCAL_MONGO_PORT": str(free_port())}
        )
    finally:
        pid_file.write_text(saved)
    assert second.returncode == 3
    assert "is locked by another mongod" in second.stderr
    assert "Traceback" not in second.stderr


@pytest.fixture(autouse=True)
def _java_is_there() -> None:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("these tests need Java 17 on PATH or JAVA_HOME")
