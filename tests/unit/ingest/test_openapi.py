"""The committed OpenAPI document matches the served one and covers every route."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.routing import Route

from services.ingest.http_api import build_app
from services.ingest.openapi import openapi_document, render
from shared.events import EVENT_TYPES

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "openapi" / "ingest.json"


def test_committed_document_is_current() -> None:
    assert COMMITTED.read_text() == render(), (
        "run: python -m services.ingest.openapi > docs/openapi/ingest.json"
    )


def test_document_covers_the_routes() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    app = build_app(api=_Api())  # type: ignore[arg-type]
    served = {r.path for r in app.routes if isinstance(r, Route)}
    documented = set(document["paths"])
    expected = {f"/v1/{t}" for t in EVENT_TYPES} | {
        "/v1/batch",
        "/v1/import",
        "/v1/users/{userId}",
        "/healthz",
        "/readyz",
    }
    assert expected <= documented
    assert {"/v1/batch", "/v1/import", "/v1/users/{user_id:str}", "/healthz", "/readyz"} <= served
    # Metrics are served on their own port (LUMEN_INGEST_METRICS_PORT), not the public one.
    assert "/metrics" not in served and "/metrics" not in documented
    json.dumps(document)  # serializable


class _Api:
    """Route targets only; build_app never calls them here."""

    def __getattr__(self, name: str) -> object:
        async def handler(request: object) -> None:
            raise AssertionError(name)

        return handler
