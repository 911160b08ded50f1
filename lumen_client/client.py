"""``LumenClient``: typed calls to Lumen's gRPC APIs over reused channels.

Every call has a deadline (``timeout`` seconds, per call or the client's default) that also
bounds its retries; UNAVAILABLE is retried with exponential backoff and jitter. Inference
calls (recommend, classify, search, profile, model metadata) go to ``target``; event
publishing goes to ``ingest_target`` with the source's write key.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import grpc
import inference.grpc_service_pb2 as v2_pb
import inference.grpc_service_pb2_grpc as v2_grpc
from google.protobuf import json_format, struct_pb2, timestamp_pb2
from lumen.v1 import (
    events_pb2,
    events_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
)

from lumen_client.errors import NotFound, from_rpc_error
from lumen_client.retry import Retrier, RetryPolicy
from lumen_client.types import (
    EventError,
    IntentBatchResult,
    IntentPrediction,
    IntentResult,
    IntentScore,
    Model,
    Profile,
    PublishResult,
    Recommendations,
    RecommendedItem,
    Rfm,
    SearchHit,
    SearchResults,
)

T = TypeVar("T")

DEFAULT_TARGET = "127.0.0.1:50052"
DEFAULT_INGEST_TARGET = "127.0.0.1:50051"
DEFAULT_WRITE_KEY = "lumen-dev-key"
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 0),
    # The client does its own retries (with a shared deadline); no hidden second layer.
    ("grpc.enable_retries", 0),
)
_SOURCES = {
    inference_pb2.RECOMMENDATION_SOURCE_PERSONALISED: "personalised",
    inference_pb2.RECOMMENDATION_SOURCE_TRENDING: "trending",
    inference_pb2.RECOMMENDATION_SOURCE_TRENDING_DEGRADED: "trending_degraded",
}
_EVENT_TYPES = {
    "track": events_pb2.EVENT_TYPE_TRACK,
    "identify": events_pb2.EVENT_TYPE_IDENTIFY,
    "page": events_pb2.EVENT_TYPE_PAGE,
    "screen": events_pb2.EVENT_TYPE_SCREEN,
    "group": events_pb2.EVENT_TYPE_GROUP,
    "alias": events_pb2.EVENT_TYPE_ALIAS,
}
_EVENT_STRINGS = {
    "userId": "user_id", "anonymousId": "anonymous_id", "event": "event",
    "messageId": "message_id", "previousId": "previous_id", "groupId": "group_id",
    "name": "name", "category": "category",
}  # fmt: skip
_EVENT_STRUCTS = ("properties", "traits", "context", "integrations")


class LumenClient:
    """Typed client of the inference and ingest gRPC APIs; use it as a context manager.

    ``retries`` is a ``RetryPolicy`` or the number of attempts (1 = no retry). ``token`` is the
    inference bearer token (``LUMEN_INFERENCE_AUTH_TOKEN`` on the server; without it the
    server answers UNAUTHENTICATED unless it runs in development mode); when not given it is
    read from ``LUMEN_INFERENCE_TOKEN``.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = 5.0,
        retries: RetryPolicy | int = 4,
        ingest_target: str | None = None,
        write_key: str | None = None,
        token: str | None = None,
    ) -> None:
        self.target = target or os.environ.get("LUMEN_INFERENCE_TARGET", DEFAULT_TARGET)
        self.ingest_target = ingest_target or os.environ.get(
            "LUMEN_INGEST_GRPC_TARGET", DEFAULT_INGEST_TARGET
        )
        self.timeout = timeout
        self.policy = retries if isinstance(retries, RetryPolicy) else RetryPolicy(retries)
        self.retrier = Retrier(self.policy)
        self.write_key = write_key or os.environ.get("LUMEN_WRITE_KEY", DEFAULT_WRITE_KEY)
        self.token = token if token is not None else os.environ.get("LUMEN_INFERENCE_TOKEN")
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------

    def channel(self, target: str) -> grpc.Channel:
        """The one channel per target, created on first use and reused by every call."""
        with self._lock:
            if target not in self._channels:
                self._channels[target] = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
            return self._channels[target]

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()

    def __enter__(self) -> LumenClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self,
        method: Callable[..., T],
        request: Any,
        timeout: float | None,
        metadata: Sequence[tuple[str, str]] = (),
        idempotent: bool = True,
    ) -> T:
        budget = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + budget

        def attempt(remaining: float | None) -> T:
            return method(request, timeout=max(remaining or 0.0, 0.001), metadata=metadata)

        try:
            return self.retrier.call(attempt, deadline, idempotent)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def _inference_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    # -- inference --------------------------------------------------------------------------

    def recommend(
        self,
        user_id: str | None = None,
        *,
        anonymous_id: str | None = None,
        k: int = 10,
        exclude_seen: bool = True,
        categories: Sequence[str] = (),
        context_item_ids: Sequence[str] = (),
        timeout: float | None = None,
    ) -> Recommendations:
        if (user_id is None) == (anonymous_id is None):
            raise ValueError("give exactly one of user_id and anonymous_id")
        request = inference_pb2.RecommendRequest(
            k=k, exclude_seen=exclude_seen, categories=list(categories),
            context_item_ids=list(context_item_ids),
        )  # fmt: skip
        if user_id is not None:
            request.user_id = user_id
        else:
            request.anonymous_id = anonymous_id or ""
        stub = inference_pb2_grpc.RecommendationServiceStub(self.channel(self.target))
        reply = self._call(stub.Recommend, request, timeout, self._inference_metadata())
        return Recommendations(
            items=[
                RecommendedItem(i.item_id, i.title, i.score, i.reason, list(i.categories))
                for i in reply.items
            ],
            source=_SOURCES.get(reply.source, "unspecified"),
            model=Model(reply.model_name, reply.model_version),
            recommendation_id=reply.recommendation_id,
        )

    def classify_intent(self, text: str, *, top_k: int = 3,
                        timeout: float | None = None) -> IntentResult:  # fmt: skip
        stub = inference_pb2_grpc.IntentServiceStub(self.channel(self.target))
        request = inference_pb2.ClassifyIntentRequest(text=text, top_k=top_k)
        reply = self._call(stub.ClassifyIntent, request, timeout, self._inference_metadata())
        return IntentResult(_prediction(reply.prediction),
                            Model(reply.model_name, reply.model_version))  # fmt: skip

    def classify_intents(self, texts: Sequence[str], *, top_k: int = 3,
                         timeout: float | None = None) -> IntentBatchResult:  # fmt: skip
        stub = inference_pb2_grpc.IntentServiceStub(self.channel(self.target))
        request = inference_pb2.ClassifyIntentBatchRequest(texts=list(texts), top_k=top_k)
        reply = self._call(stub.ClassifyIntentBatch, request, timeout, self._inference_metadata())
        return IntentBatchResult([_prediction(p) for p in reply.predictions],
                                 Model(reply.model_name, reply.model_version))  # fmt: skip

    def search_items(self, query: str, *, k: int = 10, categories: Sequence[str] = (),
                     timeout: float | None = None) -> SearchResults:  # fmt: skip
        stub = inference_pb2_grpc.SearchServiceStub(self.channel(self.target))
        request = inference_pb2.SearchItemsRequest(query=query, k=k, categories=list(categories))
        reply = self._call(stub.SearchItems, request, timeout, self._inference_metadata())
        return SearchResults(
            [SearchHit(h.item_id, h.title, h.score, list(h.categories)) for h in reply.hits],
            Model(reply.model_name, reply.model_version),
        )

    def get_profile(self, user_id: str | None = None, *, anonymous_id: str | None = None,
                    timeout: float | None = None) -> Profile:  # fmt: skip
        """The user's profile; raises ``lumen_client.NotFound`` for an unknown user."""
        if (user_id is None) == (anonymous_id is None):
            raise ValueError("give exactly one of user_id and anonymous_id")
        request = (profiles_pb2.GetProfileRequest(user_id=user_id) if user_id is not None
                   else profiles_pb2.GetProfileRequest(anonymous_id=anonymous_id))  # fmt: skip
        stub = profiles_pb2_grpc.ProfileServiceStub(self.channel(self.target))
        reply = self._call(stub.GetProfile, request, timeout, self._inference_metadata())
        return _profile(reply.profile)

    def model_versions(self, names: Iterable[str],
                       timeout: float | None = None) -> dict[str, str | None]:  # fmt: skip
        """Loaded version of each named model (Open Inference Protocol ModelMetadata);
        ``None`` for a model the server does not serve."""
        stub = v2_grpc.GRPCInferenceServiceStub(self.channel(self.target))
        versions: dict[str, str | None] = {}
        for name in names:
            try:
                reply = self._call(stub.ModelMetadata, v2_pb.ModelMetadataRequest(name=name),
                                   timeout, self._inference_metadata())  # fmt: skip
            except NotFound:
                versions[name] = None
                continue
            versions[name] = ",".join(reply.versions) or None
        return versions

    # -- ingest -----------------------------------------------------------------------------

    def publish_events(self, events: Sequence[Mapping[str, Any]], *,
                       timeout: float | None = None) -> PublishResult:  # fmt: skip
        """Publish Segment-style events (``{"type": "track", "userId": ..., ...}``) through
        ingest's EventService. Retried on UNAVAILABLE only when every event has a
        ``messageId`` (ingest then drops the copies it already stored)."""
        request = events_pb2.PublishRequest(events=[event_message(e) for e in events])
        idempotent = all(e.get("messageId") for e in events)
        stub = events_pb2_grpc.EventServiceStub(self.channel(self.ingest_target))
        metadata = (("authorization", f"Bearer {self.write_key}"),)
        reply = self._call(stub.Publish, request, timeout, metadata, idempotent=idempotent)
        return PublishResult(
            reply.accepted, reply.duplicates,
            [EventError(e.index, e.reason, e.field, e.message) for e in reply.errors],
        )  # fmt: skip


