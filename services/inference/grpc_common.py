"""What every gRPC adapter of the inference server shares: error mapping, deadlines,
per-method metrics. The cores raise :class:`InferenceError`; this is the one place that
turns it into a status code."""

from __future__ import annotations

import logging
import time

import grpc

from services.inference import metrics
from services.inference.errors import InferenceError
from shared.grpc_rpc import rpc_decorator

log = logging.getLogger(__name__)


def deadline_of(context: grpc.aio.ServicerContext) -> float | None:
    """The caller's deadline on the monotonic clock, or None when it sent none."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


# Map core errors to status codes and record each call's outcome and latency.
rpc = rpc_decorator(InferenceError, metrics.GRPC_REQUESTS, metrics.GRPC_SECONDS, log)
