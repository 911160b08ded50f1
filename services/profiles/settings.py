"""Settings of the streaming profile updater (``LUMEN_PROFILES_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import (
    CurrencySettings,
    GcSettings,
    InteractionSettings,
    KafkaSettings,
    LogSettings,
    MongoSettings,
)
from shared.topics import EVENTS_RAW


class ProfilesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LUMEN_PROFILES_", extra="ignore")

    app_id: str = Field(
        "lumen-profiles", description="Faust application id: the Kafka consumer group."
    )
    events_topic: str = Field(
        EVENTS_RAW.name,
        description="Topic of incoming events (another name isolates a benchmark or a test).",
    )
    host: str = Field("127.0.0.1", description="Address of the web server (/healthz, /metrics).")
    web_port: int = Field(6066, description="Port of the web server (/healthz, /metrics).")
    batch_size: int = Field(
        10000,
        ge=1,
        description="Most events applied to MongoDB in one transaction. A batch closes after "
        "batch_seconds anyway, so it only grows this large when the worker lags behind.",
    )
    batch_seconds: float = Field(
        0.05,
        gt=0,
        description="How long a batch fills after the previous write before it is written "
        "anyway (a shorter wait: fresher profiles, more transactions).",
    )
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest",
        description="Where a new consumer group starts reading: the whole topic or only new events.",
    )
    commit_interval_seconds: float = Field(
        1.0, gt=0, description="How often Faust commits the offsets of written batches to Kafka."
    )
    session_timeout_seconds: float = Field(
        30.0,
        ge=6,
        le=60,
        description="How long the Kafka group waits for a silent worker (e.g. one killed with "
        "-9) before handing its partitions to the others. Heartbeats go every tenth of it.",
    )
    half_life_days: float = Field(
        7.0, gt=0, description="Half-life of the category affinity's exponential decay, in days."
    )
    session_gap_minutes: float = Field(
        30.0, gt=0, description="Inactivity after which the next event starts a new session."
    )
    recent_items_max: int = Field(
        50, ge=1, description="Length of the recentItems list (oldest first) in a profile."
    )
    active_days_max: int = Field(366, ge=1, description="Most active days kept in a profile.")
    trend_minute_retention_hours: float = Field(
        2.0, gt=0, description="How long 1-minute trend windows are kept after they close."
    )
    trend_hour_retention_hours: float = Field(
        48.0, gt=0, description="How long 1-hour trend windows are kept after they close."
    )
    item_cache_seconds: float = Field(
        30.0, ge=0, description="How long item categories read from MongoDB are reused."
    )
    retry_max_seconds: float = Field(
        5.0, gt=0, description="Longest back-off between retries of a failed MongoDB write."
    )
    max_traits: int = Field(
        200, ge=1, description="Most traits a profile keeps; a new trait name beyond it is refused."
    )
    max_trait_bytes: int = Field(
        8192,
        ge=64,
        description="Largest trait (name + JSON value, bytes) a profile stores; a larger one is "
        "refused and the rest of the event applied.",
    )
    max_traits_bytes: int = Field(
        65536,
        ge=64,
        description="Largest sum of a profile's trait sizes; a trait that would pass it is refused.",
    )
    max_event_names: int = Field(
        500,
        ge=1,
        description="Most distinct event names counted in counts.byName; later names are counted "
        "under '(other)'.",
    )
    max_anonymous_ids: int = Field(
        100,
        ge=1,
        description="Most anonymous ids (and aliased ids) one profile absorbs; a link beyond it is "
        "refused, and the anonymous profile stays apart.",
    )
    max_purchased_items: int = Field(
        2000,
        ge=1,
        description="Most items kept in purchasedItems (bought or rated); later items are not "
        "added.",
    )
    max_trend_events_per_hour: int = Field(
        1000,
        ge=1,
        description="Most interactions of one user counted in trending per hour; later ones "
        "still update the profile (bounds one user's weight in trending and their erasure record).",
    )
    erasure_hash_key: SecretStr = Field(
        SecretStr(""),
        description="Secret key of the HMAC-SHA256 under which erased ids are kept (suppression "
        "list). Set it in production: without it the hash of a guessable id can be recomputed. "
        "Changing it forgets earlier erasures.",
    )
    data_dir: str = Field(
        "var/data/profiles", description="Faust's local state folder (table stores)."
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    currency: CurrencySettings = Field(default_factory=CurrencySettings)
    interactions: InteractionSettings = Field(default_factory=InteractionSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    gc: GcSettings = Field(default_factory=GcSettings)
