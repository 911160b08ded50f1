"""Where the benchmarks run: a Kafka and a mongod, the model registry, the service processes.

Quick runs use the shared test stack (Kafka 19092, mongod 27018; never stopped here). Full
runs may start a private one (``var/bench``, free ports) so that nobody else's tests share
the broker with the measurement; it is stopped again afterwards.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lumen_cli.platform.services import grpc_serving, http_ok
from tests.support.stack import REPO, ServiceProcess, free_port, start_service

BENCH_VAR = REPO / "var" / "bench"
WRITE_KEY = "bench-write-key"
SOURCE = "bench"


@dataclass(frozen=True)
class Platform:
    bootstrap: str
    mongo_uri: str
    private: bool

    def env(self, database: str) -> dict[str, str]:
        """Environment of a service process (and of MongoSettings/KafkaSettings in here)."""
        return {
            "LUMEN_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "LUMEN_MONGO_URI": self.mongo_uri,
            "LUMEN_MONGO_DATABASE": database,
            "LUMEN_LOG_FORMAT": "text",
            "LUMEN_LOG_LEVEL": "WARNING",
            "LUMEN_DEV_MODE": "1",
        }


def default_registry(path: str | None = None) -> Path:
    """``var/models`` (or ``path``) when it holds the models; else the inference tests' tiny
    models in a temporary registry (chosen by the inference benchmark's own rule)."""
    from bench.inference_bench import registry

    return registry(path)


@contextmanager
def shared_test_stack() -> Iterator[Platform]:
    """The shared test Kafka/mongod (started if down, like the tests do; never stopped)."""
    os.environ.setdefault("LUMEN_TEST_KEEP_PLATFORM", "1")
    from tests.support.stack import start_stack

    stack = start_stack()
    yield Platform(stack.kafka_bootstrap, stack.mongo_uri, private=False)


@contextmanager
def private_stack() -> Iterator[Platform]:
    """A Kafka and mongod of the benchmark's own under ``var/bench`` on free ports."""
    from lumen_cli.platform import kafka, mongo
    from shared.settings import KafkaSettings
    from shared.topics import ensure_topics

    kafka_port, mongo_port = free_port(), free_port()
    variables = {
        "LUMEN_VAR_DIR": str(BENCH_VAR),
        "LUMEN_CACHE_DIR": str(REPO / "var" / "cache"),
        "LUMEN_LOCAL_KAFKA_PORT": str(kafka_port),
        "LUMEN_LOCAL_KAFKA_CONTROLLER_PORT": str(free_port()),
        "LUMEN_LOCAL_MONGO_PORT": str(mongo_port),
    }
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        kafka.stop()  # left over from an interrupted run (its pid file says so)
        mongo.stop()
        shutil.rmtree(BENCH_VAR / "data", ignore_errors=True)
        bootstrap = kafka.start()
        uri = mongo.start()
        ensure_topics(KafkaSettings(bootstrap_servers=bootstrap))
        yield Platform(bootstrap, uri, private=True)
    finally:
        kafka.stop()
        mongo.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ---------------------------------------------------------------- service processes


def start_ingest(platform: Platform, database: str, **extra: str) -> ServiceProcess:
    from services.ingest.auth import WriteKeys

    http, grpc_port = free_port(), free_port()
    return start_service(
        "bench-ingest",
        "services.ingest",
        {
            **platform.env(database),
            "LUMEN_INGEST_HTTP_PORT": str(http),
            "LUMEN_INGEST_GRPC_PORT": str(grpc_port),
            "LUMEN_INGEST_METRICS_PORT": str(free_port()),
            "LUMEN_INGEST_WRITE_KEYS": WriteKeys.entry(SOURCE, WRITE_KEY),
            "LUMEN_INGEST_RATE_LIMIT_EVENTS_PER_SECOND": "0",
            **extra,
        },
        ready=lambda: http_ok(f"http://127.0.0.1:{http}/readyz"),
        ports={"http": http, "grpc": grpc_port},
    )


@dataclass(frozen=True)
class ProfilesWorkerIdentity:
    """The Faust app id and data folder of one benchmark worker. Each worker gets its own
    (a consumer group of its own), so each leaves Faust's partition-assignor topic and an
    empty data folder behind unless ``forget`` deletes them."""

    app_id: str
    data_dir: Path

    @classmethod
    def new(cls, prefix: str) -> ProfilesWorkerIdentity:
        tag = uuid.uuid4().hex[:6]
        return cls(f"{prefix}-{tag}", BENCH_VAR / f"profiles-{tag}")

    def env(self) -> dict[str, str]:
        return {"LUMEN_PROFILES_APP_ID": self.app_id, "LUMEN_PROFILES_DATA_DIR": str(self.data_dir)}

    def forget(self, bootstrap: str) -> None:
        """Delete the worker's assignor topic and data folder (call after it stopped)."""
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        shutil.rmtree(self.data_dir, ignore_errors=True)
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        except KafkaError:
            return  # the broker is gone (a private stack already stopped): nothing to delete
        try:
            admin.delete_topics([f"{self.app_id}-__assignor-__leader"])
        except KafkaError:  # never created (the worker did not get that far) or already gone
            pass
        finally:
            admin.close()


def start_profiles(
    platform: Platform, database: str, worker: ProfilesWorkerIdentity, **extra: str
) -> ServiceProcess:
    web = free_port()
    return start_service(
        "bench-profiles",
        "services.profiles",
        {
            **platform.env(database),
            "LUMEN_PROFILES_WEB_PORT": str(web),
            **worker.env(),
            "LUMEN_PROFILES_AUTO_OFFSET_RESET": "latest",
            **extra,
        },
        ready=lambda: http_ok(f"http://127.0.0.1:{web}/healthz"),
        ports={"web": web},
    )


def start_inference(
    platform: Platform, database: str, registry: Path, **extra: str
) -> ServiceProcess:
    grpc_port, metrics_port = free_port(), free_port()
    return start_service(
        "bench-inference",
        "services.inference",
        {
            **platform.env(database),
            "LUMEN_MODEL_REPOSITORY": str(registry),
            "LUMEN_INFERENCE_MODEL_REPOSITORY": str(registry),
            "LUMEN_INFERENCE_GRPC_PORT": str(grpc_port),
            "LUMEN_INFERENCE_METRICS_PORT": str(metrics_port),
            "LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED": "false",
            **extra,
        },
        ready=lambda: grpc_serving(f"127.0.0.1:{grpc_port}"),
        ports={"grpc": grpc_port, "metrics": metrics_port},
        timeout=180,
    )
