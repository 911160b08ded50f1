"""The profile updater's Faust application, built by ``create_app`` from its settings.

Nothing here runs at import: no settings are read, no app is built, nothing connects.
``python -m services.profiles`` reads the settings and calls ``create_app``; tests and
benchmarks build their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faust

from services.profiles import agents, web
from services.profiles.agents import Updater
from services.profiles.health import Health
from services.profiles.settings import ProfilesSettings
from shared.kafka_config import faust_broker_credentials, faust_broker_url


@dataclass
class ProfilesApp:
    """A worker's Faust app and what it owns."""

    settings: ProfilesSettings
    app: faust.App
    events_topic: faust.TopicT
    health: Health
    updater: Updater


def faust_app(settings: ProfilesSettings) -> tuple[faust.App, faust.TopicT]:
    """The bare Faust app of the updater and the topic it reads (no agent, no pages)."""
    app = faust.App(
        settings.app_id,
        broker=faust_broker_url(settings.kafka),
        broker_credentials=faust_broker_credentials(settings.kafka),
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
    return app, events_topic


def create_app(settings: ProfilesSettings) -> ProfilesApp:
    """The worker: its Faust app with the update agent and the web pages registered. The
    MongoDB clients (the store's, the readiness probe's) are made at their first use."""
    app, events_topic = faust_app(settings)
    health = Health()
    updater = Updater(app, settings, health)
    agents.install(app, events_topic, updater)
    web.install(app, health, web.MongoProbe(settings.mongo))
    return ProfilesApp(settings, app, events_topic, health, updater)
