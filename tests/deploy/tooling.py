"""Helpers of the deployment tests: the pinned Helm binary, rendering, manifest look-ups."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "lumen"
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
# The chart's defaults plus only the credentials it refuses to render without.
MINIMAL_VALUES = CHART / "ci" / "minimal-values.yaml"
HELM_SCRIPT = REPO / "scripts" / "tools" / "helm.sh"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a current one.
KUBE_VERSIONS = ("1.27.0", "1.34.0")


def fetch_helm() -> Path:
    """Path of the pinned Helm, built on first use; fails loudly if it cannot be had."""
    result = subprocess.run(
        ["bash", str(HELM_SCRIPT)], capture_output=True, text=True, timeout=1800, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"cannot get Helm via {HELM_SCRIPT.relative_to(REPO)} "
            f"(exit {result.returncode}):\n{result.stderr}"
        )
    return Path(result.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Helm:
    binary: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, timeout=120, check=False
        )

    def template(
        self, values_files: Iterable[Path] = (), kube_version: str = KUBE_VERSIONS[-1]
    ) -> subprocess.CompletedProcess[str]:
        args = ["template", "lumen", str(CHART), "--namespace", "lumen"]
        args += ["--kube-version", kube_version]
        for path in values_files:
            args += ["--values", str(path)]
        return self.run(*args)

    def render(
        self, values_files: Iterable[Path] = (), kube_version: str = KUBE_VERSIONS[-1]
    ) -> Manifests:
        result = self.template(values_files, kube_version)
        if result.returncode != 0:
            raise AssertionError(f"helm template failed:\n{result.stderr}")
        documents = [d for d in yaml.safe_load_all(result.stdout) if d]
        return Manifests(documents)


@dataclass(frozen=True)
class Manifests:
    documents: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.documents if d["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        matches = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert matches, (
            f"no {kind} named {name}; have {[d['metadata']['name'] for d in self.of_kind(kind)]}"
        )
        return matches[0]

    def workloads(self) -> list[dict[str, Any]]:
        return self.of_kind("Deployment") + self.of_kind("Job")

    def by_component(self, kind: str, component: str) -> dict[str, Any]:
        matches = [
            d
            for d in self.of_kind(kind)
            if d["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]
        assert len(matches) == 1, f"expected one {kind} for {component}, found {len(matches)}"
        return matches[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def env_names(container: dict[str, Any]) -> set[str]:
    return {e["name"] for e in container.get("env", [])}
