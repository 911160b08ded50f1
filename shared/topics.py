"""Every Kafka topic Lumen uses, declared once.

Services import the names from here; ``ensure_topics`` creates missing ones at start-up with
the declared settings, so a fresh cluster needs no manual step. Every topic also gets
``min.insync.replicas`` = min(2, brokers, replication factor) set explicitly: with the
producers' ``acks=all`` a write is then acknowledged only once two replicas hold it, wherever
the cluster has two (the broker default is 1, which makes ``acks=all`` mean one copy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from shared.kafka_config import kafka_python_config
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

SUPPORT_FEEDBACK = TopicSpec(
    "support.feedback",
    "What support agents did with suggested replies (accept, edit, reject), keyed by conversation.",
    configs={"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"},
)

SUPPORT_LABELS = TopicSpec(
    "support.labels",
    "Agents' final intent labels of support messages (the message id they refer to), keyed by "
    "conversation; they train the product's own intent model.",
    configs={"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"},
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    EVENTS_RAW,
    EVENTS_DLQ,
    PROFILES_UPDATED,
    SUPPORT_MESSAGES,
    SUPPORT_INTENTS,
    SUPPORT_FEEDBACK,
    SUPPORT_LABELS,
)


MIN_INSYNC = "min.insync.replicas"


def min_insync_replicas(brokers: int, replication_factor: int) -> int:
    """Two in-sync copies where the cluster has two; never more than a topic's replicas,
    or the topic could take no write at all."""
    return max(1, min(2, brokers, replication_factor))


def ensure_topics(settings: KafkaSettings, topics: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[str]:
    """Create the topics that do not exist yet; return the names created. Idempotent.
    Topics that exist without an explicit ``min.insync.replicas`` get it set."""
    admin = KafkaAdminClient(client_id="lumen-topics", **kafka_python_config(settings))
    try:
        existing = set(admin.list_topics())
        brokers = len(admin.describe_cluster().get("brokers") or ()) or 1
        min_insync = str(min_insync_replicas(brokers, settings.replication_factor))
        missing = [
            NewTopic(
                name=t.name,
                num_partitions=t.partitions or settings.topic_partitions,
                replication_factor=settings.replication_factor,
                topic_configs={MIN_INSYNC: min_insync, **t.configs},
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
        _set_min_insync(admin, [t.name for t in topics if t.name in existing], min_insync)
        return created
    finally:
        admin.close()


def _set_min_insync(admin: KafkaAdminClient, names: list[str], value: str) -> None:
    """Topics created before Lumen set it (or by hand) get it, unless an operator chose one."""
    if not names:
        return
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n, configs={MIN_INSYNC: None}) for n in names]
        )
        by_topic: dict[str, Any] = next(iter(described.values()), {})  # keyed by resource type
        explicit = {
            name
            for name, configs in by_topic.items()
            if (configs.get(MIN_INSYNC) or {}).get("config_source") == "DYNAMIC_TOPIC_CONFIG"
        }
        unset = [n for n in names if n not in explicit]
        if unset:
            admin.alter_configs(
                [
                    ConfigResource(ConfigResourceType.TOPIC, n, configs={MIN_INSYNC: value})
                    for n in unset
                ],
                incremental=True,
            )
            log.info("set min.insync.replicas", extra={"fields": {"topics": unset, "value": value}})
    except Exception as exc:  # the topics work without it: say so loudly, do not stop
        log.warning(
            "could not set min.insync.replicas on existing topics",
            extra={"fields": {"topics": names, "error": repr(exc)}},
        )
