"""Unparseable request bytes get INVALID_ARGUMENT from a real grpc.aio server, for every call
shape; parseable ones reach the method unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from lumen.v1 import events_pb2

from shared.grpc_parsing import MalformedRequestInterceptor
from shared.grpc_server import HealthReporter, add_standard_services

GARBAGE = b"\xff\xff\xff\xff"  # an invalid field tag: no message parses from it
GOOD = events_pb2.DeleteUserRequest(user_id="u-1").SerializeToString()
REPLY = events_pb2.DeleteUserResponse


async def unary(request: events_pb2.DeleteUserRequest, context: object) -> object:
    return REPLY(message_id=request.user_id)


async def server_stream(
    request: events_pb2.DeleteUserRequest, context: object
) -> AsyncIterator[object]:
    yield REPLY(message_id=request.user_id)


async def client_stream(
    requests: AsyncIterator[events_pb2.DeleteUserRequest], context: object
) -> object:
    ids = [request.user_id async for request in requests]
    return REPLY(message_id=",".join(ids))


def handlers() -> grpc.GenericRpcHandler:
    parse = events_pb2.DeleteUserRequest.FromString
    write = REPLY.SerializeToString
    return grpc.method_handlers_generic_handler(
        "test.Parsing",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary, parse, write),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, parse, write),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, parse, write),
        },
    )


@asynccontextmanager
async def serving() -> AsyncIterator[grpc.aio.Channel]:
    """A server per test: grpc.aio objects belong to the event loop that made them."""
    server = grpc.aio.server(interceptors=[MalformedRequestInterceptor()])
    server.add_generic_rpc_handlers((handlers(),))
    # The standard services every Lumen server carries, behind the same interceptor.
    reporter = HealthReporter()
    add_standard_services(server, ["test.Parsing"], reporter)
    await reporter.set(["test.Parsing"], True)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


async def code_of(call: object) -> tuple[grpc.StatusCode, str]:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


async def test_unary_request() -> None:
    async with serving() as channel:
        await _unary_request(channel)


async def _unary_request(channel: grpc.aio.Channel) -> None:
    call = channel.unary_unary("/test.Parsing/Unary")
    assert REPLY.FromString(await call(GOOD)).message_id == "u-1"
    code, details = await code_of(call(GARBAGE))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid protobuf message" in details
    # The server keeps serving after a refusal.
    assert REPLY.FromString(await call(GOOD)).message_id == "u-1"


async def test_server_streaming_response() -> None:
    async with serving() as channel:
        await _server_streaming_response(channel)


async def _server_streaming_response(channel: grpc.aio.Channel) -> None:
    call = channel.unary_stream("/test.Parsing/ServerStream")
    replies = [REPLY.FromString(reply) async for reply in call(GOOD)]
    assert [reply.message_id for reply in replies] == ["u-1"]
    stream = call(GARBAGE)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in stream:
            pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_streaming_request_with_one_bad_message() -> None:
    async with serving() as channel:
        await _streaming_request_with_one_bad_message(channel)


async def _streaming_request_with_one_bad_message(channel: grpc.aio.Channel) -> None:
    call = channel.stream_unary("/test.Parsing/ClientStream")
    assert REPLY.FromString(await call(iter([GOOD, GOOD]))).message_id == "u-1,u-1"
    code, _ = await code_of(call(iter([GOOD, GARBAGE, GOOD])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_methods_stay_unimplemented() -> None:
    async with serving() as channel:
        await _unknown_methods_stay_unimplemented(channel)


async def _unknown_methods_stay_unimplemented(channel: grpc.aio.Channel) -> None:
    code, _ = await code_of(channel.unary_unary("/test.Parsing/Missing")(GOOD))
    assert code == grpc.StatusCode.UNIMPLEMENTED


async def test_health_watch_and_reflection_still_work() -> None:
    async with serving() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        check = await health.Check(health_pb2.HealthCheckRequest(service="test.Parsing"))
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        watch = health.Watch(health_pb2.HealthCheckRequest(service="test.Parsing"))
        first = await watch.read()  # a coroutine-style server stream (context.write)
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        listing = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = [s.name async for reply in listing for s in reply.list_services_response.service]
        assert "test.Parsing" in names and "grpc.health.v1.Health" in names
