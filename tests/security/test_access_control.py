"""Access control on the real services: write keys (hashed, constant-time, never logged or
written), TLS on ingest's HTTP and gRPC servers, the inference bearer token, and MongoDB and
Kafka credentials passed through configuration."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import inference.grpc_service_pb2 as v2
import inference.grpc_service_pb2_grpc as v2_grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lumen.v1 import events_pb2, events_pb2_grpc, profiles_pb2, profiles_pb2_grpc
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from services.ingest import auth
from services.ingest.auth import WriteKeys
from services.ingest.settings import IngestSettings
from shared.mongo import mongo_client
from shared.settings import MongoSettings
from shared.topics import EVENTS_DLQ, EVENTS_RAW
from tests.integration.inference_helpers import start_inference, tiny_registry
from tests.reliability.services import WRITE_KEY, WRITE_KEYS, start_ingest, wait_ready
from tests.security.certificates import make_certificates
from tests.support.private_platform import PrivatePlatform
from tests.support.profiles_worker import read_topic
from tests.support.stack import REPO, ServiceProcess, free_port, start_service

WRONG_KEY = "not-the-reliability-key"


@pytest.fixture(scope="module")
def ingest(platform: PrivatePlatform) -> Iterator[ServiceProcess]:
    service = start_ingest(platform, "ingest-security", log_level="DEBUG")
    wait_ready(service)
    yield service
    service.stop()


# -- write keys ------------------------------------------------------------------------------
def test_only_hashes_of_write_keys_are_configured() -> None:
    assert IngestSettings().write_keys == "", "no key is built in (development mode has its own)"
    for entry in WRITE_KEYS.split(","):
        _source, algo, digest = entry.split(":")
        assert algo == "sha256" and len(bytes.fromhex(digest)) == 32, entry
    with pytest.raises(ValueError):
        WriteKeys("web:plain:lumen-dev-key")  # a key in the clear is refused at start-up


def test_write_key_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every stored digest is compared with hmac.compare_digest, whether the key matches the
    first entry, the last or none: the work does not depend on where (or if) it matches."""
    keys = WriteKeys(",".join(WriteKeys.entry(f"s{i}", f"key-{i}") for i in range(5)))
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    for presented, expected in (("key-0", "s0"), ("key-4", "s4"), ("nope", None)):
        calls.clear()
        assert keys.source_for(presented) == expected
        assert len(calls) == 5, presented
        assert all(isinstance(a, bytes) and len(a) == len(b) == 32 for a, b in calls)


