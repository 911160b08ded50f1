"""Settings of the inference server (``LUMEN_INFERENCE_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import KafkaSettings, LogSettings, MongoSettings


class InferenceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LUMEN_INFERENCE_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the gRPC and metrics servers bind.")
    grpc_port: int = Field(50052, description="gRPC port (typed APIs, Open Inference Protocol).")
    metrics_port: int = Field(9102, description="Port of the /metrics HTTP endpoint.")
    shutdown_grace_seconds: float = Field(
        10.0, description="On SIGTERM, how long in-flight calls may take to finish."
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    log: LogSettings = Field(default_factory=LogSettings)
