"""The training command as a child process: its result, its exit code, its timeout, SIGTERM."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from services.trainer.outcome import Outcome
from services.trainer.runner import Runner

# A stand-in for `python -m models train recommender --from-events`: the same arguments, the
# same result file, behaviour chosen by the test.
FAKE = """
import json, os, sys, time
result = sys.argv[sys.argv.index("--json-result") + 1]
mode = sys.argv[1]
if mode == "sleep":
    open(os.environ["PID_FILE"], "w").write(str(os.getpid()))
    time.sleep(60)
if mode == "crash":
    print("Traceback: something broke", flush=True)
    sys.exit(1)
json.dump({"decision": "published", "reason": "better", "version": 2, "served_version": 1,
           "challenger": {"hr@10": 0.2, "ndcg@10": 0.1}, "champion": None,
           "window": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]}, open(result, "w"))
"""


def runner(mode: str, timeout: float = 30.0) -> Runner:
    return Runner([sys.executable, "-c", FAKE, mode], timeout, grace_seconds=5.0)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_a_run_reads_the_outcome_the_command_wrote() -> None:
    outcome = runner("publish").run(threading.Event())
    assert outcome.decision == "published" and outcome.version == 2
    assert outcome.challenger == {"hr@10": 0.2, "ndcg@10": 0.1}


def test_a_crash_is_a_failed_run_with_the_exit_code() -> None:
    outcome = runner("crash").run(threading.Event())
    assert outcome.decision == "failed" and outcome.reason == "exit code 1"


def test_a_missing_command_is_a_failed_run() -> None:
    outcome = Runner(["/nonexistent/train"], 5.0, 1.0).run(threading.Event())
    assert outcome.decision == "failed" and "cannot start" in outcome.reason


def test_a_run_past_its_timeout_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid_file = tmp_path / "pid"
    monkeypatch.setenv("PID_FILE", str(pid_file))
    started = time.monotonic()
    outcome = runner("sleep", timeout=2.0).run(threading.Event())
    assert outcome.decision == "failed" and "timed out" in outcome.reason
    assert time.monotonic() - started < 20
    assert gone(int(pid_file.read_text()))


def test_stopping_the_trainer_stops_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    monkeypatch.setenv("PID_FILE", str(pid_file))
    stop = threading.Event()
    results: list[Outcome] = []
    thread = threading.Thread(target=lambda: results.append(runner("sleep").run(stop)))
    thread.start()
    deadline = time.monotonic() + 15
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    stop.set()
    thread.join(15)
    assert not thread.is_alive()
    assert results[0].decision == "failed" and "shutting down" in results[0].reason
    assert gone(int(pid_file.read_text()))
