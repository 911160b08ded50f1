"""The trainer's loop: every check, count what arrived, decide, run at most one training.

One thread runs the loop, so runs never overlap; /metrics and /healthz are served from
others and keep answering during a run. New interactions are those stored with an event time
(``t``, indexed) after the newest one the last run read: the outcome's window, else the
served version's recorded window; when the served version was not trained from the store,
every stored interaction is new. (An interaction that arrives with an event time older than
the last window counts at the run after next, not at once.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.trainer import schedule
from services.trainer.metrics import TrainerMetrics
from services.trainer.outcome import PUBLISHING, Outcome
from services.trainer.served import Served
from services.trainer.training_lock import TrainingLock

log = logging.getLogger(__name__)

# (after) -> interactions stored with t after it (all of them for None); raises when MongoDB is away
CountNew = Callable[[datetime | None], int]


@dataclass
class LastRun:
    reason: str
    outcome: Outcome
    seconds: float
    ended_at: float


class TrainerLoop:
    def __init__(
        self,
        triggers: schedule.Triggers,
        run: Callable[[threading.Event], Outcome],
        count_new: CountNew,
        read_served: Callable[[], Served],
        metrics: TrainerMetrics,
        check_seconds: float,
        run_at_start: bool = False,
        clock: Callable[[], float] = time.time,
        lock: TrainingLock | None = None,
    ) -> None:
        self.triggers = triggers
        self._run = run
        self._count_new = count_new
        self._read_served = read_served
        self.metrics = metrics
        self.check_seconds = check_seconds
        self.clock = clock
        self.training_lock = lock
        self._lock_busy_logged = False
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        served = read_served()
        # The served version counts as the last successful training: its age starts the timer.
        created = served.created_at.timestamp() if served.created_at else None
        started = min(created, clock()) if created else clock()
        self.state = schedule.ScheduleState(last_started=started, run_pending=run_at_start)
        # A version trained from events records the newest interaction it read; one built
        # elsewhere (the offline MovieLens build) read none of the store: all of it is new.
        self.watermark: datetime | None = served.window_end
        self.new_interactions: int | None = None
        self._mongo_ok: bool | None = None
        self.last_run: LastRun | None = None
        # Quality measured by the run that published a version (config.json may not record it).
        self._measured: dict[int, dict[str, float]] = {}
        # Shown from the first scrape: /healthz answers before the loop's first check.
        metrics.record_served(served.version, served.quality)
        metrics.interval.set(triggers.interval_seconds)
        metrics.last_success.set(started)
        self._thread = threading.Thread(target=self._loop, name="trainer-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive() and not self.stopping.is_set()

    def stop(self, timeout: float) -> None:
        """Stop the loop; a run in progress is stopped (its child gets SIGTERM, then SIGKILL)."""
        self.stopping.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception:  # a bug in one check must not end the service's only loop
                log.exception("trainer check failed")
            self.stopping.wait(self.check_seconds)

    def tick(self) -> str | None:
        """One check: refresh the figures, start a run if one is due. Returns its reason."""
        self.refresh_served()
        self.count()
        reason = schedule.due(self.triggers, self.state, self.clock(), self.new_interactions)
        if reason is None:
            return None
        if self.training_lock is not None and not self.training_lock.try_acquire():
            if not self._lock_busy_logged:  # once per wait, not at every check
                log.info(
                    "training due, waiting: another process is training into the registry",
                    extra={"fields": {"trigger": reason, "lock": str(self.training_lock.path)}},
                )
            self._lock_busy_logged = True
            return None
        self._lock_busy_logged = False
        try:
            self.train(reason)
        finally:
            if self.training_lock is not None:
                self.training_lock.release()
        self.count()  # from the moved watermark: what waits for the next run
        return reason

    def count(self) -> None:
        try:
            counted = self._count_new(self.watermark)
        except Exception as exc:  # MongoDB away: the timer still applies
            self.metrics.mongo_up.set(0)
            if self._mongo_ok is not False:  # once per outage, not at every check
                log.warning(
                    "cannot count new interactions", extra={"fields": {"error": repr(exc)[:300]}}
                )
            self._mongo_ok = False
            with self.lock:
                self.new_interactions = None
            return
        if self._mongo_ok is False:
            log.info("counting new interactions again")
        self._mongo_ok = True
        self.metrics.mongo_up.set(1)
        self.metrics.new_interactions.set(counted)
        with self.lock:
            self.new_interactions = counted

    def refresh_served(self) -> Served:
        served = self._read_served()
        if served.window_end is not None and (
            self.watermark is None or served.window_end > self.watermark
        ):
            # Published by another run (`make up`, a person): what it read is not new either.
            with self.lock:
                self.watermark = served.window_end
        measured = self._measured.get(served.version or 0)
        self.metrics.record_served(served.version, measured or served.quality)
        return served

    def train(self, reason: str) -> Outcome:
        started_at = self.clock()
        with self.lock:
            schedule.started(self.state, started_at)
        self.metrics.running.set(1)
        log.info(
            "training run started",
            extra={"fields": {"trigger": reason, "new_interactions": self.new_interactions}},
        )
        began = time.monotonic()
        try:
            outcome = self._run(self.stopping)
        finally:
            self.metrics.running.set(0)
        seconds = time.monotonic() - began
        ended_at = self.clock()
        with self.lock:
            schedule.finished(self.state, ended_at, outcome.succeeded)
            self.last_run = LastRun(reason, outcome, seconds, ended_at)
            if outcome.window_end is not None:
                # Interactions up to the run's window were read: only later ones count
                # towards the next run.
                self.watermark = outcome.window_end
            elif outcome.succeeded and outcome.decision != "skipped":
                # A decision without a recorded window: those stored before it started.
                self.watermark = datetime.fromtimestamp(started_at, UTC)
            # (A failed run, or one skipped with nothing read, leaves the count as it was.)
        self.metrics.record_run(outcome, seconds, ended_at)
        if outcome.decision in PUBLISHING and outcome.version and outcome.challenger:
            self._measured[outcome.version] = outcome.challenger
        elif outcome.served_version and outcome.champion:
            self._measured.setdefault(outcome.served_version, outcome.champion)
        self.refresh_served()
        log.info(
            "training run ended",
            extra={
                "fields": {
                    "trigger": reason,
                    "outcome": outcome.decision,
                    "reason": outcome.reason,
                    "version": outcome.version,
                    "served_version": outcome.served_version,
                    "challenger": outcome.challenger,
                    "champion": outcome.champion,
                    "seconds": round(seconds, 2),
                }
            },
        )
        return outcome

    def status(self) -> dict[str, Any]:
        """What /healthz reports beside its status code."""
        with self.lock:
            last = self.last_run
            return {
                "status": "ok" if self.alive() else "stopping",
                "running": self.state.running,
                "new_interactions": self.new_interactions,
                "last_run": None
                if last is None
                else {
                    "trigger": last.reason,
                    "outcome": last.outcome.decision,
                    "reason": last.outcome.reason,
                    "version": last.outcome.version,
                    "seconds": round(last.seconds, 2),
                    "ended_at": last.ended_at,
                },
            }
