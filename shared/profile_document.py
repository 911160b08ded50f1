"""The profile document: its field names, how user-supplied keys are stored, and how it is read.

The profile updater (``services/profiles``) is the only writer of the ``profiles``
collection; every reader decodes a document through ``ProfileDocument.decode`` so all of them
see the same values and fail the same way.

Keys from user-supplied strings (event names, categories, trait keys) are escaped: a ``.``
would address a sub-document and a leading ``$`` an operator; both are replaced by their
full-width look-alikes, as MongoDB's documentation suggests, so any name can be stored (a NUL,
which BSON cannot hold in a key, becomes U+FFFD and does not round-trip).

Failure rule of the read view: a missing field reads as its empty value (a new profile, or a
read with a projection, has only some fields); a field that is present but cannot be decoded
raises ``MalformedProfile`` naming the profile and the field. Lumen's own writer never leaves
such a field, so a reader treats it as data loss rather than guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from shared.packed_ids import unpack

# Field names of the stored document (camelCase, as written since the first release).
ID = "_id"
USER_ID = "userId"
ANONYMOUS_IDS = "anonymousIds"
TRAITS = "traits"
FIRST_SEEN = "firstSeen"
LAST_SEEN = "lastSeen"
UPDATED_AT = "updatedAt"
COUNTS = "counts"
BY_TYPE = "byType"  # under COUNTS: escaped event type -> count
BY_NAME = "byName"  # under COUNTS: escaped event name -> count
SESSIONS = "sessions"
SESSION_COUNT = "count"  # under SESSIONS
ACTIVE_DAYS = "activeDays"  # days since 1970-01-01 (UTC), ascending
RECENT_ITEMS = "recentItems"  # packed sequence (shared.packed_ids), oldest first
PURCHASED_ITEMS = "purchasedItems"  # packed set: bought or rated
RATED_ITEMS = "ratedItems"  # written by other tools: an array or a map of item ids
SEEN_ITEMS = "seenItems"  # idem
AFFINITY = "affinity"  # escaped category -> decayed weight
AFFINITY_AT = "affinityAt"
PURCHASES = "purchases"
REVENUE = "revenue"
LAST_PURCHASE_AT = "lastPurchaseAt"
RFM = "rfm"  # {"r", "f", "m", "segment"}, from the first purchase on
VERSION = "version"
# Attribution touches (shared.attribution): {"channel", "source", "medium", "campaign",
# "referrer", "at"}; the first is set once, the last follows later touches.
FIRST_TOUCH = "firstTouch"
LAST_TOUCH = "lastTouch"
TOUCH_CHANNEL = "channel"
TOUCH_AT = "at"

_ESCAPES = str.maketrans({".": "\uff0e", "$": "\uff04", "\x00": "\ufffd"})
_UNESCAPES = str.maketrans({"\uff0e": ".", "\uff04": "$"})
EMPTY_KEY = "\uff3f"  # an empty key is not allowed either


# The same few event names and categories come back on every event: escape each once.
@lru_cache(maxsize=65536)
def escape(name: str) -> str:
    return name.translate(_ESCAPES) or EMPTY_KEY


def unescape(name: str) -> str:
    return name.translate(_UNESCAPES)


def unescape_keys(value: Any) -> Any:
    """A stored JSON value (traits) with every key of every nested object unescaped."""
    if isinstance(value, Mapping):
        return {unescape(str(k)): unescape_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unescape_keys(v) for v in value]
    return value


class MalformedProfile(ValueError):
    """A stored field that Lumen's own writer would never leave unreadable."""

    def __init__(self, profile_id: Any, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name} of profile {profile_id!r} cannot be decoded: {reason}")
        self.profile_id = profile_id
        self.field_name = field_name


@dataclass(frozen=True)
class Rfm:
    recency: int
    frequency: int
    monetary: int
    segment: str


@dataclass(frozen=True)
class AttributionTouch:
    """An acquisition touch: its channel (one of ``shared.attribution.CHANNELS``), the campaign
    fields it came with and when it happened."""

    channel: str
    at: datetime
    source: str = ""
    medium: str = ""
    campaign: str = ""
    referrer: str = ""


@dataclass(frozen=True)
class ProfileDocument:
    """The decoded read view of one stored profile: keys unescaped, item lists unpacked."""

    id: str
    user_id: str = ""
    anonymous_ids: list[str] = field(default_factory=list)
    traits: dict[str, Any] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    updated_at: datetime | None = None
    counts_by_type: dict[str, int] = field(default_factory=dict)
    counts_by_name: dict[str, int] = field(default_factory=dict)
    sessions: int = 0
    active_days: list[int] = field(default_factory=list)
    recent_items: list[str] = field(default_factory=list)  # oldest first
    purchased_items: list[str] = field(default_factory=list)
    other_seen_items: frozenset[str] = frozenset()  # ratedItems and seenItems of other tools
    affinity: dict[str, float] = field(default_factory=dict)
    purchases: int = 0
    revenue: float = 0.0
    rfm: Rfm | None = None  # scored from the first purchase on
    version: int = 0
    first_touch: AttributionTouch | None = None  # from the first event with attribution context
    last_touch: AttributionTouch | None = None

    @property
    def seen_items(self) -> set[str]:
        """Items the user bought, rated or otherwise consumed."""
        return set(self.purchased_items) | self.other_seen_items

    @classmethod
    def decode(cls, doc: Mapping[str, Any]) -> ProfileDocument:
        """Decode a raw document (or a projection of one); ``MalformedProfile`` if a present
        field cannot be read."""
        return _Decoder(doc).profile()


