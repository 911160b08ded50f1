"""Profile indexes on a real mongod: what start-up creates and how lookups use them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymongo.database import Database

from services.profiles.store import ensure_schema
from shared.mongo import PROFILES, ensure_indexes
from tests.support.profiles_worker import mongo, unique
from tests.support.stack import Stack


@pytest.fixture
def db(stack: Stack) -> Iterator[Database[Any]]:
    database = mongo(stack, unique("indexes"))
    try:
        yield database
    finally:
        database.client.drop_database(database.name)
        database.client.close()


def winning_stage(db: Database[Any], query: dict[str, Any]) -> str:
    plan = db.command("explain", {"find": PROFILES, "filter": query})["queryPlanner"]
    stage = plan["winningPlan"]
    while "inputStage" in stage:
        stage = stage["inputStage"]
    return str(stage["stage"])


def test_start_up_creates_the_indexes_and_anonymous_lookups_use_the_sparse_one(
    db: Database[Any],
) -> None:
    db[PROFILES].insert_many(
        [
            {"_id": "u1", "userId": "u1", "anonymousIds": ["a1", "a2"]},
            *({"_id": f"u{n}", "userId": f"u{n}"} for n in range(2, 200)),
        ]
    )

    ensure_indexes(db)
    ensure_indexes(db)  # idempotent, as every worker runs it at start-up

    indexes = db[PROFILES].index_information()
    assert set(indexes) == {"_id_", "anonymousIds", "lastSeen"}
    assert indexes["anonymousIds"].get("sparse") is True
    assert winning_stage(db, {"anonymousIds": "a2"}) == "IXSCAN"
    assert [d["_id"] for d in db[PROFILES].find({"anonymousIds": "a2"})] == ["u1"]
    found = db[PROFILES].find({"$or": [{"_id": "a1"}, {"anonymousIds": "a1"}]})
    assert [d["_id"] for d in found] == ["u1"]
    # Only the profile with anonymous ids has entries in the sparse index.
    stats = db.command("validate", PROFILES, full=True)
    assert stats["keysPerIndex"]["anonymousIds"] == 2


def test_a_new_profiles_collection_compresses_itself_and_its_indexes(db: Database[Any]) -> None:
    ensure_schema(db)
    stats = db.command("collStats", PROFILES, indexDetails=True)
    files = {"collection": stats["wiredTiger"], **stats["indexDetails"]}
    assert set(files) == {"collection", "_id_", "anonymousIds", "lastSeen"}
    for name, details in files.items():
        settings = details["creationString"]
        assert "block_compressor=zstd" in settings, name
        assert "allocation_size=1KB" in settings, name