def test_requests_without_a_valid_key_are_refused(ingest: ServiceProcess) -> None:
    base = f"http://127.0.0.1:{ingest.ports['http']}"
    event = {"userId": "sec-u", "event": "E"}
    assert httpx.post(f"{base}/v1/track", json=event).status_code == 401
    assert httpx.post(f"{base}/v1/track", json=event, auth=(WRONG_KEY, "")).status_code == 401
    assert (
        httpx.post(
            f"{base}/v1/track", json=event, headers={"Authorization": "Basic %%%"}
        ).status_code
        == 401
    )
    with grpc.insecure_channel(f"127.0.0.1:{ingest.ports['grpc']}") as channel:
        stub = events_pb2_grpc.EventServiceStub(channel)
        request = events_pb2.PublishRequest(
            events=[events_pb2.Event(type=events_pb2.EVENT_TYPE_TRACK, user_id="u", event="E")]
        )
        for metadata in ((), (("authorization", f"Bearer {WRONG_KEY}"),)):
            with pytest.raises(grpc.RpcError) as refused:
                stub.Publish(request, metadata=metadata, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_write_keys_are_never_logged_nor_written_to_kafka(
    platform: PrivatePlatform, ingest: ServiceProcess
) -> None:
    base = f"http://127.0.0.1:{ingest.ports['http']}"
    marker = f"sec-{uuid.uuid4().hex[:8]}"
    basic = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    sent = [
        httpx.post(
            f"{base}/v1/track",
            json={"userId": marker, "event": "Basic"},
            headers={"Authorization": f"Basic {basic}"},
        ),
        httpx.post(
            f"{base}/v1/track",
            json={"userId": marker, "event": "Bearer"},
            headers={"Authorization": f"Bearer {WRITE_KEY}"},
        ),
        # The key in the body (Segment's browser clients), with one invalid event for the DLQ.
        httpx.post(
            f"{base}/v1/batch",
            json={
                "writeKey": WRITE_KEY,
                "batch": [
                    {"type": "track", "userId": marker, "event": "InBody"},
                    {"type": "track", "userId": marker},
                ],
            },
        ),
        httpx.post(
            f"{base}/v1/track", json={"userId": marker, "event": "Wrong"}, auth=(WRONG_KEY, "")
        ),
    ]
    assert [r.status_code for r in sent] == [200, 200, 200, 401]
    stack = platform.stack()
    written = [
        v
        for topic in (EVENTS_RAW.name, EVENTS_DLQ.name)
        for _, v in read_topic(stack, topic)
        if v and marker.encode() in v
    ]
    assert len(written) == 4  # three accepted events and the DLQ copy of the invalid one
    for value in written:
        assert WRITE_KEY.encode() not in value and b"writeKey" not in value, value
    ingest_log = ingest.log()
    assert "ingest listening" in ingest_log  # the right log, written at DEBUG level
    assert WRITE_KEY not in ingest_log and WRONG_KEY not in ingest_log
    assert basic not in ingest_log


# -- TLS ---------------------------------------------------------------------------------------
def test_ingest_serves_http_and_grpc_over_tls(platform: PrivatePlatform, tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "tls")
    service = start_ingest(
        platform, "ingest-tls", tls_cert_file=str(certs.cert), tls_key_file=str(certs.key)
    )
    try:
        https = f"https://127.0.0.1:{service.ports['http']}"
        trusting = ssl.create_default_context(cafile=str(certs.ca))
        with httpx.Client(verify=trusting, timeout=10) as client:
            ready = client.get(f"{https}/healthz")
            assert ready.status_code == 200
            assert client.post(
                f"{https}/v1/track",
                auth=(WRITE_KEY, ""),
                json={"userId": "tls-u", "event": "Secure"},
            ).status_code in (200, 503)
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not served on the TLS port
            httpx.get(
                f"http://127.0.0.1:{service.ports['http']}/healthz", timeout=5
            ).raise_for_status()
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA refuses it
            httpx.get(f"{https}/healthz", timeout=5)

        credentials = grpc.ssl_channel_credentials(certs.ca.read_bytes())
        target = f"127.0.0.1:{service.ports['grpc']}"
        with grpc.secure_channel(target, credentials) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            # Answered over TLS (SERVING, or NOT_SERVING while Kafka readiness is still being
            # probed: this test is about the transport, readiness is tested in test_ingest).
            answered = stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status
            assert answered in (
                health_pb2.HealthCheckResponse.SERVING,
                health_pb2.HealthCheckResponse.NOT_SERVING,
            )
        with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as plain:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert plain.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        service.stop()


def test_inference_serves_grpc_over_tls(platform: PrivatePlatform, tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "tls")
    credentials = grpc.ssl_channel_credentials(certs.ca.read_bytes())
    grpc_port = free_port()
    target = f"127.0.0.1:{grpc_port}"

    def serving_over_tls() -> bool:
        with grpc.secure_channel(target, credentials) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
            except grpc.RpcError:
                return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    registry = tiny_registry()
    service = start_service(
        "inference-tls",
        "services.inference",
        {
            **platform.stack().env(),
            "LUMEN_INFERENCE_MODEL_REPOSITORY": str(registry),
            "LUMEN_INFERENCE_GRPC_PORT": str(grpc_port),
            "LUMEN_INFERENCE_METRICS_PORT": str(free_port()),
            "LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED": "false",
            "LUMEN_INFERENCE_TLS_CERT_FILE": str(certs.cert),
            "LUMEN_INFERENCE_TLS_KEY_FILE": str(certs.key),
        },
        ready=serving_over_tls,
        ports={"grpc": grpc_port},
    )
    try:
        with grpc.secure_channel(target, credentials) as channel:
            answer = pb_grpc.IntentServiceStub(channel).ClassifyIntent(
                pb.ClassifyIntentRequest(text="refund please"), timeout=10
            )
        assert answer.prediction.intent
        with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as plain:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert plain.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        service.stop()


# -- inference authentication ----------------------------------------------------------------
PRODUCTION = {"LUMEN_DEV_MODE": "0", "LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED": "false"}


def _inference_env(platform: PrivatePlatform, **env: str) -> dict[str, str]:
    return {
        **platform.stack().env(),
        "LUMEN_INFERENCE_MODEL_REPOSITORY": str(tiny_registry()),
        "LUMEN_INFERENCE_GRPC_PORT": str(free_port()),
        "LUMEN_INFERENCE_METRICS_PORT": str(free_port()),
        **PRODUCTION,
        **env,
    }


@pytest.mark.parametrize(
    ("env", "told"),
    [
        ({}, "set LUMEN_INFERENCE_AUTH_TOKEN"),
        (
            {"LUMEN_INFERENCE_TLS_CLIENT_CA_FILE": "/nonexistent/ca.pem"},
            "LUMEN_INFERENCE_TLS_CERT_FILE",
        ),
    ],
    ids=["nothing", "client-ca-without-tls"],
)
def test_inference_refuses_to_start_open_outside_development(
    platform: PrivatePlatform, env: dict[str, str], told: str
) -> None:
    started = subprocess.run(
        [sys.executable, "-m", "services.inference"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **_inference_env(platform, **env)},
        timeout=60,
    )
    output = started.stdout + started.stderr
    assert started.returncode == 2, output
    assert "refusing to start" in output and told in output


def _call_every_kind(
    channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]
) -> dict[str, str]:
    """Status of one call of each service the server offers (OK or the code's name)."""
    tensor = v2.ModelInferRequest.InferInputTensor
    ids = v2.InferTensorContents(int64_contents=[2, 3])
    mask = v2.InferTensorContents(int64_contents=[1, 1])
    calls = {
        "ClassifyIntent": lambda: pb_grpc.IntentServiceStub(channel).ClassifyIntent(
            pb.ClassifyIntentRequest(text="refund please"), metadata=metadata, timeout=10
        ),
        "Recommend": lambda: pb_grpc.RecommendationServiceStub(channel).Recommend(
            pb.RecommendRequest(user_id="u-1", k=3), metadata=metadata, timeout=10
        ),
        "SearchItems": lambda: pb_grpc.SearchServiceStub(channel).SearchItems(
            pb.SearchItemsRequest(query="toy", k=3), metadata=metadata, timeout=10
        ),
        "GetProfile": lambda: profiles_pb2_grpc.ProfileServiceStub(channel).GetProfile(
            profiles_pb2.GetProfileRequest(user_id="u-1"), metadata=metadata, timeout=10
        ),
        "ModelReady": lambda: v2_grpc.GRPCInferenceServiceStub(channel).ModelReady(
            v2.ModelReadyRequest(name="intent-classifier"), metadata=metadata, timeout=10
        ),
        "ModelInfer": lambda: v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            v2.ModelInferRequest(
                model_name="intent-classifier",
                inputs=[
                    tensor(name="input_ids", datatype="INT64", shape=[1, 2], contents=ids),
                    tensor(name="attention_mask", datatype="INT64", shape=[1, 2], contents=mask),
                ],
            ),
            metadata=metadata,
            timeout=10,
        ),
    }
    codes: dict[str, str] = {}
    for name, call in calls.items():
        try:
            call()
            codes[name] = "OK"
        except grpc.RpcError as exc:
            codes[name] = exc.code().name if exc.code() != grpc.StatusCode.NOT_FOUND else "OK"
    return codes


