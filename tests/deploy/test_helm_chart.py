"""helm/lumen: lint, render, strict Kubernetes schemas and what a production chart must hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.operator_schemas import SCHEMAS
from tests.deploy.settings_catalog import known_variables, service_names
from tests.deploy.tooling import (
    CHART,
    KUBE_VERSIONS,
    MINIMAL_VALUES,
    PRODUCTION_VALUES,
    REPO,
    Helm,
    Manifests,
    containers,
    env_names,
    pod_spec,
)

# Kinds from the Prometheus Operator's CRDs, which kubernetes-validate does not bundle.
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
MONITORING = REPO / "monitoring"


def test_lint_strict_is_clean(helm: Helm) -> None:
    for values in (MINIMAL_VALUES, PRODUCTION_VALUES):
        result = helm.run("lint", "--strict", str(CHART), "--values", str(values))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout
        # Lint does not stop at `fail`/`required`; it only logs them.
        assert "Fail:" not in result.stderr, result.stderr


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_manifest_passes_strict_kubernetes_schemas(helm: Helm, kube_version: str) -> None:
    for values in (MINIMAL_VALUES, PRODUCTION_VALUES):
        manifests = helm.render([values], kube_version=kube_version)
        for document in manifests.documents:
            if document["kind"] in OPERATOR_KINDS:
                continue  # checked by test_operator_resources_match_their_crds
            try:
                kubernetes_validate.validate(document, kube_version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(p) for p in exc.path)
                pytest.fail(
                    f"{document['kind']}/{document['metadata']['name']} ({kube_version}): "
                    f"{where}: {exc.message}"
                )


def test_default_render_holds_every_service(
    default_render: Manifests, production_render: Manifests
) -> None:
    def components(render: Manifests) -> set[str]:
        return {
            d["metadata"]["labels"]["app.kubernetes.io/component"]
            for d in render.of_kind("Deployment")
        }

    # The trainer needs the models on a claim it can write (off by default: models baked).
    assert components(default_render) == set(service_names()) - {"trainer"}
    assert components(production_render) == set(service_names())
    kinds = {d["kind"] for d in default_render.documents}
    for kind in (
        "Service",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
    ):
        assert kind in kinds, kind
    # Operator resources and NetworkPolicies are opt-in.
    assert not kinds & (OPERATOR_KINDS | {"NetworkPolicy"})


def test_production_render_holds_the_optional_resources(production_render: Manifests) -> None:
    kinds = {d["kind"] for d in production_render.documents}
    assert {"ServiceMonitor", "NetworkPolicy"} <= kinds
    # Every Secret comes from the operator: the chart must not create an empty one.
    assert "Secret" not in kinds


def test_probes(rendered: Manifests) -> None:
    ingest = next(containers(rendered.by_component("Deployment", "ingest")))
    assert ingest["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert ingest["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # A MongoDB outage makes the updater not ready (/readyz), never dead (/healthz): no restarts.
    profiles = next(containers(rendered.by_component("Deployment", "profiles")))
    assert profiles["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert profiles["livenessProbe"]["httpGet"]["path"] == "/healthz"
    inference = next(containers(rendered.by_component("Deployment", "inference")))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert inference[probe]["grpc"] == {"port": 50052, "service": ""}, probe
    insights = next(containers(rendered.by_component("Deployment", "insights")))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert insights[probe]["grpc"] == {"port": 50053, "service": ""}, probe
    for deployment in rendered.of_kind("Deployment"):
        for container in containers(deployment):
            ports = {p["name"] for p in container["ports"]}
            for probe in ("readinessProbe", "livenessProbe"):
                assert probe in container, f"{deployment['metadata']['name']}: no {probe}"
                http = container[probe].get("httpGet")
                if http:
                    assert http["port"] in ports


def test_pods_run_locked_down(rendered: Manifests) -> None:
    for workload in rendered.workloads():
        name = workload["metadata"]["name"]
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for container in containers(workload):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in context["capabilities"], name
            # A read-only root needs a writable /tmp.
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, name


def test_resources_and_images(rendered: Manifests) -> None:
    for workload in rendered.workloads():
        for container in containers(workload):
            name = f"{workload['metadata']['name']}/{container['name']}"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), name
            image = container["image"]
            reference = image.rsplit("/", 1)[-1]
            assert "@sha256:" in reference or ":" in reference, f"{name}: untagged {image}"
            assert not image.endswith(":latest"), f"{name}: {image}"


def test_hpas_target_existing_deployments(rendered: Manifests) -> None:
    deployments = {d["metadata"]["name"]: d for d in rendered.of_kind("Deployment")}
    targets = set()
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        assert target["name"] in deployments
        # The HPA owns the replica count; a fixed one would fight it on every upgrade.
        assert "replicas" not in deployments[target["name"]]["spec"]
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        targets.add(
            deployments[target["name"]]["metadata"]["labels"]["app.kubernetes.io/component"]
        )
    assert targets == {"ingest", "inference"}


def selects(selector: dict[str, str], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector.items())


def test_selectors_match_pods(rendered: Manifests) -> None:
    deployments = rendered.of_kind("Deployment")
    for pdb in rendered.of_kind("PodDisruptionBudget"):
        matched = [d for d in deployments if selects(pdb["spec"]["selector"]["matchLabels"], d)]
        assert len(matched) == 1, pdb["metadata"]["name"]
    for service in rendered.of_kind("Service"):
        matched = [d for d in deployments if selects(service["spec"]["selector"], d)]
        assert len(matched) == 1, service["metadata"]["name"]
        ports = {p["name"] for c in containers(matched[0]) for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, service["metadata"]["name"]
    for deployment in deployments:
        spread = pod_spec(deployment)["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} >= {"kubernetes.io/hostname"}
        for constraint in spread:
            assert selects(constraint["labelSelector"]["matchLabels"], deployment)


def test_environment_names_real_settings_and_existing_config(
    rendered: Manifests, production_render: Manifests
) -> None:
    values = yaml.safe_load(PRODUCTION_VALUES.read_text()) if rendered is production_render else {}
    external = {
        values.get("mongo", {}).get("existingSecret"),
        values.get("secrets", {}).get("existingSecret"),
        values.get("kafka", {}).get("sasl", {}).get("existingSecret"),
        values.get("kafka", {}).get("tls", {}).get("caSecret"),
        values.get("mongo", {}).get("tls", {}).get("caSecret"),
        values.get("ingest", {}).get("tls", {}).get("secretName"),
    } - {None}
    secrets = {s["metadata"]["name"] for s in rendered.of_kind("Secret")} | external
    config_maps = {c["metadata"]["name"] for c in rendered.of_kind("ConfigMap")}
    known = known_variables()
    for config_map in rendered.of_kind("ConfigMap"):
        if config_map["metadata"]["name"].endswith(("-dashboards", "-datasources")):
            continue  # Grafana's files, not settings
        assert set(config_map["data"]) <= known, set(config_map["data"]) - known
    for workload in rendered.workloads():
        for container in containers(workload):
            assert env_names(container) <= known, env_names(container) - known
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    assert ref["name"] in secrets, f"{workload['metadata']['name']}: {ref}"
        for volume in pod_spec(workload).get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets


def test_kafka_and_mongo_come_from_values(production_render: Manifests) -> None:
    config = production_render.of_kind("ConfigMap")[0]["data"]
    assert config["LUMEN_KAFKA_BOOTSTRAP_SERVERS"] == "events-kafka-bootstrap.kafka.svc:9093"
    assert config["LUMEN_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["LUMEN_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert config["LUMEN_KAFKA_SSL_CAFILE"] == "/etc/lumen/kafka-ca/ca.crt"
    ingest = next(containers(production_render.by_component("Deployment", "ingest")))
    env = {e["name"]: e for e in ingest["env"]}
    assert env["LUMEN_MONGO_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": "lumen-mongodb-lumen-lumen",
        "key": "connectionString.standard",
    }
    assert (
        env["LUMEN_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "lumen-kafka-user"
    )
    assert env["LUMEN_INGEST_TLS_CERT_FILE"]["value"] == "/etc/lumen/tls/tls.crt"
    assert ingest["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    inference = production_render.by_component("Deployment", "inference")
    claims = [v for v in pod_spec(inference)["volumes"] if "persistentVolumeClaim" in v]
    assert claims[0]["persistentVolumeClaim"] == {"claimName": "lumen-models", "readOnly": True}


def test_operator_resources_match_their_crds(production_render: Manifests) -> None:
    operator_documents = [d for d in production_render.documents if d["kind"] in OPERATOR_KINDS]
    assert {d["kind"] for d in operator_documents} == OPERATOR_KINDS
    for document in operator_documents:
        errors = list(jsonschema.Draft7Validator(SCHEMAS[document["kind"]]).iter_errors(document))
        assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]
    broken = json.loads(json.dumps(operator_documents[0]))
    broken["spec"]["endpointz"] = broken["spec"].pop(next(iter(broken["spec"])))
    assert list(jsonschema.Draft7Validator(SCHEMAS[broken["kind"]]).iter_errors(broken))


def test_operator_resources_are_well_formed(production_render: Manifests) -> None:
    services = {s["metadata"]["name"]: s for s in production_render.of_kind("Service")}
    monitors = production_render.of_kind("ServiceMonitor")
    assert len(monitors) == len(service_names())
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        selector = monitor["spec"]["selector"]["matchLabels"]
        matched = [
            s
            for s in services.values()
            if all(s["metadata"]["labels"].get(k) == v for k, v in selector.items())
        ]
        assert len(matched) == 1, monitor["metadata"]["name"]
        port_names = {p["name"] for p in matched[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in port_names
            assert endpoint["path"] == "/metrics"
            labels = {r["targetLabel"]: r["replacement"] for r in endpoint["relabelings"]}
            component = monitor["metadata"]["labels"]["app.kubernetes.io/component"]
            assert labels == {"service": component, "env": "production"}


def test_network_policies_name_real_ports(production_render: Manifests) -> None:
    deployments = production_render.of_kind("Deployment")
    for policy in production_render.of_kind("NetworkPolicy"):
        selector = policy["spec"]["podSelector"]["matchLabels"]
        matched = [d for d in deployments if selects(selector, d)]
        assert len(matched) == 1, policy["metadata"]["name"]
        ports = {p["name"] for c in containers(matched[0]) for p in c["ports"]}
        for rule in policy["spec"]["ingress"]:
            for port in rule["ports"]:
                assert port["port"] in ports


def write_values(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ("ingest:\n  replicas: three\n", ["/ingest/replicas", "got string, want integer"]),
        ("ingest:\n  replica: 3\n", ["/ingest", "additional properties 'replica' not allowed"]),
        ("kafka:\n  securityProtocol: TLS\n", ["/kafka/securityProtocol", "value must be one of"]),
        ("podSecurityContext:\n  runAsNonRoot: false\n", ["/podSecurityContext/runAsNonRoot"]),
        ("ingest:\n  env:\n    PATH: /tmp\n", ["/ingest/env", "'PATH' not allowed"]),
        ("secrets:\n  ingestWriteKeys: lumen-dev-key\n", ["/secrets/ingestWriteKeys"]),
        ("secrets:\n  ingestCatalogKeys: backend-key\n", ["/secrets/ingestCatalogKeys"]),
        ("secrets:\n  ingestAdminKeys: ops:sha256:abc\n", ["/secrets/ingestAdminKeys"]),
        ("secrets:\n  inferenceAuthToken: short\n", ["/secrets/inferenceAuthToken"]),
        ("secrets:\n  insightsAuthToken: short\n", ["/secrets/insightsAuthToken"]),
        ("ingest:\n  metricsPort: 70000\n", ["/ingest/metricsPort"]),
    ],
)
def test_bad_values_are_rejected_with_a_clear_message(
    helm: Helm, tmp_path: Path, values: str, expected: list[str]
) -> None:
    result = helm.template([write_values(tmp_path, values)])
    assert result.returncode != 0, f"accepted:\n{values}"
    assert "values don't meet the specifications of the schema" in result.stderr
    for fragment in expected:
        assert fragment in result.stderr, result.stderr


def test_schema_accepts_the_shipped_values_files() -> None:
    # Guards the schema itself: a stray `additionalProperties: false` would break real installs.
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert not list(jsonschema.Draft7Validator(schema).iter_errors(defaults))
    for path in (
        MINIMAL_VALUES,
        PRODUCTION_VALUES,
    ):  # overlays, merged over the defaults as Helm does
        values = merged(defaults, yaml.safe_load(path.read_text()))
        assert not list(jsonschema.Draft7Validator(schema).iter_errors(values)), path.name


def merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in overlay.items():
        inner = result.get(key)
        result[key] = (
            merged(inner, value) if isinstance(inner, dict) and isinstance(value, dict) else value
        )
    return result


def test_template_guards(helm: Helm, tmp_path: Path) -> None:
    result = helm.template([MINIMAL_VALUES, write_values(tmp_path, "image:\n  tag: latest\n")])
    assert result.returncode != 0
    assert "image.tag must name a release, not `latest`" in result.stderr
    pvc = write_values(tmp_path, "inference:\n  models:\n    source: pvc\n")
    result = helm.template([MINIMAL_VALUES, pvc])
    assert result.returncode != 0
    assert "inference.models.source=pvc needs inference.models.existingClaim" in result.stderr
    baked = write_values(tmp_path, "trainer:\n  enabled: true\n")
    result = helm.template([MINIMAL_VALUES, baked])
    assert result.returncode != 0
    assert "trainer.enabled needs inference.models.source=pvc" in result.stderr


def test_the_trainer_publishes_into_the_claim_inference_reads(production_render: Manifests) -> None:
    trainer = production_render.by_component("Deployment", "trainer")
    inference = production_render.by_component("Deployment", "inference")

    def models(workload: dict[str, Any]) -> tuple[str, bool]:
        (volume,) = [v for v in pod_spec(workload)["volumes"] if v["name"] == "models"]
        (mount,) = [
            m for c in containers(workload) for m in c["volumeMounts"] if m["name"] == "models"
        ]
        assert mount["mountPath"] == "/models"
        return volume["persistentVolumeClaim"]["claimName"], bool(mount.get("readOnly"))

    assert models(trainer) == ("lumen-models", False)
    assert models(inference) == ("lumen-models", True)
    # One trainer at a time, also during a rollout: two would race for the next version.
    assert trainer["spec"]["replicas"] == 1 and trainer["spec"]["strategy"]["type"] == "Recreate"
    (container,) = containers(trainer)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LUMEN_MODEL_REPOSITORY"] == "/models"
    assert env["LUMEN_TRAINER_INTERVAL_SECONDS"] == "21600"
    assert env["LUMEN_TRAINER_GATE_MARGIN"] == "0.005"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert pod_spec(trainer)["terminationGracePeriodSeconds"] > 20  # the run's own stop grace


def test_chart_ships_the_monitoring_rules_and_dashboards(production_render: Manifests) -> None:
    # files/ links to monitoring/: one copy of the rules and dashboards, packaged by `helm package`.
    assert (CHART / "files" / "rules").resolve() == MONITORING / "prometheus" / "rules"
    assert (CHART / "files" / "dashboards").resolve() == MONITORING / "grafana" / "dashboards"

    expected_groups = [
        group
        for path in sorted((MONITORING / "prometheus" / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
    ]
    assert expected_groups, "monitoring/prometheus/rules holds no rule groups"
    (rule,) = production_render.of_kind("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sorted(rule["spec"]["groups"], key=lambda g: g["name"]) == sorted(
        expected_groups, key=lambda g: g["name"]
    )

    dashboards = {p.name: p for p in (MONITORING / "grafana" / "dashboards").glob("*.json")}
    assert dashboards, "monitoring/grafana/dashboards holds no dashboards"
    (config_map,) = [
        c
        for c in production_render.of_kind("ConfigMap")
        if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert set(config_map["data"]) == set(dashboards)
    for name, path in dashboards.items():
        assert json.loads(config_map["data"][name]) == json.loads(path.read_text()), name


def test_packaged_chart_is_self_contained(helm: Helm, tmp_path: Path) -> None:
    # `helm package` stores the linked monitoring files, so the archive renders the same objects.
    result = helm.run("package", str(CHART), "--destination", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (archive,) = tmp_path.glob("lumen-*.tgz")
    packaged = helm.run(
        "template",
        "lumen",
        str(archive),
        "--namespace",
        "lumen",
        "--kube-version",
        KUBE_VERSIONS[-1],
        "--values",
        str(PRODUCTION_VALUES),
    )
    assert packaged.returncode == 0, packaged.stderr
    from_directory = helm.template([PRODUCTION_VALUES])
    assert packaged.stdout == from_directory.stdout
    assert "kind: PrometheusRule" in packaged.stdout


# --- Credentials: none shipped, none defaulted, none optional where a service needs one. ---

DEV_KEY_HASH = "d5d46c01c0ac746e5866176c423153bb1473d7203ce8b7ec2dfcef20ca342d7b"  # lumen-dev-key


def test_the_chart_refuses_to_render_without_write_keys_or_the_service_tokens(
    helm: Helm, tmp_path: Path
) -> None:
    minimal = yaml.safe_load(MINIMAL_VALUES.read_text())["secrets"]
    result = helm.template()
    assert result.returncode != 0
    assert "secrets.ingestWriteKeys is required" in result.stderr, result.stderr
    only_keys = write_values(
        tmp_path, f"secrets:\n  ingestWriteKeys: {minimal['ingestWriteKeys']}\n"
    )
    result = helm.template([only_keys])
    assert result.returncode != 0
    assert "secrets.inferenceAuthToken is required" in result.stderr, result.stderr
    without_insights = write_values(
        tmp_path,
        f"secrets:\n  ingestWriteKeys: {minimal['ingestWriteKeys']}\n"
        f"  inferenceAuthToken: {minimal['inferenceAuthToken']}\n",
    )
    result = helm.template([without_insights])
    assert result.returncode != 0
    assert "secrets.insightsAuthToken is required" in result.stderr, result.stderr
    # A Secret the operator manages replaces both; the chart then makes no Secret of its own
    # for them and the pods read the operator's.
    managed = helm.render([write_values(tmp_path, "secrets:\n  existingSecret: my-keys\n")])
    assert all(
        "LUMEN_INGEST_WRITE_KEYS" not in s.get("stringData", {}) for s in managed.of_kind("Secret")
    )
    ingest = next(containers(managed.by_component("Deployment", "ingest")))
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in ingest["env"] if "valueFrom" in e}
    assert refs["LUMEN_INGEST_WRITE_KEYS"]["name"] == "my-keys"


def test_the_values_hold_no_default_credential() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["secrets"]
    assert {k: v for k, v in defaults.items() if v} == {}
    for template in (CHART / "templates").iterdir():
        assert DEV_KEY_HASH not in template.read_text() and "lumen-dev-key" not in (
            template.read_text()
        ), template.name


def test_the_three_key_scopes_and_the_token_come_from_secrets(rendered: Manifests) -> None:
    ingest = next(containers(rendered.by_component("Deployment", "ingest")))
    inference = next(containers(rendered.by_component("Deployment", "inference")))
    insights = next(containers(rendered.by_component("Deployment", "insights")))
    profiles = next(containers(rendered.by_component("Deployment", "profiles")))
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for container in (ingest, inference, insights, profiles)
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    # Without write keys or a token the pod must not start: those are not optional.
    required_refs = (
        "LUMEN_INGEST_WRITE_KEYS",
        "LUMEN_INFERENCE_AUTH_TOKEN",
        "LUMEN_INSIGHTS_AUTH_TOKEN",
    )
    for required in required_refs:
        assert not refs[required].get("optional"), required
    optional_refs = (
        "LUMEN_INGEST_CATALOG_KEYS",
        "LUMEN_INGEST_ADMIN_KEYS",
        "LUMEN_PROFILES_ERASURE_HASH_KEY",
    )
    for optional in optional_refs:
        assert refs[optional]["optional"] is True, optional
    for container in (ingest, inference, insights, profiles):
        plain = {e["name"] for e in container["env"] if "value" in e}
        assert not plain & {*refs, "LUMEN_DEV_MODE"}, plain
    assert DEV_KEY_HASH not in yaml.safe_dump_all(rendered.documents)


def test_the_minimal_secret_holds_exactly_the_values_given(default_render: Manifests) -> None:
    given = yaml.safe_load(MINIMAL_VALUES.read_text())["secrets"]
    (secret,) = default_render.of_kind("Secret")
    data = secret["stringData"]
    assert data["LUMEN_INGEST_WRITE_KEYS"] == given["ingestWriteKeys"]
    assert data["LUMEN_INGEST_CATALOG_KEYS"] == given["ingestCatalogKeys"]
    assert data["LUMEN_INGEST_ADMIN_KEYS"] == given["ingestAdminKeys"]
    assert data["LUMEN_INFERENCE_AUTH_TOKEN"] == given["inferenceAuthToken"]
    assert data["LUMEN_INSIGHTS_AUTH_TOKEN"] == given["insightsAuthToken"]
    assert data["LUMEN_PROFILES_ERASURE_HASH_KEY"] == given["profilesErasureHashKey"]


# --- Exposure: public ports on public Services, metrics and Faust web on internal ones. ---

PUBLIC_PORTS = {"ingest": {"http", "grpc"}, "inference": {"grpc"}, "insights": {"grpc"}}


def test_only_public_ports_are_on_the_public_services(rendered: Manifests) -> None:
    for service in rendered.of_kind("Service"):
        component = service["metadata"]["labels"]["app.kubernetes.io/component"]
        ports = {p["targetPort"] for p in service["spec"]["ports"]}
        if service["metadata"]["labels"].get("lumen.io/metrics") == "true":
            assert service["spec"]["type"] == "ClusterIP", service["metadata"]["name"]
            assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]
        else:
            assert ports == PUBLIC_PORTS[component], service["metadata"]["name"]
    metrics_services = {
        s["metadata"]["labels"]["app.kubernetes.io/component"]
        for s in rendered.of_kind("Service")
        if s["metadata"]["labels"].get("lumen.io/metrics") == "true"
    }
    enabled = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in rendered.of_kind("Deployment")
    }
    assert metrics_services == set(service_names()) & enabled


def test_ingest_serves_metrics_on_its_own_port(rendered: Manifests) -> None:
    deployment = rendered.by_component("Deployment", "ingest")
    ingest = next(containers(deployment))
    ports = {p["name"]: p["containerPort"] for p in ingest["ports"]}
    env = {e["name"]: e.get("value") for e in ingest["env"]}
    assert int(env["LUMEN_INGEST_METRICS_PORT"]) == ports["metrics"]
    assert ports["metrics"] not in (ports["http"], ports["grpc"])
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["metrics"])


def test_service_monitors_scrape_the_metrics_services(production_render: Manifests) -> None:
    services = production_render.of_kind("Service")
    for monitor in production_render.of_kind("ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        (target,) = [
            s
            for s in services
            if all(s["metadata"]["labels"].get(k) == v for k, v in selector.items())
        ]
        assert target["metadata"]["labels"]["lumen.io/metrics"] == "true"
    ingest = production_render.named("ServiceMonitor", "lumen-ingest")
    (endpoint,) = ingest["spec"]["endpoints"]
    metrics = production_render.named("Service", "lumen-ingest-metrics")
    assert metrics["spec"]["ports"][0]["targetPort"] == "metrics" == endpoint["port"]


def test_network_policies_admit_metrics_only_from_monitoring(
    production_render: Manifests,
) -> None:
    values = yaml.safe_load(PRODUCTION_VALUES.read_text())["networkPolicy"]
    release_pods = {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/instance": "lumen",
                "app.kubernetes.io/part-of": "lumen",
            }
        }
    }
    expected = {
        "ingest": {("http", "grpc"): values["ingestFrom"], ("metrics",): values["metricsFrom"]},
        "inference": {
            ("grpc",): [release_pods, *values["inferenceFrom"]],
            ("metrics",): values["metricsFrom"],
        },
        "insights": {
            ("grpc",): [release_pods, *values["insightsFrom"]],
            ("metrics",): values["metricsFrom"],
        },
        "profiles": {("http",): values["metricsFrom"]},  # Faust web: monitoring only
        "exporter": {("metrics",): values["metricsFrom"]},
        "trainer": {("metrics",): values["metricsFrom"]},
    }
    for policy in production_render.of_kind("NetworkPolicy"):
        component = policy["metadata"]["labels"]["app.kubernetes.io/component"]
        rules = {tuple(p["port"] for p in r["ports"]): r["from"] for r in policy["spec"]["ingress"]}
        assert rules == expected[component], component


def test_without_monitoring_peers_nothing_reaches_a_metrics_port(
    helm: Helm, tmp_path: Path
) -> None:
    values = write_values(tmp_path, "networkPolicy:\n  enabled: true\n  metricsFrom: []\n")
    manifests = helm.render([MINIMAL_VALUES, values])
    for policy in manifests.of_kind("NetworkPolicy"):
        component = policy["metadata"]["labels"]["app.kubernetes.io/component"]
        ports = {p["port"] for r in policy["spec"]["ingress"] for p in r["ports"]}
        assert ports == PUBLIC_PORTS.get(component, set()), component
        # An empty `from` would admit everyone: a rule always names its peers or has none.
        for rule in policy["spec"]["ingress"]:
            assert rule.get("from", None) != [], component
