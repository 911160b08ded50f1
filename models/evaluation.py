"""Shared evaluation helpers: latency, metrics JSON per run, printed tables."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from models.paths import runs_dir


def session(model: str | Path | bytes, threads: int = 2) -> ort.InferenceSession:
    """CPU session pinned to ``threads`` (the machine has 2 shared cores)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    path_or_bytes = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(path_or_bytes, options, providers=["CPUExecutionProvider"])


def measure_latency(
    sess: ort.InferenceSession,
    make_feed: Callable[[int], dict[str, np.ndarray]],
    batches: Sequence[int] = (1, 32),
    repeats: int = 30,
) -> dict[str, float]:
    """Median and p95 wall time (ms) of ``sess.run`` per batch size, after warm-up."""
    out: dict[str, float] = {}
    for batch in batches:
        feed = make_feed(batch)
        for _ in range(3):
            sess.run(None, feed)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            sess.run(None, feed)
            times.append((time.perf_counter() - start) * 1000)
        out[f"batch{batch}_p50_ms"] = round(statistics.median(times), 3)
        out[f"batch{batch}_p95_ms"] = round(float(np.percentile(times, 95)), 3)
    return out


def write_run(kind: str, model: str, metrics: dict[str, Any], seed: int | None = None) -> Path:
    """Save one run's metrics as JSON under ``var/runs`` and return the path."""
    folder = runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{stamp}-{kind}-{model}.json"
    payload = {
        "kind": kind,
        "model": model,
        "seed": seed,
        "created_at": stamp,
        "machine": {
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "cpu": platform.processor() or platform.machine(),
        },
        "metrics": metrics,
    }
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    return path


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Plain Markdown table (printed by ``eval`` and pasted into model cards)."""

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            # cosines near 1 need more digits to show the parity margin
            return f"{value:.6f}" if 0.999 <= value < 1.0 else f"{value:.4f}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def latency_table(latency: dict[str, float]) -> str:
    rows = []
    for batch in sorted({int(k.split("_")[0][5:]) for k in latency}):
        rows.append(
            {
                "batch": batch,
                "p50 ms": latency.get(f"batch{batch}_p50_ms"),
                "p95 ms": latency.get(f"batch{batch}_p95_ms"),
            }
        )
    return table(rows, ["batch", "p50 ms", "p95 ms"])


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a * b).sum(axis=1)
