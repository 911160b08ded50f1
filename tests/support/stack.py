"""The real Kafka, mongod and Jaeger that integration tests run against.

Tests use their own instance (``var/test``, Kafka on 19092, mongod on 27018, Jaeger's OTLP and
query ports just above Kafka's) so that they never touch a developer's running platform; each
test session gets a fresh MongoDB database. A service started with ``stack.tracing_env()`` in
its environment exports its spans to the session's Jaeger, where ``wait_for_traces`` finds them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lumen_cli.platform import paths
from lumen_cli.platform import services as platform_services

REPO = paths.REPO_ROOT
TEST_VAR = Path(os.environ.get("LUMEN_TEST_VAR_DIR", REPO / "var" / "test"))
KAFKA_PORT = int(os.environ.get("LUMEN_TEST_KAFKA_PORT", "19092"))
MONGO_PORT = int(os.environ.get("LUMEN_TEST_MONGO_PORT", "27018"))
# Jaeger's four ports default to the free ones just above Kafka's broker and controller, so a
# private stack that moves Kafka moves Jaeger too; each can be set on its own.
JAEGER_OTLP_GRPC_PORT = int(os.environ.get("LUMEN_TEST_JAEGER_OTLP_GRPC_PORT", KAFKA_PORT + 4))
JAEGER_OTLP_HTTP_PORT = int(os.environ.get("LUMEN_TEST_JAEGER_OTLP_HTTP_PORT", KAFKA_PORT + 5))
JAEGER_QUERY_PORT = int(os.environ.get("LUMEN_TEST_JAEGER_QUERY_PORT", KAFKA_PORT + 6))
JAEGER_QUERY_GRPC_PORT = int(os.environ.get("LUMEN_TEST_JAEGER_QUERY_GRPC_PORT", KAFKA_PORT + 7))


@dataclass
class Stack:
    kafka_bootstrap: str
    mongo_uri: str
    mongo_database: str
    started_here: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    # The session's Jaeger: where tracing_env() exports, and its query API.
    jaeger_otlp_endpoint: str = f"http://127.0.0.1:{JAEGER_OTLP_GRPC_PORT}"
    jaeger_query_url: str = f"http://127.0.0.1:{JAEGER_QUERY_PORT}"

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

    def tracing_env(self, sampler: str = "parentbased_always_on") -> dict[str, str]:
        """Add to a service's environment to export its spans to the session's Jaeger."""
        jaeger_required()
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.jaeger_otlp_endpoint,
            "OTEL_TRACES_SAMPLER": sampler,
            # Spans reach Jaeger within a fraction of a second instead of the default 5 s.
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }


def configure_test_platform_env() -> None:
    os.environ["LUMEN_VAR_DIR"] = str(TEST_VAR)
    # Downloads are shared with the developer's platform: no second fetch of jars or mongod.
    os.environ.setdefault("LUMEN_CACHE_DIR", str(REPO / "var" / "cache"))
    os.environ["LUMEN_LOCAL_KAFKA_PORT"] = str(KAFKA_PORT)
    os.environ["LUMEN_LOCAL_KAFKA_CONTROLLER_PORT"] = str(KAFKA_PORT + 1)
    os.environ["LUMEN_LOCAL_MONGO_PORT"] = str(MONGO_PORT)
    os.environ["LUMEN_LOCAL_JAEGER_OTLP_GRPC_PORT"] = str(JAEGER_OTLP_GRPC_PORT)
    os.environ["LUMEN_LOCAL_JAEGER_OTLP_HTTP_PORT"] = str(JAEGER_OTLP_HTTP_PORT)
    os.environ["LUMEN_LOCAL_JAEGER_QUERY_PORT"] = str(JAEGER_QUERY_PORT)
    os.environ["LUMEN_LOCAL_JAEGER_QUERY_GRPC_PORT"] = str(JAEGER_QUERY_GRPC_PORT)
    # The `lumen trace` a test runs in a subprocess asks this Jaeger.
    os.environ["LUMEN_JAEGER_QUERY_URL"] = f"http://127.0.0.1:{JAEGER_QUERY_PORT}"


def start_stack() -> Stack:
    from lumen_cli.platform import jaeger, kafka, mongo, processes
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
        jaeger.stop()
        # A fresh test platform each session: no events left over from an earlier run.
        shutil.rmtree(TEST_VAR / "data", ignore_errors=True)
    bootstrap = kafka.start()
    uri = mongo.start()
    # Jaeger is built by scripts/bootstrap.sh (minutes, once); without it the tracing tests
    # fail with what to run (jaeger_required) and the others run as before.
    jaeger_config = jaeger.start() if jaeger.BINARY.exists() else jaeger.JaegerConfig.from_env()
    ensure_topics(KafkaSettings(bootstrap_servers=bootstrap))
    return Stack(
        bootstrap,
        uri,
        f"lumen_test_{uuid.uuid4().hex[:8]}",
        started_here=not already,
        jaeger_otlp_endpoint=jaeger_config.otlp_endpoint,
        jaeger_query_url=jaeger_config.query_url,
    )


def stop_stack(stack: Stack) -> None:
    from lumen_cli.platform import jaeger, kafka, mongo

    configure_test_platform_env()
    if stack.started_here and not os.environ.get("LUMEN_TEST_KEEP_PLATFORM"):
        jaeger.stop()
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


def start_ingest(env: dict[str, str]) -> ServiceProcess:
    """An ingest process on free ports with ``env`` (its duplicate memory is its own), once
    it is ready to take events."""
    http, grpc_port, metrics = free_port(), free_port(), free_port()
    return start_service(
        "ingest",
        "services.ingest",
        {
            **env,
            "LUMEN_INGEST_HTTP_PORT": str(http),
            "LUMEN_INGEST_GRPC_PORT": str(grpc_port),
            "LUMEN_INGEST_METRICS_PORT": str(metrics),
        },
        ready=lambda: platform_services.http_ok(f"http://127.0.0.1:{http}/readyz"),
        ports={"http": http, "grpc": grpc_port, "metrics": metrics},
    )


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


def jaeger_required() -> None:
    """Fail the calling test with what to run when the Jaeger binary has not been built."""
    from lumen_cli.platform import jaeger

    if not jaeger.BINARY.exists():
        raise AssertionError(
            f"{jaeger.BINARY} is missing: build it with scripts/bootstrap.sh "
            "(or scripts/tools/jaeger.sh), then run the tests again"
        )


def wait_for_traces(
    query_url: str,
    service: str,
    tags: dict[str, str] | None = None,
    min_spans: int = 1,
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """Traces in Jaeger with a span of ``service`` carrying every ``tags`` attribute, once the
    first of them has ``min_spans`` spans (spans of one trace arrive from several processes).

    Each trace is Jaeger's JSON (``GET /api/traces``): ``traceID``, ``spans`` (``operationName``,
    ``references``, ``tags``, ``startTime``/``duration`` in microseconds, ``processID``) and
    ``processes`` (``serviceName``). ``span_names`` and ``span_tags`` below read it.
    """
    from lumen_cli.platform import jaeger

    jaeger_required()

    def found() -> list[dict[str, Any]] | None:
        try:
            traces = jaeger.find_traces(query_url, service, tags)
        except jaeger.JaegerQueryError:
            return None
        return traces if traces and len(traces[0]["spans"]) >= min_spans else None

    query = urllib.parse.urlencode({"service": service, **({"tags": str(tags)} if tags else {})})
    try:
        return wait_for(found, timeout=timeout, interval=0.25)  # type: ignore[return-value]
    except AssertionError:
        raise AssertionError(f"no trace in Jaeger for {query} within {timeout} s") from None


def span_names(trace: dict[str, Any]) -> list[tuple[str, str]]:
    """``(service, span name)`` of each span of a Jaeger trace, in start order."""
    processes = trace["processes"]
    spans = sorted(trace["spans"], key=lambda span: span["startTime"])
    return [(processes[s["processID"]]["serviceName"], s["operationName"]) for s in spans]


def span_tags(span: dict[str, Any]) -> dict[str, Any]:
    """A Jaeger span's attributes as a dict."""
    return {tag["key"]: tag["value"] for tag in span.get("tags") or []}
