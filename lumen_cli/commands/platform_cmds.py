"""``lumen up``, ``down`` and ``status``: the local platform on one machine."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any

from lumen_cli.platform import jaeger, kafka, mongo, paths, processes, prometheus, services
from lumen_cli.settings import CliSettings
from shared.settings import KafkaSettings
from shared.topics import ensure_topics


def add_parsers(sub: Any) -> None:
    up = sub.add_parser("up", help="start Kafka, mongod and every Lumen service (idempotent)")
    up.add_argument("--infra-only", action="store_true", help="start only Kafka and mongod")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop everything `lumen up` started, by PID")
    down.add_argument(
        "--purge", action="store_true", help="also delete Kafka and MongoDB data (keeps caches)"
    )
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="show each component, its address and health")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)


# The models behind the typed APIs (recommend, classify, search): `lumen status` shows the
# version of each that the inference server has loaded.
SERVED_MODELS = ("recommender", "intent-classifier", "text-encoder", "item-search")


def infra_env(kafka_bootstrap: str, mongo_uri: str) -> dict[str, str]:
    # The local platform is a development machine: the documented dev key and no inference token.
    return {
        "LUMEN_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LUMEN_MONGO_URI": mongo_uri,
        "LUMEN_DEV_MODE": "1",
    }


def tracing_env(otlp_endpoint: str) -> dict[str, str]:
    """OTLP export to the local Jaeger, every trace kept, unless the caller's environment
    already configures tracing its own way (its OTEL_* variables pass through untouched)."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint}
    if "OTEL_TRACES_SAMPLER" not in os.environ:
        env["OTEL_TRACES_SAMPLER"] = "parentbased_always_on"
    configured = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return {} if any(os.environ.get(name) for name in configured) else env


def start_trace_store() -> dict[str, str]:
    """Start Jaeger and return the services' tracing environment; tracing is optional, so a
    Jaeger that cannot start (no Go to build it, a port taken) leaves it off, with the reason."""
    print("starting jaeger (trace store)...", flush=True)
    try:
        config = jaeger.start()
    except processes.PlatformError as error:
        print(f"  jaeger    not started, tracing off: {error}", file=sys.stderr)
        return {}
    print(f"  jaeger    ui={config.query_url}  otlp={config.otlp_endpoint}")
    return tracing_env(config.otlp_endpoint)


def cmd_up(args: argparse.Namespace) -> int:
    print("starting Kafka (KRaft, single node)...", flush=True)
    bootstrap = kafka.start()
    print(f"  kafka     {bootstrap}")
    print("starting mongod (one-node replica set)...", flush=True)
    uri = mongo.start()
    print(f"  mongod    {uri}")
    created = ensure_topics(KafkaSettings(bootstrap_servers=bootstrap))
    if created:
        print(f"  topics    created {', '.join(created)}")
    if args.infra_only:
        return 0
    env = {**infra_env(bootstrap, uri), **start_trace_store()}
    for spec in services.default_services():
        print(f"starting {spec.name}...", flush=True)
        services.start(spec, env)
        print(f"  {spec.name:<9} " + "  ".join(f"{k}={v}" for k, v in spec.addresses.items()))
    print("starting prometheus...", flush=True)
    print(f"  prometheus {prometheus.start()}")
    print(f"\nLumen is up. Logs: {paths.var_dir() / 'logs'}. Stop it with `lumen down`.")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    # Services first (they flush to Kafka and MongoDB), then the infrastructure.
    if prometheus.stop():
        print("stopped prometheus")
    for spec in reversed(services.default_services()):
        if services.stop(spec):
            print(f"stopped {spec.name}")
    if jaeger.stop():
        print("stopped jaeger")
    if mongo.stop():
        print("stopped mongod")
    if kafka.stop():
        print("stopped kafka")
    if args.purge:
        shutil.rmtree(paths.var_dir() / "data", ignore_errors=True)
        print(f"deleted {paths.var_dir() / 'data'}")
    return 0


