"""Structured logging: one JSON object per line on stderr, or plain text for a terminal.

Extra context goes in ``logger.info("msg", extra={"fields": {...}})`` so that log lines stay
machine-readable; secrets (write keys, passwords) are never passed in. A line logged while a
span is current carries its ``trace_id`` and ``span_id`` (shared/tracing.py).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from shared.settings import LogSettings
from shared.tracing import current_trace_ids


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        # The span current where the line was logged: a log line leads to its trace.
        ids = current_trace_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, settings: LogSettings | None = None) -> None:
    """Route all loggers to stderr in the configured format; call once at start-up."""
    settings = settings or LogSettings()
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # Client libraries are chatty at INFO (every reconnect); their warnings still show.
    for noisy in ("kafka", "aiokafka", "pymongo", "faust", "mode", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
