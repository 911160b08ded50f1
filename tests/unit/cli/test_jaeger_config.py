"""The local Jaeger's configuration: every listener on the configured ports of 127.0.0.1,
in-memory storage bounded, nothing else opened."""

from __future__ import annotations

from typing import Any

import yaml

from lumen_cli.platform.jaeger import JaegerConfig, render_config


def _endpoints(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [str(v) for k, v in node.items() if k == "endpoint"]
        return found + [e for v in node.values() for e in _endpoints(v)]
    if isinstance(node, list):
        return [e for v in node for e in _endpoints(v)]
    return []


def test_listeners_take_the_configured_ports_on_loopback(monkeypatch: Any) -> None:
    monkeypatch.setenv("LUMEN_LOCAL_JAEGER_OTLP_GRPC_PORT", "24317")
    monkeypatch.setenv("LUMEN_LOCAL_JAEGER_OTLP_HTTP_PORT", "24318")
    monkeypatch.setenv("LUMEN_LOCAL_JAEGER_QUERY_PORT", "26686")
    monkeypatch.setenv("LUMEN_LOCAL_JAEGER_QUERY_GRPC_PORT", "26685")
    monkeypatch.setenv("LUMEN_LOCAL_JAEGER_MAX_TRACES", "1000")
    config = JaegerConfig.from_env()
    document = yaml.safe_load(render_config(config))
    assert sorted(_endpoints(document)) == [
        "127.0.0.1:24317",
        "127.0.0.1:24318",
        "127.0.0.1:26685",
        "127.0.0.1:26686",
    ]
    backends = document["extensions"]["jaeger_storage"]["backends"]
    assert backends == {"lumen_memory": {"memory": {"max_traces": 1000}}}
    assert document["service"]["telemetry"]["metrics"] == {"level": "none"}
    assert document["extensions"]["jaeger_query"]["enable_tracing"] is False
    assert config.otlp_endpoint == "http://127.0.0.1:24317"
    assert config.query_url == "http://127.0.0.1:26686"


def test_defaults_are_the_standard_ports() -> None:
    config = JaegerConfig()
    assert config.ports == (4317, 4318, 16686, 16685)
