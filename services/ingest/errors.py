"""One error hierarchy for ingest, mapped once per transport (HTTP status / gRPC code)."""

from __future__ import annotations

import grpc


class IngestError(Exception):
    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL
    retry_after: int | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequest(IngestError):
    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class Unauthorized(IngestError):
    http_status = 401
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class PayloadTooLarge(IngestError):
    http_status = 413
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class RateLimited(IngestError):
    http_status = 429
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(IngestError):
    http_status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
