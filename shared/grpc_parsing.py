"""Unparseable request messages answered with INVALID_ARGUMENT.

grpcio answers a request whose bytes do not parse as the method's message with UNKNOWN (or
INTERNAL), before any servicer code runs. For a client that is the wrong signal: the fault is
in its request, not in the server. This interceptor swaps each method's request deserializer
for one that never raises and lets the method refuse such a request with INVALID_ARGUMENT.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc


class Unparseable:
    """What the safe deserializer returns for bytes that are not the expected message."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def safe_deserializer(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as exc:  # protobuf's DecodeError and whatever a parser may raise
            return Unparseable(f"the request is not a valid protobuf message: {exc}")

    return deserialize


async def _refuse(context: grpc.aio.ServicerContext, request: Unparseable) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)


async def _checked(
    requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, Unparseable):
            await _refuse(context, request)
        yield request


def _unary_request(behavior: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a method taking one request; keep its kind (coroutine or async generator),
    which grpc.aio inspects to decide how to drive it."""
    if inspect.isasyncgenfunction(behavior):

        async def stream_out(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if isinstance(request, Unparseable):
                await _refuse(context, request)
            async for response in behavior(request, context):
                yield response

        return stream_out

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Unparseable):
            await _refuse(context, request)
        result = behavior(request, context)
        return await result if inspect.isawaitable(result) else result

    return call


def _streaming_request(behavior: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a method taking a request stream: each message is checked as it is read."""
    if inspect.isasyncgenfunction(behavior):

        async def stream_out(
            requests: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            async for response in behavior(_checked(requests, context), context):
                yield response

        return stream_out

    async def call(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        result = behavior(_checked(requests, context), context)
        return await result if inspect.isawaitable(result) else result

    return call


class MalformedRequestInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        # Unknown methods (None) and raw-bytes handlers have nothing to parse.
        if handler is None or handler.request_deserializer is None:
            return handler
        kind = "stream" if handler.request_streaming else "unary"
        kind += "_stream" if handler.response_streaming else "_unary"
        wrap = _streaming_request if handler.request_streaming else _unary_request
        # RpcMethodHandler is a namedtuple: the same handler with a parser that never raises.
        return handler._replace(
            request_deserializer=safe_deserializer(handler.request_deserializer),
            **{kind: wrap(getattr(handler, kind))},
        )
