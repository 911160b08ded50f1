"""The trainer's loop with a stand-in run: triggers, the watermark, metrics, /healthz."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.trainer.loop import TrainerLoop
from services.trainer.metrics import TrainerMetrics
from services.trainer.outcome import Outcome, failed
from services.trainer.schedule import Triggers
from services.trainer.served import Served
from services.trainer.training_lock import TrainingLock
from services.trainer.web import make_server, serve_in_background

T0 = datetime(2026, 12, 1, tzinfo=UTC)


class Fakes:
    """A registry, an interaction store and a training command the test controls."""

    def __init__(self) -> None:
        self.now = T0.timestamp() + 7200
        # Trained from events up to T0.
        self.served = Served(1, {"hr@10": 0.15, "ndcg@10": 0.08}, created_at=T0, window_end=T0)
        self.interaction_times: list[datetime] = []
        self.counted_after: list[datetime | None] = []
        self.outcomes: list[Outcome] = []
        self.runs = 0
        self.mongo_down = False

    def count_new(self, after: datetime | None) -> int:
        if self.mongo_down:
            raise ConnectionError("mongod away")
        self.counted_after.append(after)
        return sum(1 for t in self.interaction_times if after is None or t > after)

    def run(self, stop: threading.Event) -> Outcome:
        self.runs += 1
        outcome = self.outcomes.pop(0)
        if outcome.decision in ("published", "forced") and outcome.version:
            self.served = Served(outcome.version, {}, created_at=T0 + timedelta(days=2))
        return outcome


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def make_loop(
    fakes: Fakes,
    registry: CollectorRegistry,
    min_new: int = 3,
    interval: float = 10**6,
    lock: TrainingLock | None = None,
) -> TrainerLoop:
    return TrainerLoop(
        Triggers(interval, min_new, retry_seconds=60),
        fakes.run,
        fakes.count_new,
        lambda: fakes.served,
        TrainerMetrics(registry),
        check_seconds=0.05,
        clock=lambda: fakes.now,
        lock=lock,
    )


def published(version: int, window_end: datetime) -> Outcome:
    return Outcome(
        "published",
        "beats the served version",
        version=version,
        served_version=version - 1,
        challenger={"hr@10": 0.22, "ndcg@10": 0.12},
        champion={"hr@10": 0.15, "ndcg@10": 0.08},
        window_end=window_end,
    )


def test_new_interactions_trigger_a_run_and_then_count_from_its_window(fakes: Fakes) -> None:
    registry = CollectorRegistry()
    loop = make_loop(fakes, registry)
    # Interactions the served version was trained on are not new.
    fakes.interaction_times = [T0 - timedelta(hours=1), T0 + timedelta(minutes=1)]
    assert loop.tick() is None
    assert fakes.counted_after[-1] == T0
    assert sample(registry, "lumen_trainer_new_interactions") == 1
    assert sample(registry, "lumen_trainer_served_version") == 1
    assert sample(registry, "lumen_trainer_served_quality", metric="hr@10") == 0.15

    fakes.interaction_times += [T0 + timedelta(minutes=m) for m in (2, 3)]
    window_end = T0 + timedelta(minutes=3)
    fakes.outcomes = [published(2, window_end)]
    assert loop.tick() == "new_interactions"
    assert fakes.runs == 1
    assert sample(registry, "lumen_trainer_runs_total", outcome="published") == 1
    assert sample(registry, "lumen_trainer_runs_total", outcome="failed") == 0
    assert sample(registry, "lumen_trainer_run_duration_seconds_count") == 1
    assert sample(registry, "lumen_trainer_last_run_timestamp_seconds") == fakes.now
    assert sample(registry, "lumen_trainer_served_version") == 2
    # The registry's config records no figures for v2: the run's own measurement is shown.
    assert sample(registry, "lumen_trainer_served_quality", metric="ndcg@10") == 0.12
    # Counted again at once from the run's window: what it read no longer counts.
    assert fakes.counted_after[-1] == window_end
    assert sample(registry, "lumen_trainer_new_interactions") == 0

    # Nothing is due until three more arrive.
    fakes.interaction_times.append(T0 + timedelta(minutes=4))
    assert loop.tick() is None
    assert sample(registry, "lumen_trainer_new_interactions") == 1
    assert fakes.runs == 1


def test_a_version_not_trained_from_the_store_makes_every_interaction_new(fakes: Fakes) -> None:
    fakes.served = Served(1, {}, created_at=T0)  # the offline build: no window
    loop = make_loop(fakes, CollectorRegistry())
    fakes.interaction_times = [T0 - timedelta(days=200), T0 - timedelta(days=100)]
    assert loop.tick() is None
    assert fakes.counted_after[-1] is None and loop.new_interactions == 2


def test_a_run_skipped_with_nothing_read_keeps_every_interaction_new(fakes: Fakes) -> None:
    fakes.served = Served(1, {}, created_at=T0)  # the offline build
    loop = make_loop(fakes, CollectorRegistry(), min_new=3, interval=3600)
    fakes.outcomes = [Outcome("skipped", "too little data: 0 items")]
    assert loop.tick() == "interval"  # the served version is older than the interval
    # Then a replay arrives with event times long before this run.
    fakes.interaction_times = [T0 - timedelta(days=d) for d in (30, 20, 10)]
    fakes.outcomes = [published(2, T0 - timedelta(days=10))]
    assert loop.tick() == "new_interactions"
    assert fakes.counted_after[-2] is None  # counted before the run: all of the store


def test_a_version_another_process_published_moves_the_count_to_its_window(
    fakes: Fakes,
) -> None:
    fakes.served = Served(1, {}, created_at=T0)
    loop = make_loop(fakes, CollectorRegistry(), min_new=10)
    fakes.interaction_times = [T0 + timedelta(minutes=m) for m in range(5)]
    assert loop.tick() is None and loop.new_interactions == 5
    window_end = T0 + timedelta(minutes=4)
    fakes.served = Served(2, {}, created_at=T0 + timedelta(hours=1), window_end=window_end)
    assert loop.tick() is None
    assert fakes.counted_after[-1] == window_end and loop.new_interactions == 0


def test_a_run_waits_while_another_process_holds_the_training_lock(
    fakes: Fakes, tmp_path: Path
) -> None:
    other = TrainingLock(tmp_path / ".recommender.training.lock")
    assert other.try_acquire()
    loop = make_loop(fakes, CollectorRegistry(), min_new=1, lock=TrainingLock(other.path))
    fakes.interaction_times = [T0 + timedelta(minutes=1)]
    fakes.outcomes = [Outcome("refused", "not better", served_version=1)]
    assert loop.tick() is None and fakes.runs == 0
    other.release()
    assert loop.tick() == "new_interactions" and fakes.runs == 1
    # The loop released it after its run.
    assert other.try_acquire()
    other.release()


def test_a_failed_run_is_counted_and_pauses_the_triggers(fakes: Fakes) -> None:
    registry = CollectorRegistry()
    loop = make_loop(fakes, registry, min_new=1)
    fakes.interaction_times = [T0 + timedelta(minutes=5)]
    fakes.outcomes = [failed("exit code 1")]
    success_before = sample(registry, "lumen_trainer_last_success_timestamp_seconds")
    assert success_before == T0.timestamp()  # the served version's creation
    assert loop.tick() == "new_interactions"
    assert sample(registry, "lumen_trainer_runs_total", outcome="failed") == 1
    assert sample(registry, "lumen_trainer_last_success_timestamp_seconds") == success_before
    assert loop.tick() is None  # paused: retry_seconds
    fakes.now += 60
    fakes.outcomes = [Outcome("refused", "not better", served_version=1)]
    assert loop.tick() == "new_interactions"  # the watermark did not move after the failure
    assert sample(registry, "lumen_trainer_runs_total", outcome="refused") == 1
    assert sample(registry, "lumen_trainer_last_success_timestamp_seconds") == fakes.now
    assert sample(registry, "lumen_trainer_served_version") == 1


def test_the_interval_runs_without_new_interactions_and_mongo_down_is_reported(
    fakes: Fakes,
) -> None:
    registry = CollectorRegistry()
    loop = make_loop(fakes, registry, interval=3600)
    fakes.mongo_down = True
    # The served version is two hours old: older than the interval, a run is due.
    fakes.outcomes = [Outcome("skipped", "nothing new")]
    assert loop.tick() == "interval"
    assert sample(registry, "lumen_trainer_mongo_up") == 0
    assert sample(registry, "lumen_trainer_runs_total", outcome="skipped") == 1
    fakes.now += 3599
    assert loop.tick() is None
    fakes.mongo_down = False
    fakes.now += 1
    fakes.outcomes = [Outcome("skipped", "nothing new")]
    assert loop.tick() == "interval"
    assert sample(registry, "lumen_trainer_mongo_up") == 1


def test_metrics_and_healthz_answer_during_a_run(fakes: Fakes) -> None:
    registry = CollectorRegistry()
    loop = make_loop(fakes, registry, min_new=1)
    release = threading.Event()
    in_run = threading.Event()

    def slow_run(stop: threading.Event) -> Outcome:
        in_run.set()
        release.wait(10)
        return Outcome("refused", "not better", served_version=1)

    loop._run = slow_run
    fakes.interaction_times = [T0 + timedelta(minutes=1)]
    server = make_server("127.0.0.1", 0, loop.status, registry)
    serve_in_background(server)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        loop.start()
        assert in_run.wait(10)
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as reply:
            body = json.loads(reply.read())
        assert body["status"] == "ok" and body["running"] is True
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        assert "lumen_trainer_running 1.0" in text
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/nothing", timeout=5)
        assert missing.value.code == 404
        release.set()
        loop.stop(timeout=10)
        with pytest.raises(urllib.error.HTTPError) as stopped:
            urllib.request.urlopen(f"{base}/healthz", timeout=5)
        assert stopped.value.code == 503
        assert json.loads(stopped.value.read())["last_run"]["outcome"] == "refused"
    finally:
        release.set()
        loop.stop(timeout=10)
        server.shutdown()
