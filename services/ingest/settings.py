"""Settings of the ingest service (``LUMEN_INGEST_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import KafkaSettings, LogSettings


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LUMEN_INGEST_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the HTTP and gRPC servers bind.")
    http_port: int = Field(8080, description="HTTP port of the Segment-compatible API.")
    grpc_port: int = Field(50051, description="gRPC port of EventService.")
    write_keys: str = Field(
        # The local-development key "lumen-dev-key" for the source "dev"; replace it in production.
        "dev:sha256:d5d46c01c0ac746e5866176c423153bb1473d7203ce8b7ec2dfcef20ca342d7b",
        description=(
            "Comma-separated `sourceId:sha256:<hex digest of the write key>` entries; only hashes "
            "are stored. `lumen keys hash <key>` prints an entry."
        ),
    )
    produce_timeout_seconds: float = Field(
        5.0, gt=0, description="How long a request waits for Kafka's acknowledgement before 503."
    )
    retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After sent with 503 when Kafka is unavailable."
    )
    max_event_bytes: int = Field(32 * 1024, description="Largest accepted event (Segment: 32 KB).")
    max_request_bytes: int = Field(
        500 * 1024, description="Largest accepted request body (Segment: 500 KB)."
    )
    shutdown_grace_seconds: float = Field(
        15.0, description="On SIGTERM, how long in-flight requests may take to finish."
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log: LogSettings = Field(default_factory=LogSettings)
