"""NoSQL-injection shapes: operator objects where an id belongs are refused (400 naming the
field); ``$``-prefixed and dotted keys inside free-form objects, and ids that look like
operators, are stored as plain data -- nothing reaches MongoDB as an operator or a path."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pymongo.database import Database

from shared.topics import EVENTS_RAW
from tests.reliability.checks import caught_up
from tests.reliability.services import WRITE_KEY
from tests.support.private_platform import PrivatePlatform
from tests.support.profiles_worker import mongo, start_worker, unique
from tests.support.stack import ServiceProcess

OPERATORS: list[Any] = [
    {"$gt": ""},
    {"$ne": None},
    {"$regex": ".*"},
    {"$where": "sleep(1000)"},
    ["$gt", ""],
    {"$in": ["a"]},
]


def post(ingest: ServiceProcess, route: str, body: Any) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{ingest.ports['http']}{route}",
        json=body,
        auth=(WRITE_KEY, ""),
        timeout=15,
    )


@pytest.mark.parametrize("field", ["userId", "anonymousId", "messageId", "previousId", "event"])
@pytest.mark.parametrize("operator", OPERATORS, ids=lambda o: str(o)[:20])
def test_operator_objects_as_ids_are_refused(
    ingest: ServiceProcess, field: str, operator: Any
) -> None:
    event = {"userId": "nosql-u", "event": "E", "previousId": "p"} | {field: operator}
    response = post(ingest, "/v1/alias" if field == "previousId" else "/v1/track", event)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    batch = post(ingest, "/v1/batch", {"batch": [event | {"type": "track"}]})
    assert batch.status_code == 400 and batch.json()["rejected"][0]["field"] == field


@pytest.fixture(scope="module")
def profiles_db(platform: PrivatePlatform) -> Iterator[Database]:
    stack = platform.stack()
    db = mongo(stack, unique("lumen_nosql"))
    worker = start_worker(stack, EVENTS_RAW.name, db.name)
    yield db
    worker.stop()


def test_operator_shaped_keys_and_ids_are_stored_as_data(
    platform: PrivatePlatform, ingest: ServiceProcess, profiles_db: Database
) -> None:
    tag = uuid.uuid4().hex[:6]
    users = [f"$where-{tag}", f"a.b.{tag}", f"$gt-{tag}"]
    hostile = {
        "$set": {"admin": True},
        "$inc": {"version": 1000},
        "a.b": 1,
        "$": 2,
        "traits.admin": True,
        "plain": "kept",
    }
    batch = [{"type": "identify", "userId": u, "traits": hostile} for u in users]
    batch += [
        {
            "type": "track",
            "userId": u,
            "event": "$set.x",
            "properties": hostile | {"itemId": f"$item.{tag}", "categories": ["$cat", "a.b"]},
        }
        for u in users
    ]
    response = post(ingest, "/v1/batch", {"batch": batch})
    assert response.status_code == 200 and "rejected" not in response.json(), response.text
    caught_up(platform.stack(), profiles_db, timeout=180)

    for user in users:
        doc = profiles_db.profiles.find_one({"_id": user})
        assert doc is not None, user
        assert doc["version"] == 2  # not 1000 more: "$inc" was a trait name, not an operator
        assert "admin" not in doc and "admin" not in doc["traits"]
        assert doc["traits"]["plain"] == "kept"
        assert all("." not in k and not k.startswith("$") for k in _all_keys(doc)), doc
    # Nothing else was touched: exactly these profiles carry the tag.
    assert profiles_db.profiles.count_documents({"_id": {"$regex": tag}}) == len(users)


def _all_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _all_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _all_keys(inner)
