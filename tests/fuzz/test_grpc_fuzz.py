"""Bad input over gRPC: random bytes where a protobuf message belongs, and random but
well-formed Event messages. Every call ends with OK or a client-error status, never INTERNAL or
UNKNOWN, and ingest keeps serving."""

from __future__ import annotations

import grpc
from hypothesis import given, settings
from hypothesis import strategies as st
from inference import grpc_service_pb2 as v2_pb2
from lumen.v1 import events_pb2, inference_pb2, profiles_pb2

from tests.reliability.services import WRITE_KEY
from tests.support.stack import ServiceProcess

fuzz = settings(settings.get_profile("lumen-fuzz"))
AUTH = (("authorization", f"Bearer {WRITE_KEY}"),)
# PERMISSION_DENIED: the fuzz key may publish but not erase (DeleteUser needs an admin key).
CLIENT_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def raw_call(service: ServiceProcess, method: str, payload: bytes) -> grpc.StatusCode:
    with grpc.insecure_channel(f"127.0.0.1:{service.ports['grpc']}") as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            call(payload, metadata=AUTH, timeout=10)
            return grpc.StatusCode.OK
        except grpc.RpcError as exc:
            return exc.code()


@fuzz
@given(payload=st.binary(max_size=300), method=st.sampled_from(["Publish", "DeleteUser"]))
def test_random_bytes_as_protobuf(ingest: ServiceProcess, payload: bytes, method: str) -> None:
    code = raw_call(ingest, f"/lumen.v1.EventService/{method}", payload)
    parses = True
    try:
        (
            events_pb2.PublishRequest if method == "Publish" else events_pb2.DeleteUserRequest
        )().ParseFromString(payload)
    except Exception:
        parses = False
    if parses:
        assert code in CLIENT_ERRORS | {grpc.StatusCode.OK}, code
    else:
        # Bytes that are not the method's message: the request's fault, not the server's.
        assert code == grpc.StatusCode.INVALID_ARGUMENT, code


# Every inference method with its request message; random bytes either parse (and then get
# an answer or a client error) or are refused with INVALID_ARGUMENT.
INFERENCE_METHODS = {
    "/lumen.v1.RecommendationService/Recommend": inference_pb2.RecommendRequest,
    "/lumen.v1.IntentService/ClassifyIntent": inference_pb2.ClassifyIntentRequest,
    "/lumen.v1.IntentService/ClassifyIntentBatch": inference_pb2.ClassifyIntentBatchRequest,
    "/lumen.v1.SearchService/SearchItems": inference_pb2.SearchItemsRequest,
    "/lumen.v1.ProfileService/GetProfile": profiles_pb2.GetProfileRequest,
    "/inference.GRPCInferenceService/ModelInfer": v2_pb2.ModelInferRequest,
    "/inference.GRPCInferenceService/ModelMetadata": v2_pb2.ModelMetadataRequest,
}
INFERENCE_CLIENT_ERRORS = CLIENT_ERRORS | {
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
}


@fuzz
@given(payload=st.binary(max_size=300), method=st.sampled_from(sorted(INFERENCE_METHODS)))
def test_random_bytes_as_inference_requests(
    inference: ServiceProcess, payload: bytes, method: str
) -> None:
    code = raw_call(inference, method, payload)
    try:
        INFERENCE_METHODS[method]().ParseFromString(payload)
    except Exception:
        assert code == grpc.StatusCode.INVALID_ARGUMENT, code
    else:
        assert code in INFERENCE_CLIENT_ERRORS | {grpc.StatusCode.OK}, code


TEXT = st.text(max_size=300)
EVENTS = st.builds(
    events_pb2.Event,
    type=st.integers(min_value=0, max_value=9),
    user_id=TEXT,
    anonymous_id=st.text(max_size=20),
    event=st.text(max_size=40),
    message_id=st.text(max_size=300),
    previous_id=st.text(max_size=5),
    group_id=st.text(max_size=5),
)


@fuzz
@given(events=st.lists(EVENTS, max_size=5))
def test_random_events_over_grpc(ingest: ServiceProcess, events: list[events_pb2.Event]) -> None:
    payload = events_pb2.PublishRequest(events=events).SerializeToString()
    code = raw_call(ingest, "/lumen.v1.EventService/Publish", payload)
    assert code in CLIENT_ERRORS | {grpc.StatusCode.OK}, code


def test_oversized_grpc_message_is_refused(ingest: ServiceProcess) -> None:
    event = events_pb2.Event(type=events_pb2.EVENT_TYPE_TRACK, user_id="u", event="x" * 600_000)
    payload = events_pb2.PublishRequest(events=[event]).SerializeToString()
    assert (
        raw_call(ingest, "/lumen.v1.EventService/Publish", payload)
        == grpc.StatusCode.RESOURCE_EXHAUSTED
    )
