"""`lumen up`: what tracing environment the services get from the local platform."""

from __future__ import annotations

import pytest

from lumen_cli.commands.platform_cmds import tracing_env

ENDPOINT = "http://127.0.0.1:4317"


def test_services_export_to_the_local_jaeger_keeping_every_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    assert tracing_env(ENDPOINT) == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    }


def test_a_sampler_of_the_callers_passes_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    assert tracing_env(ENDPOINT) == {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
)
def test_an_endpoint_of_the_callers_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "http://collector:4317")
    assert tracing_env(ENDPOINT) == {}
