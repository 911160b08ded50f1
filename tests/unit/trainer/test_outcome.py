"""Reading the training command's outcome: decisions, failures, the quality figures kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.trainer.outcome import parse_outcome, read_outcome
from services.trainer.served import recorded_quality

PUBLISHED = {
    "decision": "published",
    "reason": "beats the served version",
    "version": 3,
    "served_version": 2,
    "challenger": {"hr@10": 0.21, "ndcg@10": 0.11, "mrr": 0.09},
    "champion": {"hr@10": 0.18, "ndcg@10": 0.09},
    "popularity": {"hr@10": 0.06},
    "counts": {"interactions": 19747},
    "window": ["2026-06-01T00:00:00.000Z", "2026-12-03T15:00:00.000Z"],
    "seconds": 12.5,
}


def test_a_published_run_keeps_version_quality_and_window() -> None:
    outcome = parse_outcome(PUBLISHED)
    assert outcome.decision == "published" and outcome.succeeded
    assert (outcome.version, outcome.served_version) == (3, 2)
    assert outcome.challenger == {"hr@10": 0.21, "ndcg@10": 0.11}  # only the exported two
    assert outcome.served_quality() == outcome.challenger
    assert outcome.window_end == datetime(2026, 12, 3, 15, tzinfo=UTC)


def test_a_refused_run_leaves_the_champion_serving() -> None:
    outcome = parse_outcome({**PUBLISHED, "decision": "refused", "version": None})
    assert outcome.succeeded and outcome.version is None
    assert outcome.served_quality() == {"hr@10": 0.18, "ndcg@10": 0.09}


def test_figures_grouped_under_metrics_are_read() -> None:
    grouped = {k: v for k, v in PUBLISHED.items() if k not in ("challenger", "champion")}
    grouped["metrics"] = {"challenger": PUBLISHED["challenger"], "champion": None}
    outcome = parse_outcome(grouped)
    assert outcome.challenger == {"hr@10": 0.21, "ndcg@10": 0.11} and outcome.champion == {}


def test_a_window_in_epoch_seconds_is_read() -> None:
    outcome = parse_outcome({**PUBLISHED, "window": [0, 1_780_000_000]})
    assert outcome.window_end == datetime.fromtimestamp(1_780_000_000, UTC)


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"decision": "maybe"},
        {"reason": "no decision"},
    ],
)
def test_anything_but_a_known_decision_is_a_failure(data: object) -> None:
    outcome = parse_outcome(data)
    assert outcome.decision == "failed" and not outcome.succeeded


def test_junk_figures_are_dropped_not_exported() -> None:
    outcome = parse_outcome(
        {
            "decision": "skipped",
            "challenger": {"hr@10": "high", "ndcg@10": float("nan")},
            "window": ["not a time", "nor this"],
            "version": True,
        }
    )
    assert outcome.challenger == {} and outcome.window_end is None and outcome.version is None


def test_exit_code_and_result_file(tmp_path: Path) -> None:
    result = tmp_path / "result.json"
    assert read_outcome(0, result).reason == "the command wrote no result"
    result.write_text("{not json")
    assert read_outcome(0, result).decision == "failed"
    result.write_text(json.dumps(PUBLISHED))
    assert read_outcome(0, result).decision == "published"
    assert read_outcome(2, result).decision == "failed"  # whatever the file says
    result.write_text(json.dumps({"decision": "failed", "reason": "MongoDB unreachable"}))
    assert read_outcome(3, result).reason == "exit code 3: MongoDB unreachable"


def test_quality_recorded_in_config_json() -> None:
    assert recorded_quality({"hr@10": 0.2, "ndcg@10": 0.1}) == {"hr@10": 0.2, "ndcg@10": 0.1}
    assert recorded_quality({"challenger": {"hr@10": 0.3, "ndcg@10": 0.2}}) == {
        "hr@10": 0.3,
        "ndcg@10": 0.2,
    }
    offline = {
        "test": {
            "popularity": {"full": {"hr@10": 0.06, "ndcg@10": 0.03}},
            "sequential (served)": {"full": {"hr@10": 0.15, "ndcg@10": 0.08}},
        },
        "valid_served_model": {"hr@10": 0.17, "ndcg@10": 0.1},
    }
    assert recorded_quality(offline) == {"hr@10": 0.15, "ndcg@10": 0.08}
    from_events = {"test": {"challenger": {"hr@10": 0.4, "ndcg@10": 0.3}, "champion": None}}
    assert recorded_quality(from_events) == {"hr@10": 0.4, "ndcg@10": 0.3}
    assert recorded_quality({"hr@10": 0.2}) == {}
