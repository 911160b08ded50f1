"""The Faust application of the profile updater and the topics it reads.

Kept free of agents so that ``agents.py`` and the web pages can import it without cycles.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import faust

from services.profiles.settings import ProfilesSettings
from shared.settings import KafkaSettings

settings = ProfilesSettings()


def _broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{server}" for server in bootstrap.split(","))


def _broker_credentials(kafka: KafkaSettings) -> faust.types.auth.CredentialsT | None:
    """SASL and/or TLS from LUMEN_KAFKA_*, in Faust's terms (None for PLAINTEXT)."""
    tls = (
        ssl.create_default_context(cafile=kafka.ssl_cafile)
        if kafka.security_protocol in ("SSL", "SASL_SSL")
        else None
    )
    if kafka.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password,
            mechanism=kafka.sasl_mechanism or "PLAIN",
            ssl_context=tls,
        )
    if tls is not None:
        return faust.SSLCredentials(tls)
    return None


app = faust.App(
    settings.app_id,
    broker=_broker_url(settings.kafka.bootstrap_servers),
    broker_credentials=_broker_credentials(settings.kafka),
    store="memory://",
    datadir=str(Path(settings.data_dir).resolve()),
    web_host=settings.host,
    web_port=settings.web_port,
    web_bind=settings.host,
    topic_partitions=settings.kafka.topic_partitions,
    topic_replication_factor=settings.kafka.replication_factor,
    consumer_auto_offset_reset=settings.auto_offset_reset,
    # Faust acks a batch only after the agent wrote it to MongoDB, so the offsets committed
    # never run ahead of MongoDB; MongoDB's own applied offsets make replays harmless.
    broker_commit_every=1000,
    broker_commit_interval=settings.commit_interval_seconds,
    broker_session_timeout=settings.session_timeout_seconds,
    broker_heartbeat_interval=settings.session_timeout_seconds / 10,
    stream_buffer_maxsize=8192,
    # On shutdown, process what was fetched before committing (graceful drain).
    stream_wait_empty=True,
)

events_topic = app.topic(
    settings.events_topic,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    # Declared by shared/topics.py; Faust must not try to create or change it.
    internal=False,
)