def test_inference_token_is_required_and_health_stays_open(platform: PrivatePlatform) -> None:
    """Production settings (no LUMEN_DEV_MODE) with a token: every call but health needs it,
    GetProfile (traits and purchases) included; the lumen CLI sends it from its setting."""
    token = f"tok-{uuid.uuid4().hex}"
    server = start_inference(
        platform.stack(), tiny_registry(), LUMEN_INFERENCE_AUTH_TOKEN=token, **PRODUCTION
    )
    target = f"127.0.0.1:{server.ports['grpc']}"
    try:
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.IntentServiceStub(channel)
            request = pb.ClassifyIntentRequest(text="refund please")
            codes: dict[str, str] = {}
            for name, metadata in (
                ("wrong", (("authorization", "Bearer x"),)),
                ("raw token", (("authorization", token),)),
            ):
                try:
                    stub.ClassifyIntent(request, metadata=metadata, timeout=10)
                    codes[name] = "OK"
                except grpc.RpcError as exc:
                    codes[name] = exc.code().name
            unauthenticated = _call_every_kind(channel, ())
            authenticated = _call_every_kind(channel, (("authorization", f"Bearer {token}"),))
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert codes == {"wrong": "UNAUTHENTICATED", "raw token": "UNAUTHENTICATED"}
        assert unauthenticated == dict.fromkeys(unauthenticated, "UNAUTHENTICATED")
        assert authenticated == dict.fromkeys(authenticated, "OK")
        assert len(authenticated) == 6

        def cli(**env: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "lumen_cli",
                    "classify",
                    "refund please",
                    "--json",
                    "--target",
                    target,
                ],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "LUMEN_INFERENCE_TOKEN": "", **env},
            )

        refused, accepted = cli(), cli(LUMEN_INFERENCE_TOKEN=token)
        assert refused.returncode != 0 and "bearer token" in refused.stderr
        assert accepted.returncode == 0, accepted.stderr
        assert "refund" in accepted.stdout
    finally:
        server.stop()
    assert token not in server.log()


