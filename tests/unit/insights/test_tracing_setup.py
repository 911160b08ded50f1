"""The insights server's tracing set-up: nothing while tracing is off; with it on, the gRPC
server interceptor that traces TrendService calls but not health checks or reflection."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

from services.insights.__main__ import tracing_interceptors
from shared import tracing


@pytest.fixture
def tracing_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(tracing, "_enabled", True)
    yield
    PymongoInstrumentor().uninstrument()


def test_tracing_off_installs_no_interceptor() -> None:
    assert not tracing.tracing_enabled()
    assert tracing_interceptors() == []


def test_tracing_on_traces_trend_calls_and_leaves_probes_out(tracing_on: None) -> None:
    (interceptor,) = tracing_interceptors()
    traced = interceptor._filter  # the instrumentation's own call filter

    def call(method: str) -> SimpleNamespace:
        return SimpleNamespace(method=method, invocation_metadata=())

    assert traced(call("/lumen.v1.TrendService/GetTrend"))
    assert not traced(call("/grpc.health.v1.Health/Check"))
    assert not traced(call("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"))
