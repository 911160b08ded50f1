"""The gRPC ``EventService``: the same ingestor as HTTP, its errors mapped to status codes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from lumen.v1 import events_pb2, events_pb2_grpc

from services.ingest import metrics
from services.ingest.auth import ADMIN, CATALOG, WRITE, Credential, KeyRing, key_from_authorization
from services.ingest.core import EventIngestor, IngestResult
from services.ingest.errors import BadRequest, Forbidden, IngestError, Unauthorized
from services.ingest.scopes import SCOPE
from shared.events import EVENT_TYPES, MAX_ID_LENGTH, OBJECT_FIELDS, STRING_FIELDS
from shared.tracing import observe_with_exemplar

SERVICE_NAME = events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name
ERRORS_TRAILER = "lumen-event-errors-bin"
# PublishStream hands events to Kafka in chunks of this many, so memory stays bounded.
STREAM_CHUNK = 500

# The proto enum names Segment's call types EVENT_TYPE_<TYPE>; a call type the enum lacks
# fails here, at import, instead of reaching Kafka as unknown(n).
_TYPE_NAMES = {
    events_pb2.EventType.Value(f"EVENT_TYPE_{call_type.upper()}"): call_type
    for call_type in EVENT_TYPES
}
_PROTO_NAME = {field.json_name: field.name for field in events_pb2.Event.DESCRIPTOR.fields}
# (proto field, Segment field); a Segment field the proto lacks fails here, at import.
_STRINGS = tuple((_PROTO_NAME[name], name) for name in STRING_FIELDS)
_STRUCTS = tuple((_PROTO_NAME[name], name) for name in OBJECT_FIELDS)
_TIMES = (("timestamp", "timestamp"), ("sent_at", "sentAt"))

Reply = TypeVar("Reply")


def event_to_dict(event: events_pb2.Event) -> dict[str, Any]:
    """The Segment JSON form of a protobuf event (empty proto3 fields are absent)."""
    out: dict[str, Any] = {}
    if event.type:
        out["type"] = _TYPE_NAMES.get(event.type, f"unknown({event.type})")
    for proto_name, json_name in _STRINGS:
        value = getattr(event, proto_name)
        if value:
            out[json_name] = value
    for proto_name, json_name in _STRUCTS:
        if event.HasField(proto_name):
            out[json_name] = json_format.MessageToDict(getattr(event, proto_name))
    for proto_name, json_name in _TIMES:
        if event.HasField(proto_name):
            out[json_name] = getattr(event, proto_name).ToJsonString()
    return out


def event_errors(result: IngestResult) -> list[events_pb2.EventError]:
    return [
        events_pb2.EventError(index=i, reason=r.reason, field=r.field, message=r.describe())
        for i, r in result.errors
    ]


class EventServicer(events_pb2_grpc.EventServiceServicer):
    def __init__(self, ingestor: EventIngestor, keys: KeyRing) -> None:
        self.ingestor = ingestor
        self.keys = keys

    def _credential(
        self, context: grpc.aio.ServicerContext, scope: str | None = None
    ) -> Credential:
        metadata = dict(context.invocation_metadata() or ())
        key = key_from_authorization(metadata.get("authorization"))
        if key is None:
            raise Unauthorized("a write key is required in the `authorization` metadata")
        credential = self.keys.credential_for(key)
        if credential is None:
            raise Unauthorized("unknown write key")
        if scope is not None and not credential.allows(scope):
            raise Forbidden(f"this operation needs a key with scope `{scope}`", scope)
        return credential

    async def _publish(
        self, events: list[events_pb2.Event], credential: Credential
    ) -> IngestResult:
        if not events:
            raise BadRequest("the request holds no events", field="events")
        self.ingestor.check_count(len(events))
        items = [event_to_dict(e) for e in events]
        return await self.ingestor.ingest(
            items, None, credential.source, transport="grpc", scopes=credential.scopes
        )

    async def Publish(
        self, request: events_pb2.PublishRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.PublishResponse:
        async def run() -> events_pb2.PublishResponse:
            result = await self._publish(list(request.events), self._credential(context, WRITE))
            await _refuse_if_nothing_valid(result, context)
            return events_pb2.PublishResponse(
                accepted=result.accepted, duplicates=result.duplicates, errors=event_errors(result)
            )

        return await _call("Publish", context, run)

    async def PublishStream(
        self,
        request_iterator: AsyncIterator[events_pb2.PublishStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> events_pb2.PublishStreamResponse:
        async def run() -> events_pb2.PublishStreamResponse:
            credential = self._credential(context, WRITE)
            total = IngestResult(report_limit=self.ingestor.settings.max_reported_errors)
            pending: list[events_pb2.Event] = []
            offset = 0
            async for message in request_iterator:
                pending.extend(message.events)
                if len(pending) >= STREAM_CHUNK:
                    total.merge(await self._publish(pending, credential), offset)
                    offset += len(pending)
                    pending = []
            if pending:
                total.merge(await self._publish(pending, credential), offset)
            elif offset == 0:
                raise BadRequest("the stream held no events", field="events")
            await _refuse_if_nothing_valid(total, context)
            return events_pb2.PublishStreamResponse(
                accepted=total.accepted, duplicates=total.duplicates, errors=event_errors(total)
            )

        return await _call("PublishStream", context, run)

    async def DeleteUser(
        self, request: events_pb2.DeleteUserRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.DeleteUserResponse:
        async def run() -> events_pb2.DeleteUserResponse:
            credential = self._credential(context, ADMIN)
            if not request.user_id or len(request.user_id) > MAX_ID_LENGTH:
                raise BadRequest(
                    f"user_id must be 1 to {MAX_ID_LENGTH} characters", field="user_id"
                )
            message_id = await self.ingestor.delete_user(request.user_id, credential.source)
            return events_pb2.DeleteUserResponse(message_id=message_id)

        return await _call("DeleteUser", context, run)


async def _refuse_if_nothing_valid(result: IngestResult, context: grpc.aio.ServicerContext) -> None:
    """All events invalid -> INVALID_ARGUMENT naming each field (partial success is OK)."""
    if result.errors and result.accepted == 0 and result.duplicates == 0:
        if all(r.reason == SCOPE for _, r in result.errors) and not result.unreported:
            raise Forbidden(result.errors[0][1].describe(), CATALOG, field="event")
        first = "; ".join(f"event {i}: {r.describe()}" for i, r in result.errors[:3])
        more = f" (and {result.rejected - 3} more)" if result.rejected > 3 else ""
        details = events_pb2.PublishErrorDetails(errors=event_errors(result))
        context.set_trailing_metadata(((ERRORS_TRAILER, details.SerializeToString()),))
        raise BadRequest(first + more, field=result.errors[0][1].field)


async def _call(
    method: str, context: grpc.aio.ServicerContext, run: Callable[[], Awaitable[Reply]]
) -> Reply:
    """Count, time and translate errors for one RPC."""
    started = time.perf_counter()
    code = grpc.StatusCode.OK
    metrics.IN_FLIGHT.inc()
    try:
        return await run()
    except IngestError as error:
        code = error.grpc_code
        trailers = tuple(context.trailing_metadata() or ())
        if error.retry_after:
            trailers += (("retry-after", str(error.retry_after)),)
        await context.abort(code, error.message, trailers)
        raise AssertionError("abort() raises") from error
    finally:
        metrics.IN_FLIGHT.dec()
        metrics.REQUESTS.labels("grpc", method, code.name).inc()
        observe_with_exemplar(
            metrics.REQUEST_SECONDS.labels("grpc", method), time.perf_counter() - started
        )
