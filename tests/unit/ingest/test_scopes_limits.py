"""Key scopes, development keys, catalogue limits, future timestamps, bounded batches and the
producer's durability check: the pure decisions behind issue 24's ingest part."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer

from services.ingest.auth import (
    ADMIN,
    CATALOG,
    DEV_ADMIN_KEY,
    DEV_WRITE_KEY,
    WRITE,
    KeyRing,
    MissingKeys,
    WriteKeys,
)
from services.ingest.errors import PayloadTooLarge
from services.ingest.producer import DURABLE_OPTIONS, durability_problems
from services.ingest.scopes import SCOPE, check_catalogue_item, required_scope
from services.ingest.settings import IngestSettings
from services.ingest.validation import Rejection, clamp_future, enrich
from shared.settings import ModeSettings
from shared.topics import min_insync_replicas
from tests.unit.ingest.test_core import make


def settings(dev: bool, **keys: str) -> IngestSettings:
    return IngestSettings(mode=ModeSettings(dev_mode=dev), **keys)  # type: ignore[arg-type]


# -- keys and scopes ---------------------------------------------------------------------------
def test_each_key_kind_has_its_scopes() -> None:
    ring = KeyRing(
        WriteKeys.entry("web", "w"),
        WriteKeys.entry("backend", "c"),
        ",".join([WriteKeys.entry("ops", "a"), WriteKeys.entry("web2", "both")]),
    )
    assert ring.credential_for("w").scopes == {WRITE}  # type: ignore[union-attr]
    assert ring.credential_for("c").scopes == {WRITE, CATALOG}  # type: ignore[union-attr]
    admin = ring.credential_for("a")
    assert admin is not None and admin.scopes == {ADMIN} and not admin.allows(WRITE)
    assert ring.credential_for("nope") is None and ring.credential_for(None) is None
    both = KeyRing(WriteKeys.entry("s", "k"), "", WriteKeys.entry("s", "k")).credential_for("k")
    assert both is not None and both.scopes == {WRITE, ADMIN}


def test_no_default_key_outside_development() -> None:
    assert IngestSettings().write_keys == ""
    with pytest.raises(MissingKeys, match="LUMEN_INGEST_WRITE_KEYS"):
        KeyRing.from_settings(settings(dev=False))
    with pytest.raises(MissingKeys):  # admin keys alone accept no event
        KeyRing.from_settings(settings(dev=False, admin_keys=WriteKeys.entry("ops", "a")))
    configured = KeyRing.from_settings(settings(dev=False, write_keys=WriteKeys.entry("w", "k")))
    assert configured.credential_for(DEV_WRITE_KEY) is None
    assert configured.credential_for(DEV_ADMIN_KEY) is None


def test_development_keys_only_in_development_mode_and_only_for_unset_kinds() -> None:
    dev = KeyRing.from_settings(settings(dev=True))
    write = dev.credential_for(DEV_WRITE_KEY)
    admin = dev.credential_for(DEV_ADMIN_KEY)
    assert write is not None and write.source == "dev" and write.scopes == {WRITE, CATALOG}
    assert admin is not None and admin.scopes == {ADMIN}
    own = KeyRing.from_settings(settings(dev=True, write_keys=WriteKeys.entry("web", "k")))
    assert own.credential_for(DEV_WRITE_KEY) is None, "configured write keys replace the dev key"
    assert own.credential_for(DEV_ADMIN_KEY) is not None


@pytest.mark.parametrize(
    ("event", "scope"),
    [
        ({"type": "track", "event": "Item Upserted"}, CATALOG),
        ({"type": "track", "event": "  item UPSERTED "}, CATALOG),
        ({"type": "track", "event": "Item Deleted"}, CATALOG),
        ({"type": "identify", "properties": {"item": {"id": "1"}}}, CATALOG),
        ({"type": "track", "event": "Item Viewed", "properties": {"itemId": "1"}}, WRITE),
        ({"type": "page", "name": "Item Upserted"}, WRITE),
    ],
)
def test_catalogue_changes_need_the_catalogue_scope(event: dict, scope: str) -> None:
    assert required_scope(event) == scope


async def test_a_write_key_cannot_change_the_catalogue_even_inside_a_batch() -> None:
    ingestor, kafka = make()
    items = [
        {"type": "track", "userId": "u", "event": "Item Viewed", "properties": {"itemId": "1"}},
        {
            "type": "track",
            "userId": "x",
            "event": "Item Upserted",
            "properties": {"itemId": "1", "title": "Pinned"},
        },
    ]
    refused = await ingestor.ingest(items, None, "web", scopes=frozenset({WRITE}))
    assert refused.accepted == 1
    [(index, rejection)] = refused.errors
    assert (index, rejection.reason, rejection.field) == (1, SCOPE, "event")
    assert "Item Upserted" in rejection.describe() and "`catalog`" in rejection.describe()
    allowed = await ingestor.ingest(items, None, "backend", scopes=frozenset({WRITE, CATALOG}))
    assert allowed.accepted == 2 and not allowed.errors
    assert [e["event"] for e in kafka.raw()].count("Item Upserted") == 1


# -- catalogue limits -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"title": "t" * 501}, "properties.title"),
        ({"title": 5}, "properties.title"),
        ({"description": "d" * 5001}, "properties.description"),
        ({"categories": [f"c{i}" for i in range(21)]}, "properties.categories"),
        ({"categories": ["c" * 101]}, "properties.categories"),
        ({"categories": "Crime"}, "properties.categories"),
        ({"attributes": {f"k{i}": i for i in range(51)}}, "properties.attributes"),
        ({"attributes": {"k": "v" * 5000}}, "properties.attributes"),
    ],
)
def test_catalogue_fields_beyond_their_limits_are_named(item: dict, field: str) -> None:
    with pytest.raises(Rejection) as refused:
        check_catalogue_item({"properties": {"itemId": "1", **item}})
    assert refused.value.field == field
    nested = {"properties": {"item": {"id": "1", **item}}}
    with pytest.raises(Rejection) as refused_nested:
        check_catalogue_item(nested)
    assert refused_nested.value.field == field.replace("properties.", "properties.item.")


def test_catalogue_entries_within_limits_pass() -> None:
    check_catalogue_item(
        {
            "properties": {
                "itemId": "1",
                "title": "t" * 500,
                "description": "d" * 5000,
                "categories": ["c" * 100] * 20,
                "attributes": {f"k{i}": i for i in range(50)},
            }
        }
    )


# -- timestamps -------------------------------------------------------------------------------
def test_future_timestamps_are_clamped_to_received_at() -> None:
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    skew = timedelta(seconds=300)
    future = enrich({"timestamp": "2090-01-01T00:00:00Z"}, "web", now)
    assert clamp_future(future, now, skew) == "future_timestamp"
    assert future["timestamp"] == future["receivedAt"] == "2026-12-03T09:00:00.000Z"
    assert future["originalTimestamp"] == "2090-01-01T00:00:00Z"
    near = enrich({"timestamp": "2026-12-03T09:04:00Z"}, "web", now)
    assert clamp_future(near, now, skew) is None and near["timestamp"] == "2026-12-03T09:04:00.000Z"
    # A client whose clock runs a year ahead: sentAt corrects it, so nothing is clamped.
    skewed = enrich(
        {"timestamp": "2027-12-03T08:59:00Z", "sentAt": "2027-12-03T09:00:00Z"}, "web", now
    )
    assert clamp_future(skewed, now, skew) is None
    assert skewed["timestamp"] == "2026-12-03T08:59:00.000Z"


async def test_ingest_clamps_and_counts_future_events() -> None:
    ingestor, kafka = make()
    await ingestor.ingest(
        [{"userId": "u", "event": "Item Viewed", "timestamp": "2090-01-01T00:00:00Z"}],
        "track",
        "web",
    )
    [event] = kafka.raw()
    assert event["timestamp"] == event["receivedAt"]
    assert event["originalTimestamp"] == "2090-01-01T00:00:00Z"


# -- bounded batches --------------------------------------------------------------------------
async def test_batches_are_bounded_in_count_dlq_records_and_errors() -> None:
    ingestor, kafka = make(max_batch_items=50, max_reported_errors=5)
    with pytest.raises(PayloadTooLarge) as too_many:
        await ingestor.ingest([{"type": "track"}] * 51, None, "web")
    assert too_many.value.http_status == 413 and too_many.value.field == "batch"
    result = await ingestor.ingest([{"type": "track"}] * 50, None, "web")
    await ingestor.drain()
    assert (result.rejected, len(result.errors), result.unreported) == (50, 5, 45)
    assert len(kafka.topics["events.dlq"]) == 5


async def test_rejected_events_are_scrubbed_before_the_dlq() -> None:
    ingestor, kafka = make(
        privacy_ip="drop", privacy_trait_keys="email", privacy_trait_policy="hash"
    )
    bad = {
        "type": "identify",
        "userId": ["x"],
        "context": {"ip": "203.0.113.7"},
        "traits": {"email": "ann@example.com"},
    }
    await ingestor.ingest([bad], None, "web")
    await ingestor.drain()
    [(_, record)] = kafka.topics["events.dlq"]
    assert "ip" not in record["payload"]["context"]
    assert record["payload"]["traits"]["email"].startswith("hmac-sha256:")
    assert bad["context"] == {"ip": "203.0.113.7"}, "the request's object is not edited"


# -- durability -------------------------------------------------------------------------------
async def test_the_producer_durability_check_reads_the_built_client() -> None:
    durable = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **DURABLE_OPTIONS)
    weak = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", acks=1)
    assert durability_problems(durable) == []
    assert durability_problems(weak) == ["acks is 1, not all (-1)", "idempotence is off"]


def test_min_insync_replicas_is_two_where_possible() -> None:
    assert [min_insync_replicas(b, rf) for b, rf in ((1, 1), (3, 1), (3, 3), (5, 3), (2, 2))] == [
        1,
        1,
        2,
        2,
        2,
    ]
