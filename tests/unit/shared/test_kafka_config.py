"""One set of TLS and SASL rules for aiokafka, kafka-python and Faust (shared/kafka_config.py)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from pydantic import ValidationError

from shared.kafka_config import (
    aiokafka_config,
    faust_broker_credentials,
    faust_broker_url,
    kafka_python_config,
)
from shared.settings import KafkaSettings
from tests.security.certificates import Certificates, make_certificates

SASL: dict[str, Any] = {
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_username": "lumen",
    "sasl_password": "secret",
}


def _faust_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    credentials = faust_broker_credentials(kafka)
    return getattr(credentials, "context", None) or getattr(credentials, "ssl_context", None)


# How each client stack receives its TLS context.
CONTEXT_OF: dict[str, Callable[[KafkaSettings], ssl.SSLContext | None]] = {
    "aiokafka": lambda kafka: aiokafka_config(kafka).get("ssl_context"),
    "kafka-python": lambda kafka: kafka_python_config(kafka).get("ssl_context"),
    "faust": _faust_context,
}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("broker"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("other"))


def _handshake(client: ssl.SSLContext, server: Certificates, server_hostname: str) -> None:
    """A TLS handshake between ``client`` and a local server holding ``server``'s certificate."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server.cert, server.key)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass  # the client refused the certificate

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                client.wrap_socket(raw, server_hostname=server_hostname),
            ):
                pass
        finally:
            thread.join(5)


@pytest.mark.parametrize("stack", sorted(CONTEXT_OF))
@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_every_stack_verifies_the_broker_against_the_configured_ca(
    stack: str, protocol: str, certificates: Certificates, other_ca: Certificates
) -> None:
    kafka = KafkaSettings(security_protocol=protocol, ssl_cafile=str(certificates.ca), **SASL)
    context = CONTEXT_OF[stack](kafka)
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    _handshake(context, certificates, "127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(context, other_ca, "127.0.0.1")  # signed by a CA we were not given
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(context, certificates, "kafka.elsewhere.example")  # not the broker's name


@pytest.mark.parametrize("stack", sorted(CONTEXT_OF))
@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_no_stack_uses_tls_without_a_tls_protocol(
    stack: str, protocol: str, certificates: Certificates
) -> None:
    kafka = KafkaSettings(security_protocol=protocol, ssl_cafile=str(certificates.ca), **SASL)
    assert CONTEXT_OF[stack](kafka) is None


@pytest.mark.parametrize("translate", [aiokafka_config, kafka_python_config])
def test_sasl_credentials_go_only_with_a_sasl_protocol(
    translate: Callable[[KafkaSettings], dict[str, object]],
) -> None:
    sasl = translate(KafkaSettings(security_protocol="SASL_PLAINTEXT", **SASL))
    assert sasl["security_protocol"] == "SASL_PLAINTEXT"
    assert (sasl["sasl_mechanism"], sasl["sasl_plain_username"], sasl["sasl_plain_password"]) == (
        "SCRAM-SHA-512",
        "lumen",
        "secret",
    )
    plain = translate(KafkaSettings(security_protocol="PLAINTEXT", **SASL))
    assert not any(key.startswith("sasl_") for key in plain)


def test_faust_gets_the_same_credentials() -> None:
    sasl = faust_broker_credentials(KafkaSettings(security_protocol="SASL_PLAINTEXT", **SASL))
    assert isinstance(sasl, faust.SASLCredentials)
    assert (sasl.username, sasl.password, sasl.mechanism.value) == (
        "lumen",
        "secret",
        "SCRAM-SHA-512",
    )
    assert sasl.ssl_context is None
    assert isinstance(
        faust_broker_credentials(KafkaSettings(security_protocol="SSL")), faust.SSLCredentials
    )
    assert faust_broker_credentials(KafkaSettings(security_protocol="PLAINTEXT", **SASL)) is None


def test_faust_broker_url_lists_every_bootstrap_server() -> None:
    kafka = KafkaSettings(bootstrap_servers="a:9092, b:9093,")
    assert faust_broker_url(kafka) == "kafka://a:9092;kafka://b:9093"


@pytest.mark.parametrize("missing", sorted(SASL))
def test_a_sasl_protocol_without_its_credentials_fails_at_start_up(missing: str) -> None:
    partial = {key: value for key, value in SASL.items() if key != missing}
    with pytest.raises(ValidationError, match=f"LUMEN_KAFKA_{missing.upper()}"):
        KafkaSettings(security_protocol="SASL_SSL", **partial)


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_every_option_is_one_the_client_knows(protocol: str, certificates: Certificates) -> None:
    kafka = KafkaSettings(security_protocol=protocol, ssl_cafile=str(certificates.ca), **SASL)
    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        assert set(kafka_python_config(kafka)) <= set(client.DEFAULT_CONFIG), client

    async def build() -> None:
        # aiokafka checks its keyword arguments when the client is built (it connects on start()).
        producer = AIOKafkaProducer(**aiokafka_config(kafka))
        assert producer.client._security_protocol == protocol

    asyncio.run(build())


def test_the_ca_file_must_exist(tmp_path: Path) -> None:
    kafka = KafkaSettings(security_protocol="SSL", ssl_cafile=str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError):
        kafka_python_config(kafka)
