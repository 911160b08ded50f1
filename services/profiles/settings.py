"""Settings of the streaming profile updater (``LUMEN_PROFILES_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import KafkaSettings, LogSettings, MongoSettings


class ProfilesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LUMEN_PROFILES_", extra="ignore")

    app_id: str = Field(
        "lumen-profiles", description="Faust application id: the Kafka consumer group."
    )
    host: str = Field("127.0.0.1", description="Address of the web server (/healthz, /metrics).")
    web_port: int = Field(6066, description="Port of the web server (/healthz, /metrics).")
    batch_size: int = Field(500, ge=1, description="Most events written to MongoDB in one bulk.")
    batch_seconds: float = Field(
        0.1, gt=0, description="Longest wait to fill a batch before writing it anyway."
    )
    data_dir: str = Field(
        "var/data/profiles", description="Faust's local state folder (table stores)."
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    log: LogSettings = Field(default_factory=LogSettings)
