"""Helpers for profile-updater tests: a private topic, a worker of our own, direct producing."""

from __future__ import annotations

import re
import urllib.request
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from pymongo import MongoClient
from pymongo.database import Database

from lumen_cli.platform.services import http_ok
from shared.events import encode, user_key
from tests.support.stack import ServiceProcess, Stack, free_port, start_service


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_topic(stack: Stack, partitions: int = 3) -> str:
    """A topic of our own, so that a worker reads exactly what the test produced."""
    name = unique("test.profiles")
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


def start_worker(
    stack: Stack, topic: str, database: str, app_id: str | None = None, **settings: object
) -> ServiceProcess:
    """``python -m services.profiles`` on ``topic`` writing to ``database``; ``settings`` are
    extra ``LUMEN_PROFILES_*`` values (``batch_size=200`` -> ``LUMEN_PROFILES_BATCH_SIZE``)."""
    web = free_port()
    env = {
        **stack.env(),
        "LUMEN_MONGO_DATABASE": database,
        "LUMEN_PROFILES_WEB_PORT": str(web),
        "LUMEN_PROFILES_APP_ID": app_id or unique("lumen-profiles-test"),
        "LUMEN_PROFILES_EVENTS_TOPIC": topic,
        "LUMEN_PROFILES_DATA_DIR": f"var/test/{unique('profiles')}",
        **{f"LUMEN_PROFILES_{k.upper()}": str(v) for k, v in settings.items()},
    }
    return start_service(
        "profiles",
        "services.profiles",
        env,
        ready=lambda: http_ok(f"http://127.0.0.1:{web}/healthz"),
        ports={"web": web},
    )


def produce(stack: Stack, topic: str, events: Iterable[dict[str, Any] | bytes]) -> int:
    """Write events as ingest does (key = user key); raw bytes are written as they are."""
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all", linger_ms=20)
    count = 0
    try:
        for event in events:
            if isinstance(event, bytes):
                producer.send(topic, key=b"poison", value=event)
            else:
                producer.send(topic, key=user_key(event).encode(), value=encode(event))
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count


def end_offsets(stack: Stack, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka_bootstrap)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: int(offset) for tp, offset in ends.items()}
    finally:
        consumer.close()


def read_topic(
    stack: Stack, topic: str, start: dict[int, int] | None = None, timeout_ms: int = 3000
) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) of every record from ``start`` (partition -> offset; default: beginning)."""
    consumer = KafkaConsumer(
        bootstrap_servers=stack.kafka_bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=timeout_ms,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, (start or {}).get(tp.partition, 0))
        return [(record.key, record.value) for record in consumer]
    finally:
        consumer.close()


def applied_offsets(db: Database, topic: str) -> int:
    """How many records of ``topic`` the store has recorded as applied."""
    return sum(
        int(d["offset"]) + 1
        for d in db["stream_offsets"].find({"_id": {"$regex": f"^{re.escape(topic)}\\|"}})
    )


def metric(worker: ServiceProcess, name: str) -> float:
    """Sum of the samples of one metric on the worker's /metrics page."""
    url = f"http://127.0.0.1:{worker.ports['web']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            sample = line.split(" ")[0]
            if sample == name or sample.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
    return total


def mongo(stack: Stack, database: str) -> Database:
    return MongoClient(stack.mongo_uri, tz_aware=True)[database]
