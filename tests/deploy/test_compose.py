"""docker-compose.yml: valid per the Compose specification and internally consistent."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.topics import min_insync_replicas
from tests.deploy.compose_file import COMPOSE_FILE, CREDENTIALS, REPO, interpolate, load
from tests.deploy.settings_catalog import known_variables, service_names

# Bind mounts whose source is produced at run time rather than committed.
GENERATED_SOURCES = {
    # The model registry, built by the model pipeline into var/ (gitignored).
    "./var/models",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(environment=CREDENTIALS)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def long_running(service: dict[str, Any]) -> bool:
    return service.get("restart") != "no"


def test_the_specification_rejects_what_compose_would(compose: dict[str, Any]) -> None:
    # The same loader must refuse a typo and a bad dependency condition, or it proves nothing.
    text = COMPOSE_FILE.read_text()
    with pytest.raises(ValueError, match="helthcheck"):
        load(text.replace("    healthcheck:\n", "    helthcheck:\n", 1), CREDENTIALS)
    with pytest.raises(ValueError, match="service_ready"):
        load(text.replace("condition: service_healthy", "condition: service_ready", 1), CREDENTIALS)
    assert compose["name"] == "lumen"


def test_every_lumen_service_is_in_the_stack(services: dict[str, dict[str, Any]]) -> None:
    missing = set(service_names()) - set(services)
    assert not missing, f"services/ without a Compose service: {sorted(missing)}"


def test_every_built_service_maps_to_an_existing_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    built = {name: s for name, s in services.items() if "build" in s}
    assert set(service_names()) <= set(built)
    for name, service in built.items():
        build = service["build"]
        dockerfile = REPO / build["context"] / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        assert re.fullmatch(r"services/[a-z]+/Dockerfile", build["dockerfile"]), name


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        assert ":" in image.rsplit("/", 1)[-1], f"{name}: {image} has no tag"
        assert not image.endswith(":latest"), f"{name}: {image} uses latest"


def test_dependencies_exist_and_their_conditions_can_be_met(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            target = services[dependency]
            condition = spec["condition"]
            if condition == "service_healthy":
                check = target.get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), (
                    f"{name} waits for {dependency} to be healthy but it has no healthcheck"
                )
            if condition == "service_completed_successfully":
                assert target.get("restart") == "no", f"{dependency} is not a one-shot service"
            # A service in a profile cannot be a dependency of one that is always started.
            if target.get("profiles"):
                assert set(target["profiles"]) & set(service.get("profiles", [])), (
                    f"{name} depends on {dependency}, which only runs with a profile"
                )


def test_lumen_services_wait_for_the_platform_and_the_bootstrap(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in service_names():
        depends = services[name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["mongo"]["condition"] == "service_healthy"
        assert depends["bootstrap"]["condition"] == "service_completed_successfully"
    bootstrap = services["bootstrap"]["depends_on"]
    assert bootstrap["mongo-init"]["condition"] == "service_completed_successfully"


def test_every_long_running_service_has_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if long_running(service):
            check = service.get("healthcheck", {})
            assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_named_volumes_and_networks_are_declared_and_used(compose: dict[str, Any]) -> None:
    declared_volumes = set(compose.get("volumes", {}))
    declared_networks = set(compose.get("networks", {}))
    used_volumes: set[str] = set()
    used_networks: set[str] = set()
    for name, service in compose["services"].items():
        networks = service.get("networks", [])
        used_networks |= set(networks if isinstance(networks, list) else networks.keys())
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                path = Path(source)
                if source not in GENERATED_SOURCES:
                    assert (REPO / path).exists(), f"{name}: bind mount {source} does not exist"
            else:
                used_volumes.add(source)
    assert used_volumes <= declared_volumes, used_volumes - declared_volumes
    assert used_networks <= declared_networks, used_networks - declared_networks
    assert declared_volumes <= used_volumes, f"unused volumes: {declared_volumes - used_volumes}"
    assert declared_networks <= used_networks, (
        f"unused networks: {declared_networks - used_networks}"
    )


def test_kafka_runs_in_kraft_mode_from_the_official_image(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "kafka-data:/var/lib/kafka/data" in kafka["volumes"]


def test_mongo_is_a_replica_set_initialised_once(services: dict[str, dict[str, Any]]) -> None:
    assert services["mongo"]["command"][:3] == ["mongod", "--replSet", "lumen"]
    init = services["mongo-init"]
    assert init["restart"] == "no"
    script = init["command"][init["command"].index("--file") + 1]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in init["volumes"]}
    assert (REPO / mounted[script]).is_file()
    # The services' URI names the same set the init script creates.
    assert 'rs.initiate({ _id: "lumen"' in (REPO / mounted[script]).read_text()
    assert "replicaSet=lumen" in services["ingest"]["environment"].get(
        "LUMEN_MONGO_URI", services["profiles"]["environment"]["LUMEN_MONGO_URI"]
    )


def test_monitoring_profile_mounts_the_monitoring_files(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("prometheus", "grafana", "exporter"):
        assert services[name]["profiles"] == ["monitoring"], name
    prometheus_mounts = mounts(services["prometheus"])
    assert prometheus_mounts["/etc/prometheus/prometheus.yml"] == "./deploy/compose/prometheus.yml"
    assert prometheus_mounts["/etc/prometheus/rules"] == "./monitoring/prometheus/rules"
    assert list((REPO / "monitoring/prometheus/rules").glob("*.yml")), "no rule files to load"
    grafana_mounts = mounts(services["grafana"])
    assert grafana_mounts["/etc/grafana/provisioning"] == "./monitoring/grafana/provisioning"
    # Where the provisioned dashboard provider looks for the JSON files.
    provider = yaml.safe_load(
        (REPO / "monitoring/grafana/provisioning/dashboards/lumen.yml").read_text()
    )
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert grafana_mounts[dashboards_path] == "./monitoring/grafana/dashboards"
    assert list((REPO / "monitoring/grafana/dashboards").glob("*.json")), "no dashboards"
    datasource = (REPO / "monitoring/grafana/provisioning/datasources/lumen.yml").read_text()
    for variable in re.findall(r"\$\{(\w+)\}", datasource):
        assert variable in services["grafana"]["environment"], variable
    assert services["grafana"]["environment"]["LUMEN_PROMETHEUS_URL"] == "http://prometheus:9090"


def test_compose_scrape_config_keeps_the_monitoring_jobs_and_labels(
    services: dict[str, dict[str, Any]],
) -> None:
    def jobs(path: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
        config = yaml.safe_load(path.read_text())
        return {
            job["job_name"]: (
                [t.split(":")[0] for t in job["static_configs"][0]["targets"]],
                job["static_configs"][0]["labels"],
            )
            for job in config["scrape_configs"]
        }

    reference = jobs(REPO / "monitoring/prometheus/prometheus.yml")
    compose_jobs = jobs(REPO / "deploy/compose/prometheus.yml")
    assert set(compose_jobs) == set(reference)
    for job, (hosts, labels) in compose_jobs.items():
        assert {k: v for k, v in labels.items() if k != "env"} == {
            k: v for k, v in reference[job][1].items() if k != "env"
        }, job
        for host in hosts:
            assert host == "localhost" or host in services, f"{job}: {host} is no Compose service"
    # Every Lumen service is scraped on the port it serves /metrics on.
    targets = {t for job in compose_jobs.values() for t in job[0]}
    assert set(service_names()) <= targets


def test_compose_scrape_config_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool, (
        "promtool not found: scripts/bootstrap.sh installs the Debian package prometheus"
    )
    result = subprocess.run(
        [promtool, "check", "config", str(REPO / "deploy/compose/prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    return {v.split(":")[1]: v.split(":")[0] for v in service["volumes"] if v.startswith(".")}


def test_lumen_containers_listen_on_all_interfaces_and_use_real_settings(
    services: dict[str, dict[str, Any]],
) -> None:
    known = known_variables()
    for name, service in services.items():
        if "build" not in service:
            continue  # third-party images: LUMEN_* there is their own business (Grafana)
        lumen_vars = {k for k in service.get("environment", {}) if k.startswith("LUMEN_")}
        assert lumen_vars <= known, f"{name}: unknown settings {sorted(lumen_vars - known)}"
    for name in service_names():
        assert services[name]["environment"][f"LUMEN_{name.upper()}_HOST"] == "0.0.0.0"
        assert services[name]["environment"]["LUMEN_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092"


def test_published_ports_are_documented_in_the_readme(
    services: dict[str, dict[str, Any]],
) -> None:
    readme = (REPO / "README.md").read_text()
    start = readme.index("## Docker Compose")
    section = readme[start : readme.find("\n## ", start + 1)]
    for name, service in services.items():
        for mapping in service.get("ports", []):
            host_port = str(mapping).split(":")[-2]
            assert f"`{host_port}`" in section, f"{name}: port {host_port} not in README"


def test_interpolation_follows_compose_rules() -> None:
    text = "a: ${A:-x}\nb: ${B-y}\nc: $${C}\nd: ${D}\n"
    assert interpolate(text, {"A": ""}) == "a: x\nb: y\nc: ${C}\nd: \n"
    assert interpolate(text, {"A": "1", "B": ""}) == "a: 1\nb: \nc: ${C}\nd: \n"
    with pytest.raises(ValueError, match=r"\$\{E\} is required"):
        interpolate("${E:?set it}", {})


DEV_KEY_HASH = "d5d46c01c0ac746e5866176c423153bb1473d7203ce8b7ec2dfcef20ca342d7b"  # lumen-dev-key


@pytest.mark.parametrize(
    "required",
    ["LUMEN_INGEST_WRITE_KEYS", "LUMEN_INFERENCE_AUTH_TOKEN", "LUMEN_INSIGHTS_AUTH_TOKEN"],
)
def test_compose_refuses_to_start_without_the_credentials(required: str) -> None:
    missing = {k: v for k, v in CREDENTIALS.items() if k != required}
    with pytest.raises(ValueError, match=rf"\$\{{{required}\}} is required: .*docs/deployment\.md"):
        load(environment=missing)
    with pytest.raises(ValueError, match=required):
        load(environment=missing | {required: ""})  # `:?` also refuses an empty value


def test_credentials_come_only_from_the_environment(services: dict[str, dict[str, Any]]) -> None:
    assert DEV_KEY_HASH not in COMPOSE_FILE.read_text()
    environments = [
        services[name]["environment"] for name in ("ingest", "inference", "insights", "profiles")
    ]
    given = {k: v for environment in environments for k, v in environment.items()}
    for name, value in CREDENTIALS.items():
        assert given[name] == value, name
    # The optional scopes may be left out of .env: empty means none of that kind.
    optional_left_out = {k: v for k, v in CREDENTIALS.items() if "CATALOG" not in k}
    assert load(environment=optional_left_out)["services"]["ingest"]["environment"][
        "LUMEN_INGEST_CATALOG_KEYS"
    ] in ("", None)
    for name, service in services.items():
        assert "LUMEN_DEV_MODE" not in service.get("environment", {}), name


def published_container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service.get("ports", [])}


def test_metrics_and_faust_web_ports_are_not_published(
    services: dict[str, dict[str, Any]],
) -> None:
    ingest, inference = services["ingest"], services["inference"]
    metrics_port = int(ingest["environment"]["LUMEN_INGEST_METRICS_PORT"])
    assert metrics_port not in {8080, 50051}, "metrics must not share the public HTTP port"
    assert published_container_ports(ingest) == {8080, 50051}
    assert published_container_ports(inference) == {50052}
    assert published_container_ports(services["insights"]) == {50053}
    assert "ports" not in services["profiles"]


def test_prometheus_scrapes_each_service_on_its_metrics_port(
    services: dict[str, dict[str, Any]],
) -> None:
    config = yaml.safe_load((REPO / "deploy/compose/prometheus.yml").read_text())
    targets = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    env = {name: services[name]["environment"] for name in service_names()}
    assert targets["ingest"] == [f"ingest:{env['ingest']['LUMEN_INGEST_METRICS_PORT']}"]
    assert targets["profiles"] == [f"profiles:{env['profiles']['LUMEN_PROFILES_WEB_PORT']}"]
    assert targets["inference"] == [f"inference:{env['inference']['LUMEN_INFERENCE_METRICS_PORT']}"]
    assert targets["insights"] == [f"insights:{env['insights']['LUMEN_INSIGHTS_METRICS_PORT']}"]
    assert targets["trainer"] == [f"trainer:{env['trainer']['LUMEN_TRAINER_PORT']}"]


def test_the_trainer_publishes_into_the_registry_inference_reads(
    services: dict[str, dict[str, Any]],
) -> None:
    trainer, inference = services["trainer"], services["inference"]
    assert mounts(trainer)["/models"] == mounts(inference)["/models"] == "./var/models"
    # Inference only reads; the trainer writes new versions (no :ro).
    assert "./var/models:/models:ro" in inference["volumes"]
    assert "./var/models:/models" in trainer["volumes"]
    for service in (trainer, inference):
        assert service["environment"]["LUMEN_MODEL_REPOSITORY"] == "/models"
    assert "ports" not in trainer  # /metrics and /healthz stay on the Compose network
    # Longer than the trainer's own grace for a run in progress (SIGTERM, then SIGKILL).
    assert float(trainer["stop_grace_period"].rstrip("s")) > 20


def test_kafka_defaults_agree_with_the_topics_lumen_creates(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]["environment"]
    brokers = len(kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
    replication = int(services["ingest"]["environment"]["LUMEN_KAFKA_REPLICATION_FACTOR"])
    assert int(kafka["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == replication <= brokers
    # The broker's default is what shared/topics.py sets on Lumen's topics: min(2, brokers).
    assert int(kafka["KAFKA_MIN_INSYNC_REPLICAS"]) == min_insync_replicas(brokers, replication)
    assert int(kafka["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == min(2, brokers)
