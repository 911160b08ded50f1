"""Segment's E-commerce spec v2, sent by Segment's and RudderStack's own Python libraries
(unchanged; Segment's with gzip on and off), through the real ingest, ``events.raw``, the
profile updater and mongod: every call type and every E-commerce event arrive once (a retried
messageId is dropped by ingest), keyed by user; the profile's interactions, purchases, revenue
(an order in a converted currency, one in a currency without a rate, a refund, a cancellation),
traits and trends, and the exporter's funnel, orders, revenue and refunds, match what was sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient

from services.exporter.business import BusinessFigures
from services.exporter.business_consumer import BusinessConsumer
from shared.currency import Rates
from shared.packed_ids import unpack
from shared.settings import KafkaSettings
from shared.topics import EVENTS_RAW, SUPPORT_INTENTS
from shared.trends import TRENDS
from tests.integration.profiles_updater import start_profiles_updater
from tests.integration.test_ingest import TopicReader
from tests.integration.test_ingest_compression import LIBRARIES
from tests.support.stack import (
    ServiceProcess,
    Stack,
    start_group_at_end,
    wait_for,
)

RATES = '{"EUR": 2.0}'
# The EUR updater writes a database of its own: the session's updater (no rates) reads the same
# events and would otherwise apply them to the same profiles a second time.
DATABASE = f"lumen_ecommerce_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def profiles_eur(stack: Stack) -> Iterator[ServiceProcess]:
    """A profile updater converting EUR at 2.0 to USD (LUMEN_CURRENCY_RATES), into DATABASE."""
    env = {**stack.env(), "LUMEN_CURRENCY_RATES": RATES, "LUMEN_MONGO_DATABASE": DATABASE}
    service = start_profiles_updater(
        stack.kafka_bootstrap, env, "ecommerce", name="profiles-ecommerce"
    )
    yield service
    service.stop()
    admin: MongoClient[dict[str, Any]] = MongoClient(stack.mongo_uri)
    with admin:
        admin.drop_database(DATABASE)


@pytest.fixture
def figures(stack: Stack) -> Iterator[BusinessFigures]:
    """The exporter's business figures with the same rates, fed from the end of the topics."""
    group = f"test-ecommerce-{uuid.uuid4().hex[:8]}"
    for topic in (EVENTS_RAW.name, SUPPORT_INTENTS.name):
        start_group_at_end(stack.kafka_bootstrap, group, topic)
    business = BusinessFigures(60, 5, 50, Rates("USD", {"EUR": 2.0}))
    consumer = BusinessConsumer(
        KafkaSettings(bootstrap_servers=stack.kafka_bootstrap), group, business
    )
    consumer.start()
    yield business
    consumer.stop()


