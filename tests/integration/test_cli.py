"""The ``lumen`` CLI as a subprocess against real ingest, profiles, inference, Kafka, mongod.

Inference serves the small default models (built once per test run, see
tests/support/model_registry.py), so recommend, classify and search answer as they do for a
newcomer after `make up`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lumen_cli.platform.paths import REPO_ROOT
from tests.support.stack import ServiceProcess, Stack, free_port, wait_for

SEED_USERS = 2  # MovieLens users 1 and 2: 272 + 62 ratings
Lumen = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def cli_env(
    stack: Stack,
    ingest: ServiceProcess,
    profiles: ServiceProcess,
    inference_real: ServiceProcess,
    models_registry: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    return {
        **os.environ,
        **stack.env(),
        "LUMEN_INGEST_URL": f"http://127.0.0.1:{ingest.ports['http']}",
        "LUMEN_INGEST_GRPC_TARGET": f"127.0.0.1:{ingest.ports['grpc']}",
        "LUMEN_INFERENCE_TARGET": f"127.0.0.1:{inference_real.ports['grpc']}",
        # Own checkpoint; the MovieLens download is shared with the developer's cache.
        "LUMEN_VAR_DIR": str(tmp_path_factory.mktemp("cli-var")),
        "LUMEN_CACHE_DIR": os.environ.get("LUMEN_CACHE_DIR", str(REPO_ROOT / "var" / "cache")),
        # The text encoder `lumen seed` embeds the demo knowledge base with.
        "LUMEN_MODEL_REPOSITORY": str(models_registry),
    }


@pytest.fixture(scope="module")
def lumen(cli_env: dict[str, str]) -> Lumen:
    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lumen_cli", *args],
            cwd=REPO_ROOT,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

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
    return ok_json(
        lumen("seed", "--users", str(SEED_USERS), "--support", "20", "--rate", "0", "--json")
    )


def test_seed_replays_movielens_and_banking77(seeded: dict[str, Any]) -> None:
    phases = {p["phase"]: p for p in seeded["phases"]}
    assert set(phases) == {"catalogue", "ratings", "kb", "support"}
    assert phases["catalogue"]["total"] == 1682
    assert phases["kb"]["total"] == len(list((REPO_ROOT / "data" / "kb" / "bank").glob("*.md")))
    assert phases["ratings"]["total"] == sum(ml_ratings(SEED_USERS).values())
    assert phases["support"]["total"] == 20
    for phase in phases.values():
        assert phase["sent"] == phase["total"]
        assert phase["rejected"] == 0
        assert phase["accepted"] + phase["duplicates"] == phase["sent"]


def test_seed_again_resumes_and_sends_nothing(seeded: dict[str, Any], lumen: Lumen) -> None:
    again = ok_json(lumen("seed", "--users", str(SEED_USERS), "--support", "20", "--json"))
    assert [p["sent"] for p in again["phases"]] == [0, 0, 0, 0]
    assert [p["skipped"] for p in again["phases"]] == [p["total"] for p in again["phases"]]
    human = lumen("seed", "--users", str(SEED_USERS), "--support", "20", "--no-progress")
    assert human.returncode == 0
    assert "already seeded" in human.stdout


def test_seed_restart_is_deduplicated_by_ingest(seeded: dict[str, Any], lumen: Lumen) -> None:
    again = ok_json(lumen("seed", "--only", "catalogue", "--restart", "--rate", "0", "--json"))
    (catalogue,) = again["phases"]
    assert catalogue["sent"] == 1682
    assert catalogue["duplicates"] == 1682 and catalogue["accepted"] == 0


def user_ratings(user: str) -> list[dict[str, Any]]:
    """The ``Item Rated`` events `lumen seed` sends for MovieLens ``user``, oldest first."""
    from lumen_cli.seed.datasets import rating_events
    from models.sources import movielens_100k

    return [e for e in rating_events(movielens_100k(), SEED_USERS) if e["userId"] == user]


def wait_for_profile(lumen: Lumen, user: str) -> dict[str, Any]:
    """``lumen profile USER --json`` once every seeded rating of USER is in the profile."""
    mine = user_ratings(user)
    last_item = mine[-1]["properties"]["itemId"]

    def profile() -> dict[str, Any] | None:
        done = lumen("profile", user, "--json")
        if done.returncode != 0:
            return None
        data = json.loads(done.stdout)
        # events.raw is shared by every test session and read from the start, so earlier
        # sessions' replays may count too: at least this session's ratings, newest last.
        rated = data["event_counts_by_name"].get("Item Rated", 0)
        return data if rated >= len(mine) and data["recent_items"][-1:] == [last_item] else None

    data = wait_for(profile, timeout=60, interval=1.0)
    assert isinstance(data, dict)
    return data


def test_profile_of_a_seeded_movielens_user(seeded: dict[str, Any], lumen: Lumen) -> None:
    mine = user_ratings("1")
    data = wait_for_profile(lumen, "1")
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
    # Other tests' products trend in the same database; the replayed movies have their titles.
    movies = [r for r in top if r["key"].isdigit()]
    assert movies and all(r["title"] for r in movies), top
    human = lumen("trending", "-n", "5")
    assert human.returncode == 0 and movies[0]["title"] in human.stdout
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


def watched_titles(registry: Path, user: str) -> set[str]:
    """Titles of USER's rated movies, as the catalogue events and the model's index name them
    (the server names a reason by the catalogue title once it has read the catalogue)."""
    from lumen_cli.seed.datasets import catalogue_events
    from models.runtime import ItemIndex
    from models.sources import movielens_100k
    from shared.model_registry import get_version

    rated = {e["properties"]["itemId"] for e in user_ratings(user)}
    titles = {
        e["properties"]["item"]["title"]
        for e in catalogue_events(movielens_100k())
        if e["properties"]["item"]["id"] in rated
    }
    index = ItemIndex.load(get_version("recommender", root=registry).file("items.json"))
    if index.titles is not None:
        titles |= {index.titles[row] for row in index.rows(sorted(rated))}
    return titles


def wait_for_catalogue(ask: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``ask()``'s answer once every item in it has categories: inference re-reads the seeded
    catalogue (titles with years, genres) from MongoDB every 0.5 s here."""

    def answer() -> dict[str, Any] | None:
        result = ask()
        rows = result.get("items") or result.get("hits") or []
        return result if rows and all(row["categories"] for row in rows) else None

    result = wait_for(answer, timeout=60, interval=1.0)
    assert isinstance(result, dict)
    return result


