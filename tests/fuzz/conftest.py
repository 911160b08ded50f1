"""Bad-input tests against real services on the private platform (tests/support/private_platform.py),
so that fuzzed events never reach the shared test stack's topics."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.integration.inference_helpers import start_inference, tiny_registry
from tests.reliability.services import start_ingest, wait_ready
from tests.support import private_platform
from tests.support.private_platform import PrivatePlatform
from tests.support.stack import ServiceProcess

# Real HTTP and gRPC round trips: no per-example deadline, no example database in the checkout;
# a failure prints its example and the blob that replays it (@reproduce_failure).
_ROUND_TRIPS = settings(
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# CI: the same examples on every run (derandomised), so a red run is the code's, and repeatable.
settings.register_profile(
    "lumen-fuzz-ci",
    _ROUND_TRIPS,
    derandomize=True,
    max_examples=int(os.environ.get("LUMEN_FUZZ_EXAMPLES", "80")),
)
# `make fuzz`: a random search, seeded by --hypothesis-seed (make fuzz prints the seed it drew).
settings.register_profile(
    "lumen-fuzz-wide",
    _ROUND_TRIPS,
    derandomize=False,
    max_examples=int(os.environ.get("LUMEN_FUZZ_EXAMPLES", "300")),
)
FUZZ_PROFILE = os.environ.get("LUMEN_FUZZ_PROFILE", "lumen-fuzz-ci")
# The suites read "lumen-fuzz": the profile chosen for this run.
settings.register_profile("lumen-fuzz", settings.get_profile(FUZZ_PROFILE))


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.getoption("--hypothesis-seed", default=None)
    return f"fuzz profile: {FUZZ_PROFILE}" + (f", seed {seed}" if seed is not None else "")


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
    service = start_inference(
        platform.stack(), tiny_registry(), LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED="false"
    )
    yield service
    assert service.proc.poll() is None, "inference died under fuzzing:\n" + service.log()[-3000:]
    service.stop()
