"""The decorator every gRPC adapter puts on its methods: a core's status-carrying error becomes
its status code in this one place, and each call is counted by method and code and timed.

A service binds it once to its own error base class and metrics (see
``services/inference/grpc_common.py``); unexpected exceptions are logged and answered INTERNAL
with a message that reveals nothing.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from prometheus_client import Counter, Histogram

from shared.tracing import observe_with_exemplar

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]
Decorator = Callable[[Handler[Req, Resp]], Handler[Req, Resp]]


def rpc_decorator(
    error_type: type[Exception],
    requests: Counter,
    seconds: Histogram,
    log: logging.Logger,
) -> Callable[[str], Decorator[Any, Any]]:
    """``rpc(method)`` for a service whose core raises ``error_type`` (with a ``code``
    attribute); ``requests`` is labelled (method, code), ``seconds`` (method)."""

    def rpc(method: str) -> Decorator[Any, Any]:
        # Bound once per method: the common outcome and the latency series are hit every call.
        succeeded = requests.labels(method, grpc.StatusCode.OK.name)
        latency = seconds.labels(method)

        def wrap(fn: Handler[Req, Resp]) -> Handler[Req, Resp]:
            @functools.wraps(fn)
            async def handler(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
                started = time.perf_counter()
                code = grpc.StatusCode.OK
                try:
                    return await fn(self, request, context)
                except error_type as exc:
                    code = exc.code  # type: ignore[attr-defined]
                    await context.abort(code, str(exc))
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
                        requests.labels(method, code.name).inc()
                    # Inside the gRPC server span when tracing is on: a slow bucket names a trace.
                    observe_with_exemplar(latency, time.perf_counter() - started)

            return handler

        return wrap

    return rpc
