"""The session's Jaeger: spans emitted through shared.tracing by real processes arrive in it,
are found through its API, and `lumen trace <messageId>` prints one event's path.

The trace here is synthetic (two small processes standing for ingest and the profile updater,
passing the context through Kafka-style headers); the full pipeline's trace is tested with
the services.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from lumen_cli.platform import paths
from tests.support.stack import Stack, span_names, span_tags, wait_for_traces

REPO = paths.REPO_ROOT

# Stands for ingest: the event's span (with its message id) and the produce span, whose
# traceparent header it prints for the consumer.
INGEST = """
import json, sys, time
from opentelemetry.trace import SpanKind
from shared import tracing
tracing.configure_tracing(sys.argv[1])
tracer = tracing.tracer("probe")
with tracer.start_as_current_span("POST /v1/track", kind=SpanKind.SERVER) as span:
    span.set_attribute(tracing.MESSAGE_ID_ATTRIBUTE, sys.argv[2])
    time.sleep(0.01)
    with tracer.start_as_current_span("events.raw publish", kind=SpanKind.PRODUCER):
        headers = tracing.inject_kafka_headers([("source", b"dev")])
        time.sleep(0.005)
tracing.shutdown_tracing()
print(json.dumps({k: v.decode() for k, v in headers}))
"""

# Stands for the profile updater: continues the event's trace from the record's headers, and
# writes the batch in a trace of its own that links to the event.
PROFILES = """
import json, sys, time
from opentelemetry.trace import SpanKind
from shared import tracing
tracing.configure_tracing(sys.argv[1])
tracer = tracing.tracer("probe")
headers = [(k, v.encode()) for k, v in json.loads(sys.argv[2]).items()]
parent = tracing.extract_kafka_context(headers)
with tracer.start_as_current_span("events.raw process", context=parent, kind=SpanKind.CONSUMER):
    with tracer.start_as_current_span("profile update"):
        time.sleep(0.005)
with tracer.start_as_current_span("profiles batch write", links=tracing.span_links([headers])):
    pass
tracing.shutdown_tracing()
"""


def _emit(code: str, stack: Stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env={**os.environ, **stack.tracing_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def event(stack: Stack) -> tuple[str, str, str]:
    """An event's synthetic trace over two processes, once for the module: (message id,
    ingest's and profiles' service names, unique to this run)."""
    run = uuid.uuid4().hex[:8]
    message_id, ingest, profiles = f"m-{run}", f"ingest-{run}", f"profiles-{run}"
    headers = _emit(INGEST, stack, ingest, message_id).strip().splitlines()[-1]
    _emit(PROFILES, stack, profiles, headers)
    return message_id, ingest, profiles


def _lumen_trace(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lumen_cli", "trace", *args],
        cwd=REPO,
        env={**os.environ, "LUMEN_JAEGER_QUERY_URL": stack.jaeger_query_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_spans_of_two_processes_arrive_as_one_trace(
    stack: Stack, event: tuple[str, str, str]
) -> None:
    message_id, ingest, profiles = event
    [trace] = wait_for_traces(
        stack.jaeger_query_url, ingest, {"lumen.message_id": message_id}, min_spans=4
    )
    assert span_names(trace) == [
        (ingest, "POST /v1/track"),
        (ingest, "events.raw publish"),
        (profiles, "events.raw process"),
        (profiles, "profile update"),
    ]
    root = next(s for s in trace["spans"] if s["operationName"] == "POST /v1/track")
    assert span_tags(root)["lumen.message_id"] == message_id
    assert span_tags(root)["span.kind"] == "server"
    # The batch is a trace of its own, linked to the event's.
    traces = wait_for_traces(stack.jaeger_query_url, profiles)
    [batch] = [t for t in traces if t["traceID"] != trace["traceID"]]
    [write] = batch["spans"]
    assert write["operationName"] == "profiles batch write"
    assert [(r["refType"], r["traceID"]) for r in write["references"]] == [
        ("FOLLOWS_FROM", trace["traceID"])
    ]


def test_lumen_trace_prints_the_event_path(stack: Stack, event: tuple[str, str, str]) -> None:
    message_id, ingest, profiles = event
    wait_for_traces(stack.jaeger_query_url, ingest, {"lumen.message_id": message_id}, min_spans=4)

    done = _lumen_trace(stack, message_id)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("trace ")
    path = [line.split("ms", 2)[2] for line in lines[2:]]
    assert path == [
        f"  {ingest}  POST /v1/track",
        f"    {ingest}  events.raw publish",
        f"      {profiles}  events.raw process",
        f"        {profiles}  profile update",
    ]

    as_json = json.loads(_lumen_trace(stack, message_id, "--json").stdout)
    spans = as_json["spans"]
    assert [(s["depth"], s["service"], s["name"]) for s in spans] == [
        (0, ingest, "POST /v1/track"),
        (1, ingest, "events.raw publish"),
        (2, profiles, "events.raw process"),
        (3, profiles, "profile update"),
    ]
    assert spans[0]["start_offset_ms"] == 0.0
    assert spans[0]["duration_ms"] >= 15.0  # it slept 10 + 5 ms
    assert all(later["start_offset_ms"] >= 0 for later in spans)
    assert spans[2]["start_offset_ms"] >= spans[1]["start_offset_ms"]


def test_lumen_trace_of_an_unknown_message_is_not_found(stack: Stack) -> None:
    done = _lumen_trace(stack, f"never-sent-{uuid.uuid4().hex}")
    assert done.returncode == 4
    assert "no trace with lumen.message_id=never-sent-" in done.stderr
