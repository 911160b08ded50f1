"""``lumen profile`` prints the profile's first and last touch."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from lumen_cli.commands import query_cmds
from lumen_client.types import Profile, Touch


def a_profile(**touches: Touch | None) -> Profile:
    return Profile(
        id="u1",
        user_id="u1",
        anonymous_ids=[],
        traits={},
        first_seen=None,
        last_seen=None,
        event_counts_by_type={},
        event_counts_by_name={},
        sessions=1,
        active_days=1,
        recent_items=[],
        category_affinity={},
        purchased_items=[],
        purchases=0,
        revenue=0.0,
        rfm=None,
        updated_at=None,
        version=1,
        **touches,
    )


def run(profile: Profile, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> str:
    class Reader:
        def get_profile(self, **_: str) -> Profile:
            return profile

    @contextmanager
    def fake_client(_: argparse.Namespace) -> Iterator[Reader]:
        yield Reader()

    monkeypatch.setattr(query_cmds, "client", fake_client)
    args = argparse.Namespace(user="u1", anonymous=False, json=False)
    assert query_cmds.cmd_profile(args) == 0
    return str(capsys.readouterr().out)


def test_both_touches_are_printed(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    first = Touch("paid_search", "google", "cpc", "spring", "", "2024-03-01T09:00:00Z")
    last = Touch("social", "t.co", "", "", "t.co", "2024-03-02T18:30:00Z")
    out = run(a_profile(first_touch=first, last_touch=last), monkeypatch, capsys)
    assert "first touch: paid_search (google) campaign spring at 2024-03-01T09:00:00Z" in out
    assert "last touch: social (t.co) at 2024-03-02T18:30:00Z" in out


def test_a_profile_without_touches_prints_none(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    assert "touch" not in run(a_profile(), monkeypatch, capsys)
