"""One error hierarchy for every call the client makes, keyed by gRPC status code."""

from __future__ import annotations

import grpc


class LumenError(Exception):
    """A call failed; ``code`` is the gRPC status code, ``details`` the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class NotFound(LumenError):
    """The user, profile or model does not exist."""


class InvalidArgument(LumenError):
    """The request was refused as invalid; ``details`` names the field."""


class Unauthenticated(LumenError):
    """A write key or bearer token is missing or wrong."""


class Unavailable(LumenError):
    """The server could not be reached (after every retry)."""


class DeadlineExceeded(LumenError):
    """The call did not finish within its deadline."""


class ResourceExhausted(LumenError):
    """A rate limit was hit; retry later."""


_BY_CODE: dict[grpc.StatusCode, type[LumenError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
}


def from_rpc_error(error: grpc.RpcError) -> LumenError:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else None) or str(error)
    return _BY_CODE.get(code, LumenError)(code, details)
