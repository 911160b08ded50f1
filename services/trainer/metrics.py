"""The trainer's Prometheus metrics (``lumen_trainer_*``)."""

from __future__ import annotations

import contextlib

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from services.trainer.outcome import OUTCOMES, QUALITY_METRICS, Outcome

# Training runs take seconds (a small catalogue) to most of an hour (the timeout's default).
RUN_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)


class TrainerMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.runs = Counter(
            "lumen_trainer_runs",
            "Training runs by outcome (published, refused, skipped, forced, failed).",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.runs.labels(outcome)  # every series exists from the start, at 0
        self.duration = Histogram(
            "lumen_trainer_run_duration_seconds",
            "Wall time of a training run, whatever its outcome.",
            buckets=RUN_BUCKETS,
            registry=registry,
        )
        self.last_run = Gauge(
            "lumen_trainer_last_run_timestamp_seconds",
            "When the last run ended (Unix time; 0: none yet).",
            registry=registry,
        )
        self.last_success = Gauge(
            "lumen_trainer_last_success_timestamp_seconds",
            "When the last run that did not fail ended, or the served version was created "
            "(Unix time).",
            registry=registry,
        )
        self.running = Gauge(
            "lumen_trainer_running", "1 while a training run is going.", registry=registry
        )
        self.interval = Gauge(
            "lumen_trainer_interval_seconds",
            "The configured retraining interval (0: only after new interactions).",
            registry=registry,
        )
        self.new_interactions = Gauge(
            "lumen_trainer_new_interactions",
            "Interactions stored after those the last run read (waiting for the next run).",
            registry=registry,
        )
        self.mongo_up = Gauge(
            "lumen_trainer_mongo_up",
            "1 when the last count of new interactions succeeded.",
            registry=registry,
        )
        self.served_version = Gauge(
            "lumen_trainer_served_version",
            "Newest version of the model in the registry (the one inference serves; 0: none).",
            registry=registry,
        )
        self.served_quality = Gauge(
            "lumen_trainer_served_quality",
            "Offline quality of the served version (hr@10, ndcg@10 on its held-out events).",
            ["metric"],
            registry=registry,
        )

    def record_run(self, outcome: Outcome, seconds: float, ended_at: float) -> None:
        self.runs.labels(outcome.decision).inc()
        self.duration.observe(seconds)
        self.last_run.set(ended_at)
        if outcome.succeeded:
            self.last_success.set(ended_at)

    def record_served(self, version: int | None, quality: dict[str, float]) -> None:
        self.served_version.set(version or 0)
        for name in QUALITY_METRICS:
            if name in quality:
                self.served_quality.labels(name).set(quality[name])
            else:
                # No figure for this version: drop the series rather than show the last one's.
                with contextlib.suppress(KeyError):
                    self.served_quality.remove(name)