def test_recommend_for_a_seeded_movielens_user_is_personalised(
    seeded: dict[str, Any], lumen: Lumen, models_registry: Path
) -> None:
    wait_for_profile(lumen, "1")
    result = wait_for_catalogue(lambda: ok_json(lumen("recommend", "1", "-k", "5", "--json")))
    assert result["source"] == "personalised", result
    assert result["model"] == {"name": "recommender", "version": "1"}
    items = result["items"]
    assert 1 <= len(items) <= 5
    rated = {e["properties"]["itemId"] for e in user_ratings("1")}
    assert not rated & {i["item_id"] for i in items}  # already watched: left out by default
    watched = watched_titles(models_registry, "1")
    for item in items:
        assert item["title"] and item["categories"], item
        reason = item["reason"]
        assert reason.startswith("because you viewed "), item
        assert reason.removeprefix("because you viewed ") in watched, item
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)

    human = lumen("recommend", "1", "-k", "5")
    assert human.returncode == 0, human.stderr
    assert "Recommendations for 1 (personalised, recommender v1)" in human.stdout
    assert items[0]["title"] in human.stdout and "because you viewed" in human.stdout


def test_recommend_for_a_new_visitor_falls_back_to_trending(
    seeded: dict[str, Any], lumen: Lumen
) -> None:
    result = ok_json(lumen("recommend", f"new-visitor-{uuid.uuid4().hex[:8]}", "--json"))
    assert result["source"] == "trending"
    # Other tests' products trend in the same database; the replayed movies have their titles.
    movies = [item for item in result["items"] if item["item_id"].isdigit()]
    assert movies and all(item["title"] for item in movies), result["items"]


def test_recommend_with_a_bad_k_exits_2(lumen: Lumen) -> None:
    done = lumen("recommend", "1", "-k", "1000", "--json")
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"] == "INVALID_ARGUMENT"
    assert "k must be between" in done.stderr


def test_classify_a_support_message(lumen: Lumen) -> None:
    text = "I still have not received my card"
    result = ok_json(lumen("classify", text, "--top", "5", "--json"))
    assert result["model"] == {"name": "intent-classifier", "version": "1"}
    (prediction,) = result["predictions"]
    assert prediction["text"] == text
    assert prediction["intent"] and 0.0 < prediction["confidence"] <= 1.0
    ranked = [a["intent"] for a in prediction["alternatives"]]
    assert len(ranked) == 5
    # The CI-sized model ranks the right intent among its top five (tests/unit/models).
    assert "card_arrival" in ranked, prediction

    human = lumen("classify", text, "what is the capital of France")
    assert human.returncode == 0, human.stderr
    assert human.stdout.count("  intent: ") == 2
    assert "confidence" in human.stdout and "(intent-classifier v1)" in human.stdout


def test_search_the_catalogue_by_meaning(seeded: dict[str, Any], lumen: Lumen) -> None:
    result = wait_for_catalogue(lambda: ok_json(lumen("search", "space adventure", "--json")))
    assert result["model"] == {"name": "item-search", "version": "1"}
    hits = result["hits"]
    assert len(hits) == 10
    assert all(h["title"] and h["item_id"] for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    genres = {g for h in hits for g in h["categories"]}
    assert genres & {"Sci-Fi", "Adventure"}, hits

    human = lumen("search", "space adventure", "-k", "3")
    assert human.returncode == 0, human.stderr
    assert "Results for 'space adventure' (item-search v1)" in human.stdout
    assert hits[0]["title"] in human.stdout


def test_status_shows_the_loaded_model_versions(cli_env: dict[str, str], lumen: Lumen) -> None:
    inference = cli_env["LUMEN_INFERENCE_TARGET"].rsplit(":", 1)[1]
    # Only inference is looked for where it runs; the exporter and Prometheus are not started
    # by these tests, so status also reports a component down (exit 3).
    env = {
        **cli_env,
        "LUMEN_INFERENCE_GRPC_PORT": inference,
        "LUMEN_EXPORTER_PORT": str(free_port()),
        "LUMEN_LOCAL_PROMETHEUS_PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "-m", "lumen_cli", "status", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["inference"]["healthy"] is True
    assert rows["inference"]["models"] == {
        "recommender": "1",
        "intent-classifier": "1",
        "text-encoder": "1",
        "item-search": "1",
    }
    assert not rows["exporter"]["healthy"] and "models" not in rows["exporter"]

    human = subprocess.run(
        [sys.executable, "-m", "lumen_cli", "status"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert human.returncode == 3
    assert (
        "models: recommender v1, intent-classifier v1, text-encoder v1, item-search v1"
        in human.stdout
    )