def ecommerce_calls(run: str) -> list[tuple[str, dict[str, Any]]]:
    """Every E-commerce v2 event (and two of Lumen's own names), as a shop would send them."""
    p1, p2, s3, p4, p5 = (f"{run}-{n}" for n in ("p1", "p2", "S3", "p4", "p5"))
    board, cards = f"Games-{run}/Board", f"Games-{run}/Cards"
    listed = [{"product_id": p1, "category": board}, {"product_id": p2}]
    in_cart = [{"product_id": p1, "price": 10.0, "quantity": 2}]
    yen = [{"sku": p5}]
    order = [
        {"product_id": p1, "sku": "SKU-1", "price": 10.0, "quantity": 2, "category": board},
        {"product_id": p2, "price": 30.0, "category": cards},
    ]
    return [
        ("Products Searched", {"query": "board games"}),
        ("Product List Viewed", {"list_id": "l1", "products": listed, "recommendationId": "r1"}),
        ("Product List Filtered", {"list_id": "l1", "filters": [{"type": "price"}]}),
        ("Product Clicked", {"product_id": p1, "recommendationId": "r1"}),
        ("Product Viewed", {"product_id": p1, "category": board, "price": 10.0}),
        ("Product Added", {"product_id": p1, "price": 10.0, "quantity": 2}),
        ("Product Removed", {"product_id": p1, "quantity": 1}),
        ("Product Added to Wishlist", {"product_id": p2, "wishlist_id": "w1"}),
        ("Product Shared", {"sku": s3, "share_via": "email"}),
        ("Cart Viewed", {"cart_id": "c1", "products": in_cart}),
        ("Checkout Started", {"order_id": "o1", "products": order, "currency": "EUR"}),
        ("Checkout Step Viewed", {"step": 2}),
        ("Checkout Step Completed", {"step": 2, "shipping_method": "post"}),
        ("Payment Info Entered", {"step": 3, "payment_method": "card"}),
        ("Coupon Applied", {"order_id": "o1", "coupon_id": "SPRING"}),
        (
            "Order Completed",
            {"order_id": "o1", "total": 50.0, "currency": "EUR", "products": order},
        ),
        ("Order Updated", {"order_id": "o1", "total": 48.0, "currency": "EUR", "products": order}),
        ("Order Refunded", {"order_id": "o1", "total": 12.0, "currency": "EUR"}),
        ("Product Reviewed", {"product_id": p1, "rating": 5, "review_body": "great"}),
        ("Item Purchased", {"itemId": p4, "price": 5.0, "quantity": 2}),  # Lumen's name, USD
        ("Order Completed", {"order_id": "o2", "total": 1000, "currency": "JPY", "products": yen}),
        ("Order Cancelled", {"order_id": "o3", "total": 3.0}),
    ]


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_the_libraries_ecommerce_events_reach_the_profile_and_the_business_figures(
    stack: Stack,
    ingest: ServiceProcess,
    profiles_eur: ServiceProcess,
    figures: BusinessFigures,
    library: str,
) -> None:
    run = uuid.uuid4().hex[:8]
    user, anon = f"shop-{library}-{run}", f"anon-{run}"
    calls = ecommerce_calls(run)
    base_url = f"http://127.0.0.1:{ingest.ports['http']}"
    reader = TopicReader(stack.kafka_bootstrap, (EVENTS_RAW.name,))
    failures: list[Any] = []
    client = LIBRARIES[library](base_url, lambda error, batch: failures.append(error))
    ids: list[str] = []

    def message_id() -> str:
        ids.append(f"{run}-{len(ids)}")
        return ids[-1]

    try:
        client.identify(user, {"plan": "pro", "email": "shop@example.com"}, message_id=message_id())
        client.page(user, "Shop", "Home", {"path": "/"}, message_id=message_id())
        client.screen(user, "App", "Cart", message_id=message_id())
        client.group(user, "acme", {"seats": 5}, message_id=message_id())
        client.alias(anon, user, message_id=message_id())
        for name, properties in calls:
            client.track(user, name, properties, message_id=message_id())
        # A retry of the first order under its messageId: ingest writes it once.
        first_order = next(n for n, (name, _) in enumerate(calls) if name == "Order Completed")
        client.track(user, *calls[first_order], message_id=ids[5 + first_order])
        client.flush()
    finally:
        client.shutdown()
    assert failures == []

    try:
        records = reader.wait(EVENTS_RAW.name, lambda e: e.get("userId") == user, len(ids))
    finally:
        reader.close()
    assert sorted(e["messageId"] for _, e in records) == sorted(ids)  # once each
    assert {key for key, _ in records} == {user.encode()}
    tracked = [e for _, e in records if e["type"] == "track"]
    assert [e["event"] for e in tracked] == [name for name, _ in calls]
    # The libraries' own fields arrive as they sent them.
    assert all(e["context"]["library"]["name"] for _, e in records)

    client_db: MongoClient[dict[str, Any]] = MongoClient(stack.mongo_uri, tz_aware=True)
    db = client_db[DATABASE]
    try:

        def applied() -> dict[str, Any] | None:
            doc = db.profiles.find_one({"_id": user})
            return doc if doc and doc.get("version") == len(ids) else None

        profile = wait_for(applied, timeout=90)
        assert isinstance(profile, dict), db.profiles.find_one({"_id": user})
        p1, p2, s3, p4, p5 = (f"{run}-{n}" for n in ("p1", "p2", "S3", "p4", "p5"))
        # One interaction per product, in order; searches, lists, removals, refunds: none.
        assert unpack(profile["recentItems"]) == [
            p1,  # Product Clicked
            p1,  # Product Viewed
            p1,  # Product Added
            p2,  # Product Added to Wishlist
            s3,  # Product Shared (sku)
            p1,  # Cart Viewed
            p1,  # Checkout Started
            p2,
            p1,  # Order Completed
            p2,
            p1,  # Product Reviewed
            p4,  # Item Purchased
            p5,  # Order Completed (JPY)
        ]
        assert sorted(unpack(profile["purchasedItems"])) == sorted([p1, p2, p4, p5])
        assert profile["purchases"] == 3  # orders, not products
        # 50 EUR x 2.0 - 12 EUR x 2.0 + 5 x 2 USD - 3 USD; the JPY order has no rate.
        assert profile["revenue"] == pytest.approx(100.0 - 24.0 + 10.0 - 3.0)
        assert profile["traits"]["plan"] == "pro"  # RudderStack: from context.traits
        assert profile["traits"]["email"] == "shop@example.com"
        assert profile["counts"]["byType"] == {
            "identify": 1,
            "page": 1,
            "screen": 1,
            "group": 1,
            "alias": 1,
            "track": len(calls),
        }
        assert profile["counts"]["byName"]["Order Completed"] == 2
        assert profile["counts"]["byName"]["Products Searched"] == 1
        games = f"Games-{run}"
        assert set(profile["affinity"]) == {games, f"{games}/Board", f"{games}/Cards"}

        def trend(kind: str, key: str) -> tuple[int, int]:
            docs = list(db[TRENDS].find({"window": "1h", "kind": kind, "key": key}))
            return sum(d["views"] for d in docs), sum(d["purchases"] for d in docs)

        # p1: clicked, viewed, in the viewed cart, reviewed; bought once.
        assert trend("item", p1) == (4, 1)
        assert trend("item", p2) == (0, 1)
        assert trend("category", games) == (1, 2)
        assert trend("category", f"{games}/Board") == (1, 1)
        assert trend("category", f"{games}/Cards") == (0, 1)
    finally:
        client_db.close()

    def business_read() -> bool:
        return figures.snapshot(0.0).events_by_type["track"] >= len(calls)

    assert wait_for(business_read, timeout=30)
    snapshot = figures.snapshot(0.0)
    assert snapshot.events_by_type["track"] == len(calls)
    assert snapshot.funnel == {"view": 1, "add_to_cart": 1, "checkout": 1, "purchase": 3}
    assert snapshot.orders == 3
    assert snapshot.revenue == {"USD": pytest.approx(110.0), "JPY": 1000.0}
    assert snapshot.refunds == {"USD": pytest.approx(27.0)}
    assert snapshot.net_revenue["USD"] == pytest.approx(83.0)
    assert snapshot.recommendations == {"impression": 1, "click": 1}


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_a_refused_batch_reaches_the_libraries_error_handler(
    ingest: ServiceProcess, library: str
) -> None:
    """A batch with no valid event is a 400 the libraries report and do not retry
    (docs/api/segment-compatibility.md)."""
    failures: list[Any] = []
    base_url = f"http://127.0.0.1:{ingest.ports['http']}"
    client = LIBRARIES[library](base_url, lambda error, batch: failures.append((error, batch)))
    try:
        client.track("u-refused", "Order Completed", {"total": 1}, context={"traits": "pro"})
        client.flush()
    finally:
        client.shutdown()
    [(error, batch)] = failures  # with the code and message the libraries read
    assert (error.status, error.code) == (400, "schema_violation")
    assert "context.traits" in error.message
    assert [event["event"] for event in batch] == ["Order Completed"]