class _Decoder:
    """Reads each field of one raw document, naming the field when it fails."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        if not isinstance(doc, Mapping) or ID not in doc:
            raise MalformedProfile(None, ID, "not a profile document")
        self.doc = doc
        self.id = doc[ID]

    def _fail(self, name: str, reason: str) -> MalformedProfile:
        return MalformedProfile(self.id, name, reason)

    def _get(self, name: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = self.doc.get(name)
        if value is None:
            return default
        if not isinstance(value, kind):
            raise self._fail(name, f"expected {_kind_name(kind)}, found {type(value).__name__}")
        return value

    def _number(self, name: str, convert: type[int] | type[float], value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(name, f"{value!r} is not a number")
        return convert(value)

    def _counts(self, counts: Mapping[str, Any], name: str) -> dict[str, int]:
        path = f"{COUNTS}.{name}"
        raw = counts.get(name)
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise self._fail(path, f"expected an object, found {type(raw).__name__}")
        return {unescape(k): self._number(path, int, v) for k, v in raw.items()}

    def _items(self, name: str) -> list[str]:
        try:
            return unpack(self.doc.get(name))
        except (ValueError, TypeError) as exc:
            raise self._fail(name, str(exc)) from None

    def _other_items(self) -> frozenset[str]:
        seen: set[str] = set()
        for name in (RATED_ITEMS, SEEN_ITEMS):  # arrays or maps of item ids
            value = self._get(name, (list, Mapping), [])
            seen.update(str(i) for i in (value.keys() if isinstance(value, Mapping) else value))
        return frozenset(seen)

    def _rfm(self) -> Rfm | None:
        raw = self._get(RFM, Mapping, None)
        if not raw:
            return None
        path = RFM
        return Rfm(
            recency=self._number(f"{path}.r", int, raw.get("r", 0)),
            frequency=self._number(f"{path}.f", int, raw.get("f", 0)),
            monetary=self._number(f"{path}.m", int, raw.get("m", 0)),
            segment=str(raw.get("segment", "")),
        )

    def _touch(self, name: str) -> AttributionTouch | None:
        raw = self._get(name, Mapping, None)
        if raw is None:
            return None
        at = raw.get(TOUCH_AT)
        channel = raw.get(TOUCH_CHANNEL)
        if not isinstance(at, datetime):
            raise self._fail(f"{name}.{TOUCH_AT}", f"expected datetime, found {type(at).__name__}")
        if not isinstance(channel, str) or not channel:
            raise self._fail(f"{name}.{TOUCH_CHANNEL}", f"{channel!r} is not a channel")
        return AttributionTouch(
            channel=channel,
            at=at,
            **{k: str(raw.get(k) or "") for k in ("source", "medium", "campaign", "referrer")},
        )

    def _datetime(self, name: str) -> datetime | None:
        return self._get(name, datetime, None)

    def profile(self) -> ProfileDocument:
        counts = self._get(COUNTS, Mapping, {})
        sessions = self._get(SESSIONS, Mapping, {})
        anonymous = self._get(ANONYMOUS_IDS, list, [])
        affinity = self._get(AFFINITY, Mapping, {})
        return ProfileDocument(
            id=str(self.id),
            user_id=str(self._get(USER_ID, str, "")),
            anonymous_ids=[str(a) for a in anonymous],
            traits=unescape_keys(self._get(TRAITS, Mapping, {})),
            first_seen=self._datetime(FIRST_SEEN),
            last_seen=self._datetime(LAST_SEEN),
            updated_at=self._datetime(UPDATED_AT),
            counts_by_type=self._counts(counts, BY_TYPE),
            counts_by_name=self._counts(counts, BY_NAME),
            sessions=self._number(
                f"{SESSIONS}.{SESSION_COUNT}", int, sessions.get(SESSION_COUNT, 0)
            ),
            active_days=list(self._get(ACTIVE_DAYS, list, [])),
            recent_items=self._items(RECENT_ITEMS),
            purchased_items=self._items(PURCHASED_ITEMS),
            other_seen_items=self._other_items(),
            affinity={unescape(k): self._number(AFFINITY, float, v) for k, v in affinity.items()},
            purchases=self._number(PURCHASES, int, self.doc.get(PURCHASES, 0)),
            revenue=self._number(REVENUE, float, self.doc.get(REVENUE, 0.0)),
            rfm=self._rfm(),
            version=self._number(VERSION, int, self.doc.get(VERSION, 0)),
            first_touch=self._touch(FIRST_TOUCH),
            last_touch=self._touch(LAST_TOUCH),
        )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)
