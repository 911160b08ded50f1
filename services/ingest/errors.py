"""One error hierarchy for ingest, mapped once per transport (HTTP status / gRPC code)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc


class IngestError(Exception):
    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL
    # A typed reason that clients (and dashboards) can switch on.
    reason = "internal_error"
    retry_after: int | None = None

    def __init__(
        self, message: str, *, field: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if reason is not None:
            self.reason = reason


class BadRequest(IngestError):
    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "schema_violation"


class NotFound(IngestError):
    http_status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND
    reason = "not_found"


class Unauthorized(IngestError):
    http_status = 401
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    reason = "unauthorized"


class Forbidden(IngestError):
    """A valid key without the scope the operation needs (``scope`` names it)."""

    http_status = 403
    grpc_code = grpc.StatusCode.PERMISSION_DENIED
    reason = "insufficient_scope"

    def __init__(self, message: str, scope: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.scope = scope


class PayloadTooLarge(IngestError):
    http_status = 413
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "size_violation"


class UnsupportedMediaType(IngestError):
    """A ``Content-Encoding`` the service cannot undo."""

    http_status = 415
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "unsupported_encoding"


class RequestTimeout(IngestError):
    http_status = 408
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "request_timeout"


class RateLimited(IngestError):
    http_status = 429
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(IngestError):
    http_status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE
    reason = "kafka_unavailable"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # Deliveries still undecided when the request was refused, in record order.
        self.pending_deliveries: list[asyncio.Future[Any]] = []
