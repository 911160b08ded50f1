"""The support assistant on the real stack and the small default models: the demo knowledge
base loaded into MongoDB answers support messages on Kafka (support.intents version 2) and
over SupportService/SuggestReply; out-of-scope messages are handed off; bad input gets
INVALID_ARGUMENT; a passage stored with another encoder is re-embedded; feedback is counted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from lumen.v1 import support_pb2, support_pb2_grpc
from pymongo import MongoClient

from services.exporter.business import BusinessFigures
from services.exporter.business_consumer import BusinessConsumer
from services.exporter.collector import business_metrics
from services.inference.kb_embedder import registry_encoder
from services.inference.knowledge_base import load_articles, read_articles
from shared.messages import SupportFeedback, SupportIntent, SupportMessage
from shared.settings import KafkaSettings
from shared.topics import SUPPORT_FEEDBACK, SUPPORT_INTENTS, SUPPORT_MESSAGES
from tests.integration.inference_helpers import metric, start_inference
from tests.support.stack import ServiceProcess, Stack, start_group_at_end, wait_for

REPO = Path(__file__).resolve().parents[2]
KB = REPO / "data" / "kb" / "bank"
COLLECTION = "kb_articles"


@pytest.fixture(scope="module")
def database(stack: Stack) -> Iterator[str]:
    """A database of this module's own: the knowledge base is no other test's."""
    name = f"assist-{uuid.uuid4().hex[:8]}"
    yield name
    client: MongoClient[dict[str, Any]] = MongoClient(stack.mongo_uri)
    client.drop_database(name)
    client.close()


@pytest.fixture(scope="module")
def kb(stack: Stack, database: str, models_registry: Path) -> Any:
    client: MongoClient[dict[str, Any]] = MongoClient(stack.mongo_uri)
    embed, encoder = registry_encoder(models_registry)
    report = load_articles(client[database][COLLECTION], read_articles(KB), embed, encoder)
    assert len(report.embedded) == len(list(KB.glob("*.md"))) and not report.unchanged
    again = load_articles(client[database][COLLECTION], read_articles(KB), embed, encoder)
    assert not again.embedded and len(again.unchanged) == len(report.embedded)
    yield client[database][COLLECTION]
    client.close()


@pytest.fixture(scope="module")
def server(stack: Stack, models_registry: Path, database: str, kb: Any) -> Iterator[ServiceProcess]:
    service = start_inference(
        stack,
        models_registry,
        LUMEN_MONGO_DATABASE=database,
        LUMEN_ASSIST_ENABLED="true",
        LUMEN_ASSIST_REFRESH_SECONDS="0.5",
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def stub(server: ServiceProcess) -> Iterator[support_pb2_grpc.SupportServiceStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}")
    stub = support_pb2_grpc.SupportServiceStub(channel)
    # The knowledge base is read in the background: wait until answers come from it.
    wait_for(
        lambda: stub.SuggestReply(
            support_pb2.SuggestReplyRequest(text="card"), timeout=10
        ).knowledge_base,
        timeout=60,
        interval=0.5,
    )
    yield stub
    channel.close()


def test_health_checking_covers_the_support_service(server: ServiceProcess) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="lumen.v1.SupportService"), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_suggest_reply_answers_from_the_knowledge_base(
    stub: support_pb2_grpc.SupportServiceStub,
) -> None:
    reply = stub.SuggestReply(
        support_pb2.SuggestReplyRequest(text="I ordered a new card ten days ago and it never came"),
        timeout=10,
    )
    assert not reply.handoff and reply.handoff_reason == support_pb2.HANDOFF_REASON_UNSPECIFIED
    assert reply.article_id == "card-arrival"
    assert reply.reply == reply.passages[0].text and "working days" in reply.reply
    assert reply.confidence >= 0.5 and reply.intent in reply.passages[0].intents
    assert reply.model_name == "intent-classifier" and reply.encoder.startswith("text-encoder:")
    assert len(reply.passages) == 3 and len({p.article_id for p in reply.passages}) == 3


def test_an_out_of_scope_message_is_handed_off(stub: support_pb2_grpc.SupportServiceStub) -> None:
    reply = stub.SuggestReply(
        support_pb2.SuggestReplyRequest(text="what's the weather like in paris tomorrow"),
        timeout=10,
    )
    assert reply.handoff and reply.out_of_scope
    assert reply.handoff_reason == support_pb2.HANDOFF_REASON_OUT_OF_SCOPE
    assert reply.article_id == "" and "colleague" in reply.reply


def test_a_short_follow_up_is_answered_with_the_conversations_context(
    stub: support_pb2_grpc.SupportServiceStub,
) -> None:
    conversation = f"conv-{uuid.uuid4().hex[:8]}"
    first = stub.SuggestReply(
        support_pb2.SuggestReplyRequest(
            text="why do I pay a fee when I take out cash", conversation_id=conversation
        ),
        timeout=10,
    )
    assert first.article_id == "cash-withdrawal-fee" and first.context_messages == 0
    follow_up = stub.SuggestReply(
        support_pb2.SuggestReplyRequest(text="how much is it?", conversation_id=conversation),
        timeout=10,
    )
    assert follow_up.context_messages == 1
    assert follow_up.passages[0].article_id == "cash-withdrawal-fee"


@pytest.mark.parametrize(
    ("request_", "problem"),
    [
        (support_pb2.SuggestReplyRequest(text="  "), "text is empty"),
        (support_pb2.SuggestReplyRequest(text="x" * 2001), "longer than 2000"),
        (support_pb2.SuggestReplyRequest(text="hi", context=["a"] * 11), "at most 10 context"),
    ],
)
def test_bad_input_is_invalid_argument(
    stub: support_pb2_grpc.SupportServiceStub,
    request_: support_pb2.SuggestReplyRequest,
    problem: str,
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.SuggestReply(request_, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert problem in (caught.value.details() or "")


def test_support_messages_on_kafka_get_the_suggestion_on_support_intents(
    stack: Stack, server: ServiceProcess, stub: Any
) -> None:
    conversation = f"conv-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, consumer_timeout_ms=500)
    partitions = wait_for(lambda: consumer.partitions_for_topic(SUPPORT_INTENTS.name), timeout=20)
    assert isinstance(partitions, set)
    assigned = [TopicPartition(SUPPORT_INTENTS.name, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_end()
    for partition in assigned:
        consumer.position(partition)
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    messages = [
        ("m-1", "someone stole my card yesterday"),
        ("m-2", "what's the weather like in paris tomorrow"),
    ]
    received: dict[str, tuple[SupportIntent, dict[str, Any]]] = {}

    def send_and_collect() -> bool:
        if not received:  # the router joins its group asynchronously: resend until it answers
            for message_id, text in messages:
                value = SupportMessage(
                    conversation_id=conversation, message_id=message_id, text=text
                ).encode()
                producer.send(SUPPORT_MESSAGES.name, key=conversation.encode(), value=value)
            producer.flush()
        for batch in consumer.poll(timeout_ms=500).values():
            for record in batch:
                out = SupportIntent.decode(record.value)
                if out.conversation_id == conversation:
                    received[str(out.message_id)] = (out, orjson.loads(record.value))
        return len(received) >= 2

    try:
        wait_for(send_and_collect, timeout=60, interval=0.5)
    finally:
        consumer.close()
        producer.close()
    (stolen, stolen_wire), (weather, _) = received["m-1"], received["m-2"]
    assert stolen_wire["schemaVersion"] == 2
    assert stolen.suggestion is not None and not stolen.suggestion.handoff
    assert stolen.suggestion.article_id == "lost-stolen-card"
    body = " ".join((KB / "lost-stolen-card.md").read_text().split())
    assert stolen.suggestion.text in body  # a passage of the article, word for word
    assert stolen.suggestion.knowledge_base and stolen.intent in (
        "lost_or_stolen_card",
        "compromised_card",
    )
    assert weather.out_of_scope and weather.route == "human-triage"
    assert weather.suggestion is not None and weather.suggestion.handoff
    assert weather.suggestion.handoff_reason == "out_of_scope"
    assert metric(server, "lumen_inference_assist_suggestions_total", path="kafka") >= 2
    assert metric(server, "lumen_inference_assist_time_to_suggestion_seconds_count") >= 2


def test_an_article_stored_with_another_encoder_is_re_embedded(
    kb: Any, stub: support_pb2_grpc.SupportServiceStub
) -> None:
    before = kb.find_one({"_id": "passcode"})
    served = before["encoder"]["sha256"]
    passages = [{**p, "embedding": bytes(len(p["embedding"]))} for p in before["passages"]]
    kb.update_one(
        {"_id": "passcode"},
        {"$set": {"passages": passages, "encoder": {"name": "old", "version": 0, "sha256": "x"}}},
    )

    def re_embedded() -> bool:
        doc = kb.find_one({"_id": "passcode"})
        return bool(doc["encoder"]["sha256"] == served)

    wait_for(re_embedded, timeout=30, interval=0.5)
    after = kb.find_one({"_id": "passcode"})
    assert [p["embedding"] for p in after["passages"]] == [
        p["embedding"] for p in before["passages"]
    ]
    reply = stub.SuggestReply(
        support_pb2.SuggestReplyRequest(text="I forgot the passcode for the app"), timeout=10
    )
    assert reply.article_id == "passcode"


def test_feedback_events_are_counted_per_intent_and_model_version(stack: Stack) -> None:
    run = uuid.uuid4().hex[:8]
    group = f"test-feedback-{run}"
    start_group_at_end(stack.kafka_bootstrap, group, SUPPORT_FEEDBACK.name)
    figures = BusinessFigures(trending_window_seconds=60, trending_top=5, max_label_values=50)
    consumer = BusinessConsumer(
        KafkaSettings(bootstrap_servers=stack.kafka_bootstrap), group, figures
    )
    intent = f"card_arrival_{run}"
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    consumer.start()
    try:
        for action in ("accept", "accept", "edit", "reject"):
            feedback = SupportFeedback(
                conversation_id=f"c-{run}",
                message_id="m-1",
                action=action,
                intent=intent,
                model_name="intent-classifier",
                model_version="1",
            )
            producer.send(SUPPORT_FEEDBACK.name, key=b"c", value=feedback.encode()).get(10)

        def counted() -> dict[str, float] | None:
            family = next(
                m for m in business_metrics(figures, 0.0) if m.name.endswith("support_feedback")
            )
            ours = {
                s.labels["action"]: s.value
                for s in family.samples
                if s.labels["intent"] == intent and s.labels["model_version"] == "1"
            }
            return ours if sum(ours.values()) == 4 else None

        assert wait_for(counted, timeout=60) == {"accept": 2.0, "edit": 1.0, "reject": 1.0}
    finally:
        producer.close()
        consumer.stop()
