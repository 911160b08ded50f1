"""When to train: the interval, the new interactions, and a pause after a failed run.

Pure decisions on times and counts (the loop supplies them), so that they are tested without
clocks, processes or MongoDB. Times are seconds on one clock (the loop uses ``time.time()``).
"""

from __future__ import annotations

from dataclasses import dataclass

INTERVAL = "interval"
NEW_INTERACTIONS = "new_interactions"
START = "start"


@dataclass(frozen=True)
class Triggers:
    interval_seconds: float  # 0: no timer
    min_new_interactions: int  # 0: no count trigger
    # After a failed run, wait this long before the next: a run that fails at once on data
    # that stays the same would otherwise start again at every check.
    retry_seconds: float


@dataclass
class ScheduleState:
    last_started: float  # the last run's start, or the time the schedule was set up
    running: bool = False
    last_failed_at: float | None = None
    run_pending: bool = False  # a run asked for regardless of the triggers (run at start)


def due(
    triggers: Triggers, state: ScheduleState, now: float, new_interactions: int | None
) -> str | None:
    """Why a run should start now, or None. ``new_interactions`` is None when they could not
    be counted (MongoDB away): the timer still applies."""
    if state.running:
        return None  # never two runs at once
    if state.last_failed_at is not None and now - state.last_failed_at < triggers.retry_seconds:
        return None
    if state.run_pending:
        return START
    if triggers.interval_seconds > 0 and now - state.last_started >= triggers.interval_seconds:
        return INTERVAL
    if (
        triggers.min_new_interactions > 0
        and new_interactions is not None
        and new_interactions >= triggers.min_new_interactions
    ):
        return NEW_INTERACTIONS
    return None


def started(state: ScheduleState, now: float) -> None:
    state.running = True
    state.run_pending = False
    state.last_started = now


def finished(state: ScheduleState, now: float, succeeded: bool) -> None:
    state.running = False
    state.last_failed_at = None if succeeded else now
