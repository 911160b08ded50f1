"""The ``lumen`` CLI as a subprocess against real ingest, profiles, inference, Kafka, mongod."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from lumen_cli.platform.paths import REPO_ROOT
from tests.support.stack import ServiceProcess, Stack, wait_for

SEED_USERS = 2  # MovieLens users 1 and 2: 272 + 62 ratings
Lumen = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def cli_env(stack: Stack, ingest: ServiceProcess, profiles: ServiceProcess,
            inference: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, str]:  # fmt: skip
    return {
        **os.environ,
        **stack.env(),
        "LUMEN_INGEST_URL": f"http://127.0.0.1:{ingest.ports['http']}",
        "LUMEN_INGEST_GRPC_TARGET": f"127.0.0.1:{ingest.ports['grpc']}",
        "LUMEN_INFERENCE_TARGET": f"127.0.0.1:{inference.ports['grpc']}",
        # Own checkpoint; the MovieLens download is shared with the developer's cache.
        "LUMEN_VAR_DIR": str(tmp_path_factory.mktemp("cli-var")),
        "LUMEN_CACHE_DIR": os.environ.get("LUMEN_CACHE_DIR", str(REPO_ROOT / "var" / "cache")),
    }


@pytest.fixture(scope="module")
def lumen(cli_env: dict[str, str]) -> Lumen:
    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lumen_cli", *args], cwd=REPO_ROOT,
                              env=cli_env, capture_output=True, text=True, timeout=timeout)  # fmt: skip

    return run


def ok_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def ml_ratings(users: int) -> dict[str, int]:
    from models.sources import movielens_100k

    counts: dict[str, int] = {}
    lines = (movielens_100k() / "ml-100k.inter").read_text().splitlines()[1:]
    for line in lines:
        user = line.split("\t")[0]
        if int(user) <= users:
            counts[user] = counts.get(user, 0) + 1
    return counts


@pytest.fixture(scope="module")
def seeded(lumen: Lumen) -> dict[str, Any]:
    return ok_json(lumen("seed", "--users", str(SEED_USERS), "--support", "20", "--rate", "0",
                         "--json"))  # fmt: skip


def test_seed_replays_movielens_and_banking77(seeded: dict[str, Any]) -> None:
    phases = {p["phase"]: p for p in seeded["phases"]}
    assert set(phases) == {"catalogue", "ratings", "support"}
    assert phases["catalogue"]["total"] == 1682
    assert phases["ratings"]["total"] == sum(ml_ratings(SEED_USERS).values())
    assert phases["support"]["total"] == 20
    for phase in phases.values():
        assert phase["sent"] == phase["total"]
        assert phase["rejected"] == 0
        assert phase["accepted"] + phase["duplicates"] == phase["sent"]


def test_seed_again_resumes_and_sends_nothing(seeded: dict[str, Any], lumen: Lumen) -> None:
    again = ok_json(lumen("seed", "--users", str(SEED_USERS), "--support", "20", "--json"))
    assert [p["sent"] for p in again["phases"]] == [0, 0, 0]
    assert [p["skipped"] for p in again["phases"]] == [p["total"] for p in again["phases"]]
    human = lumen("seed", "--users", str(SEED_USERS), "--support", "20", "--no-progress")
    assert human.returncode == 0
    assert "already seeded" in human.stdout


def test_seed_restart_is_deduplicated_by_ingest(seeded: dict[str, Any], lumen: Lumen) -> None:
    again = ok_json(lumen("seed", "--only", "catalogue", "--restart", "--rate", "0", "--json"))
    (catalogue,) = again["phases"]
    assert catalogue["sent"] == 1682
    assert catalogue["duplicates"] == 1682 and catalogue["accepted"] == 0


def test_profile_of_a_seeded_movielens_user(seeded: dict[str, Any], lumen: Lumen) -> None:
    from lumen_cli.seed.datasets import rating_events
    from models.sources import movielens_100k

    mine = [e for e in rating_events(movielens_100k(), SEED_USERS) if e["userId"] == "1"]
    last_item = mine[-1]["properties"]["itemId"]

    def profile() -> dict[str, Any] | None:
        done = lumen("profile", "1", "--json")
        if done.returncode != 0:
            return None
        data = json.loads(done.stdout)
        # events.raw is shared by every test session and read from the start, so earlier
        # sessions' replays may count too: at least this session's ratings, newest last.
        rated = data["event_counts_by_name"].get("Item Rated", 0)
        return data if rated >= len(mine) and data["recent_items"][-1:] == [last_item] else None

    data = wait_for(profile, timeout=60, interval=1.0)
    assert isinstance(data, dict)
    assert data["user_id"] == "1"
    assert set(data["recent_items"]) <= {e["properties"]["itemId"] for e in mine}
    assert data["category_affinity"]  # categories came with the events
    human = lumen("profile", "1")
    assert human.returncode == 0 and "Item Rated" in human.stdout


def test_profile_of_an_unknown_user_exits_4(lumen: Lumen) -> None:
    done = lumen("profile", "nobody-here-9f3c")
    assert done.returncode == 4
    assert "nobody-here-9f3c" in done.stderr or "not found" in done.stderr.lower()


def test_trending_lists_the_replayed_movies(seeded: dict[str, Any], lumen: Lumen) -> None:
    def rows() -> list[dict[str, Any]]:
        return list(ok_json(lumen("trending", "-n", "5", "--json"))["trending"])

    top = wait_for(rows, timeout=60, interval=1.0)
    assert isinstance(top, list) and 1 <= len(top) <= 5
    assert all(r["views"] >= 1 for r in top)
    assert [r["views"] for r in top] == sorted((r["views"] for r in top), reverse=True)
    assert all(r["title"] for r in top), top  # titles from the replayed catalogue
    human = lumen("trending", "-n", "3")
    assert human.returncode == 0 and top[0]["title"] in human.stdout
    categories = ok_json(lumen("trending", "--categories", "--json"))["trending"]
    assert categories and all(r["views"] >= 1 for r in categories)


def test_tail_pretty_prints_a_topic(seeded: dict[str, Any], lumen: Lumen) -> None:
    # The topic is shared with other tests: read it all and look for this seed's messages.
    done = lumen("tail", "support.messages", "--from-beginning", "--idle-timeout", "3", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(r["topic"] == "support.messages" for r in rows)
    seeded_rows = [r for r in rows if str(r["key"]).startswith("banking77-")]
    assert len(seeded_rows) >= 20
    assert all(r["value"]["text"] and r["value"]["conversationId"] == r["key"] for r in seeded_rows)
    pretty = lumen("tail", "support.messages", "--last", "1", "--max", "1", "--idle-timeout", "10")
    assert pretty.returncode == 0
    assert pretty.stdout.startswith("── support.messages[")
    assert len(pretty.stdout.splitlines()) >= 2  # header, then the indented value


def test_tail_of_an_unknown_topic_exits_2(lumen: Lumen) -> None:
    done = lumen("tail", "no.such.topic", "--idle-timeout", "1")
    assert done.returncode == 2
    assert "events.raw" in done.stderr
