"""Settings every service shares: where Kafka and MongoDB are, how to log.

Each service adds its own settings class (see ``services/*/settings.py``); all of them read
environment variables with the ``LUMEN_`` prefix, so one ``.env`` or Helm ConfigMap serves all.
Invalid values fail at start-up, not at the first request.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """Connection to the Kafka cluster (``LUMEN_KAFKA_*``)."""

    model_config = SettingsConfigDict(env_prefix="LUMEN_KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None,
        description="SASL mechanism; required, with the user name and password, when the protocol uses SASL.",
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: str | None = Field(None, description="SASL password.")
    ssl_cafile: str | None = Field(None, description="CA bundle to verify the brokers.")
    topic_partitions: int = Field(
        6, ge=1, description="Partitions for topics Lumen creates (events.raw and friends)."
    )
    replication_factor: int = Field(
        1, ge=1, description="Replication factor for topics Lumen creates."
    )

    def bootstrap_list(self) -> list[str]:
        """The brokers as a list; shared/kafka_config.py turns these settings into client options."""
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> KafkaSettings:
        # Without them kafka-python refuses to connect and the other clients would guess PLAIN.
        if self.security_protocol.startswith("SASL_"):
            missing = [
                f"LUMEN_KAFKA_{name.upper()}"
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(
                    f"LUMEN_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                    + ", ".join(missing)
                )
        return self


class GrpcServerSecuritySettings(BaseModel):
    """Who may call a gRPC server and over what (token, TLS, mTLS; see shared/grpc_auth.py).

    A base for the settings class of each gRPC service, before ``BaseSettings``, so that each
    reads the fields under its own prefix: inference ``LUMEN_INFERENCE_AUTH_TOKEN``, insights
    ``LUMEN_INSIGHTS_AUTH_TOKEN``, and so on. (A plain model, not a settings class: on its own
    it has no prefix and reads nothing.)
    """

    auth_token: str | None = Field(
        None,
        description="When set, every call but health checks must send 'authorization: Bearer "
        "<token>'. Outside LUMEN_DEV_MODE the server refuses to start without it or mTLS.",
    )
    tls_cert_file: str | None = Field(
        None, description="PEM certificate chain: when set (with the key), gRPC uses TLS."
    )
    tls_key_file: str | None = Field(None, description="PEM private key for tls_cert_file.")
    tls_client_ca_file: str | None = Field(
        None,
        description="PEM CA bundle: when set (with TLS), every client must present a "
        "certificate it signed (mTLS), which also counts as authentication.",
    )


class MongoSettings(BaseSettings):
    """Connection to MongoDB (``LUMEN_MONGO_*``)."""

    model_config = SettingsConfigDict(env_prefix="LUMEN_MONGO_", extra="ignore")

    uri: str = Field(
        "mongodb://127.0.0.1:27017/?replicaSet=lumen",
        description="MongoDB connection string (credentials and TLS options go here).",
    )
    database: str = Field("lumen", description="Database that holds profiles, items and trends.")
    timeout_ms: int = Field(
        2000, ge=100, description="Server selection and socket timeout in milliseconds."
    )


class ModeSettings(BaseSettings):
    """Whether a process runs for development on one machine (``LUMEN_DEV_MODE``).

    Off by default, so that a deployment that forgets to configure credentials refuses to start
    instead of running open: outside development every service needs its keys and tokens set.
    The local platform (`lumen up`), the tests and the benchmarks turn it on.
    """

    model_config = SettingsConfigDict(env_prefix="LUMEN_", extra="ignore")

    dev_mode: bool = Field(
        False,
        description=(
            "Development mode: ingest falls back to the documented key `lumen-dev-key` when no "
            "key is configured, and inference and insights serve without a token. Never set "
            "it in production."
        ),
    )


class GcSettings(BaseSettings):
    """Garbage collection of the serving processes (``LUMEN_GC_*``; see shared/gc_tuning.py)."""

    model_config = SettingsConfigDict(env_prefix="LUMEN_GC_", extra="ignore")

    gen0_threshold: int = Field(
        10_000,
        ge=0,
        description=(
            "Allocations between young garbage collections (CPython's default is 700); the "
            "objects loaded at start-up are frozen out of collections. 0 keeps CPython's defaults."
        ),
    )


class LogSettings(BaseSettings):
    """Logging (``LUMEN_LOG_*``)."""

    model_config = SettingsConfigDict(env_prefix="LUMEN_LOG_", extra="ignore")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["json", "text"] = Field(
        "json", description="json: one JSON object per line; text: for people at a terminal."
    )


class InteractionSettings(BaseSettings):
    """The interaction store (``LUMEN_INTERACTIONS_*``; see shared/interactions.py)."""

    model_config = SettingsConfigDict(env_prefix="LUMEN_INTERACTIONS_", extra="ignore")

    retention_days: float = Field(
        365.0,
        gt=0,
        description=(
            "How long the interaction store keeps an interaction, in days after its event time "
            "(a TTL index on it; a change is applied to the index, in place, when the profile "
            "updater next starts)."
        ),
    )


class CurrencySettings(BaseSettings):
    """Revenue's currency (``LUMEN_CURRENCY_*``; see shared/currency.py)."""

    model_config = SettingsConfigDict(env_prefix="LUMEN_CURRENCY_", extra="ignore")

    base: str = Field(
        "USD",
        pattern=r"^[A-Z]{3}$",
        description=(
            "Currency revenue is reported in (profiles' revenue, the exporter's revenue figure); "
            "events without a currency are taken to be in it."
        ),
    )
    rates: dict[str, float] = Field(
        default_factory=dict,
        description=(
            'Units of the base currency per unit of another, as JSON (e.g. {"EUR": 1.08}). '
            "Revenue in a currency not listed is kept out of the converted total and counted "
            '(profiles: lumen_profiles_limited_total{limit="revenue_currency"}; exporter: '
            "revenue under that currency's own label)."
        ),
    )

    @model_validator(mode="after")
    def _positive_codes(self) -> CurrencySettings:
        for code, rate in self.rates.items():
            if not re.match(r"^[A-Za-z]{3}$", code) or not rate > 0:
                raise ValueError(
                    f"currency rate {code!r}: {rate} is not a code with a positive rate"
                )
        return self