def event_message(event: Mapping[str, Any]) -> events_pb2.Event:
    """Segment JSON (camelCase keys, as the HTTP API takes it) -> ``lumen.v1.Event``."""
    kind = str(event.get("type", "track")).lower()
    if kind not in _EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r}")
    message = events_pb2.Event(type=_EVENT_TYPES[kind])
    for key, attr in _EVENT_STRINGS.items():
        if event.get(key) is not None:
            setattr(message, attr, str(event[key]))
    for key in _EVENT_STRUCTS:
        if event.get(key):
            getattr(message, key).update(event[key])
    for key, attr in (("timestamp", "timestamp"), ("sentAt", "sent_at")):
        if event.get(key) is not None:
            getattr(message, attr).CopyFrom(_timestamp(event[key]))
    return message


def _timestamp(value: str | datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    if isinstance(value, datetime):
        stamp.FromDatetime(value)
    else:
        stamp.FromJsonString(value)
    return stamp


def _prediction(p: inference_pb2.IntentPrediction) -> IntentPrediction:
    return IntentPrediction(p.intent, p.confidence, p.out_of_scope,
                            [IntentScore(a.intent, a.confidence) for a in p.alternatives])  # fmt: skip


def _iso(stamp: timestamp_pb2.Timestamp, present: bool) -> str | None:
    return stamp.ToJsonString() if present else None


def _struct(value: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(value)


def _profile(p: profiles_pb2.Profile) -> Profile:
    return Profile(
        id=p.id, user_id=p.user_id, anonymous_ids=list(p.anonymous_ids),
        traits=_struct(p.traits),
        first_seen=_iso(p.first_seen, p.HasField("first_seen")),
        last_seen=_iso(p.last_seen, p.HasField("last_seen")),
        event_counts_by_type=dict(p.event_counts_by_type),
        event_counts_by_name=dict(p.event_counts_by_name),
        sessions=p.sessions, active_days=p.active_days, recent_items=list(p.recent_items),
        category_affinity=dict(p.category_affinity), purchased_items=list(p.purchased_items),
        purchases=p.purchases, revenue=p.revenue,
        rfm=Rfm(p.rfm.recency, p.rfm.frequency, p.rfm.monetary, p.rfm.segment)
        if p.HasField("rfm") else None,
        updated_at=_iso(p.updated_at, p.HasField("updated_at")), version=p.version,
    )  # fmt: skip
