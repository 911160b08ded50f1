"""The champion/challenger gate's decisions."""

from __future__ import annotations

import pytest

from models.recommender.gate import MARGIN_ENV, decide, margin_from_env


def m(ndcg: float) -> dict[str, float]:
    return {"ndcg@10": ndcg, "hr@10": 2 * ndcg}


def test_without_a_served_version_the_challenger_is_published() -> None:
    verdict = decide(m(0.01), None)
    assert verdict.decision == "published"
    assert "no recommender version" in verdict.reason


def test_a_served_version_that_knows_none_of_the_items_cannot_hold_the_challenger_back() -> None:
    verdict = decide(m(0.01), m(0.0), champion_known_items=0)
    assert verdict.decision == "published"
    assert "knows none" in verdict.reason


def test_not_worse_is_published_worse_is_refused() -> None:
    assert decide(m(0.30), m(0.30)).decision == "published"
    assert decide(m(0.31), m(0.30)).decision == "published"
    refused = decide(m(0.29), m(0.30))
    assert refused.decision == "refused"
    assert "0.2900" in refused.reason and "0.3000" in refused.reason


def test_the_margin_lets_a_slightly_worse_challenger_through() -> None:
    assert decide(m(0.28), m(0.30), margin=0.05).decision == "published"
    assert decide(m(0.24), m(0.30), margin=0.05).decision == "refused"


def test_force_publishes_a_refused_challenger_and_says_so() -> None:
    forced = decide(m(0.1), m(0.3), force=True)
    assert forced.decision == "forced"
    assert "by force" in forced.reason
    # Force changes nothing when the gate passes.
    assert decide(m(0.3), m(0.3), force=True).decision == "published"


def test_a_negative_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        decide(m(0.3), m(0.3), margin=-0.1)


def test_margin_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MARGIN_ENV, raising=False)
    assert margin_from_env() == 0.0
    monkeypatch.setenv(MARGIN_ENV, "0.02")
    assert margin_from_env() == 0.02
    for bad in ("lots", "-0.1", "2"):
        monkeypatch.setenv(MARGIN_ENV, bad)
        with pytest.raises(ValueError, match=MARGIN_ENV):
            margin_from_env()
