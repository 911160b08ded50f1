"""Reads offsets and consumer groups from Kafka with one admin client (recreated after errors)."""

from __future__ import annotations

import re
import time
from typing import Any

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec

from services.exporter.lag import LagSnapshot, LagTracker
from shared.kafka_config import kafka_python_config
from shared.settings import KafkaSettings

REQUEST_TIMEOUT_MS = 4000


class KafkaSource:
    def __init__(
        self, settings: KafkaSettings, topic_pattern: str, group_pattern: str, window: int
    ) -> None:
        self.settings = settings
        self.topic_re = re.compile(topic_pattern)
        self.group_re = re.compile(group_pattern)
        self.tracker = LagTracker(window)
        self._admin: Any = None

    def read(self) -> LagSnapshot:
        try:
            return self._read(self._client())
        except Exception:
            self.close()  # a broken connection is rebuilt on the next poll
            raise

    def close(self) -> None:
        if self._admin is not None:
            admin, self._admin = self._admin, None
            admin.close()

    def _client(self) -> Any:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                client_id="lumen-exporter",
                request_timeout_ms=REQUEST_TIMEOUT_MS,
                **kafka_python_config(self.settings),
            )
        return self._admin

    def _read(self, admin: Any) -> LagSnapshot:
        topics = sorted(t for t in admin.list_topics() if self.topic_re.match(t))
        partitions = [
            TopicPartition(t["name"], p["partition_index"])
            for t in admin.describe_topics(topics)
            for p in t["partitions"]
        ]
        latest = admin.list_partition_offsets(dict.fromkeys(partitions, OffsetSpec.LATEST))
        end_offsets = {(tp.topic, tp.partition): int(o.offset) for tp, o in latest.items()}
        groups = sorted(
            g["group_id"] for g in admin.list_groups() if self.group_re.match(g["group_id"])
        )
        committed: dict[str, dict[tuple[str, int], int]] = {}
        members: dict[str, int] = {}
        if groups:
            for group, offsets in admin.list_group_offsets(groups).items():
                committed[group] = {
                    (tp.topic, tp.partition): int(o.offset) for tp, o in offsets.items()
                }
            for group, description in admin.describe_groups(groups).items():
                members[group] = len(description.get("members") or ())
        return self.tracker.observe(time.time(), end_offsets, committed, members)
