"""What every gRPC adapter of the inference server shares: error mapping, deadlines,
per-method metrics. The cores raise :class:`InferenceError`; this is the one place that
turns it into a status code."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from services.inference import metrics
from services.inference.errors import InferenceError

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]


def deadline_of(context: grpc.aio.ServicerContext) -> float | None:
    """The caller's deadline on the monotonic clock, or None when it sent none."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def rpc(method: str) -> Callable[[Handler[Req, Resp]], Handler[Req, Resp]]:
    """Map core errors to status codes and record the call's outcome and latency."""

    # Bound once per method: the common outcome and the latency series are hit every call.
    succeeded = metrics.GRPC_REQUESTS.labels(method, grpc.StatusCode.OK.name)
    seconds = metrics.GRPC_SECONDS.labels(method)

    def wrap(fn: Handler[Req, Resp]) -> Handler[Req, Resp]:
        @functools.wraps(fn)
        async def handler(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                return await fn(self, request, context)
            except InferenceError as exc:
                code = exc.code
                await context.abort(exc.code, str(exc))
                raise  # abort() raises; keeps type checkers satisfied
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("unexpected error", extra={"fields": {"method": method}})
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
                raise
            finally:
                if code is grpc.StatusCode.OK:
                    succeeded.inc()
                else:
                    metrics.GRPC_REQUESTS.labels(method, code.name).inc()
                seconds.observe(time.perf_counter() - started)

        return handler

    return wrap
