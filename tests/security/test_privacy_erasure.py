"""Personal data on what lands in Kafka and MongoDB: configured traits and the IP address are
hashed or dropped before anything is written, and an erasure leaves no trace of the user in
MongoDB."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator
from typing import Any

import bson
import httpx
import pytest
from pymongo.database import Database

from shared.topics import EVENTS_RAW
from tests.reliability.checks import caught_up
from tests.reliability.services import ADMIN_KEY, WRITE_KEY, record, start_ingest, wait_ready
from tests.support.private_platform import PrivatePlatform
from tests.support.profiles_worker import mongo, read_topic, start_worker, unique
from tests.support.stack import ServiceProcess

SALT = "privacy-test-salt"
EMAIL, PHONE, IP = "ada@example.org", "+44 20 7946 0000", "203.0.113.77"


def hashed(value: str) -> str:
    return "hmac-sha256:" + hmac.new(SALT.encode(), value.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def hashing(platform: PrivatePlatform) -> Iterator[ServiceProcess]:
    service = start_ingest(
        platform,
        "ingest-privacy-hash",
        privacy_ip="hash",
        privacy_trait_keys="email,phone",
        privacy_trait_policy="hash",
        privacy_hash_salt=SALT,
    )
    wait_ready(service)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def dropping(platform: PrivatePlatform) -> Iterator[ServiceProcess]:
    service = start_ingest(
        platform,
        "ingest-privacy-drop",
        privacy_ip="drop",
        privacy_trait_keys="email,phone",
        privacy_trait_policy="drop",
    )
    wait_ready(service)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def profiles_db(platform: PrivatePlatform) -> Iterator[Database]:
    stack = platform.stack()
    db = mongo(stack, unique("lumen_privacy"))
    worker = start_worker(stack, EVENTS_RAW.name, db.name)
    yield db
    worker.stop()


def send_personal_events(service: ServiceProcess, user: str, anonymous: str) -> None:
    base = f"http://127.0.0.1:{service.ports['http']}"
    context = {"ip": IP, "traits": {"email": EMAIL}}
    batch = [
        {
            "type": "identify",
            "userId": user,
            "anonymousId": anonymous,
            "context": context,
            "traits": {"email": EMAIL, "phone": PHONE, "plan": "pro"},
        },
        {
            "type": "track",
            "userId": user,
            "event": "Item Viewed",
            "context": context,
            "properties": {"itemId": f"{user}-item", "categories": ["Drama"]},
        },
    ]
    response = httpx.post(f"{base}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""))
    assert response.status_code == 200 and "rejected" not in response.json(), response.text


def documents_mentioning(db: Database, *needles: str) -> list[tuple[str, Any]]:
    """(collection, _id) of every document whose BSON holds any of ``needles``."""
    found = []
    for name in db.list_collection_names():
        for doc in db[name].find():
            raw = bson.encode(doc)
            if any(n.encode() in raw for n in needles):
                found.append((name, doc["_id"]))
    return found


def raw_records(platform: PrivatePlatform, user: str) -> list[bytes]:
    return [v for _, v in read_topic(platform.stack(), EVENTS_RAW.name) if v and user.encode() in v]


@pytest.mark.parametrize("policy", ["hash", "drop"])
def test_personal_data_is_scrubbed_in_kafka_and_mongodb(
    platform: PrivatePlatform,
    hashing: ServiceProcess,
    dropping: ServiceProcess,
    profiles_db: Database,
    policy: str,
) -> None:
    user, anonymous = f"pii-{policy}-{uuid.uuid4().hex[:6]}", f"anon-{uuid.uuid4().hex[:6]}"
    send_personal_events(hashing if policy == "hash" else dropping, user, anonymous)
    records = raw_records(platform, user)
    assert len(records) == 2
    for value in records:
        for secret in (EMAIL, PHONE, IP):
            assert secret.encode() not in value, (secret, value)
    joined = b"".join(records)
    if policy == "hash":
        for secret in (EMAIL, PHONE, IP):
            assert hashed(secret).encode() in joined
    else:
        assert b"hmac-sha256" not in joined and b'"email"' not in joined and b'"ip"' not in joined
    assert b'"plan":"pro"' in joined  # traits not listed are kept

    caught_up(platform.stack(), profiles_db)
    profile = profiles_db.profiles.find_one({"_id": user})
    assert profile is not None and profile["traits"]["plan"] == "pro"
    assert documents_mentioning(profiles_db, EMAIL, PHONE, IP) == []


def test_erasure_leaves_no_trace_of_the_user_in_mongodb(
    platform: PrivatePlatform, hashing: ServiceProcess, profiles_db: Database
) -> None:
    user, anonymous = f"erase-{uuid.uuid4().hex[:6]}", f"anon-{uuid.uuid4().hex[:6]}"
    send_personal_events(hashing, user, anonymous)
    # An anonymous visit before the identify, linked to the user by it.
    base = f"http://127.0.0.1:{hashing.ports['http']}"
    early = httpx.post(
        f"{base}/v1/track",
        auth=(WRITE_KEY, ""),
        json={
            "anonymousId": anonymous,
            "event": "Item Viewed",
            "properties": {"itemId": f"{user}-other", "categories": ["Comedy"]},
        },
    )
    assert early.status_code == 200
    stack = platform.stack()
    caught_up(stack, profiles_db)
    before = documents_mentioning(profiles_db, user, anonymous)
    assert {c for c, _ in before} >= {"profiles", "trend_contributions"}, before

    erased = httpx.delete(f"{base}/v1/users/{user}", auth=(ADMIN_KEY, ""))
    assert erased.status_code == 202
    caught_up(stack, profiles_db)
    after = documents_mentioning(profiles_db, user, anonymous)
    record(
        "security_erasure",
        {
            "documents_before": len(before),
            "documents_after": len(after),
            "collections_before": sorted({c for c, _ in before}),
        },
    )
    assert after == []
