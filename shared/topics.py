"""Every Kafka topic Lumen uses, declared once.

Services import the names from here; ``ensure_topics`` creates missing ones at start-up with
the declared settings, so a fresh cluster needs no manual step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from shared.settings import KafkaSettings

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    description: str
    # None: take the cluster-wide partition count from KafkaSettings.
    partitions: int | None = None
    configs: dict[str, str] = field(default_factory=dict)


EVENTS_RAW = TopicSpec(
    "events.raw",
    "Every accepted event, enriched by ingest, keyed by user (userId, else anonymousId).",
    configs={"retention.ms": str(7 * DAY_MS), "cleanup.policy": "delete"},
)
EVENTS_DLQ = TopicSpec(
    "events.dlq",
    "Events that were rejected or could not be processed, with a typed reason.",
    configs={"retention.ms": str(14 * DAY_MS), "cleanup.policy": "delete"},
)
PROFILES_UPDATED = TopicSpec(
    "profiles.updated",
    "A compact message after each profile change, keyed by user; a tombstone on erasure.",
    configs={"cleanup.policy": "compact"},
)
SUPPORT_MESSAGES = TopicSpec(
    "support.messages",
    "Customer-support messages to classify, keyed by conversation.",
    configs={"retention.ms": str(7 * DAY_MS), "cleanup.policy": "delete"},
)
SUPPORT_INTENTS = TopicSpec(
    "support.intents",
    "Classified support messages with their routing target, keyed by conversation.",
    configs={"retention.ms": str(7 * DAY_MS), "cleanup.policy": "delete"},
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    EVENTS_RAW,
    EVENTS_DLQ,
    PROFILES_UPDATED,
    SUPPORT_MESSAGES,
    SUPPORT_INTENTS,
)


def ensure_topics(settings: KafkaSettings, topics: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[str]:
    """Create the topics that do not exist yet; return the names created. Idempotent."""
    admin = KafkaAdminClient(client_id="lumen-topics", **settings.kafka_python_config())
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(
                name=t.name,
                num_partitions=t.partitions or settings.topic_partitions,
                replication_factor=settings.replication_factor,
                topic_configs=dict(t.configs),
            )
            for t in topics
            if t.name not in existing
        ]
        created: list[str] = []
        for topic in missing:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass  # created concurrently by another service: fine
        if created:
            log.info("created topics", extra={"fields": {"topics": created}})
        return created
    finally:
        admin.close()
