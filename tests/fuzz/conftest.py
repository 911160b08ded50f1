"""Bad-input tests against real services on the private platform (tests/support/private_platform.py),
so that fuzzed events never reach the shared test stack's topics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.integration.inference_helpers import start_inference, tiny_registry
from tests.reliability.services import start_ingest, wait_ready
from tests.support import private_platform
from tests.support.private_platform import PrivatePlatform
from tests.support.stack import ServiceProcess

# Real HTTP and gRPC round trips: no per-example deadline, no example database in the checkout.
settings.register_profile(
    "lumen-fuzz", deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip


@pytest.fixture(scope="session")
def platform() -> Iterator[PrivatePlatform]:
    yield private_platform.acquire()
    private_platform.release()


@pytest.fixture(scope="session")
def ingest(platform: PrivatePlatform) -> Iterator[ServiceProcess]:
    service = start_ingest(platform, "ingest-fuzz")
    wait_ready(service)
    yield service
    assert service.proc.poll() is None, "ingest died under fuzzing:\n" + service.log()[-3000:]
    service.stop()


@pytest.fixture(scope="session")
def inference(platform: PrivatePlatform) -> Iterator[ServiceProcess]:
    """An inference server on tiny models; it does not consume support messages."""
    service = start_inference(platform.stack(), tiny_registry(),
                              LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED="false")  # fmt: skip
    yield service
    assert service.proc.poll() is None, "inference died under fuzzing:\n" + service.log()[-3000:]
    service.stop()
