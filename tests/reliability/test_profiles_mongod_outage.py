"""The profile updater while mongod is down (private platform: mongod is killed and started).

* Not ready, still alive: ``/readyz`` answers 503 with the reason, ``/healthz`` stays 200 (a
  liveness probe must not restart-loop every replica into the same batch); it becomes ready and
  catches up when mongod returns.
* SIGTERM while mongod is down commits no Kafka offset of a batch that was never written, and
  the worker stops promptly instead of waiting for the batch until it is killed: a new worker of
  the same group applies every event exactly once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from shared.packed_ids import unpack
from tests.reliability.checks import caught_up
from tests.reliability.services import record
from tests.support.private_platform import PrivatePlatform
from tests.support.profiles_worker import (
    create_topic,
    iso,
    metric,
    mongo,
    produce,
    start_worker,
    unique,
)
from tests.support.stack import ServiceProcess, wait_for

USERS = 12


def probe(worker: ServiceProcess, path: str) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{worker.ports['web']}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def views(users: list[str], round_: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "track",
            "userId": user,
            "event": "Item Viewed",
            "messageId": unique("m"),
            "timestamp": iso(datetime.now(UTC)),
            "properties": {"itemId": f"r{round_}"},
        }
        for user in users
    ]


def exactly(db: Database, users: list[str], rounds: int) -> dict[str, Any]:
    """Users whose profile, or whose interaction store documents, do not hold each round's
    event exactly once."""
    wrong = {}
    stored: dict[str, list[str]] = {}
    for d in db.interactions.find({"u": {"$in": users}}).sort([("u", 1), ("t", 1), ("i", 1)]):
        stored.setdefault(d["u"], []).append(d["i"])
    expected = [f"r{n}" for n in range(rounds)]
    for user in users:
        doc = db.profiles.find_one({"_id": user}) or {}
        items = unpack(doc.get("recentItems"))
        if doc.get("version") != rounds or items != expected or stored.get(user) != expected:
            wrong[user] = (doc.get("version"), items, stored.get(user))
    return wrong


def test_mongod_outage_makes_the_updater_unready_not_dead_and_sigterm_loses_nothing(
    platform: PrivatePlatform, owned: list[ServiceProcess]
) -> None:
    stack = platform.stack()
    topic = create_topic(stack, partitions=3)
    db = mongo(stack, unique("lumen_profiles_outage"))
    app_id = unique("lumen-profiles-outage")
    users = [unique("u") for _ in range(USERS)]
    # Offsets committed often: a commit of the unwritten batch would happen before the SIGTERM.
    options = {"retry_max_seconds": 0.5, "commit_interval_seconds": 0.2}
    first = start_worker(stack, topic, db.name, app_id=app_id, **options)
    owned.append(first)
    produce(stack, topic, views(users, 0))
    caught_up(stack, db, topic, timeout=60)
    assert probe(first, "/readyz")[0] == 200

    # 1. An outage: not ready (with the reason), alive, and back once mongod returns.
    platform.kill_mongo()
    down_at = time.monotonic()
    produce(stack, topic, views(users, 1))
    wait_for(lambda: probe(first, "/readyz")[0] == 503, timeout=60)
    status, body = probe(first, "/readyz")
    assert status == 503 and "mongo" in (body["reason"] or ""), body
    # Past the five failed writes after which /healthz used to answer 503.
    wait_for(lambda: metric(first, "lumen_profiles_errors_total") >= 8, timeout=60)
    assert probe(first, "/healthz")[0] == 200
    platform.start_mongo()
    wait_for(lambda: probe(first, "/readyz")[0] == 200, timeout=90)
    ready_again_after = time.monotonic() - down_at
    caught_up(stack, db, topic, timeout=60)
    assert exactly(db, users, 2) == {}

    # 2. SIGTERM while mongod is down, with a batch fetched and never written, and more events
    # fetched behind it.
    platform.kill_mongo()
    half = USERS // 2
    produce(stack, topic, views(users[:half], 2))
    failures = metric(first, "lumen_profiles_errors_total")
    wait_for(lambda: metric(first, "lumen_profiles_errors_total") >= failures + 2, timeout=60)
    produce(stack, topic, views(users[half:], 2))
    time.sleep(1)  # several offset-commit intervals while the batch is held
    stopping = time.monotonic()
    first.proc.send_signal(signal.SIGTERM)
    try:
        exit_code: int | None = first.proc.wait(60)
    except subprocess.TimeoutExpired:
        exit_code = None
        first.kill()
    stop_seconds = time.monotonic() - stopping
    platform.start_mongo()
    second = start_worker(stack, topic, db.name, app_id=app_id, **options)
    owned.append(second)
    caught_up(stack, db, topic, timeout=90)
    time.sleep(1)  # anything applied twice would land by now
    record(
        "fault_profiles_mongod_outage",
        {
            "users": USERS,
            "ready_again_after_outage_seconds": round(ready_again_after, 1),
            "sigterm_exit_code": exit_code,
            "sigterm_stop_seconds": round(stop_seconds, 1),
        },
    )
    assert exactly(db, users, 3) == {}
    # It stopped by itself, well within Kubernetes' default 30 s grace period.
    assert exit_code == 0 and stop_seconds < 20, (exit_code, stop_seconds)
