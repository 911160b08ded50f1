"""One error hierarchy for the insights core, mapped to gRPC status codes once (grpc_api.py)."""

from __future__ import annotations

import grpc


class InsightsError(Exception):
    """Base class; ``code`` is the gRPC status the transport answers with; the message is
    safe to send to the client."""

    code = grpc.StatusCode.INTERNAL


class InvalidArgument(InsightsError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(InsightsError):
    code = grpc.StatusCode.NOT_FOUND


class NotEnoughHistory(InsightsError):
    code = grpc.StatusCode.FAILED_PRECONDITION
