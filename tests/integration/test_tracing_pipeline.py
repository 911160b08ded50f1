"""One event followed through the real pipeline in Jaeger: ingest (HTTP server, Kafka produce),
the profile updater (Kafka consume, MongoDB write) and profiles.updated, as ONE trace found
through Jaeger's API and printed by `lumen trace`; and tracing off loading no SDK at all.

The services here are this module's own (tracing on, or import tracing on), with their own
MongoDB database and consumer group, so the session's services are never affected.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition

from lumen_cli.platform import jaeger
from lumen_cli.platform.paths import REPO_ROOT
from shared.topics import EVENTS_RAW, PROFILES_UPDATED
from shared.tracing import MESSAGE_ID_ATTRIBUTE, span_context_from_headers
from tests.integration.profiles_updater import start_profiles_updater
from tests.support.stack import (
    ServiceProcess,
    Stack,
    running,
    span_tags,
    start_ingest,
    wait_for,
    wait_for_traces,
)

WRITE_KEY = "lumen-dev-key"
# Python reports every module it imports on stderr (one line each, in the service's log).
IMPORT_REPORT = {"PYTHONPROFILEIMPORTTIME": "1"}
# An import line names the module indented by its depth: "import time: ... |   opentelemetry.sdk".
SDK_IMPORT = re.compile(r"\|\s+opentelemetry\.sdk\b")
API_IMPORT = re.compile(r"\|\s+opentelemetry\.trace$", re.MULTILINE)
INSTRUMENTATION_IMPORT = re.compile(r"\|\s+opentelemetry\.instrumentation\b")


def start_profiles(stack: Stack, env: dict[str, str]) -> ServiceProcess:
    return start_profiles_updater(stack.kafka_bootstrap, env, "tracing")


def own_env(stack: Stack) -> dict[str, str]:
    """The stack's environment with a database of this module's own and no OTLP endpoint
    inherited from the shell the tests run in (blank is off)."""
    return {
        **stack.env(),
        "LUMEN_MONGO_DATABASE": f"{stack.mongo_database}_tracing",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
    }


def track(ingest: ServiceProcess, user: str, message_id: str) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{ingest.ports['http']}/v1/track",
        json={
            "userId": user,
            "event": "Newsletter Opened",
            "messageId": message_id,
        },
        auth=(WRITE_KEY, ""),
        timeout=10,
    )
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def traced(stack: Stack) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    env = {**own_env(stack), **stack.tracing_env("always_on"), **IMPORT_REPORT}
    with running(start_ingest(env)) as ingest, running(start_profiles(stack, env)) as profiles:
        yield ingest, profiles


def updates_consumer(stack: Stack) -> KafkaConsumer:
    """A reader of profiles.updated from its current end."""
    consumer = KafkaConsumer(bootstrap_servers=[stack.kafka_bootstrap], enable_auto_commit=False)
    partitions = [
        TopicPartition(PROFILES_UPDATED.name, p)
        for p in consumer.partitions_for_topic(PROFILES_UPDATED.name) or ()
    ]
    consumer.assign(partitions)
    consumer.seek_to_end()
    for partition in partitions:
        consumer.position(partition)  # resolve the end now, before the event is sent
    return consumer


def the_update_of(consumer: KafkaConsumer, user: str) -> Any:
    """The traced updater's profiles.updated record of ``user``. The session's updater (tracing
    off, when an earlier test started it) reads the same event and writes an update of its own
    without trace headers: that one is skipped."""

    def poll() -> Any:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                traced = any(name == "traceparent" for name, _ in record.headers or ())
                if record.key == user.encode() and traced:
                    return record
        return None

    return wait_for(poll, timeout=60)


def full_trace(stack: Stack, message_id: str) -> dict[str, Any]:
    """The event's trace once the profile updater's spans have reached Jaeger too."""
    wanted = {"events.raw publish", "events.raw process", "profiles batch write"}

    def complete() -> dict[str, Any] | None:
        traces = jaeger.find_traces(
            stack.jaeger_query_url, "ingest", {MESSAGE_ID_ATTRIBUTE: message_id}
        )
        if len(traces) != 1:
            assert len(traces) <= 1, f"{len(traces)} traces carry message id {message_id}"
            return None
        names = {span["operationName"] for span in traces[0]["spans"]}
        has_mongo = any(name.endswith(".commitTransaction") for name in names)
        return traces[0] if wanted <= names and has_mongo else None

    wait_for_traces(stack.jaeger_query_url, "ingest", {MESSAGE_ID_ATTRIBUTE: message_id})
    return wait_for(complete, timeout=60)  # type: ignore[return-value]


def test_one_track_event_is_one_trace_from_ingest_to_the_mongodb_write(
    stack: Stack, traced: tuple[ServiceProcess, ServiceProcess]
) -> None:
    ingest, profiles = traced
    user, message_id = f"user-{uuid.uuid4().hex[:8]}", f"m-{uuid.uuid4().hex}"
    consumer = updates_consumer(stack)
    try:
        track(ingest, user, message_id)
        update = the_update_of(consumer, user)
    finally:
        consumer.close()
    trace = full_trace(stack, message_id)

    spans = {span["spanID"]: span for span in trace["spans"]}
    service = {s: trace["processes"][span["processID"]]["serviceName"] for s, span in spans.items()}

    def parent(span: dict[str, Any]) -> dict[str, Any]:
        (ref,) = [r for r in span["references"] if r["refType"] == "CHILD_OF"]
        return spans[ref["spanID"]]

    def the(name: str) -> dict[str, Any]:
        (span,) = [s for s in spans.values() if s["operationName"] == name]
        return span

    request, publish = the("POST /v1/track"), the("events.raw publish")
    process, write = the("events.raw process"), the("profiles batch write")
    assert (service[request["spanID"]], service[publish["spanID"]]) == ("ingest", "ingest")
    assert (service[process["spanID"]], service[write["spanID"]]) == ("profiles", "profiles")
    assert not [r for r in request["references"] if r["refType"] == "CHILD_OF"]  # the root
    assert parent(publish) is request
    assert parent(process) is publish
    assert parent(write) is process

    publish_tags = span_tags(publish)
    assert publish_tags["span.kind"] == "producer"
    assert publish_tags[MESSAGE_ID_ATTRIBUTE] == message_id
    assert publish_tags["messaging.system"] == "kafka"
    assert publish_tags["messaging.destination.name"] == EVENTS_RAW.name
    process_tags = span_tags(process)
    assert process_tags["span.kind"] == "consumer"
    assert process_tags["messaging.kafka.offset"] == publish_tags["messaging.kafka.offset"]
    assert (
        process_tags["messaging.destination.partition.id"]
        == (publish_tags["messaging.destination.partition.id"])
    )

    # pymongo's command spans under the batch write: the reads, the writes and the commit.
    under_write = [s for s in spans.values() if parent_id(s) == write["spanID"]]
    commands = [s for s in under_write if span_tags(s).get("db.system") == "mongodb"]
    names = {s["operationName"].rsplit(".", 1)[-1] for s in commands}
    assert {"find", "update", "commitTransaction"} <= names, names
    assert all(span_tags(s)["span.kind"] == "client" for s in commands)

    # profiles.updated carries the trace on.
    carried = span_context_from_headers(update.headers)
    assert carried is not None
    assert format(carried.trace_id, "032x") == trace["traceID"].rjust(32, "0")
    assert spans[format(carried.span_id, "016x")]["operationName"] == "profiles.updated publish"

    # A latency bucket of each service links to the trace (OpenMetrics exemplars).
    exemplar = f'trace_id="{trace["traceID"].rjust(32, "0")}"'
    ingest_metrics = scrape(f"http://127.0.0.1:{ingest.ports['metrics']}/metrics")
    profiles_metrics = scrape(f"http://127.0.0.1:{profiles.ports['web']}/metrics")
    assert exemplar in exemplars_of(ingest_metrics, "lumen_ingest_request_duration_seconds")
    assert exemplar in exemplars_of(ingest_metrics, "lumen_ingest_kafka_produce_duration_seconds")
    assert exemplar in exemplars_of(profiles_metrics, "lumen_profiles_mongo_write_duration_seconds")
    assert exemplar in exemplars_of(profiles_metrics, "lumen_profiles_processing_lag_seconds")

    # `lumen trace <messageId>` prints that path, indented by parent.
    done = subprocess.run(
        [sys.executable, "-m", "lumen_cli", "trace", message_id],
        cwd=REPO_ROOT,
        env={**os.environ, "LUMEN_JAEGER_QUERY_URL": stack.jaeger_query_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    path = [line.split("ms", 2)[2] for line in done.stdout.splitlines()[2:]]
    for expected in (
        "  ingest  POST /v1/track",
        "    ingest  events.raw publish",
        "      profiles  events.raw process",
        "        profiles  profiles batch write",
    ):
        assert expected in path, done.stdout
    assert any(line.startswith("          profiles  ") for line in path), done.stdout


def scrape(url: str) -> str:
    """A metrics page in the OpenMetrics format, as Prometheus asks for it."""
    accept = "application/openmetrics-text; version=1.0.0"
    response = httpx.get(url, headers={"Accept": accept}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    return response.text


def exemplars_of(page: str, histogram: str) -> str:
    """The exemplar parts (after ``#``) of a histogram's bucket lines."""
    return "\n".join(
        line.split(" # ", 1)[1]
        for line in page.splitlines()
        if line.startswith(f"{histogram}_bucket") and " # " in line
    )


def parent_id(span: dict[str, Any]) -> str | None:
    refs = [r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"]
    return refs[0] if refs else None


def test_tracing_off_loads_no_sdk_in_ingest_or_the_profile_updater(
    stack: Stack, traced: tuple[ServiceProcess, ServiceProcess]
) -> None:
    env = {**own_env(stack), **IMPORT_REPORT}
    user = f"user-{uuid.uuid4().hex[:8]}"
    with running(start_ingest(env)) as ingest, running(start_profiles(stack, env)) as profiles:
        # The request and batch paths run too, not only the start-up.
        track(ingest, user, f"m-{uuid.uuid4().hex}")
        wait_for(lambda: profile_written(stack, user), timeout=60)
    for service in (ingest, profiles):
        log = service.log()
        assert API_IMPORT.search(log)  # the import report is on: the API is loaded
        assert not SDK_IMPORT.search(log), f"{service.name} loaded the OpenTelemetry SDK"
        assert not INSTRUMENTATION_IMPORT.search(log), f"{service.name} loaded instrumentations"
    # The same services with an OTLP endpoint do load it: the check can fail.
    for service in traced:
        assert SDK_IMPORT.search(service.log()), service.name


def profile_written(stack: Stack, user: str) -> bool:
    from pymongo import MongoClient
    from pymongo.collection import Collection

    client: MongoClient[dict[str, Any]]
    with MongoClient(stack.mongo_uri, serverSelectionTimeoutMS=2000) as client:
        profiles: Collection[dict[str, Any]] = client[f"{stack.mongo_database}_tracing"]["profiles"]
        return profiles.find_one({"_id": user}, {"_id": 1}) is not None
