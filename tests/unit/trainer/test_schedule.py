"""When the trainer starts a run: interval, new interactions, never two at once, pause after failure."""

from __future__ import annotations

from services.trainer import schedule
from services.trainer.schedule import ScheduleState, Triggers, due

BOTH = Triggers(interval_seconds=3600, min_new_interactions=1000, retry_seconds=300)


def test_nothing_is_due_before_the_interval_or_the_count() -> None:
    assert due(BOTH, ScheduleState(last_started=0), now=3599, new_interactions=999) is None


def test_the_interval_since_the_last_start_triggers_a_run() -> None:
    assert due(BOTH, ScheduleState(last_started=100), now=3700, new_interactions=0) == "interval"


def test_enough_new_interactions_trigger_a_run_before_the_interval() -> None:
    state = ScheduleState(last_started=0)
    assert due(BOTH, state, now=10, new_interactions=1000) == "new_interactions"


def test_an_uncounted_store_leaves_only_the_timer() -> None:
    state = ScheduleState(last_started=0)
    assert due(BOTH, state, now=10, new_interactions=None) is None
    assert due(BOTH, state, now=3600, new_interactions=None) == "interval"


def test_a_zero_trigger_is_off() -> None:
    count_only = Triggers(interval_seconds=0, min_new_interactions=5, retry_seconds=0)
    assert due(count_only, ScheduleState(last_started=0), now=10**9, new_interactions=4) is None
    assert due(count_only, ScheduleState(last_started=0), now=1, new_interactions=5) == (
        "new_interactions"
    )
    timer_only = Triggers(interval_seconds=60, min_new_interactions=0, retry_seconds=0)
    assert due(timer_only, ScheduleState(last_started=0), now=59, new_interactions=10**6) is None


def test_never_two_runs_at_once() -> None:
    state = ScheduleState(last_started=0)
    schedule.started(state, now=5000)
    assert due(BOTH, state, now=10**9, new_interactions=10**9) is None
    schedule.finished(state, now=5100, succeeded=True)
    # The interval counts from the run's start.
    assert due(BOTH, state, now=5000 + 3599, new_interactions=0) is None
    assert due(BOTH, state, now=5000 + 3600, new_interactions=0) == "interval"


def test_a_failed_run_pauses_every_trigger_for_the_retry_time() -> None:
    state = ScheduleState(last_started=0)
    schedule.started(state, now=10)
    schedule.finished(state, now=20, succeeded=False)
    assert due(BOTH, state, now=319, new_interactions=10**6) is None
    assert due(BOTH, state, now=320, new_interactions=10**6) == "new_interactions"
    schedule.started(state, now=320)
    schedule.finished(state, now=330, succeeded=True)
    assert state.last_failed_at is None


def test_a_run_at_start_goes_first_once() -> None:
    state = ScheduleState(last_started=0, run_pending=True)
    assert due(BOTH, state, now=1, new_interactions=0) == "start"
    schedule.started(state, now=1)
    schedule.finished(state, now=2, succeeded=True)
    assert due(BOTH, state, now=3, new_interactions=0) is None
