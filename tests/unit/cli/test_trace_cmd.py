"""`lumen trace`: the span tree built from Jaeger's JSON, and a Jaeger that does not answer."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from lumen_cli.commands.trace_cmd import render, trace_path
from lumen_cli.platform import paths
from tests.support.stack import free_port

TRACE = "a" * 32


def _span(
    span_id: str,
    name: str,
    start: int,
    duration: int,
    process: str,
    parent: str | None = None,
    links: tuple[str, ...] = (),
) -> dict[str, Any]:
    references = [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": parent}] if parent else []
    references += [{"refType": "FOLLOWS_FROM", "traceID": t, "spanID": "f" * 16} for t in links]
    return {
        "traceID": TRACE,
        "spanID": span_id,
        "operationName": name,
        "references": references,
        "startTime": start,
        "duration": duration,
        "processID": process,
    }


def _trace(*spans: dict[str, Any]) -> dict[str, Any]:
    return {
        "traceID": TRACE,
        "spans": list(spans),
        "processes": {"p1": {"serviceName": "ingest"}, "p2": {"serviceName": "profiles"}},
    }


def test_spans_are_nested_under_their_parent_in_start_order() -> None:
    # Listed out of order, as Jaeger may return them.
    trace = _trace(
        _span("c", "events.raw process", 1_004_000, 3_000, "p2", parent="b"),
        _span("d", "mongodb update", 1_005_000, 1_500, "p2", parent="c", links=("b" * 32,)),
        _span("a", "POST /v1/track", 1_000_000, 2_500, "p1"),
        _span("b", "events.raw publish", 1_001_000, 1_000, "p1", parent="a"),
    )
    rows = trace_path(trace)
    assert [(r["depth"], r["service"], r["name"]) for r in rows] == [
        (0, "ingest", "POST /v1/track"),
        (1, "ingest", "events.raw publish"),
        (2, "profiles", "events.raw process"),
        (3, "profiles", "mongodb update"),
    ]
    assert [r["start_offset_ms"] for r in rows] == [0.0, 1.0, 4.0, 5.0]
    assert [r["duration_ms"] for r in rows] == [2.5, 1.0, 3.0, 1.5]
    assert rows[3]["linked_traces"] == ["b" * 32]
    text = render(TRACE, rows).splitlines()
    assert text[2] == "     0.0ms       2.5ms  ingest  POST /v1/track"
    assert text[5] == "     5.0ms       1.5ms        profiles  mongodb update"
    assert text[6].strip() == f"-> linked trace {'b' * 32}"


def test_a_span_whose_parent_is_missing_is_shown_as_a_root() -> None:
    trace = _trace(
        _span("a", "POST /v1/track", 0, 10, "p1"),
        _span("c", "events.raw process", 50, 10, "p2", parent="not-exported"),
    )
    rows = trace_path(trace)
    assert [(r["depth"], r["name"]) for r in rows] == [
        (0, "POST /v1/track"),
        (0, "events.raw process"),
    ]


def test_an_unreachable_jaeger_is_exit_code_3() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lumen_cli", "trace", "m-1"],
        cwd=paths.REPO_ROOT,
        env={**os.environ, "LUMEN_JAEGER_QUERY_URL": f"http://127.0.0.1:{free_port()}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "did not answer" in done.stderr and "Traceback" not in done.stderr
