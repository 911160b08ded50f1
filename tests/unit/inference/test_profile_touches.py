"""GetProfile carries the profile's first and last touch, and the Python client reads them."""

from __future__ import annotations

from datetime import UTC, datetime

from lumen_client._calls import profile as client_profile
from lumen_client._proto.lumen.v1 import profiles_pb2 as client_pb2
from lumen_client.types import Touch
from services.inference.profile_api import to_proto

FIRST = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
LAST = datetime(2024, 3, 2, 18, 30, tzinfo=UTC)


def stored() -> dict[str, object]:
    return {
        "_id": "u1",
        "userId": "u1",
        "firstTouch": {
            "channel": "paid_search",
            "source": "google",
            "medium": "cpc",
            "campaign": "spring",
            "referrer": "",
            "at": FIRST,
        },
        "lastTouch": {
            "channel": "social",
            "source": "t.co",
            "medium": "",
            "campaign": "",
            "referrer": "t.co",
            "at": LAST,
        },
    }


def test_get_profile_returns_both_touches() -> None:
    message = to_proto(stored())
    assert message.first_touch.channel == "paid_search"
    assert (message.first_touch.source, message.first_touch.campaign) == ("google", "spring")
    assert message.first_touch.at.ToDatetime(tzinfo=UTC) == FIRST
    assert (message.last_touch.channel, message.last_touch.referrer) == ("social", "t.co")


def test_a_profile_without_attribution_leaves_the_touches_unset() -> None:
    message = to_proto({"_id": "u2"})
    assert not message.HasField("first_touch") and not message.HasField("last_touch")


def test_the_client_reads_the_touches() -> None:
    wire = client_pb2.Profile.FromString(to_proto(stored()).SerializeToString())
    read = client_profile(wire)
    assert read.first_touch == Touch(
        "paid_search", "google", "cpc", "spring", "", "2024-03-01T09:00:00Z"
    )
    assert read.last_touch is not None and read.last_touch.channel == "social"
    assert client_profile(client_pb2.Profile(id="u2")).first_touch is None
