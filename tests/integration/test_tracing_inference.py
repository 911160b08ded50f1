"""The inference server with tracing on, exporting to the session's Jaeger: a Recommend call is
a trace of its own with the MongoDB profile read and the ONNX execution, and a support message
is traced from support.messages through the router to support.intents."""

from __future__ import annotations

import secrets
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc
from pymongo import MongoClient

from lumen_cli.platform import jaeger
from services.inference import spans
from shared.messages import SupportIntent, SupportMessage
from shared.topics import SUPPORT_INTENTS, SUPPORT_MESSAGES
from shared.tracing import MESSAGE_ID_ATTRIBUTE, span_context_from_headers
from tests.integration.inference_helpers import start_inference, tiny_registry
from tests.support.stack import (
    ServiceProcess,
    Stack,
    span_names,
    span_tags,
    wait_for,
    wait_for_traces,
)

RECOMMEND = "/lumen.v1.RecommendationService/Recommend"


@pytest.fixture(scope="module")
def service_name() -> str:
    """This module's own service name in Jaeger: nothing else reports under it."""
    return f"inference-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def server(stack: Stack, service_name: str) -> Iterator[ServiceProcess]:
    service = start_inference(
        stack, tiny_registry(), **stack.tracing_env(), OTEL_SERVICE_NAME=service_name
    )
    yield service
    service.stop()


def spans_named(trace: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [span for span in trace["spans"] if span["operationName"] == name]


def parent_id(span: dict[str, Any]) -> str | None:
    refs = [r for r in span.get("references") or [] if r["refType"] == "CHILD_OF"]
    return refs[0]["spanID"] if refs else None


def test_a_recommend_call_is_a_trace_with_its_profile_read_and_onnx_execution(
    stack: Stack, server: ServiceProcess, service_name: str
) -> None:
    user = f"traced-{uuid.uuid4().hex[:8]}"
    client: MongoClient[dict[str, Any]] = MongoClient(stack.mongo_uri)
    try:
        client[stack.mongo_database]["profiles"].insert_one({"_id": user, "recentItems": ["m1"]})
    finally:
        client.close()
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
        response = pb_grpc.RecommendationServiceStub(channel).Recommend(
            pb.RecommendRequest(user_id=user, k=3), timeout=10
        )
    assert response.items and response.model_name == "recommender"  # personalised: the model ran

    (trace,) = wait_for_traces(
        stack.jaeger_query_url, service_name, {"rpc.method": "Recommend"}, min_spans=4
    )
    names = span_names(trace)
    # The call is the root: the server span first, then its read and execution.
    assert names[0] == (service_name, RECOMMEND)
    (root,) = spans_named(trace, RECOMMEND)
    assert parent_id(root) is None
    reads = [s for s in trace["spans"] if s["operationName"] == f"{stack.mongo_database}.find"]
    assert reads, names
    read_tags = span_tags(reads[0])
    assert read_tags["db.system"] == "mongodb"
    assert "profiles" in (
        read_tags.get("db.mongodb.collection"),
        read_tags.get("db.collection.name"),
    )
    executions = spans_named(trace, spans.EXECUTION_SPAN)
    queued = spans_named(trace, spans.QUEUE_SPAN)
    assert executions and len(queued) == len(executions)
    execution_tags = span_tags(executions[0])
    assert execution_tags[spans.MODEL] == "recommender"
    assert execution_tags[spans.VERSION] == "1"
    assert execution_tags[spans.BATCH_ROWS] >= 1
    for span in [*reads, *executions, *queued]:
        assert parent_id(span) == root["spanID"]

    # The latency histogram's bucket names this trace (OpenMetrics exposition).
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.ports['metrics']}/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    with urllib.request.urlopen(request) as reply:
        exposition = reply.read().decode()
    assert any(
        line.startswith("lumen_inference_grpc_seconds_bucket")
        and 'method="Recommend"' in line
        and f'trace_id="{trace["traceID"]}"' in line
        for line in exposition.splitlines()
    )

    # Background reads (the catalogue and trends refresh, every 0.5 s here) are no traces.
    for found in jaeger.find_traces(stack.jaeger_query_url, service_name, limit=100):
        roots = [s for s in found["spans"] if parent_id(s) is None]
        assert all(not s["operationName"].endswith(".find") for s in roots), span_names(found)


def test_a_support_message_is_traced_from_support_messages_to_support_intents(
    stack: Stack, server: ServiceProcess, service_name: str
) -> None:
    # The upstream producer's span, as a service writing support.messages would send it.
    trace_id, parent_span = secrets.token_hex(16), secrets.token_hex(8)
    traceparent = f"00-{trace_id}-{parent_span}-01".encode()
    message_id = f"sm-{uuid.uuid4().hex[:8]}"
    message = SupportMessage(conversation_id="conv-traced", message_id=message_id, text="refund")
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, consumer_timeout_ms=500)
    partitions = wait_for(lambda: consumer.partitions_for_topic(SUPPORT_INTENTS.name), timeout=20)
    assert isinstance(partitions, set)
    assigned = [TopicPartition(SUPPORT_INTENTS.name, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_end()
    for partition in assigned:
        consumer.position(partition)
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    answers: list[Any] = []

    def send_and_collect() -> bool:
        # The router joins its group asynchronously ("latest"): resend until it answers.
        if not answers:
            producer.send(
                SUPPORT_MESSAGES.name,
                key=b"conv-traced",
                value=message.encode(),
                headers=[("traceparent", traceparent)],
            )
            producer.flush()
        for batch in consumer.poll(timeout_ms=500).values():
            answers.extend(
                r for r in batch if SupportIntent.decode(r.value).message_id == message_id
            )
        return bool(answers)

    try:
        wait_for(send_and_collect, timeout=45, interval=0.5)
    finally:
        consumer.close()
        producer.close()

    # The support.intents record carries the message's trace on.
    carried = span_context_from_headers(answers[0].headers)
    assert carried is not None and f"{carried.trace_id:032x}" == trace_id

    (trace,) = wait_for_traces(
        stack.jaeger_query_url, service_name, {MESSAGE_ID_ATTRIBUTE: message_id}, min_spans=4
    )
    assert trace["traceID"] == trace_id
    processed = spans_named(trace, "support.messages process")
    assert processed and all(parent_id(s) == parent_span for s in processed)
    assert span_tags(processed[0])["lumen.support.route"]  # routed
    (publish,) = [
        s
        for s in spans_named(trace, "support.intents publish")
        if s["spanID"] == f"{carried.span_id:016x}"
    ]
    assert parent_id(publish) in {s["spanID"] for s in processed}
    classified = spans_named(trace, "support classify")
    assert classified
    # The intent model's execution ran under the classification.
    executions = spans_named(trace, spans.EXECUTION_SPAN)
    assert executions and span_tags(executions[0])[spans.MODEL] == "intent-classifier"
    assert parent_id(executions[0]) in {s["spanID"] for s in classified}
