"""helm/lumen: where the services send traces, the optional Jaeger and Grafana's data source."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml

from tests.deploy.tooling import (
    KUBE_VERSIONS,
    MINIMAL_VALUES,
    Helm,
    Manifests,
    containers,
    pod_spec,
)


def _config(manifests: Manifests) -> dict[str, str]:
    return dict(manifests.named("ConfigMap", "lumen")["data"])


def _datasources(manifests: Manifests) -> list[dict[str, object]]:
    maps = [
        c for c in manifests.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-datasources")
    ]
    return [d for m in maps for f in m["data"].values() for d in yaml.safe_load(f)["datasources"]]


def test_tracing_is_off_by_default(default_render: Manifests) -> None:
    assert not {k for k in _config(default_render) if k.startswith("OTEL_")}
    assert not default_render.of_kind("Deployment") or all(
        d["metadata"]["labels"]["app.kubernetes.io/component"] != "jaeger"
        for d in default_render.of_kind("Deployment")
    )
    assert _datasources(default_render) == []


def test_an_existing_endpoint_is_exported_to(production_render: Manifests) -> None:
    config = _config(production_render)
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"
    assert config["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert config["OTEL_TRACES_SAMPLER_ARG"] == "0.05"
    [source] = _datasources(production_render)
    assert source["type"] == "jaeger"
    assert source["url"] == "http://jaeger-query.observability:16686"
    [datasources] = [
        c
        for c in production_render.of_kind("ConfigMap")
        if c["metadata"]["name"].endswith("-datasources")
    ]
    assert datasources["metadata"]["labels"]["grafana_datasource"] == "1"
    assert datasources["metadata"]["namespace"] == "monitoring"


def test_the_release_jaeger_is_locked_down_and_used(helm: Helm, tmp_path: Path) -> None:
    values = tmp_path / "jaeger.yaml"
    values.write_text("tracing:\n  jaeger:\n    enabled: true\n")
    for kube_version in KUBE_VERSIONS:
        manifests = helm.render([MINIMAL_VALUES, values], kube_version=kube_version)
        for document in manifests.documents:
            kubernetes_validate.validate(document, kube_version, strict=True)
    deployment = manifests.by_component("Deployment", "jaeger")
    [container] = containers(deployment)
    assert container["image"] == "jaegertracing/jaeger:2.12.0"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod_spec(deployment)["securityContext"]["runAsNonRoot"] is True
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    service = manifests.by_component("Service", "jaeger")
    assert {p["port"] for p in service["spec"]["ports"]} == {4317, 4318, 16686}
    assert _config(manifests)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://lumen-jaeger:4317"
    [source] = _datasources(manifests)
    assert source["url"] == "http://lumen-jaeger.lumen:16686"


def test_a_latest_jaeger_image_is_refused(helm: Helm, tmp_path: Path) -> None:
    values = tmp_path / "latest.yaml"
    values.write_text(
        "tracing:\n  jaeger:\n    enabled: true\n    image: jaegertracing/jaeger:latest\n"
    )
    result = helm.template([MINIMAL_VALUES, values])
    assert result.returncode != 0
    assert "tracing.jaeger.image" in result.stderr or "tracing/jaeger/image" in result.stderr
