"""Settings of the trainer (``LUMEN_TRAINER_*``)."""

from __future__ import annotations

import shlex
import sys

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import LogSettings, MongoSettings

DEFAULT_COMMAND = "python -m models train recommender --from-events"


class TrainerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LUMEN_TRAINER_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the /metrics and /healthz server binds.")
    port: int = Field(9104, description="Port of /metrics and /healthz.")
    interval_seconds: float = Field(
        3600.0,
        ge=0,
        description="Retrain at least this often (seconds since the last run started); 0: "
        "only after new interactions.",
    )
    min_new_interactions: int = Field(
        1000,
        ge=0,
        description="Retrain once this many interactions arrived after those the last run "
        "read; 0: only on the interval.",
    )
    check_seconds: float = Field(
        30.0, gt=0, description="How often the new interactions are counted and triggers checked."
    )
    run_timeout_seconds: float = Field(
        1800.0, gt=0, description="A run still going after this long is stopped and counted failed."
    )
    retry_seconds: float = Field(
        300.0, ge=0, description="After a failed run, wait this long before starting another."
    )
    stop_grace_seconds: float = Field(
        20.0, gt=0, description="On SIGTERM or timeout: how long a run has to stop before SIGKILL."
    )
    command: str = Field(
        DEFAULT_COMMAND,
        description="Training command (shell words, no shell; a leading `python` is the "
        "trainer's own interpreter); the trainer appends --json-result <file>. It inherits the "
        "trainer's environment: LUMEN_MONGO_*, LUMEN_MODEL_REPOSITORY, LUMEN_TRAINER_GATE_MARGIN.",
    )
    run_at_start: bool = Field(
        False, description="Run once as soon as the trainer starts, whatever the triggers say."
    )
    model_name: str = Field(
        "recommender", description="Registry model whose served version and metrics are exported."
    )
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    def argv(self) -> list[str]:
        words = shlex.split(self.command)
        if words[0] == "python":
            words[0] = sys.executable  # this interpreter: its environment has the trainer's code
        return words

    @model_validator(mode="after")
    def _some_trigger(self) -> TrainerSettings:
        if self.interval_seconds == 0 and self.min_new_interactions == 0:
            raise ValueError(
                "LUMEN_TRAINER_INTERVAL_SECONDS and LUMEN_TRAINER_MIN_NEW_INTERACTIONS are both "
                "0: the trainer would never run"
            )
        if not shlex.split(self.command):
            raise ValueError("LUMEN_TRAINER_COMMAND is empty")
        return self
