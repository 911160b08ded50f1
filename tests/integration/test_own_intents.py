"""A product's own intents end to end: a labelled CSV of a shoe shop trained with
``python -m models train intent --data`` replaces the served Banking77 model (another
taxonomy: not comparable, published), the inference server hot-swaps it, classifies new
texts of the shop and routes support.messages to the file's queues; then agents' labels on
support.labels (with their messages on support.messages) are collected into MongoDB,
idempotently, and ``--from-labels`` trains the next served version from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc
from prometheus_client.parser import text_string_to_metric_families
from pymongo import MongoClient

from shared.messages import SupportIntent, SupportLabel, SupportMessage
from shared.support_labels import LABELS
from shared.timestamps import now_iso
from shared.topics import SUPPORT_INTENTS, SUPPORT_LABELS, SUPPORT_MESSAGES
from tests.integration.inference_helpers import start_inference
from tests.support.stack import REPO, TEST_VAR, ServiceProcess, Stack, wait_for

SHOE_SHOP = REPO / "data" / "intents" / "shoe-shop.csv"
NAME = "intent-classifier"
TRAIN_TIMEOUT = 1500.0


@pytest.fixture(scope="module")
def registry(models_registry: Path) -> Path:
    """A private registry whose intent-classifier v1 is the small default (Banking77): a
    link to its read-only folder; new versions are written beside it."""
    root = TEST_VAR / "models" / f"own-intents-{uuid.uuid4().hex[:8]}"
    (root / NAME).mkdir(parents=True)
    (root / NAME / "1").symlink_to(models_registry / NAME / "1", target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def database(stack: Stack) -> Iterator[str]:
    name = f"own-intents-{uuid.uuid4().hex[:8]}"
    yield name
    client: MongoClient[dict[str, Any]] = MongoClient(stack.mongo_uri)
    client.drop_database(name)
    client.close()


@pytest.fixture(scope="module")
def server(stack: Stack, registry: Path, database: str) -> Iterator[ServiceProcess]:
    service = start_inference(
        stack,
        registry,
        LUMEN_MONGO_DATABASE=database,
        LUMEN_INFERENCE_ROUTING="{}",  # nothing set: the served model's own map routes
        LUMEN_LABELS_CONSUMER_GROUP=f"test-labels-{uuid.uuid4().hex[:6]}",
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def intents(server: ServiceProcess) -> Iterator[pb_grpc.IntentServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
        yield pb_grpc.IntentServiceStub(channel)


def train(stack: Stack, registry: Path, database: str, *args: str) -> dict[str, Any]:
    result = TEST_VAR / f"own-intents-{uuid.uuid4().hex[:6]}.json"
    done = subprocess.run(
        [sys.executable, "-m", "models", "train", "intent", *args, "--json-result", str(result)],
        cwd=REPO,
        env={
            **os.environ,
            **stack.env(),
            "LUMEN_MONGO_DATABASE": database,
            "LUMEN_MODEL_REPOSITORY": str(registry),
            "LUMEN_RUNS_DIR": str(TEST_VAR / "runs"),
            "LUMEN_CACHE_DIR": str(REPO / "var" / "cache"),
        },
        capture_output=True,
        text=True,
        timeout=TRAIN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome: dict[str, Any] = json.loads(result.read_text())
    return outcome


def served_version(
    stub: pb_grpc.IntentServiceStub, version: int
) -> pb.ClassifyIntentResponse | None:
    reply = stub.ClassifyIntent(pb.ClassifyIntentRequest(text="hello", top_k=3), timeout=10)
    return reply if reply.model_version == str(version) else None


def classify(stub: pb_grpc.IntentServiceStub, text: str) -> str:
    reply = stub.ClassifyIntent(pb.ClassifyIntentRequest(text=text, top_k=3), timeout=10)
    return str(reply.prediction.intent)


def test_a_csv_of_own_intents_is_trained_served_and_routes(
    stack: Stack,
    registry: Path,
    database: str,
    server: ServiceProcess,
    intents: pb_grpc.IntentServiceStub,
) -> None:
    outcome = train(stack, registry, database, "--data", str(SHOE_SHOP))
    assert outcome["decision"] == "published", outcome["reason"]
    assert "another taxonomy" in outcome["reason"] and outcome["served_version"] == 1
    assert outcome["trained_from"]["path"] == str(SHOE_SHOP)
    assert outcome["routing"]["return_shoes"] == "returns"
    version = outcome["version"]
    wait_for(lambda: served_version(intents, version), timeout=60, interval=0.5)

    # New texts of the shop's taxonomy, none of them in the file.
    expected = {
        "my parcel with the boots still has not shown up": "order_status",
        "can I get a refund for these trainers": "return_shoes",
        "what time are you open on sunday": "store_hours",
        "my promo code gets rejected at checkout": "discount_code",
        "I need a bigger size of the sneakers I got": "size_exchange",
        "can you write me a poem about cats": "out_of_scope",
    }
    got = {text: classify(intents, text) for text in expected}
    assert sum(got[t] == want for t, want in expected.items()) >= 5, got

    routed = route_on_kafka(
        stack,
        {
            "m-return": "I want to send back the sandals, they are not my style",
            "m-hours": "are you open late on friday evening",
        },
    )
    assert (routed["m-return"].intent, routed["m-return"].route) == ("return_shoes", "returns")
    assert routed["m-return"].model_version == str(version)
    assert (routed["m-hours"].intent, routed["m-hours"].route) == ("store_hours", "stores")


def route_on_kafka(stack: Stack, messages: dict[str, str]) -> dict[str, SupportIntent]:
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
    received: dict[str, SupportIntent] = {}

    def send_and_collect() -> bool:
        if not received:  # the router joins its group asynchronously: resend until it answers
            for message_id, text in messages.items():
                value = SupportMessage(
                    conversation_id=conversation, message_id=message_id, text=text
                ).encode()
                producer.send(SUPPORT_MESSAGES.name, key=conversation.encode(), value=value)
            producer.flush()
        for batch in consumer.poll(timeout_ms=500).values():
            for record in batch:
                out = SupportIntent.decode(record.value)
                if out.conversation_id == conversation:
                    received[str(out.message_id)] = out
        return len(received) == len(messages)

    try:
        wait_for(send_and_collect, timeout=60, interval=0.5)
    finally:
        consumer.close()
        producer.close()
    return received


GIFT_WRAP = [
    "Can you gift wrap the boots I just ordered?",
    "Is gift wrapping available for a birthday present?",
    "Please wrap the sneakers as a gift and add a card",
    "How much does gift wrapping cost?",
    "Can I add a gift message and wrapping to my order?",
    "I'd like the sandals wrapped as a present",
]


def labelled_rows() -> list[tuple[str, str]]:
    """(text, label): three of the shop's intents, its out-of-scope rows, and an intent the
    CSV never had (gift_wrapping)."""
    import csv

    with SHOE_SHOP.open(newline="") as handle:
        keep = {"order_status", "return_shoes", "store_hours", "oos"}
        rows = [(r["text"], r["label"]) for r in csv.DictReader(handle) if r["label"] in keep]
    return rows + [(text, "gift_wrapping") for text in GIFT_WRAP]


def label_records(server: ServiceProcess) -> dict[str, float]:
    url = f"http://127.0.0.1:{server.ports['metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return {
        sample.labels["kind"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "lumen_inference_label_records_total"
    }


def test_labels_on_kafka_train_the_next_served_version(
    stack: Stack,
    registry: Path,
    database: str,
    server: ServiceProcess,
    intents: pb_grpc.IntentServiceStub,
) -> None:
    run = uuid.uuid4().hex[:6]
    rows = labelled_rows()
    ids = [(f"conv-{run}-{i // 4}", f"m-{i}") for i in range(len(rows))]
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")

    def label(i: int, value: str, at: str | None = None) -> None:
        conversation, message = ids[i]
        record = SupportLabel(
            conversation_id=conversation,
            message_id=message,
            label=value,
            agent_id="agent-7",
            labelled_at=at or now_iso(),
        )
        producer.send(SUPPORT_LABELS.name, key=conversation.encode(), value=record.encode())

    def message(i: int) -> None:
        conversation, message_id = ids[i]
        value = SupportMessage(
            conversation_id=conversation, message_id=message_id, text=rows[i][0]
        ).encode()
        producer.send(SUPPORT_MESSAGES.name, key=conversation.encode(), value=value)

    try:
        # Message 0: a wrong label first, corrected later; the wrong one replayed after the
        # correction must not win (the latest labelledAt does).
        label(0, "store_hours", "2026-01-01T10:00:00.000Z")
        label(0, rows[0][1], "2026-01-01T10:05:00.000Z")
        for i in range(1, 4):  # labels before their messages: the texts are joined later
            label(i, rows[i][1])
        producer.flush()
        for i in range(len(rows)):
            message(i)
        producer.flush()
        for i in range(4, len(rows)):
            label(i, rows[i][1])
        for i in range(len(rows)):  # a replay of every label: nothing counts twice
            label(i, rows[i][1], "2026-01-01T10:05:00.000Z" if i == 0 else None)
        label(0, "store_hours", "2026-01-01T10:00:00.000Z")
        producer.flush()
    finally:
        producer.close()

    client: MongoClient[dict[str, Any]] = MongoClient(stack.mongo_uri)
    collection = client[database][LABELS]
    ours = {"_id.c": {"$regex": f"^conv-{run}-"}}

    def collected() -> bool:
        with_text = collection.count_documents({**ours, "text": {"$exists": True}})
        return with_text == len(rows)

    try:
        wait_for(collected, timeout=90, interval=0.5)
        assert collection.count_documents(ours) == len(rows)
        first = collection.find_one({"_id": {"c": ids[0][0], "m": ids[0][1]}})
        assert first is not None and first["label"] == rows[0][1] == "order_status"
        assert first["text"] == rows[0][0] and first["agentId"] == "agent-7"
        oos = collection.count_documents({**ours, "label": "oos"})
        assert oos == sum(1 for _, y in rows if y == "oos")
        # Every record is counted on /metrics, replays and corrections included.
        counted = label_records(server)
        assert counted["label"] >= 2 * len(rows) and counted["message"] >= len(rows)
        assert counted["failed"] == 0
    finally:
        client.close()

    reply = intents.ClassifyIntent(pb.ClassifyIntentRequest(text="hello"), timeout=10)
    outcome = train(stack, registry, database, "--from-labels")
    assert outcome["decision"] == "published", outcome["reason"]
    assert "another taxonomy" in outcome["reason"] and "gift_wrapping" in outcome["reason"]
    assert outcome["served_version"] == int(reply.model_version)
    assert outcome["trained_from"]["source"] == "labels"
    assert outcome["trained_from"]["database"] == database
    assert outcome["counts"]["gift_wrapping"] == len(GIFT_WRAP)
    # No queues come with labels: the served version's map is kept for the intents left.
    assert "discount_code" not in outcome["routing"]
    if int(reply.model_version) > 1:  # the CSV's version was served
        assert outcome["routing"]["return_shoes"] == "returns"
    wait_for(lambda: served_version(intents, outcome["version"]), timeout=60, interval=0.5)
    assert classify(intents, "could you wrap the loafers as a present for my dad") == (
        "gift_wrapping"
    )
