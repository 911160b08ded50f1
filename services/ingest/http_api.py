"""The Segment-compatible HTTP API (Starlette), a thin adapter over ``EventIngestor``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from services.ingest import metrics
from services.ingest.auth import ADMIN, CATALOG, WRITE, Credential, KeyRing, key_from_authorization
from services.ingest.core import EventIngestor, IngestResult
from services.ingest.decompress import BoundedDecoder, parse_content_encoding
from services.ingest.errors import (
    BadRequest,
    Forbidden,
    IngestError,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    Unauthorized,
)
from services.ingest.openapi import openapi_document
from services.ingest.scopes import SCOPE
from shared.events import EVENT_TYPES, MAX_ID_LENGTH
from shared.tracing import observe_with_exemplar


def json_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def error_response(error: IngestError) -> Response:
    body: dict[str, Any] = {"success": False, "error": error.message, "reason": error.reason}
    body.update(library_error(error.reason, error.message))
    if error.field:
        body["field"] = error.field
    if isinstance(error, Forbidden):
        body["scope"] = error.scope
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    if isinstance(error, Unauthorized):
        headers = {"WWW-Authenticate": 'Basic realm="lumen"'}
    return json_response(body, error.http_status, headers)


def library_error(code: str, message: str) -> dict[str, str]:
    """``code`` and ``message``: where Segment's and RudderStack's libraries read an error
    (RudderStack's fails on a non-200 body without them, and then retries a refused batch)."""
    return {"code": code, "message": message}


def result_body(result: IngestResult) -> dict[str, Any]:
    body: dict[str, Any] = {"success": True}
    if result.duplicates:
        body["duplicates"] = result.duplicates
    if result.rejected:
        body["accepted"] = result.accepted
        body["rejected"] = [
            {"index": i, "reason": r.reason, "field": r.field, "message": r.describe()}
            for i, r in result.errors
        ]
        # The list stops at LUMEN_INGEST_MAX_REPORTED_ERRORS; the count covers every refusal.
        body["rejectedCount"] = result.rejected
    return body


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as utf8:
            raise BadRequest(
                f"body is not valid UTF-8 (byte {utf8.start})", field="body", reason="invalid_utf8"
            ) from None
        raise BadRequest(
            f"body is not valid JSON: {exc}", field="body", reason="malformed_json"
        ) from None


def merge_batch_defaults(body: dict[str, Any], item: Any) -> Any:
    """Batch-level ``context`` and ``integrations`` apply to every event that lacks them."""
    if not isinstance(item, dict):
        return item
    for name in ("context", "integrations"):
        shared = body.get(name)
        if isinstance(shared, dict) and shared:
            own = item.get(name)
            if own is None:
                item[name] = shared
            elif isinstance(own, dict):
                item[name] = {**shared, **own}
    return item


class HttpApi:
    def __init__(self, ingestor: EventIngestor, keys: KeyRing) -> None:
        self.ingestor = ingestor
        self.keys = keys
        self.max_request_bytes = ingestor.settings.max_request_bytes

    async def read_json(self, request: Request) -> Any:
        """The parsed body; a gzip or deflate body is decompressed as it arrives, and the
        decompressed size is held to the same limit as an uncompressed body."""
        encoding = parse_content_encoding(request.headers.get("content-encoding"))
        declared = request.headers.get("content-length")
        too_large = PayloadTooLarge(
            f"request body is larger than {self.max_request_bytes} bytes", field="body"
        )
        if declared and declared.isdigit() and int(declared) > self.max_request_bytes:
            raise too_large
        decoder = BoundedDecoder(encoding, self.max_request_bytes) if encoding else None
        chunks: list[bytes] = []
        size = 0
        timeout = self.ingestor.settings.body_timeout_seconds
        try:
            # A slow or never-finishing body must not hold a connection and a task forever.
            async with asyncio.timeout(timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self.max_request_bytes:
                        raise too_large
                    chunks.append(decoder.feed(chunk) if decoder else chunk)
        except ClientDisconnect:
            raise BadRequest("client disconnected before the body was complete") from None
        except TimeoutError:
            raise RequestTimeout(
                f"the request body was not complete within {timeout:g} s", field="body"
            ) from None
        if decoder:
            chunks.append(decoder.finish())
        return parse_json(b"".join(chunks))

    def authenticate(self, request: Request, body: Any, scope: str | None = None) -> Credential:
        """The caller's credential; ``scope``, when given, must be one of its scopes."""
        key = key_from_authorization(request.headers.get("authorization"))
        if key is None and isinstance(body, dict) and isinstance(body.get("writeKey"), str):
            key = body["writeKey"]
        if isinstance(body, dict):
            body.pop("writeKey", None)  # never written to Kafka
        if key is None:
            raise Unauthorized("a write key is required (HTTP Basic `writeKey:` or `writeKey`)")
        credential = self.keys.credential_for(key)
        if credential is None:
            raise Unauthorized("unknown write key")
        if scope is not None and not credential.allows(scope):
            raise Forbidden(f"this operation needs a key with scope `{scope}`", scope)
        return credential

    async def single(self, request: Request) -> Response:
        call_type = request.path_params["call_type"]
        if call_type not in EVENT_TYPES:
            raise NotFound(f"unknown call type {call_type!r}", field="type")
        body = await self.read_json(request)
        credential = self.authenticate(request, body, WRITE)
        result = await self.ingestor.ingest(
            [body], call_type, credential.source, scopes=credential.scopes
        )
        if result.errors:
            _, rejection = result.errors[0]
            if rejection.reason == SCOPE:
                raise Forbidden(rejection.describe(), CATALOG, field=rejection.field)
            raise BadRequest(rejection.describe(), field=rejection.field, reason=rejection.reason)
        return json_response(result_body(result))

    async def batch(self, request: Request) -> Response:
        return await self._batch(request, admin=False)

    async def import_(self, request: Request) -> Response:
        """Bulk loads and replays are an operator's job: an admin key, any event type."""
        return await self._batch(request, admin=True)

    async def _batch(self, request: Request, admin: bool) -> Response:
        body = await self.read_json(request)
        credential = self.authenticate(request, body, ADMIN if admin else WRITE)
        scopes = credential.scopes | {WRITE, CATALOG} if admin else credential.scopes
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
            raise BadRequest("body must be an object with a `batch` array", field="batch")
        if not body["batch"]:
            raise BadRequest("`batch` is empty", field="batch")
        self.ingestor.check_count(len(body["batch"]))
        sent_at = body.get("sentAt") if isinstance(body.get("sentAt"), str) else None
        items = [merge_batch_defaults(body, item) for item in body["batch"]]
        result = await self.ingestor.ingest(items, None, credential.source, sent_at, scopes=scopes)
        if result.accepted == 0 and result.duplicates == 0 and result.rejected:
            first = result.errors[0][1] if result.errors else None
            refused = library_error(
                first.reason if first else "schema_violation",
                f"no event accepted: {first.describe() if first else 'every event was refused'}",
            )
            return json_response({**result_body(result), "success": False, **refused}, 400)
        return json_response(result_body(result))

    async def delete_user(self, request: Request) -> Response:
        credential = self.authenticate(request, None, ADMIN)
        user_id = request.path_params["user_id"]
        if not user_id or len(user_id) > MAX_ID_LENGTH:
            raise BadRequest(f"userId must be 1 to {MAX_ID_LENGTH} characters", field="userId")
        message_id = await self.ingestor.delete_user(user_id, credential.source)
        return json_response({"success": True, "messageId": message_id}, 202)

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if self.ingestor.producer.ready:
            return json_response({"status": "ready"})
        return json_response({"status": "kafka unreachable"}, 503)

    async def openapi(self, request: Request) -> Response:
        return json_response(openapi_document())


def instrumented(
    route: str, handler: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """Count, time and translate errors for one route."""

    # Labelled children looked up once, not per request.
    duration = metrics.REQUEST_SECONDS.labels("http", route)
    by_status: dict[int, Counter] = {}

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        metrics.IN_FLIGHT.inc()
        try:
            response = await handler(request)
        except IngestError as error:
            response = error_response(error)
        finally:
            metrics.IN_FLIGHT.dec()
        status = response.status_code
        counter = by_status.get(status)
        if counter is None:
            counter = by_status[status] = metrics.REQUESTS.labels("http", route, str(status))
        counter.inc()
        observe_with_exemplar(duration, time.perf_counter() - started)
        return response

    return endpoint


def build_app(api: HttpApi) -> Starlette:
    routes = [
        Route("/v1/batch", instrumented("/v1/batch", api.batch), methods=["POST"]),
        Route("/v1/import", instrumented("/v1/import", api.import_), methods=["POST"]),
        Route(
            "/v1/users/{user_id:str}",
            instrumented("/v1/users/{userId}", api.delete_user),
            methods=["DELETE"],
        ),
        Route("/v1/{call_type:str}", instrumented("/v1/{type}", api.single), methods=["POST"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/readyz", api.readyz, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
    ]
    return Starlette(routes=routes)
