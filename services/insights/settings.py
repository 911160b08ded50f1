"""Settings of the insights service (``LUMEN_INSIGHTS_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import GrpcServerSecuritySettings, LogSettings, ModeSettings, MongoSettings


class InsightsSettings(GrpcServerSecuritySettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LUMEN_INSIGHTS_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the gRPC and metrics servers bind.")
    grpc_port: int = Field(50053, description="gRPC port of lumen.v1.TrendService.")
    metrics_port: int = Field(9103, description="Port of the /metrics HTTP endpoint.")
    shutdown_grace_seconds: float = Field(
        10.0, ge=0, description="On SIGTERM, how long in-flight calls may take to finish."
    )
    method: Literal["SeasonalNaive", "AutoETS", "AutoTheta"] = Field(
        "AutoTheta",
        description=(
            "Forecasting method; AutoTheta was the most accurate on hourly demand "
            "(docs/insights.md has the measured accuracy of each). SeasonalNaive is the baseline."
        ),
    )
    season_hours: int = Field(
        24,
        ge=1,
        le=168,
        description=(
            "Seasonal period of the hourly demand; used once the history holds two seasons, "
            "shorter histories are forecast without seasonality."
        ),
    )
    max_history_hours: int = Field(
        672,
        ge=24,
        description=(
            "Most recent hourly windows a forecast is fitted on (the profile updater keeps "
            "LUMEN_PROFILES_TREND_HOUR_RETENTION_HOURS of them, 48 by default)."
        ),
    )
    min_history_hours: int = Field(
        6, ge=2, description="Fewer kept hours than this: Forecast answers FAILED_PRECONDITION."
    )
    forecast_threads: int = Field(
        1, ge=1, description="Threads that fit forecasts (each fit takes one core for its run)."
    )
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    mode: ModeSettings = Field(default_factory=ModeSettings)
