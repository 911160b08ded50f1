"""``lumen trace <messageId>``: one event's path through the services, from the trace store.

Finds, in Jaeger, the trace whose spans carry ``lumen.message_id=<messageId>`` (ingest sets it
on each event's span) and prints its spans as a tree: service, span name, start offset from the
trace's first span and duration, indented under their parent. Spans of other traces that a
span links to (a profile batch links to each event it wrote) are listed under it by trace id.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lumen_cli.output import EXIT_NOT_FOUND, EXIT_OK, EXIT_UNREACHABLE, add_json_flag, print_json
from lumen_cli.platform import jaeger
from lumen_cli.settings import CliSettings
from shared.tracing import MESSAGE_ID_ATTRIBUTE

# Ingest opens each event's trace: asked first, the others only when it has no match.
FIRST_SERVICES = ("ingest",)


def add_parsers(sub: Any) -> None:
    trace = sub.add_parser(
        "trace",
        help="print one event's path through the services (from Jaeger)",
        description="Looks up the trace whose spans carry "
        f"{MESSAGE_ID_ATTRIBUTE}=<messageId> in Jaeger (LUMEN_JAEGER_QUERY_URL) and prints "
        "its spans: service, span name, start offset and duration, indented by parent.",
    )
    trace.add_argument("message_id", metavar="messageId", help="the event's messageId")
    trace.add_argument(
        "--service", help="look only in this service's spans (default: ingest, then every other)"
    )
    trace.add_argument(
        "--lookback",
        type=float,
        default=24.0,
        metavar="HOURS",
        help="how far back to search (default 24 hours)",
    )
    add_json_flag(trace)
    trace.set_defaults(func=cmd_trace)


def find_trace(
    query_url: str, message_id: str, service: str | None, lookback_seconds: float
) -> dict[str, Any] | None:
    """The newest trace with a span carrying this message id, or None."""
    if service:
        candidates = [service]
    else:
        reported = jaeger.services(query_url)
        first = [name for name in FIRST_SERVICES if name in reported]
        candidates = first + [name for name in reported if name not in first]
    for name in candidates:
        traces = jaeger.find_traces(
            query_url,
            name,
            {MESSAGE_ID_ATTRIBUTE: message_id},
            lookback_seconds=lookback_seconds,
            limit=5,
        )
        if traces:
            return max(traces, key=lambda t: min(s["startTime"] for s in t["spans"]))
    return None


def _parent_id(span: dict[str, Any]) -> str | None:
    for reference in span.get("references") or []:
        if reference.get("refType") == "CHILD_OF" and reference.get("traceID") == span["traceID"]:
            return str(reference["spanID"])
    return None


def _linked_traces(span: dict[str, Any]) -> list[str]:
    return [
        str(reference["traceID"])
        for reference in span.get("references") or []
        if reference.get("traceID") != span["traceID"]
    ]


def trace_path(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """The trace's spans depth-first in start order, each with its depth under its parent.

    A span whose parent is not in the trace (not exported, or still in flight) is shown as a
    root, so nothing that arrived is hidden.
    """
    spans: list[dict[str, Any]] = trace["spans"]
    by_id = {span["spanID"]: span for span in spans}
    processes = trace.get("processes") or {}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = _parent_id(span)
        children.setdefault(parent if parent in by_id else None, []).append(span)
    origin = min(span["startTime"] for span in spans)
    rows: list[dict[str, Any]] = []

    def visit(span: dict[str, Any], depth: int) -> None:
        process = processes.get(span.get("processID"), {})
        rows.append(
            {
                "depth": depth,
                "service": process.get("serviceName", "?"),
                "name": span["operationName"],
                "start_offset_ms": (span["startTime"] - origin) / 1000.0,
                "duration_ms": span["duration"] / 1000.0,
                "span_id": span["spanID"],
                "parent_span_id": _parent_id(span),
                "linked_traces": _linked_traces(span),
            }
        )
        for child in sorted(children.get(span["spanID"], []), key=lambda s: s["startTime"]):
            visit(child, depth + 1)

    for root in sorted(children.get(None, []), key=lambda s: s["startTime"]):
        visit(root, 0)
    return rows


def render(trace_id: str, rows: list[dict[str, Any]]) -> str:
    lines = [f"trace {trace_id}", f"{'start':>10}  {'duration':>10}  service / span"]
    for row in rows:
        indent = "  " * row["depth"]
        lines.append(
            f"{row['start_offset_ms']:>8.1f}ms  {row['duration_ms']:>8.1f}ms  "
            f"{indent}{row['service']}  {row['name']}"
        )
        for linked in row["linked_traces"]:
            lines.append(f"{'':>22}  {indent}  -> linked trace {linked}")
    return "\n".join(lines)


def cmd_trace(args: argparse.Namespace) -> int:
    query_url = CliSettings().jaeger_query_url
    try:
        trace = find_trace(query_url, args.message_id, args.service, args.lookback * 3600)
    except jaeger.JaegerQueryError as error:
        print(f"lumen trace: {error}. Is Jaeger running (`lumen status`)?", file=sys.stderr)
        return EXIT_UNREACHABLE
    if trace is None:
        print(
            f"lumen trace: no trace with {MESSAGE_ID_ATTRIBUTE}={args.message_id} in the last "
            f"{args.lookback:g} hours at {query_url} (is tracing on, and was it sampled?)",
            file=sys.stderr,
        )
        return EXIT_NOT_FOUND
    rows = trace_path(trace)
    if args.json:
        print_json({"trace_id": trace["traceID"], "spans": rows})
    else:
        print(render(trace["traceID"], rows))
    return EXIT_OK
