"""Acquisition channels on the real ingest, Kafka, profile updater and mongod: the profile's
first and last touch follow the events' UTM campaign and referrer, a replay of the same records
changes neither, the trends split views by channel, and the exporter's by-channel figures
count the same events."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from kafka import KafkaProducer
from pymongo import MongoClient

from services.exporter.business import BusinessFigures
from services.exporter.business_consumer import BusinessConsumer
from services.exporter.channels import UNATTRIBUTED
from services.profiles.trends import HOUR, window_start
from shared import attribution
from shared.profile_document import ProfileDocument
from shared.settings import KafkaSettings
from shared.topics import EVENTS_RAW, SUPPORT_INTENTS
from shared.trends import CHANNEL, TRENDS, top_trending, trend_id
from tests.integration.test_ingest import TopicReader
from tests.support.stack import ServiceProcess, Stack, start_group_at_end, wait_for

WRITE_KEY = "lumen-dev-key"
REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = "https://shop.example/lamps"


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def figures(stack: Stack) -> Iterator[BusinessFigures]:
    """The exporter's business figures, fed by its consumer from the end of the topics."""
    group = f"test-attribution-{uuid.uuid4().hex[:8]}"
    for topic in (EVENTS_RAW.name, SUPPORT_INTENTS.name):
        start_group_at_end(stack.kafka_bootstrap, group, topic)
    business = BusinessFigures(trending_window_seconds=60, trending_top=5, max_label_values=50)
    consumer = BusinessConsumer(
        KafkaSettings(bootstrap_servers=stack.kafka_bootstrap), group, business
    )
    consumer.start()
    yield business
    consumer.stop()


def test_first_and_last_touch_from_ingest_to_the_profile_and_the_exporter(
    stack: Stack, ingest: ServiceProcess, profiles: ServiceProcess, figures: BusinessFigures
) -> None:
    user = f"attr-{uuid.uuid4().hex[:10]}"
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4)
    campaign = {"source": "google", "medium": "cpc", "name": "spring-sale"}
    batch: list[dict[str, Any]] = [
        {  # lands from a search ad
            "type": "page",
            "userId": user,
            "name": "Lamps",
            "timestamp": iso(t0),
            "context": {"campaign": campaign, "page": {"url": f"{PAGE}?utm_source=google"}},
        },
        {  # a reload 5 minutes later: direct, within the visit
            "type": "track",
            "userId": user,
            "event": "Signed Up",
            "timestamp": iso(t0 + timedelta(minutes=5)),
            "context": {"page": {"url": PAGE}},
        },
        {  # back three hours later from a social post
            "type": "page",
            "userId": user,
            "name": "Lamps",
            "timestamp": iso(t0 + timedelta(hours=3)),
            "context": {"page": {"url": PAGE, "referrer": "https://l.facebook.com/l.php?u=x"}},
        },
        {  # a backend's view: counted in trends under the user's last-touch channel
            "type": "track",
            "userId": user,
            "event": "Product Viewed",
            "timestamp": iso(t0 + timedelta(hours=3, minutes=1)),
            "properties": {"product_id": f"lamp-{user}"},
        },
        {  # the backend's order: no attribution context
            "type": "track",
            "userId": user,
            "event": "Order Completed",
            "timestamp": iso(t0 + timedelta(hours=3, minutes=2)),
            "properties": {"orderId": f"o-{user}", "revenue": 30.0},
        },
    ]
    reader = TopicReader(stack.kafka_bootstrap, (EVENTS_RAW.name,))
    try:
        response = httpx.post(
            f"http://127.0.0.1:{ingest.ports['http']}/v1/batch",
            json={"batch": batch},
            auth=(WRITE_KEY, ""),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        records = reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user, len(batch))
    finally:
        reader.close()

    client: MongoClient[dict[str, Any]] = MongoClient(stack.mongo_uri, tz_aware=True)
    collection = client[stack.mongo_database].profiles

    def at_version(version: int) -> dict[str, Any] | None:
        doc = collection.find_one({"_id": user})
        return doc if doc and doc.get("version") == version else None

    social_window = trend_id(
        "1h", CHANNEL, window_start(t0 + timedelta(hours=3, minutes=1), HOUR), attribution.SOCIAL
    )
    trends = client[stack.mongo_database][TRENDS]

    def social_views() -> int:
        return int((trends.find_one({"_id": social_window}) or {}).get("views", 0))

    try:
        views_before = social_views()
        stored = wait_for(lambda: at_version(len(batch)), timeout=60)
        assert isinstance(stored, dict)
        profile = ProfileDocument.decode(stored)
        assert profile.first_touch is not None and profile.last_touch is not None
        first, last = profile.first_touch, profile.last_touch
        assert (first.channel, first.source, first.medium, first.campaign, first.at) == (
            attribution.PAID_SEARCH,
            "google",
            "cpc",
            "spring-sale",
            t0,
        )
        assert (last.channel, last.referrer, last.at) == (
            attribution.SOCIAL,
            "l.facebook.com",
            t0 + timedelta(hours=3),
        )

        # The view counted in the channel trend, which the trends reader splits by channel.
        assert social_views() == views_before + 1
        by_channel = top_trending(client[stack.mongo_database], kind=CHANNEL, limit=20)
        assert attribution.SOCIAL in {row.key for row in by_channel}
        listed = subprocess.run(
            [sys.executable, "-m", "lumen_cli", "trending", "--channels", "-n", "20", "--json"],
            cwd=REPO_ROOT,
            env={**os.environ, **stack.env()},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        answer = orjson.loads(listed.stdout)
        assert answer["kind"] == CHANNEL
        assert attribution.SOCIAL in {row["key"] for row in answer["trending"]}

        # A replay past ingest's dedupe: the same records written to events.raw again, as a
        # restored backup or a re-run producer would. They apply again (new offsets), and
        # neither touch moves.
        producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
        try:
            for key, value in records:
                producer.send(EVENTS_RAW.name, key=key, value=orjson.dumps(value))
            producer.flush(timeout=10)
        finally:
            producer.close()
        replayed = wait_for(lambda: at_version(2 * len(batch)), timeout=60)
        assert isinstance(replayed, dict)
        assert replayed["firstTouch"] == stored["firstTouch"]
        assert replayed["lastTouch"] == stored["lastTouch"]
    finally:
        client.close()

    # The exporter counted each record (sent and replayed) under its own context's channel.
    expected = {
        attribution.PAID_SEARCH: 2,
        attribution.DIRECT: 2,
        attribution.SOCIAL: 2,
        UNATTRIBUTED: 4,
    }

    def counted() -> dict[str, int] | None:
        events = figures.channels.snapshot().events
        nonzero = {channel: n for channel, n in events.items() if n}
        return nonzero if nonzero == expected else None

    assert wait_for(counted, timeout=30), figures.channels.snapshot().events
    snapshot = figures.channels.snapshot()
    assert snapshot.orders[UNATTRIBUTED] == 2
    assert sum(snapshot.orders.values()) == 2
