"""``LumenClient``: typed, blocking calls to Lumen's gRPC APIs over reused channels.

Every call has a deadline (``timeout`` seconds, per call or the client's default) that also
bounds its retries; UNAVAILABLE is retried by gRPC's retry policy with exponential backoff and
full jitter. Inference calls (recommend, classify, search, profile, model metadata) go to
``target``; event publishing goes to ``ingest_target`` with the source's write key.
``AsyncLumenClient`` (``lumen_client.aio``) has the same methods for asyncio.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import grpc

from lumen_client import _calls
from lumen_client._calls import Metadata, Pem, event_message
from lumen_client._proto.inference import grpc_service_pb2 as v2_pb
from lumen_client._proto.inference import grpc_service_pb2_grpc as v2_grpc
from lumen_client._proto.lumen.v1 import (
    events_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    profiles_pb2_grpc,
    support_pb2,
    support_pb2_grpc,
)
from lumen_client.errors import NotFound, from_rpc_error
from lumen_client.retry import RetryPolicy
from lumen_client.types import (
    IntentBatchResult,
    IntentResult,
    Profile,
    PublishResult,
    Recommendations,
    SearchResults,
    SuggestedReply,
)

T = TypeVar("T")

__all__ = ["LumenClient", "event_message"]


class LumenClient:
    """Typed client of the inference and ingest gRPC APIs; use it as a context manager.

    ``retries`` is a ``RetryPolicy`` or the number of attempts (1 = no retry). ``token`` is the
    inference bearer token (``LUMEN_INFERENCE_AUTH_TOKEN`` on the server; without it the
    server answers UNAUTHENTICATED unless it runs in development mode or with mTLS); when not
    given it is read from ``LUMEN_INFERENCE_TOKEN``. TLS is on when ``tls`` is true or any
    certificate is given: ``root_certificates`` (PEM bytes or a file path; the system's roots
    when omitted) verifies the server, ``certificate_chain`` with ``private_key`` is the client
    certificate for mTLS. TLS settings apply to every target.
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
        tls: bool = False,
        root_certificates: Pem | None = None,
        certificate_chain: Pem | None = None,
        private_key: Pem | None = None,
    ) -> None:
        self._settings = _calls.Settings(
            target,
            timeout=timeout,
            retries=retries,
            ingest_target=ingest_target,
            write_key=write_key,
            token=token,
            tls=tls,
            root_certificates=root_certificates,
            certificate_chain=certificate_chain,
            private_key=private_key,
        )
        self.target = self._settings.target
        self.ingest_target = self._settings.ingest_target
        self.timeout = timeout
        self.policy = self._settings.policy
        self.token = self._settings.token
        self.write_key = self._settings.write_key
        self._channels: dict[tuple[str, bool], grpc.Channel] = {}
        self._lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------

    def channel(self, target: str, *, retrying: bool = True) -> grpc.Channel:
        """The one channel per target (and retry mode), created on first use and reused."""
        key = (target, retrying)
        with self._lock:
            if key not in self._channels:
                options = self._settings.options(target, retrying)
                credentials = self._settings.credentials
                self._channels[key] = (
                    grpc.secure_channel(target, credentials, options=options)
                    if credentials is not None
                    else grpc.insecure_channel(target, options=options)
                )
            return self._channels[key]

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
        metadata: Metadata,
    ) -> T:
        try:
            return method(request, timeout=self._settings.deadline(timeout), metadata=metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def _inference(self) -> grpc.Channel:
        return self.channel(self.target)

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
        request = _calls.recommend_request(
            user_id, anonymous_id, k, exclude_seen, categories, context_item_ids
        )
        stub = inference_pb2_grpc.RecommendationServiceStub(self._inference())
        reply = self._call(stub.Recommend, request, timeout, self._settings.inference_metadata())
        return _calls.recommendations(reply)

    def classify_intent(
        self, text: str, *, top_k: int = 3, timeout: float | None = None
    ) -> IntentResult:
        stub = inference_pb2_grpc.IntentServiceStub(self._inference())
        request = inference_pb2.ClassifyIntentRequest(text=text, top_k=top_k)
        metadata = self._settings.inference_metadata()
        return _calls.intent_result(self._call(stub.ClassifyIntent, request, timeout, metadata))

    def classify_intents(
        self, texts: Sequence[str], *, top_k: int = 3, timeout: float | None = None
    ) -> IntentBatchResult:
        stub = inference_pb2_grpc.IntentServiceStub(self._inference())
        request = inference_pb2.ClassifyIntentBatchRequest(texts=list(texts), top_k=top_k)
        metadata = self._settings.inference_metadata()
        return _calls.intent_batch(self._call(stub.ClassifyIntentBatch, request, timeout, metadata))

    def search_items(
        self,
        query: str,
        *,
        k: int = 10,
        categories: Sequence[str] = (),
        timeout: float | None = None,
    ) -> SearchResults:
        stub = inference_pb2_grpc.SearchServiceStub(self._inference())
        request = inference_pb2.SearchItemsRequest(query=query, k=k, categories=list(categories))
        metadata = self._settings.inference_metadata()
        return _calls.search_results(self._call(stub.SearchItems, request, timeout, metadata))

    def suggest_reply(
        self,
        text: str,
        *,
        conversation_id: str = "",
        context: Sequence[str] = (),
        timeout: float | None = None,
    ) -> SuggestedReply:
        """A reply from the knowledge base for a support message, or a hand-off;
        ``context``: the conversation's earlier messages, oldest first."""
        stub = support_pb2_grpc.SupportServiceStub(self._inference())
        request = support_pb2.SuggestReplyRequest(
            text=text, conversation_id=conversation_id, context=list(context)
        )
        metadata = self._settings.inference_metadata()
        return _calls.suggested_reply(self._call(stub.SuggestReply, request, timeout, metadata))

    def get_profile(
        self,
        user_id: str | None = None,
        *,
        anonymous_id: str | None = None,
        timeout: float | None = None,
    ) -> Profile:
        """The user's profile; raises ``lumen_client.NotFound`` for an unknown user."""
        request = _calls.profile_request(user_id, anonymous_id)
        stub = profiles_pb2_grpc.ProfileServiceStub(self._inference())
        reply = self._call(stub.GetProfile, request, timeout, self._settings.inference_metadata())
        return _calls.profile(reply.profile)

    def model_versions(
        self, names: Iterable[str], timeout: float | None = None
    ) -> dict[str, str | None]:
        """Loaded version of each named model (Open Inference Protocol ModelMetadata);
        ``None`` for a model the server does not serve."""
        stub = v2_grpc.GRPCInferenceServiceStub(self._inference())
        metadata = self._settings.inference_metadata()
        versions: dict[str, str | None] = {}
        for name in names:
            request = v2_pb.ModelMetadataRequest(name=name)
            try:
                reply = self._call(stub.ModelMetadata, request, timeout, metadata)
            except NotFound:
                versions[name] = None
                continue
            versions[name] = ",".join(reply.versions) or None
        return versions

    # -- ingest -----------------------------------------------------------------------------

    def publish_events(
        self, events: Sequence[Mapping[str, Any]], *, timeout: float | None = None
    ) -> PublishResult:
        """Publish Segment-style events (``{"type": "track", "userId": ..., ...}``) through
        ingest's EventService. Retried on UNAVAILABLE only when every event has a
        ``messageId`` (ingest then drops the copies it already stored)."""
        request, idempotent = _calls.publish_request(events)
        channel = self.channel(self.ingest_target, retrying=idempotent)
        stub = events_pb2_grpc.EventServiceStub(channel)
        reply = self._call(stub.Publish, request, timeout, self._settings.ingest_metadata())
        return _calls.publish_result(reply)
