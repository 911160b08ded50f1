"""The shared test stack (Kafka and mongod under ``var/test``), one per test session.

Defined here, above every suite, so that whichever suite needs it first (the benchmark smoke
run, the integration tests) starts it through this fixture and the session stops it at the
end; a stack found already running (a developer's, kept with ``LUMEN_TEST_KEEP_PLATFORM``)
is left running.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import Stack, start_stack, stop_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    started = start_stack()
    yield started
    stop_stack(started)
