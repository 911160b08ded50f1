"""MovieLens 100k ratings replayed through the ingest HTTP API into profiles.

The worker is our own, on the shared ``events.raw`` but starting at its end (a new consumer
group with ``auto_offset_reset=latest``) and writing to a database of its own, so that events
other tests left in the topic neither slow it down nor count.

CI replays a deterministic subset (every user whose id is 1 mod 16: complete histories of 59
users); ``bench/profiles_bench.py`` replays all 100,000 ratings (``--events``).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import httpx
from pymongo.database import Database

from shared.packed_ids import unpack
from shared.topics import EVENTS_RAW
from tests.support.movielens_events import interactions, movielens_folder, rating_events
from tests.support.profiles_worker import metric, mongo, start_worker, unique
from tests.support.stack import ServiceProcess, Stack, wait_for

WRITE_KEY = "lumen-dev-key"
CHUNK = 500


def test_movielens_subset_through_ingest_gives_one_profile_per_user_with_matching_counts(
    stack: Stack, ingest: ServiceProcess
) -> None:
    db = mongo(stack, unique("lumen_profiles_ml"))
    worker = start_worker(stack, EVENTS_RAW.name, db.name, auto_offset_reset="latest")
    try:
        wait_for(lambda: metric(worker, "lumen_profiles_assigned_partitions") > 0, timeout=60)
        time.sleep(3)  # the new group's starting position ("latest") is fixed on its first fetch
        replay_and_check(stack, ingest, db)
    finally:
        worker.stop()


def replay_and_check(stack: Stack, ingest: ServiceProcess, db: Database) -> None:
    folder = movielens_folder()
    users = sorted({u for u, *_ in interactions(folder) if int(u) % 16 == 1}, key=int)
    prefix = unique("ml")
    events = rating_events(folder, prefix, users)
    url = f"http://127.0.0.1:{ingest.ports['http']}/v1/batch"
    with httpx.Client(auth=(WRITE_KEY, ""), timeout=30) as client:
        for start in range(0, len(events), CHUNK):
            response = client.post(url, json={"batch": events[start : start + CHUNK]})
            assert response.status_code == 200, response.text

    expected = Counter(f"{prefix}-{u}" for u, *_ in interactions(folder) if u in set(users))
    history: dict[str, list[str]] = defaultdict(list)
    for event in events:
        history[event["userId"]].append(event["properties"]["itemId"])
    query = {"_id": {"$regex": f"^{prefix}-"}}

    def all_applied() -> bool:
        counted = sum(d["version"] for d in db.profiles.find(query, {"version": 1}))
        return counted == len(events)

    wait_for(all_applied, timeout=180, interval=0.5)
    docs = {d["_id"]: d for d in db.profiles.find(query)}
    assert docs.keys() == expected.keys()  # one profile per user
    for user, count in expected.items():
        doc = docs[user]
        assert doc["counts"]["byName"] == {"Item Rated": count}, user
        assert doc["counts"]["byType"] == {"track": count}, user
        assert unpack(doc["recentItems"]) == history[user][-50:], user
        assert sorted(unpack(doc["purchasedItems"])) == sorted(set(history[user])), user
        assert doc["affinity"], user
