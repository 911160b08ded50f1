"""``KafkaSettings`` in the terms of each Kafka client Lumen uses, with one set of TLS and SASL rules.

Three client stacks talk to the brokers: aiokafka (ingest's producer), kafka-python (the
exporter, the support router, the topic set-up, the CLI, the benchmarks) and Faust (the profile
updater, on aiokafka underneath). Each used to translate the settings itself, and their TLS
rules differed (kafka-python's own context, aiokafka's helper, the standard library's default).
Here every stack gets the same:

- TLS for ``SSL`` and ``SASL_SSL``: one ``ssl.SSLContext`` that verifies the broker's
  certificate and host name against ``LUMEN_KAFKA_SSL_CAFILE`` (the system's CAs when unset),
  TLS 1.2 or newer;
- SASL for ``SASL_PLAINTEXT`` and ``SASL_SSL`` only, with the configured mechanism, user and
  password (``KafkaSettings`` refuses a SASL protocol without them); credentials set for a
  protocol without SASL are never sent.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from shared.settings import KafkaSettings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


def broker_tls_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The client TLS context for the brokers, or None when the protocol has no TLS."""
    if kafka.security_protocol not in TLS_PROTOCOLS:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=kafka.ssl_cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # create_default_context already does both; stated so that no later change loosens them.
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _sasl_options(kafka: KafkaSettings) -> dict[str, Any]:
    """SASL keyword arguments shared by aiokafka and kafka-python (empty without SASL)."""
    if kafka.security_protocol not in SASL_PROTOCOLS:
        return {}
    return {
        "sasl_mechanism": kafka.sasl_mechanism,
        "sasl_plain_username": kafka.sasl_username,
        "sasl_plain_password": kafka.sasl_password,
    }


def _client_config(kafka: KafkaSettings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_list(),
        "security_protocol": kafka.security_protocol,
        **_sasl_options(kafka),
    }
    tls = broker_tls_context(kafka)
    if tls is not None:
        config["ssl_context"] = tls
    return config


def aiokafka_config(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for aiokafka clients (``AIOKafkaProducer`` and friends)."""
    return _client_config(kafka)


def kafka_python_config(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for kafka-python clients (producer, consumer, admin).

    The same dictionary may serve several clients: the TLS context is shared, not copied.
    """
    return _client_config(kafka)


def faust_broker_url(kafka: KafkaSettings) -> str:
    """Faust's ``broker`` argument: every bootstrap server as a ``kafka://`` URL."""
    return ";".join(f"kafka://{server}" for server in kafka.bootstrap_list())


def faust_broker_credentials(kafka: KafkaSettings) -> CredentialsT | None:
    """Faust's ``broker_credentials`` argument (None for ``PLAINTEXT``)."""
    import faust  # only the profile updater runs Faust; the other services never import it

    tls = broker_tls_context(kafka)
    if kafka.security_protocol in SASL_PROTOCOLS:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password,
            mechanism=kafka.sasl_mechanism,
            ssl_context=tls,
        )
    if tls is not None:
        return faust.SSLCredentials(tls)
    return None
