"""What the sync and asyncio clients share: settings, channel set-up, requests and results."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Union

import grpc
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from lumen_client._proto.lumen.v1 import events_pb2, inference_pb2, profiles_pb2, support_pb2
from lumen_client.retry import NO_RETRY, RetryPolicy
from lumen_client.types import (
    EventError,
    IntentBatchResult,
    IntentPrediction,
    IntentResult,
    IntentScore,
    Model,
    Passage,
    Profile,
    PublishResult,
    Recommendations,
    RecommendedItem,
    Rfm,
    SearchHit,
    SearchResults,
    SuggestedReply,
    Touch,
)

DEFAULT_TARGET = "127.0.0.1:50052"
DEFAULT_INGEST_TARGET = "127.0.0.1:50051"
DEFAULT_WRITE_KEY = "lumen-dev-key"
INFERENCE_SERVICES = (
    "lumen.v1.RecommendationService",
    "lumen.v1.IntentService",
    "lumen.v1.SearchService",
    "lumen.v1.SupportService",
    "lumen.v1.ProfileService",
    "inference.GRPCInferenceService",
)
INGEST_SERVICES = ("lumen.v1.EventService",)
# PEM given as bytes, or the path of a PEM file.
Pem = Union[bytes, str, "os.PathLike[str]"]
Metadata = tuple[tuple[str, str], ...]

_SOURCES = {
    inference_pb2.RECOMMENDATION_SOURCE_PERSONALISED: "personalised",
    inference_pb2.RECOMMENDATION_SOURCE_TRENDING: "trending",
    inference_pb2.RECOMMENDATION_SOURCE_TRENDING_DEGRADED: "trending_degraded",
}
_REASON_KINDS = {
    inference_pb2.REASON_KIND_COLLABORATIVE: "collaborative",
    inference_pb2.REASON_KIND_CONTENT: "content",
    inference_pb2.REASON_KIND_TRENDING: "trending",
    inference_pb2.REASON_KIND_POPULAR: "popular",
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
    "userId": "user_id",
    "anonymousId": "anonymous_id",
    "event": "event",
    "messageId": "message_id",
    "previousId": "previous_id",
    "groupId": "group_id",
    "name": "name",
    "category": "category",
}
_EVENT_STRUCTS = ("properties", "traits", "context", "integrations")


class Settings:
    """The constructor arguments both clients take, with their environment defaults."""

    def __init__(
        self,
        target: str | None,
        *,
        timeout: float,
        retries: RetryPolicy | int,
        ingest_target: str | None,
        write_key: str | None,
        token: str | None,
        tls: bool,
        root_certificates: Pem | None,
        certificate_chain: Pem | None,
        private_key: Pem | None,
    ) -> None:
        self.target = target or os.environ.get("LUMEN_INFERENCE_TARGET", DEFAULT_TARGET)
        self.ingest_target = ingest_target or os.environ.get(
            "LUMEN_INGEST_GRPC_TARGET", DEFAULT_INGEST_TARGET
        )
        self.timeout = timeout
        self.policy = retries if isinstance(retries, RetryPolicy) else RetryPolicy(retries)
        self.write_key = write_key or os.environ.get("LUMEN_WRITE_KEY", DEFAULT_WRITE_KEY)
        self.token = token if token is not None else os.environ.get("LUMEN_INFERENCE_TOKEN")
        if (certificate_chain is None) != (private_key is None):
            raise ValueError("give certificate_chain and private_key together (mTLS)")
        self.credentials: grpc.ChannelCredentials | None = None
        if tls or root_certificates is not None or certificate_chain is not None:
            # Without root_certificates gRPC trusts the system's default roots.
            self.credentials = grpc.ssl_channel_credentials(
                root_certificates=_pem(root_certificates),
                private_key=_pem(private_key),
                certificate_chain=_pem(certificate_chain),
            )

    def deadline(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    def options(self, target: str, retrying: bool) -> list[tuple[str, Any]]:
        """Channel options: keepalive, and gRPC's retry policy for the target's services
        (none at all on the channel for non-idempotent writes)."""
        services: tuple[str, ...] = ()
        if target == self.target:
            services += INFERENCE_SERVICES
        if target == self.ingest_target:
            services += INGEST_SERVICES
        services = services or INFERENCE_SERVICES + INGEST_SERVICES
        policy = self.policy if retrying else NO_RETRY
        return [
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 0),
            ("grpc.enable_retries", 1 if retrying and policy.max_attempts > 1 else 0),
            ("grpc.service_config", policy.service_config(services)),
        ]

    def inference_metadata(self) -> Metadata:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def ingest_metadata(self) -> Metadata:
        return (("authorization", f"Bearer {self.write_key}"),)


def _pem(value: Pem | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


# -- requests ---------------------------------------------------------------------------------


def recommend_request(
    user_id: str | None,
    anonymous_id: str | None,
    k: int,
    exclude_seen: bool,
    categories: Sequence[str],
    context_item_ids: Sequence[str],
) -> inference_pb2.RecommendRequest:
    if (user_id is None) == (anonymous_id is None):
        raise ValueError("give exactly one of user_id and anonymous_id")
    request = inference_pb2.RecommendRequest(
        k=k,
        exclude_seen=exclude_seen,
        categories=list(categories),
        context_item_ids=list(context_item_ids),
    )
    if user_id is not None:
        request.user_id = user_id
    else:
        request.anonymous_id = anonymous_id or ""
    return request


def profile_request(
    user_id: str | None, anonymous_id: str | None
) -> profiles_pb2.GetProfileRequest:
    if (user_id is None) == (anonymous_id is None):
        raise ValueError("give exactly one of user_id and anonymous_id")
    if user_id is not None:
        return profiles_pb2.GetProfileRequest(user_id=user_id)
    return profiles_pb2.GetProfileRequest(anonymous_id=anonymous_id or "")


def publish_request(events: Sequence[Mapping[str, Any]]) -> tuple[events_pb2.PublishRequest, bool]:
    """The request, and whether it may be retried (every event has a ``messageId``)."""
    request = events_pb2.PublishRequest(events=[event_message(e) for e in events])
    return request, all(e.get("messageId") for e in events)


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


# -- results ----------------------------------------------------------------------------------


def recommendations(reply: inference_pb2.RecommendResponse) -> Recommendations:
    return Recommendations(
        items=[
            RecommendedItem(
                i.item_id,
                i.title,
                i.score,
                i.reason,
                list(i.categories),
                _REASON_KINDS.get(i.reason_kind, "unspecified"),
            )
            for i in reply.items
        ],
        source=_SOURCES.get(reply.source, "unspecified"),
        model=Model(reply.model_name, reply.model_version),
        recommendation_id=reply.recommendation_id,
    )


def intent_result(reply: inference_pb2.ClassifyIntentResponse) -> IntentResult:
    return IntentResult(prediction(reply.prediction), Model(reply.model_name, reply.model_version))


def intent_batch(reply: inference_pb2.ClassifyIntentBatchResponse) -> IntentBatchResult:
    return IntentBatchResult(
        [prediction(p) for p in reply.predictions], Model(reply.model_name, reply.model_version)
    )


def search_results(reply: inference_pb2.SearchItemsResponse) -> SearchResults:
    return SearchResults(
        [SearchHit(h.item_id, h.title, h.score, list(h.categories)) for h in reply.hits],
        Model(reply.model_name, reply.model_version),
    )


_HANDOFF_REASONS = {
    support_pb2.HANDOFF_REASON_UNSPECIFIED: "",
    support_pb2.HANDOFF_REASON_OUT_OF_SCOPE: "out_of_scope",
    support_pb2.HANDOFF_REASON_LOW_CONFIDENCE: "low_confidence",
    support_pb2.HANDOFF_REASON_NO_ANSWER: "no_answer",
}


def suggested_reply(reply: support_pb2.SuggestReplyResponse) -> SuggestedReply:
    return SuggestedReply(
        reply.reply,
        reply.confidence,
        reply.handoff,
        _HANDOFF_REASONS.get(reply.handoff_reason, "unknown"),
        reply.article_id,
        reply.article_title,
        [Passage(p.article_id, p.title, p.text, p.score, list(p.intents)) for p in reply.passages],
        reply.intent,
        reply.intent_confidence,
        reply.out_of_scope,
        reply.context_messages,
        Model(reply.model_name, reply.model_version),
        reply.encoder,
        reply.knowledge_base,
    )


def publish_result(reply: events_pb2.PublishResponse) -> PublishResult:
    return PublishResult(
        reply.accepted,
        reply.duplicates,
        [EventError(e.index, e.reason, e.field, e.message) for e in reply.errors],
    )


def prediction(p: inference_pb2.IntentPrediction) -> IntentPrediction:
    return IntentPrediction(
        p.intent,
        p.confidence,
        p.out_of_scope,
        [IntentScore(a.intent, a.confidence) for a in p.alternatives],
    )


def _iso(stamp: timestamp_pb2.Timestamp, present: bool) -> str | None:
    return stamp.ToJsonString() if present else None


def _struct(value: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(value)


def profile(p: profiles_pb2.Profile) -> Profile:
    return Profile(
        id=p.id,
        user_id=p.user_id,
        anonymous_ids=list(p.anonymous_ids),
        traits=_struct(p.traits),
        first_seen=_iso(p.first_seen, p.HasField("first_seen")),
        last_seen=_iso(p.last_seen, p.HasField("last_seen")),
        event_counts_by_type=dict(p.event_counts_by_type),
        event_counts_by_name=dict(p.event_counts_by_name),
        sessions=p.sessions,
        active_days=p.active_days,
        recent_items=list(p.recent_items),
        category_affinity=dict(p.category_affinity),
        purchased_items=list(p.purchased_items),
        purchases=p.purchases,
        revenue=p.revenue,
        rfm=Rfm(p.rfm.recency, p.rfm.frequency, p.rfm.monetary, p.rfm.segment)
        if p.HasField("rfm")
        else None,
        updated_at=_iso(p.updated_at, p.HasField("updated_at")),
        version=p.version,
        first_touch=_touch(p.first_touch) if p.HasField("first_touch") else None,
        last_touch=_touch(p.last_touch) if p.HasField("last_touch") else None,
    )


def _touch(t: profiles_pb2.Touch) -> Touch:
    return Touch(
        t.channel, t.source, t.medium, t.campaign, t.referrer, _iso(t.at, t.HasField("at"))
    )
