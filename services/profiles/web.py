"""Web pages of the profile updater: liveness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.profiles.app import app
from services.profiles.health import HEALTH


@app.page("/healthz")
async def healthz(web: Any, request: Any) -> Any:
    return web.json(HEALTH.as_dict(), status=200 if HEALTH.healthy else 503)


@app.page("/metrics")
async def metrics_page(web: Any, request: Any) -> Any:
    return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
