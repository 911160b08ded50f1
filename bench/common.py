"""What every benchmark shares: where results go and what machine produced them."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
# LUMEN_BENCH_RESULTS_DIR sends a run's figures elsewhere (the test suite's smoke run does, so
# that it never overwrites the figures of a real run).
RESULTS_DIR = Path(os.environ.get("LUMEN_BENCH_RESULTS_DIR") or BENCH_DIR / "results")


def machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=BENCH_DIR,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg(),
        "commit": commit,
    }


def save_results(name: str, results: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (with the time and machine) and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    document = {
        "benchmark": name,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **results,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class StealMeter:
    """Share of this machine's CPU time the hypervisor gave to other guests ("steal" in
    ``/proc/stat``) between creating the meter and ``share()``. On a shared virtual machine a
    latency tail often follows steal rather than the code; saving it beside a figure tells
    which runs were disturbed."""

    def __init__(self, stat: Path = Path("/proc/stat")) -> None:
        self._stat = stat
        self._start = self._read()

    def _read(self) -> tuple[int, int]:
        """(steal, total) jiffies of the aggregate ``cpu`` line."""
        try:
            fields = [int(x) for x in self._stat.read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return 0, 0
        return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])

    def share(self) -> float:
        steal, total = self._read()
        elapsed = total - self._start[1]
        return (steal - self._start[0]) / elapsed if elapsed > 0 else 0.0


def peak_rss_bytes(pid: int) -> int:
    """High-water mark of a process's resident memory (Linux VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def calls_per_thread_loop(
    call: Callable[[], object], threads: int, seconds: float, min_calls: int = 1
) -> tuple[int, float]:
    """``call()`` in a loop on ``threads`` threads at once for ``seconds`` (and at least
    ``min_calls`` times each): (calls made, seconds taken). onnxruntime releases the GIL
    while it runs, so threads measure executions side by side."""
    counts = [0] * threads
    stop_at = time.perf_counter() + seconds

    def loop(slot: int) -> None:
        while time.perf_counter() < stop_at or counts[slot] < min_calls:
            call()
            counts[slot] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts), time.perf_counter() - started
