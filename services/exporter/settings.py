"""Settings of the exporter (``LUMEN_EXPORTER_*``)."""

from __future__ import annotations

import re

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import CurrencySettings, KafkaSettings, LogSettings, MongoSettings
from shared.topics import ALL_TOPICS


class ExporterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LUMEN_EXPORTER_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the /metrics endpoint binds.")
    port: int = Field(9108, description="Port of the /metrics endpoint.")
    kafka_poll_seconds: float = Field(
        5.0, gt=0, description="How often end offsets, committed offsets and groups are read."
    )
    mongo_poll_seconds: float = Field(
        15.0, gt=0, description="How often MongoDB counts and sizes are read (scrapes use a cache)."
    )
    lag_window: int = Field(
        10,
        ge=3,
        description=(
            "Kafka polls kept per partition: the sliding window for the lag status and the "
            "offset-to-time table for the estimated lag in seconds."
        ),
    )
    topic_pattern: str = Field(
        "^(" + "|".join(re.escape(t.name) for t in ALL_TOPICS) + ")$",
        description="Regular expression of the topics to watch (default: Lumen's declared topics).",
    )
    group_pattern: str = Field(
        ".*", description="Regular expression of the consumer groups to watch."
    )
    business_group_id: str = Field(
        "lumen-exporter", description="Consumer group that reads events for the business figures."
    )
    business_enabled: bool = Field(
        True, description="Read events.raw and support.intents for the business figures."
    )
    trending_window_seconds: int = Field(
        3600, ge=60, description="Sliding window over which trending categories are counted."
    )
    trending_top: int = Field(
        10, ge=1, le=50, description="How many trending categories are exported (bounds labels)."
    )
    max_label_values: int = Field(
        50, ge=1, description="Distinct intents or currencies kept before the rest become 'other'."
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    currency: CurrencySettings = Field(default_factory=CurrencySettings)
    log: LogSettings = Field(default_factory=LogSettings)
