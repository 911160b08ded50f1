"""Web pages of the profile updater: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from services.profiles.app import app, settings
from services.profiles.health import HEALTH
from shared.mongo import mongo_client

# How long a readiness probe waits for MongoDB (below Kubernetes' 2 s probe timeout).
PING_TIMEOUT_MS = 1500
_probe_client: MongoClient | None = None


def _ping() -> str | None:
    """None when MongoDB answers a ping, else why not."""
    global _probe_client
    if _probe_client is None:
        timeouts = {
            "serverSelectionTimeoutMS": PING_TIMEOUT_MS,
            "connectTimeoutMS": PING_TIMEOUT_MS,
        }
        _probe_client = mongo_client(settings.mongo, **timeouts)
    try:
        _probe_client.admin.command("ping")
    except PyMongoError as exc:
        return f"mongo unreachable: {str(exc)[:300]}"
    return None


@app.page("/healthz")
async def healthz(web: Any, request: Any) -> Any:
    """Liveness: 503 only when the stream agent stopped (a restart is what would help)."""
    return web.json(HEALTH.as_dict(), status=200 if HEALTH.alive else 503)


@app.page("/readyz")
async def readyz(web: Any, request: Any) -> Any:
    """Readiness: 503 with the reason while MongoDB is unreachable or a write keeps failing."""
    reason = HEALTH.not_ready_reason() or await asyncio.to_thread(_ping)
    body = {"ready": reason is None, "reason": reason, **HEALTH.as_dict()}
    return web.json(body, status=200 if reason is None else 503)


@app.page("/metrics")
async def metrics_page(web: Any, request: Any) -> Any:
    return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
