"""The one TLS server-credentials helper and the shared TLS/token settings of gRPC servers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.inference.settings import InferenceSettings
from services.insights.settings import InsightsSettings
from shared.grpc_auth import server_credentials
from shared.settings import GrpcServerSecuritySettings
from tests.security.certificates import Certificates, make_certificates


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("server"))


@contextlib.contextmanager
def _serve(credentials: grpc.ServerCredentials | None) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(1))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def _health(channel: grpc.Channel) -> int:
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status)


def _trusting(certificates: Certificates, target: str) -> grpc.Channel:
    trust = grpc.ssl_channel_credentials(root_certificates=certificates.ca.read_bytes())
    return grpc.secure_channel(target, trust)


def test_without_a_certificate_and_key_the_server_is_plaintext(certificates: Certificates) -> None:
    assert server_credentials(None, None) is None
    assert server_credentials(str(certificates.cert), None) is None
    assert server_credentials(None, str(certificates.key), str(certificates.ca)) is None


def test_a_certificate_and_key_serve_tls(certificates: Certificates) -> None:
    credentials = server_credentials(str(certificates.cert), str(certificates.key))
    with _serve(credentials) as target:
        assert _health(_trusting(certificates, target)) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as plaintext:
            _health(grpc.insecure_channel(target))
        assert plaintext.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_ca_requires_a_client_certificate(certificates: Certificates) -> None:
    credentials = server_credentials(
        str(certificates.cert), str(certificates.key), str(certificates.ca)
    )
    with _serve(credentials) as target:
        with pytest.raises(grpc.RpcError) as anonymous:
            _health(_trusting(certificates, target))
        assert anonymous.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("settings_class", "prefix"),
    [(InferenceSettings, "LUMEN_INFERENCE_"), (InsightsSettings, "LUMEN_INSIGHTS_")],
)
def test_each_grpc_service_reads_the_shared_fields_under_its_own_prefix(
    settings_class: type[GrpcServerSecuritySettings],
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = {
        "auth_token": "a-token",
        "tls_cert_file": "/tls/cert.pem",
        "tls_key_file": "/tls/key.pem",
        "tls_client_ca_file": "/tls/ca.pem",
    }
    assert set(values) == set(GrpcServerSecuritySettings.model_fields)
    for name, value in values.items():
        monkeypatch.setenv(f"{prefix}{name.upper()}", value)
        monkeypatch.setenv(name.upper(), "unprefixed: never read")
    settings = settings_class()
    assert {name: getattr(settings, name) for name in values} == values
