"""The agent's write loop when the store itself is broken: isolate once, then retry."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from services.profiles.app import create_app
from services.profiles.parsing import PROCESSING_ERROR
from services.profiles.result import BatchResult, Record
from services.profiles.settings import ProfilesSettings


def test_a_store_that_fails_on_every_write_is_retried_not_isolated_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = create_app(ProfilesSettings())
    updater = worker.updater
    written: list[list[Record]] = []

    async def broken(records: list[Record]) -> BatchResult:
        written.append(records)
        raise AttributeError("misconfigured store")

    monkeypatch.setattr(updater, "_write_once", broken)

    async def run() -> None:
        task = asyncio.ensure_future(updater.write([Record("t", 0, 7, b"k", b"{}")]))
        await asyncio.sleep(0.5)
        assert not task.done(), task  # still retrying: no endless isolation, no RecursionError
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())
    first, *retries = written
    assert first[0].failure is None  # the batch as it came
    assert retries and all(r[0].failure_reason == PROCESSING_ERROR for r in retries)
    assert len(retries) <= 5  # back-off between the attempts
    health = worker.health
    assert health.not_ready_reason() is not None and "misconfigured" in str(health.last_error)
