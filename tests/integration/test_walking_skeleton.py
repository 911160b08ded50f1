"""One event followed from the HTTP front door through Kafka and Faust to MongoDB and back out
over gRPC, on the real Kafka and mongod."""

from __future__ import annotations

import uuid

import grpc
import httpx
from lumen.v1 import profiles_pb2, profiles_pb2_grpc

from tests.support.stack import ServiceProcess, wait_for

WRITE_KEY = "lumen-dev-key"


def test_event_over_http_becomes_a_profile_readable_over_grpc(
    ingest: ServiceProcess, profiles: ServiceProcess, inference: ServiceProcess
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        f"http://127.0.0.1:{ingest.ports['http']}/v1/track",
        json={
            "userId": user,
            "anonymousId": "anon-1",
            "event": "Item Viewed",
            "properties": {"itemId": "42"},
        },
        auth=(WRITE_KEY, ""),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}

    with grpc.insecure_channel(f"127.0.0.1:{inference.ports['grpc']}") as channel:
        stub = profiles_pb2_grpc.ProfileServiceStub(channel)

        def fetch() -> profiles_pb2.Profile | None:
            try:
                return stub.GetProfile(
                    profiles_pb2.GetProfileRequest(user_id=user), timeout=2
                ).profile
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.NOT_FOUND, exc
                return None

        profile = wait_for(fetch, timeout=60)
    assert isinstance(profile, profiles_pb2.Profile)
    assert profile.id == user
    assert profile.user_id == user
    assert list(profile.anonymous_ids) == ["anon-1"]
    assert profile.event_counts_by_type["track"] == 1
    assert profile.event_counts_by_name["Item Viewed"] == 1
    assert profile.version == 1


def test_unknown_profile_is_not_found(inference: ServiceProcess) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{inference.ports['grpc']}") as channel:
        stub = profiles_pb2_grpc.ProfileServiceStub(channel)
        try:
            stub.GetProfile(
                profiles_pb2.GetProfileRequest(user_id="nobody-" + uuid.uuid4().hex), timeout=5
            )
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
        else:
            raise AssertionError("expected NOT_FOUND")
