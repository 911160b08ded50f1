"""Fixtures that start the real Kafka, mongod and Lumen services for integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lumen_cli.platform.services import grpc_serving
from tests.integration.profiles_updater import start_profiles_updater
from tests.support.model_registry import ModelsUnavailable, small_registry
from tests.support.stack import (
    ServiceProcess,
    Stack,
    free_port,
    start_ingest,
    start_service,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def ingest(stack: Stack) -> Iterator[ServiceProcess]:
    service = start_ingest(stack.env())
    yield service
    service.stop()


@pytest.fixture(scope="session")
def profiles(stack: Stack) -> Iterator[ServiceProcess]:
    service = start_profiles_updater(stack.kafka_bootstrap, stack.env(), "test")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def inference(stack: Stack) -> Iterator[ServiceProcess]:
    grpc_port, metrics_port = free_port(), free_port()
    service = start_service(
        "inference",
        "services.inference",
        {
            **stack.env(),
            "LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED": "false",
            "LUMEN_INFERENCE_GRPC_PORT": str(grpc_port),
            "LUMEN_INFERENCE_METRICS_PORT": str(metrics_port),
        },
        ready=lambda: grpc_serving(f"127.0.0.1:{grpc_port}"),
        ports={"grpc": grpc_port, "metrics": metrics_port},
    )
    yield service
    service.stop()


@pytest.fixture(scope="session")
def models_registry() -> Path:
    """The small default models (`python -m models build-defaults --small`), built once into
    a cached folder and shared with tests/unit/models."""
    try:
        return small_registry()
    except ModelsUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def inference_real(stack: Stack, models_registry: Path) -> Iterator[ServiceProcess]:
    """An inference server that serves the real (small) default models."""
    from tests.integration.inference_helpers import start_inference  # imports onnx

    # Only test_inference_support's own server consumes support.messages: a second consumer
    # would answer the same conversations on support.intents with another model.
    service = start_inference(
        stack, models_registry, LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED="false"
    )
    yield service
    service.stop()
