"""Every LUMEN_* environment variable the code reads, taken from the settings classes.

Deployment files set variables by name; a typo there would be silently ignored by
pydantic-settings (extra="ignore"), so the tests compare against this catalogue instead.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from pydantic_settings import BaseSettings

from shared.settings import KafkaSettings, LogSettings, ModeSettings, MongoSettings

REPO = Path(__file__).resolve().parents[2]
# Read outside the settings classes: by shared/model_registry.py, deploy/docker/bootstrap.py and
# the model builders the trainer runs (models/paths.py: where a run writes its metrics JSON;
# models/recommender/gate.py: the publication gate's margin).
EXTRA_VARIABLES = {
    "LUMEN_MODEL_REPOSITORY",
    "LUMEN_BOOTSTRAP_TIMEOUT_SECONDS",
    "LUMEN_RUNS_DIR",
    "LUMEN_TRAINER_GATE_MARGIN",
}
# OpenTelemetry's standard variables that the deployments set (read by shared/tracing.py and
# the SDK itself).
EXTRA_VARIABLES |= {
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_SDK_DISABLED",
}


def service_names() -> list[str]:
    """Services that run on their own: a package under services/ with a __main__ or settings."""
    return sorted(
        p.name
        for p in (REPO / "services").iterdir()
        if p.is_dir() and ((p / "__main__.py").exists() or (p / "settings.py").exists())
    )


def _settings_classes() -> list[type[BaseSettings]]:
    classes: list[type[BaseSettings]] = [KafkaSettings, MongoSettings, LogSettings, ModeSettings]
    for name in service_names():
        module = importlib.import_module(f"services.{name}.settings")
        classes += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, BaseSettings)
            and value.__module__ == module.__name__
        ]
    return classes


def known_variables() -> set[str]:
    names = set(EXTRA_VARIABLES)
    for cls in _settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field, info in cls.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
                continue  # nested settings read their own prefix
            names.add(f"{prefix}{field}".upper())
    return names
