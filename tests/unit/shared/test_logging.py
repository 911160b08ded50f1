"""shared/logging: JSON lines carry the current span's trace and span ids."""

from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import format_span_id, format_trace_id

from shared.logging import JsonFormatter


def _line(message: str, **fields: object) -> dict[str, object]:
    record = logging.LogRecord("lumen.test", logging.INFO, __file__, 1, message, None, None)
    if fields:
        record.fields = fields
    return dict(json.loads(JsonFormatter("ingest").format(record)))


def test_a_line_inside_a_span_names_its_trace_and_span() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("ingest") as span:
        line = _line("accepted", messageId="m-1")
    ctx = span.get_span_context()
    assert line["trace_id"] == format_trace_id(ctx.trace_id)
    assert line["span_id"] == format_span_id(ctx.span_id)
    assert line["messageId"] == "m-1" and line["msg"] == "accepted"


def test_a_line_outside_any_span_has_no_ids() -> None:
    line = _line("started")
    assert "trace_id" not in line and "span_id" not in line
    assert line["service"] == "ingest" and line["level"] == "info"
