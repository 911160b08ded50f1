"""Web pages of the profile updater: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from services.profiles.health import Health
from shared.mongo import mongo_client
from shared.settings import MongoSettings

# How long a readiness probe waits for MongoDB (below Kubernetes' 2 s probe timeout).
PING_TIMEOUT_MS = 1500


class MongoProbe:
    """Pings MongoDB with a client of its own, made at the first probe."""

    def __init__(self, settings: MongoSettings) -> None:
        self.settings = settings
        self._client: MongoClient | None = None

    def ping(self) -> str | None:
        """None when MongoDB answers a ping, else why not."""
        if self._client is None:
            timeouts = {
                "serverSelectionTimeoutMS": PING_TIMEOUT_MS,
                "connectTimeoutMS": PING_TIMEOUT_MS,
            }
            self._client = mongo_client(self.settings, **timeouts)
        try:
            self._client.admin.command("ping")
        except PyMongoError as exc:
            return f"mongo unreachable: {str(exc)[:300]}"
        return None


def install(app: faust.App, health: Health, probe: MongoProbe) -> None:
    """Register /healthz, /readyz and /metrics on ``app``."""

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        """Liveness: 503 only when the stream agent stopped (a restart is what would help)."""
        return web.json(health.as_dict(), status=200 if health.alive else 503)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        """Readiness: 503 with the reason while MongoDB is unreachable or a write keeps failing."""
        reason = health.not_ready_reason() or await asyncio.to_thread(probe.ping)
        body = {"ready": reason is None, "reason": reason, **health.as_dict()}
        return web.json(body, status=200 if reason is None else 503)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        """The text format, or OpenMetrics (with the histograms' trace exemplars) when the
        scraper asks for it as Prometheus does."""
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.bytes(encode(REGISTRY), content_type=content_type.split(";")[0])
