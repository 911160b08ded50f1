"""Run the training command as a child process, bounded in time and stoppable.

The child runs in its own process group so that stopping it stops whatever it started too;
its output goes to a file whose last lines are logged when a run fails. The trainer stays
responsive meanwhile: /metrics and /healthz are served from other threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from services.trainer.outcome import Outcome, failed, read_outcome

log = logging.getLogger(__name__)
RESULT_FILE = "result.json"
OUTPUT_FILE = "output.log"


class Runner:
    def __init__(
        self,
        argv: Sequence[str],
        timeout_seconds: float,
        grace_seconds: float,
        poll_seconds: float = 0.2,
    ) -> None:
        self.argv = list(argv)
        self.timeout_seconds = timeout_seconds
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds

    def run(self, stop: threading.Event) -> Outcome:
        """One run to its end, its timeout, or ``stop`` (then the child is stopped)."""
        with tempfile.TemporaryDirectory(prefix="lumen-trainer-") as folder:
            result = Path(folder) / RESULT_FILE
            output = Path(folder) / OUTPUT_FILE
            with output.open("wb") as sink:
                try:
                    child = subprocess.Popen(
                        [*self.argv, "--json-result", str(result)],
                        stdout=sink,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                except OSError as exc:
                    return failed(f"cannot start {self.argv[0]!r}: {exc}")
                outcome = self._wait(child, stop, result)
            if not outcome.succeeded:
                log.warning(
                    "training run failed",
                    extra={"fields": {"reason": outcome.reason, "output": tail(output)}},
                )
            return outcome

    def _wait(self, child: subprocess.Popen[bytes], stop: threading.Event, result: Path) -> Outcome:
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            code = child.poll()
            if code is not None:
                return read_outcome(code, result)
            if stop.is_set():
                self._stop(child)
                return failed("stopped: the trainer is shutting down")
            if time.monotonic() >= deadline:
                self._stop(child)
                return failed(f"timed out after {self.timeout_seconds:.0f} s")
            stop.wait(self.poll_seconds)

    def _stop(self, child: subprocess.Popen[bytes]) -> None:
        """SIGTERM the child's process group, SIGKILL it after the grace period."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(self.grace_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def tail(path: Path, lines: int = 20, max_chars: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])[-max_chars:]
