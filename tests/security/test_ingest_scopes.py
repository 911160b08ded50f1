"""Ingest's security model on the real Kafka (and mongod for trending): key scopes, no built-in
key outside development, future timestamps, PII kept out of the DLQ, bounded batches and
catalogue entries, metrics off the public port, and topic durability settings."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import httpx
import orjson
import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from lumen.v1 import events_pb2, events_pb2_grpc

from lumen_cli.platform.services import http_ok
from services.ingest.auth import DEV_ADMIN_KEY, DEV_WRITE_KEY, WriteKeys
from shared.settings import KafkaSettings
from shared.topics import EVENTS_DLQ, EVENTS_RAW, MIN_INSYNC, TopicSpec, ensure_topics
from shared.trends import ITEM, top_trending
from tests.integration.test_ingest import TopicReader
from tests.support.profiles_worker import mongo, start_worker
from tests.support.stack import REPO, ServiceProcess, Stack, free_port, start_group_at_end
from tests.support.stack import start_service as start_process

WRITE_KEY, CATALOG_KEY, ADMIN_KEY = "scopes-write-key", "scopes-catalog-key", "scopes-admin-key"
KEYS = {
    "LUMEN_INGEST_WRITE_KEYS": ",".join(
        [WriteKeys.entry("web", WRITE_KEY), WriteKeys.entry("limited", "scopes-limited-key")]
    ),
    "LUMEN_INGEST_CATALOG_KEYS": WriteKeys.entry("backend", CATALOG_KEY),
    "LUMEN_INGEST_ADMIN_KEYS": WriteKeys.entry("ops", ADMIN_KEY),
}
PII_IP, PII_EMAIL = "198.51.100.77", "mallory-secret@example.com"


def start_ingest(stack: Stack, name: str, **settings: str) -> ServiceProcess:
    http, grpc_port, metrics = free_port(), free_port(), free_port()
    env = {
        **stack.env(),
        "LUMEN_INGEST_HTTP_PORT": str(http),
        "LUMEN_INGEST_GRPC_PORT": str(grpc_port),
        "LUMEN_INGEST_METRICS_PORT": str(metrics),
        **settings,
    }
    return start_process(
        name,
        "services.ingest",
        env,
        ready=lambda: http_ok(f"http://127.0.0.1:{http}/readyz"),
        ports={"http": http, "grpc": grpc_port, "metrics": metrics},
    )


@pytest.fixture(scope="module")
def ingest(stack: Stack) -> Iterator[ServiceProcess]:
    service = start_ingest(
        stack,
        "ingest-scopes",
        **KEYS,
        LUMEN_INGEST_PRIVACY_IP="hash",
        LUMEN_INGEST_PRIVACY_HASH_SALT="scopes-salt",
        LUMEN_INGEST_PRIVACY_TRAIT_KEYS="email",
        LUMEN_INGEST_PRIVACY_TRAIT_POLICY="drop",
        LUMEN_INGEST_RATE_LIMIT_OVERRIDES="limited=10/100",
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def reader(stack: Stack, ingest: ServiceProcess) -> Iterator[TopicReader]:
    topics = TopicReader(stack.kafka_bootstrap, (EVENTS_RAW.name, EVENTS_DLQ.name))
    yield topics
    topics.close()


def url(service: ServiceProcess, path: str) -> str:
    return f"http://127.0.0.1:{service.ports['http']}{path}"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def upsert(item: str, **fields: object) -> dict[str, object]:
    return {
        "userId": "catalogue",
        "event": "Item Upserted",
        "properties": {"itemId": item, "title": "Pinned", **fields},
    }


# -- key scopes -------------------------------------------------------------------------------
def test_catalogue_writes_are_refused_with_a_write_key(
    ingest: ServiceProcess, reader: TopicReader
) -> None:
    item, user = uid("item"), uid("user")
    refused = httpx.post(url(ingest, "/v1/track"), auth=(WRITE_KEY, ""), json=upsert(item))
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert (body["reason"], body["scope"], body["field"]) == (
        "insufficient_scope",
        "catalog",
        "event",
    )
    assert "Item Upserted" in body["error"]

    batch = [
        {"type": "track", "userId": user, "event": "Item Viewed", "properties": {"itemId": item}},
        {"type": "track", **upsert(item)},
    ]
    partial = httpx.post(url(ingest, "/v1/batch"), auth=(WRITE_KEY, ""), json={"batch": batch})
    assert partial.status_code == 200, partial.text
    [rejected] = partial.json()["rejected"]
    assert (rejected["index"], rejected["reason"]) == (1, "insufficient_scope")
    assert "Item Upserted" in rejected["message"]

    with grpc.insecure_channel(f"127.0.0.1:{ingest.ports['grpc']}") as channel:
        stub = events_pb2_grpc.EventServiceStub(channel)
        event = events_pb2.Event(
            type=events_pb2.EVENT_TYPE_TRACK, user_id="c", event="Item Upserted"
        )
        event.properties.update({"itemId": item, "title": "Pinned"})
        with pytest.raises(grpc.RpcError) as denied:
            stub.Publish(
                events_pb2.PublishRequest(events=[event]),
                metadata=(("authorization", "Bearer " + WRITE_KEY),),
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        accepted = stub.Publish(
            events_pb2.PublishRequest(events=[event]),
            metadata=(("authorization", "Bearer " + CATALOG_KEY),),
        )
        assert accepted.accepted == 1

    ok = httpx.post(url(ingest, "/v1/track"), auth=(CATALOG_KEY, ""), json=upsert(item))
    assert ok.status_code == 200, ok.text
    reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user, 1)
    upserts = reader.wait(
        EVENTS_RAW.name,
        lambda e: e.get("event") == "Item Upserted" and e["properties"]["itemId"] == item,
        2,
    )
    assert sorted(e["sourceId"] for _, e in upserts) == ["backend", "backend"]


def test_erasure_needs_an_admin_key(ingest: ServiceProcess, reader: TopicReader) -> None:
    user = uid("erase")
    for key in (WRITE_KEY, CATALOG_KEY):
        refused = httpx.delete(url(ingest, f"/v1/users/{user}"), auth=(key, ""))
        assert refused.status_code == 403, refused.text
        assert (refused.json()["reason"], refused.json()["scope"]) == (
            "insufficient_scope",
            "admin",
        )
    imported = httpx.post(
        url(ingest, "/v1/import"),
        auth=(WRITE_KEY, ""),
        json={"batch": [{"type": "track", "userId": user, "event": "X"}]},
    )
    assert imported.status_code == 403 and imported.json()["scope"] == "admin"
    with grpc.insecure_channel(f"127.0.0.1:{ingest.ports['grpc']}") as channel:
        stub = events_pb2_grpc.EventServiceStub(channel)
        with pytest.raises(grpc.RpcError) as denied:
            stub.DeleteUser(
                events_pb2.DeleteUserRequest(user_id=user),
                metadata=(("authorization", "Bearer " + WRITE_KEY),),
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # An admin key sends no events: it is not a write key.
    track = httpx.post(
        url(ingest, "/v1/track"), auth=(ADMIN_KEY, ""), json={"userId": user, "event": "X"}
    )
    assert track.status_code == 403 and track.json()["scope"] == "write"

    erased = httpx.delete(url(ingest, f"/v1/users/{user}"), auth=(ADMIN_KEY, ""))
    assert erased.status_code == 202, erased.text
    replay = httpx.post(
        url(ingest, "/v1/import"),
        auth=(ADMIN_KEY, ""),
        json={"batch": [{"type": "track", **upsert(uid("item"))}]},
    )
    assert replay.status_code == 200 and replay.json() == {"success": True}
    deletions = reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user, 1)
    assert [e["type"] for _, e in deletions] == ["delete"]


def test_no_built_in_key_outside_development(stack: Stack) -> None:
    env = {
        **stack.env(),
        "LUMEN_DEV_MODE": "0",
        "LUMEN_INGEST_WRITE_KEYS": "",
        "LUMEN_INGEST_HTTP_PORT": str(free_port()),
        "LUMEN_INGEST_GRPC_PORT": str(free_port()),
        "LUMEN_INGEST_METRICS_PORT": str(free_port()),
    }
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "services.ingest"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refuses to start" in proc.stderr + proc.stdout
    assert "LUMEN_INGEST_WRITE_KEYS" in proc.stderr + proc.stdout
    assert time.monotonic() - started < 30


def test_development_mode_has_the_documented_keys(stack: Stack) -> None:
    service = start_ingest(stack, "ingest-dev-keys")  # stack.env() sets LUMEN_DEV_MODE=1
    try:
        item = uid("item")
        ok = httpx.post(url(service, "/v1/track"), auth=(DEV_WRITE_KEY, ""), json=upsert(item))
        assert ok.status_code == 200, ok.text
        erased = httpx.delete(url(service, f"/v1/users/{uid('u')}"), auth=(DEV_ADMIN_KEY, ""))
        assert erased.status_code == 202, erased.text
        refused = httpx.delete(url(service, f"/v1/users/{uid('u')}"), auth=(DEV_WRITE_KEY, ""))
        assert refused.status_code == 403
    finally:
        service.stop()


# -- timestamps -------------------------------------------------------------------------------
def test_future_timestamps_reach_events_raw_clamped(
    ingest: ServiceProcess, reader: TopicReader
) -> None:
    user = uid("future")
    batch = [
        {
            "type": "track",
            "userId": user,
            "event": "Item Viewed",
            "properties": {"itemId": "x"},
            "timestamp": "2090-01-01T00:00:00Z",
        }
    ] * 20
    response = httpx.post(url(ingest, "/v1/batch"), auth=(WRITE_KEY, ""), json={"batch": batch})
    assert response.status_code == 200, response.text
    events = reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user, 20)
    for _, event in events:
        assert event["timestamp"] == event["receivedAt"]
        assert event["originalTimestamp"] == "2090-01-01T00:00:00Z"
        received = datetime.fromisoformat(event["receivedAt"].replace("Z", "+00:00"))
        assert abs(datetime.now(UTC) - received) < timedelta(minutes=5)
    page = httpx.get(f"http://127.0.0.1:{ingest.ports['metrics']}/metrics").text
    [line] = [
        x for x in page.splitlines() if x.startswith("lumen_ingest_timestamps_clamped_total{")
    ]
    assert 'reason="future_timestamp"' in line and float(line.rsplit(" ", 1)[1]) >= 20


def test_future_views_cannot_pin_trending(stack: Stack, ingest: ServiceProcess) -> None:
    """End to end: 150 `Item Viewed` stamped 2090 go through ingest and the profile updater
    (on events.raw, from its current end) into the trends collection, read as `lumen
    trending` reads it. Unclamped they would sit in windows of 2090, #1 of every later query;
    clamped they are ordinary views of this hour, gone from trending once it has passed."""
    database = uid("lumen_test_trend").replace("-", "_")
    app_id = uid("lumen-profiles-trend")
    start_group_at_end(stack.kafka_bootstrap, app_id, EVENTS_RAW.name)
    worker = start_worker(stack, EVENTS_RAW.name, database, app_id=app_id)
    try:
        item, marker_user = uid("pinned"), uid("marker")
        batch = [
            {
                "type": "track",
                "userId": f"{item}-{i % 15}",
                "event": "Item Viewed",
                "properties": {"itemId": item},
                "timestamp": "2090-01-01T00:00:00Z",
            }
            for i in range(150)
        ]
        batch.append(
            {
                "type": "track",
                "userId": marker_user,
                "event": "Item Viewed",
                "properties": {"itemId": "marker"},
            }
        )
        sent = httpx.post(url(ingest, "/v1/batch"), auth=(WRITE_KEY, ""), json={"batch": batch})
        assert sent.status_code == 200 and sent.json() == {"success": True}, sent.text
        db = mongo(stack, database)
        deadline = time.monotonic() + 60
        while not db["trends"].find_one({"key": item}) and time.monotonic() < deadline:
            time.sleep(0.3)
        windows = list(db["trends"].find({"key": item}))
        assert windows, "the views reached the trends collection"
        latest = max(w["start"] for w in windows)
        latest = latest if latest.tzinfo else latest.replace(tzinfo=UTC)
        assert latest <= datetime.now(UTC), "no window lies in the future"
        later = datetime.now(UTC) + timedelta(hours=3)
        assert item not in [r.key for r in top_trending(db, ITEM, "1h", now=later)]
        assert item not in [r.key for r in top_trending(db, ITEM, "1m", now=later)]
    finally:
        worker.stop()
        mongo(stack, database).client.drop_database(database)


# -- privacy before the DLQ -------------------------------------------------------------------
def test_the_dlq_holds_no_unscrubbed_personal_data(
    ingest: ServiceProcess, reader: TopicReader
) -> None:
    run = uid("pii")
    bad = [
        {
            "type": "track",
            "userId": run,
            "context": {"ip": PII_IP},
            "traits": {"email": PII_EMAIL},
        },  # no event name
        {
            "type": "identify",
            "userId": run,
            "context": {"ip": PII_IP, "traits": {"email": PII_EMAIL}},
            "traits": {"email": PII_EMAIL, "big": "x" * 40_000},
        },  # too large
        {"type": "nonsense", "userId": run, "context": {"ip": PII_IP}},
    ]
    response = httpx.post(url(ingest, "/v1/batch"), auth=(WRITE_KEY, ""), json={"batch": bad})
    assert response.status_code == 400 and response.json()["rejectedCount"] == 3
    records = reader.wait(
        EVENTS_DLQ.name, lambda d: (d.get("payload") or {}).get("userId") == run, 3
    )
    for _, record in records:
        raw = orjson.dumps(record).decode()
        assert PII_IP not in raw and PII_EMAIL not in raw, record["reason"]
        assert record["payload"]["context"]["ip"].startswith("hmac-sha256:")


# -- bounded batches and catalogue entries ----------------------------------------------------
def test_batch_amplification_is_bounded(ingest: ServiceProcess, reader: TopicReader) -> None:
    run = uid("amp")
    too_many = httpx.post(
        url(ingest, "/v1/batch"), auth=(WRITE_KEY, ""), json={"batch": [{}] * 2501}
    )
    assert too_many.status_code == 413, too_many.text
    assert (too_many.json()["reason"], too_many.json()["field"]) == ("too_many_events", "batch")

    invalid = [{"type": "track", "userId": f"{run}-{i}"} for i in range(2500)]  # no event names
    answer = httpx.post(url(ingest, "/v1/batch"), auth=(WRITE_KEY, ""), json={"batch": invalid})
    assert answer.status_code == 400
    body = answer.json()
    assert body["rejectedCount"] == 2500 and len(body["rejected"]) == 100
    assert len(answer.content) < 20_000, len(answer.content)
    # Only the reported refusals are written to the DLQ.
    marker = uid("amp-marker")
    httpx.post(url(ingest, "/v1/track"), auth=(WRITE_KEY, ""), json={"userId": marker})
    reader.wait(EVENTS_DLQ.name, lambda d: (d.get("payload") or {}).get("userId") == marker, 1)
    dlq = reader.wait(
        EVENTS_DLQ.name,
        lambda d: str((d.get("payload") or {}).get("userId", "")).startswith(run),
        100,
    )
    assert len(dlq) == 100

    # The rate limit is charged per event: a 1000-event batch leaves the bucket in debt.
    limited = ("scopes-limited-key", "")
    many = [{"type": "track", "userId": f"{run}-r", "event": "X"}] * 1000
    first = httpx.post(url(ingest, "/v1/batch"), auth=limited, json={"batch": many})
    assert first.status_code == 200, first.text
    time.sleep(1.0)
    second = httpx.post(url(ingest, "/v1/track"), auth=limited, json={"userId": run, "event": "X"})
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 60


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "t" * 501}, "properties.title"),
        ({"description": "d" * 5001}, "properties.description"),
        ({"categories": [f"c{i}" for i in range(21)]}, "properties.categories"),
        ({"categories": ["c" * 101]}, "properties.categories"),
        ({"attributes": {f"k{i}": 1 for i in range(51)}}, "properties.attributes"),
    ],
)
def test_catalogue_fields_are_bounded(ingest: ServiceProcess, fields: dict, field: str) -> None:
    response = httpx.post(
        url(ingest, "/v1/track"), auth=(CATALOG_KEY, ""), json=upsert(uid("item"), **fields)
    )
    assert response.status_code == 400, response.text
    assert (response.json()["field"], response.json()["success"]) == (field, False)


# -- metrics port and topic durability --------------------------------------------------------
def test_metrics_are_served_apart_from_the_public_port(ingest: ServiceProcess) -> None:
    assert httpx.get(url(ingest, "/metrics")).status_code == 404
    page = httpx.get(f"http://127.0.0.1:{ingest.ports['metrics']}/metrics")
    assert page.status_code == 200 and "lumen_ingest_requests_total" in page.text


def test_topics_get_min_insync_replicas_explicitly(stack: Stack) -> None:
    fresh, old = uid("durable.fresh"), uid("durable.old")
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(old, 1, 1)])  # made without it, as before
        ensure_topics(
            KafkaSettings(bootstrap_servers=stack.kafka_bootstrap),
            (TopicSpec(fresh, "test"), TopicSpec(old, "test")),
        )
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in (fresh, old, "events.raw")]
        )
        by_topic = next(iter(described.values()))
        for name in (fresh, old, "events.raw"):
            setting = by_topic[name][MIN_INSYNC]  # listed only when set on the topic itself
            assert setting["config_source"] == "DYNAMIC_TOPIC_CONFIG", name
            assert setting["value"] == "1", "one broker here: min(2, brokers) = 1"
    finally:
        admin.delete_topics([fresh, old])
        admin.close()


def test_the_seed_says_when_its_key_cannot_write_the_catalogue(ingest: ServiceProcess) -> None:
    from lumen_cli.seed.replay import IngestBatchSender, SeedError

    catalogue = [{"type": "track", **upsert(uid("seed-item"))}]
    with pytest.raises(SeedError, match="LUMEN_INGEST_CATALOG_KEYS"):
        IngestBatchSender(url(ingest, ""), WRITE_KEY).send(catalogue)
    assert IngestBatchSender(url(ingest, ""), CATALOG_KEY).send(catalogue).accepted == 1
