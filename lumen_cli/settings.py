"""Where the ``lumen`` command line finds the platform (``LUMEN_*`` environment variables).

The defaults point at ``lumen up``'s local platform; set these to talk to another one
(the integration tests point them at services on free ports).
"""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _port(variable: str, default: str) -> str:
    return os.environ.get(variable, default)


class CliSettings(BaseSettings):
    """Targets of the ``lumen`` CLI's commands."""

    model_config = SettingsConfigDict(env_prefix="LUMEN_", extra="ignore")

    inference_target: str = Field(
        default_factory=lambda: f"127.0.0.1:{_port('LUMEN_INFERENCE_GRPC_PORT', '50052')}",
        description="host:port of the inference gRPC server (recommend, classify, search, profile).",
    )
    ingest_url: str = Field(
        default_factory=lambda: f"http://127.0.0.1:{_port('LUMEN_INGEST_HTTP_PORT', '8080')}",
        description="Base URL of ingest's HTTP API (used by `lumen seed`).",
    )
    ingest_grpc_target: str = Field(
        default_factory=lambda: f"127.0.0.1:{_port('LUMEN_INGEST_GRPC_PORT', '50051')}",
        description="host:port of ingest's gRPC EventService (the Python client's publish_events).",
    )
    insights_target: str = Field(
        default_factory=lambda: f"127.0.0.1:{_port('LUMEN_INSIGHTS_GRPC_PORT', '50053')}",
        description="host:port of the insights gRPC TrendService (`lumen forecast`).",
    )
    jaeger_query_url: str = Field(
        default_factory=lambda: f"http://127.0.0.1:{_port('LUMEN_LOCAL_JAEGER_QUERY_PORT', '16686')}",
        description="Base URL of Jaeger's query UI and API (`lumen trace`).",
    )
    write_key: str = Field(
        "lumen-dev-key", description="Write key the CLI and the client send to ingest."
    )
    inference_token: str | None = Field(
        None,
        description="Bearer token sent to inference (its LUMEN_INFERENCE_AUTH_TOKEN); needed "
        "unless inference runs in LUMEN_DEV_MODE or with mTLS only.",
    )
    insights_token: str | None = Field(
        None,
        description="Bearer token sent to insights (its LUMEN_INSIGHTS_AUTH_TOKEN; `lumen "
        "forecast`); needed unless insights runs in LUMEN_DEV_MODE or with mTLS only.",
    )
    cli_timeout_seconds: float = Field(
        10.0, gt=0, description="Deadline of each CLI call to a service (retries included)."
    )
