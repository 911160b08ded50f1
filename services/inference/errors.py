"""One error hierarchy for the inference core, mapped to gRPC status codes once."""

from __future__ import annotations

import grpc


class InferenceError(Exception):
    """Base class; ``code`` is the gRPC status the transport answers with."""

    code = grpc.StatusCode.INTERNAL


class NotFound(InferenceError):
    """Unknown model, or a version that is not loaded."""

    code = grpc.StatusCode.NOT_FOUND


class InvalidArgument(InferenceError):
    """The request cannot be served as sent (shape, dtype, text, k)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class Unavailable(InferenceError):
    """The model is loading or the server is shutting down; retrying may succeed."""

    code = grpc.StatusCode.UNAVAILABLE


class ResourceExhausted(InferenceError):
    """A bounded queue is full: the caller should back off and retry."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(InferenceError):
    """The request's deadline passed before its model answered (queued or running)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ModelRefused(InferenceError):
    """A model version failed validation at load time (never sent to clients)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