def _client_certificate(folder: Path) -> tuple[Path, Path]:
    """A client certificate signed by the test CA of make_certificates (its ca.key)."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=lumen-test-client",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
    )
    run(
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "client.pem",
    )
    return folder / "client.pem", folder / "client.key"


def test_inference_with_mtls_serves_only_clients_with_a_certificate(
    platform: PrivatePlatform, tmp_path: Path
) -> None:
    """Production settings with client certificates and no token: the server starts, and
    only a client presenting a certificate signed by the configured CA is served."""
    certs = make_certificates(tmp_path / "tls")
    client_cert, client_key = _client_certificate(tmp_path / "tls")
    with_cert = grpc.ssl_channel_credentials(
        certs.ca.read_bytes(), client_key.read_bytes(), client_cert.read_bytes()
    )
    without_cert = grpc.ssl_channel_credentials(certs.ca.read_bytes())
    env = _inference_env(
        platform,
        LUMEN_INFERENCE_TLS_CERT_FILE=str(certs.cert),
        LUMEN_INFERENCE_TLS_KEY_FILE=str(certs.key),
        LUMEN_INFERENCE_TLS_CLIENT_CA_FILE=str(certs.ca),
    )
    target = f"127.0.0.1:{env['LUMEN_INFERENCE_GRPC_PORT']}"

    def classify(credentials: grpc.ChannelCredentials) -> str:
        with grpc.secure_channel(target, credentials) as channel:
            try:
                pb_grpc.IntentServiceStub(channel).ClassifyIntent(
                    pb.ClassifyIntentRequest(text="refund please"), timeout=5
                )
            except grpc.RpcError as exc:
                return str(exc.code().name)
        return "OK"

    service = start_service(
        "inference-mtls",
        "services.inference",
        env,
        ready=lambda: classify(with_cert) == "OK",
        ports={"grpc": int(env["LUMEN_INFERENCE_GRPC_PORT"])},
    )
    try:
        assert classify(with_cert) == "OK"
        assert classify(without_cert) == "UNAVAILABLE"  # the TLS handshake is refused
    finally:
        service.stop()


# -- credentials for MongoDB and Kafka -------------------------------------------------------
def test_mongodb_credentials_from_the_connection_string(platform: PrivatePlatform) -> None:
    """The services' shared client authenticates with the user in LUMEN_MONGO_URI: a wrong
    password is refused by mongod, the right one reads."""
    user, password = f"lumen-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin: MongoClient[dict[str, Any]]
    with MongoClient(platform.mongo_uri) as admin:
        admin.admin.command("createUser", user, pwd=password, roles=["readWrite"])
    try:
        base = f"127.0.0.1:{platform.mongo_port}/?replicaSet=lumen&authSource=admin"
        good = mongo_client(MongoSettings(uri=f"mongodb://{user}:{password}@{base}"))
        bad = mongo_client(MongoSettings(uri=f"mongodb://{user}:wrong@{base}"))
        try:
            assert good.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"]
            with pytest.raises(OperationFailure):
                bad.lumen.profiles.find_one()
        finally:
            good.close()
            bad.close()
    finally:
        with MongoClient(platform.mongo_uri) as admin:
            admin.admin.command("dropUser", user)


SASL_ENV = {
    "LUMEN_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    "LUMEN_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "LUMEN_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "LUMEN_KAFKA_SASL_USERNAME": "lumen-user",
    "LUMEN_KAFKA_SASL_PASSWORD": "lumen-secret",
}


def _configured(code: str) -> str:
    """Run ``code`` in a fresh interpreter with the SASL settings in its environment."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **SASL_ENV},
        timeout=60,
        check=True,
    )
    return out.stdout


def test_kafka_credentials_reach_the_ingest_producer_and_the_kafka_python_clients() -> None:
    shown = _configured(
        "from shared.settings import KafkaSettings\n"
        "from shared.kafka_config import aiokafka_config, kafka_python_config\n"
        "s = KafkaSettings()\n"
        "a = aiokafka_config(s); k = kafka_python_config(s)\n"
        "print(a['security_protocol'], a['sasl_mechanism'], a['sasl_plain_username'],"
        " a['sasl_plain_password'], 'ssl_context' in a)\n"
        "print(k['security_protocol'], k['sasl_mechanism'], k['sasl_plain_username'],"
        " k['sasl_plain_password'])\n"
    ).split("\n")
    assert shown[0] == "SASL_SSL SCRAM-SHA-512 lumen-user lumen-secret True"
    assert shown[1] == "SASL_SSL SCRAM-SHA-512 lumen-user lumen-secret"


def test_kafka_credentials_reach_the_profile_updater() -> None:
    shown = _configured(
        "from services.profiles.app import create_app\n"
        "from services.profiles.settings import ProfilesSettings\n"
        "c = create_app(ProfilesSettings()).app.conf.broker_credentials\n"
        "print(type(c).__name__, c.username, c.mechanism.value, c.ssl_context is not None)\n"
    )
    assert shown.strip() == "SASLCredentials lumen-user SCRAM-SHA-512 True", shown
