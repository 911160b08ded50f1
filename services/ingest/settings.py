"""Settings of the ingest service (``LUMEN_INGEST_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import GcSettings, KafkaSettings, LogSettings, ModeSettings


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LUMEN_INGEST_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the HTTP and gRPC servers bind.")
    http_port: int = Field(8080, description="HTTP port of the Segment-compatible API.")
    grpc_port: int = Field(50051, description="gRPC port of EventService.")
    metrics_port: int = Field(
        9101,
        ge=1,
        le=65535,
        description=(
            "Port of the Prometheus `/metrics` page, on `host` but apart from the public HTTP "
            "port, so that it can be kept internal."
        ),
    )
    write_keys: str = Field(
        "",
        description=(
            "Write keys (public, they ship in apps): comma-separated "
            "`sourceId:sha256:<hex digest of the key>` entries; only hashes are stored. "
            "`python -m services.ingest.auth <sourceId> <key>` prints an entry. Required outside "
            "development mode; with none configured in development mode the documented key "
            "`lumen-dev-key` (source `dev`) is used."
        ),
    )
    catalog_keys: str = Field(
        "",
        description=(
            "Catalogue keys (the product's backend): same entry format; they may send what a "
            "write key may plus catalogue changes (`Item Upserted`, `Item Deleted`, an "
            "`item` object in properties). Development mode with no key configured: "
            "`lumen-dev-key`."
        ),
    )
    admin_keys: str = Field(
        "",
        description=(
            "Admin keys (operators): same entry format; erasure (`DELETE /v1/users/{id}`, gRPC "
            "`DeleteUser`) and `/v1/import`. An admin key sends no events unless it is also a "
            "write or catalogue key. Development mode with no key configured: "
            "`lumen-dev-admin-key`."
        ),
    )
    max_future_skew_seconds: float = Field(
        300.0,
        ge=0,
        description=(
            "An event whose (clock-corrected) timestamp lies more than this ahead of "
            "`receivedAt` gets `timestamp = receivedAt`; the client's value stays in "
            "`originalTimestamp`."
        ),
    )
    max_batch_items: int = Field(
        2500,
        ge=1,
        description="Most events one `/v1/batch`, `/v1/import` or gRPC `Publish` may hold (413).",
    )
    max_reported_errors: int = Field(
        100,
        ge=1,
        description=(
            "Most refused events one request reports by index and writes to events.dlq; the "
            "rest are counted in `rejectedCount` and `lumen_ingest_dlq_suppressed_total`."
        ),
    )
    produce_timeout_seconds: float = Field(
        5.0, gt=0, description="How long a request waits for Kafka's acknowledgement before 503."
    )
    body_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Longest time a client may take to send a request body; then 408.",
    )
    retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After sent with 503 when Kafka is unavailable."
    )
    kafka_probe_interval_seconds: float = Field(
        1.0,
        gt=0,
        description=(
            "How often Kafka's reachability is probed; while it is unreachable requests fail "
            "fast with 503 and /readyz and gRPC health report not ready."
        ),
    )
    max_event_bytes: int = Field(32 * 1024, description="Largest accepted event (Segment: 32 KB).")
    max_request_bytes: int = Field(
        500 * 1024, description="Largest accepted request body (Segment: 500 KB)."
    )
    dedupe_window_seconds: float = Field(
        24 * 3600.0,
        ge=0,
        description="A messageId seen (and stored) within this window is a duplicate; 0 disables.",
    )
    dedupe_max_entries: int = Field(
        200_000,
        ge=1,
        description=(
            "Upper bound of remembered messageIds (about 250 bytes each with a UUID messageId); "
            "the oldest are forgotten first when it is reached, which shortens the window."
        ),
    )
    rate_limit_events_per_second: float = Field(
        20_000.0,
        ge=0,
        description="Token-bucket refill rate per write key, in events/s; 0 disables.",
    )
    rate_limit_burst: int = Field(
        40_000, ge=1, description="Token-bucket capacity per write key, in events."
    )
    rate_limit_overrides: str = Field(
        "",
        description=(
            "Per-source limits overriding the defaults: comma-separated "
            "`sourceId=<events per second>/<burst>` entries."
        ),
    )
    privacy_ip: Literal["keep", "drop", "hash"] = Field(
        "keep", description="What happens to `context.ip` before an event is written."
    )
    privacy_trait_keys: str = Field(
        "",
        description=(
            "Comma-separated trait keys (in `traits` and `context.traits`) to drop or hash "
            "before an event is written, e.g. `email,phone`."
        ),
    )
    privacy_trait_policy: Literal["drop", "hash"] = Field(
        "hash", description="What happens to the listed trait keys."
    )
    privacy_hash_salt: SecretStr = Field(
        SecretStr(""),
        description=(
            "Secret key of the HMAC-SHA256 used for hashing; set it in production, otherwise "
            "hashes of guessable values (IPv4 addresses) can be reversed by trying them all."
        ),
    )
    tls_cert_file: str | None = Field(
        None, description="PEM certificate chain: when set (with the key), HTTP and gRPC use TLS."
    )
    tls_key_file: str | None = Field(None, description="PEM private key for tls_cert_file.")
    shutdown_grace_seconds: float = Field(
        15.0, description="On SIGTERM, how long in-flight requests may take to finish."
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mode: ModeSettings = Field(default_factory=ModeSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    gc: GcSettings = Field(default_factory=GcSettings)
