"""The tracing-overhead benchmark's modes and summary (the runs themselves need the stack)."""

from __future__ import annotations

import pytest

from bench.tracing_overhead import mode_env, ratios
from shared.tracing import build_tracer_provider


def test_off_sets_no_otel_variable_so_the_service_installs_no_provider() -> None:
    assert mode_env("off", "http://127.0.0.1:4317", "svc") == {}
    assert build_tracer_provider("svc", mode_env("off", "http://127.0.0.1:4317", "svc")) is None


def test_sampled_modes_export_to_the_endpoint_with_the_standard_samplers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one = mode_env("sampled_1pct", "http://127.0.0.1:4317", "svc")
    assert one == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
        "OTEL_SERVICE_NAME": "svc",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.01",
    }
    everything = mode_env("sampled_100pct", "http://127.0.0.1:4317", "svc")
    assert everything["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"
    # What the service process makes of them (the SDK reads the sampler from its environment).
    for name, value in one.items():
        monkeypatch.setenv(name, value)
    provider = build_tracer_provider("svc")
    assert provider is not None
    assert provider.sampler.get_description().startswith("ParentBased{root:TraceIdRatioBased{0.01}")
    provider.shutdown()


def test_ratios_are_each_mode_over_off() -> None:
    by_mode = {
        "off": {"events_per_s": 1000.0, "p99_ms": 10.0},
        "sampled_1pct": {"events_per_s": 950.0, "p99_ms": 11.0},
        "sampled_100pct": {"events_per_s": 800.0, "p99_ms": 15.0},
    }
    assert ratios(by_mode, ("events_per_s", "p99_ms")) == {
        "sampled_1pct": {"events_per_s": 0.95, "p99_ms": 1.1},
        "sampled_100pct": {"events_per_s": 0.8, "p99_ms": 1.5},
    }
