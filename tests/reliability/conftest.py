"""Fault-injection and soak tests run on a private Kafka and mongod (see
tests/support/private_platform.py): they kill and restart them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import private_platform
from tests.support.private_platform import PrivatePlatform
from tests.support.stack import ServiceProcess


@pytest.fixture(scope="session")
def platform() -> Iterator[PrivatePlatform]:
    yield private_platform.acquire()
    private_platform.release()


@pytest.fixture
def owned() -> Iterator[list[ServiceProcess]]:
    """Service processes a test started: stopped at its end, whatever happened."""
    services: list[ServiceProcess] = []
    yield services
    for service in services:
        service.stop()