def component_status() -> list[dict[str, Any]]:
    kafka_cfg = kafka.KafkaConfig.from_env()
    mongo_cfg = mongo.MongoConfig.from_env()
    rows: list[dict[str, Any]] = [
        {
            "name": "kafka",
            "pid": processes.read_pid(kafka.COMPONENT),
            "address": kafka_cfg.bootstrap,
            "healthy": processes.port_open("127.0.0.1", kafka_cfg.port),
        },
        {
            "name": "mongod",
            "pid": processes.read_pid(mongo.COMPONENT),
            "address": mongo_cfg.uri,
            "healthy": processes.port_open("127.0.0.1", mongo_cfg.port),
        },
    ]
    for spec in services.default_services():
        rows.append(
            {
                "name": spec.name,
                "pid": processes.read_pid(spec.name),
                "address": spec.addresses,
                "healthy": services.healthy(spec),
            }
        )
        if spec.name == "inference" and spec.grpc_target and rows[-1]["healthy"]:
            rows[-1]["models"] = loaded_models(spec.grpc_target)
        if spec.name == "trainer" and spec.health_url and rows[-1]["healthy"]:
            rows[-1]["last_run"] = trainer_last_run(spec.health_url)
    jaeger_cfg = jaeger.JaegerConfig.from_env()
    rows.append(
        {
            "name": "jaeger",
            "pid": processes.read_pid(jaeger.COMPONENT),
            "address": {"ui": jaeger_cfg.query_url, "otlp": jaeger_cfg.otlp_endpoint},
            "healthy": jaeger.ready(jaeger_cfg.query_url),
        }
    )
    prom_cfg = prometheus.PrometheusConfig.from_env()
    rows.append(
        {
            "name": "prometheus",
            "pid": processes.read_pid(prometheus.COMPONENT),
            "address": prom_cfg.url,
            "healthy": prometheus.ready(prom_cfg.url),
        }
    )
    return rows


def loaded_models(target: str) -> dict[str, str | None] | str:
    """Version of each typed-API model the server has loaded (None: not loaded), or why the
    server could not say (e.g. it wants a token)."""
    from lumen_client import LumenClient, LumenError

    settings = CliSettings()
    try:
        with LumenClient(target, timeout=3.0, retries=1, token=settings.inference_token) as lumen:
            return lumen.model_versions(SERVED_MODELS)
    except LumenError as error:
        return f"unknown ({error.code.name.lower()})"


def trainer_last_run(health_url: str) -> dict[str, Any] | None:
    """The trainer's last run as its /healthz reports it (None: none yet or no answer)."""
    import urllib.request

    try:
        with urllib.request.urlopen(health_url, timeout=2.0) as reply:
            last = json.loads(reply.read()).get("last_run")
    except (OSError, ValueError):
        return None
    return last if isinstance(last, dict) else None


def _last_run_line(last: dict[str, Any] | None) -> str:
    if last is None:
        return "no run yet"
    version = f" v{last['version']}" if last.get("version") else ""
    return (
        f"{last.get('outcome')}{version} ({last.get('reason')}) after {last.get('seconds')} s, "
        f"trigger {last.get('trigger')}"
    )


def _models_line(models: dict[str, str | None] | str) -> str:
    if isinstance(models, str):
        return models
    return ", ".join(f"{name} v{v}" if v else f"{name} not loaded" for name, v in models.items())


def cmd_status(args: argparse.Namespace) -> int:
    rows = component_status()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            state = "up" if row["healthy"] else ("starting" if row["pid"] else "down")
            address = row["address"]
            if isinstance(address, dict):
                address = "  ".join(f"{k}={v}" for k, v in address.items())
            print(f"{row['name']:<10} {state:<9} pid={row['pid'] or '-':<8} {address}")
            if "models" in row:
                print(f"{'':<10} models: {_models_line(row['models'])}")
            if "last_run" in row:
                print(f"{'':<10} last run: {_last_run_line(row['last_run'])}")
    return 0 if all(r["healthy"] for r in rows) else 3
