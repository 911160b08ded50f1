"""Folds a user's events of one batch into one MongoDB update of their profile document.

Pure: no database. The store loads the current documents of a batch's users with one query,
``ProfileChange`` applies the events in order on top of it, and ``update()`` returns a single
operator update (``$inc``/``$set``/``$min``/``$max``/``$push`` + ``$slice``/``$addToSet``), so
there is no read-modify-write round trip per event. Counters go through ``$inc``; values
that depend on the order of events (decayed affinity, revenue, RFM) are computed here from the
stored value in event order, which makes the result independent of how events were batched.
The two item lists (``recentItems``, ``purchasedItems``) are stored packed
(``shared.packed_ids``) and so are ``$set`` whole, from the loaded value plus the batch's items.

Attribution (``firstTouch``, ``lastTouch``; channels from ``shared.attribution``): the first
touch is set by the first event with attribution context and never changed afterwards (a
merge keeps the earlier of the two). The last touch follows each later touch, except that a
``direct`` touch does not replace a non-direct one within the same session (an event less
than ``session_gap_seconds`` after the profile's previous event: a reload or a bookmark in the
middle of a visit that a campaign brought); a touch older than the stored last touch (an
out-of-order or re-sent event) changes nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.profiles import decay, limits, rfm
from services.profiles.limits import Limits, trait_size
from services.profiles.parsing import PURCHASE, RATING, Interaction, ParsedEvent
from shared.attribution import DIRECT, Touch
from shared.currency import Rates
from shared.packed_ids import pack_sequence, pack_set, unpack
from shared.profile_document import FIRST_TOUCH, LAST_TOUCH, TOUCH_AT, TOUCH_CHANNEL, escape
from shared.timestamps import format_iso

DAY_SECONDS = 86400
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Rules:
    half_life_seconds: float = 7 * DAY_SECONDS
    session_gap_seconds: float = 30 * 60
    recent_items_max: int = 50
    active_days_max: int = 366
    limits: Limits = field(default_factory=Limits)
    currency: Rates = field(default_factory=Rates)


def day_number(moment: datetime) -> int:
    """Days since 1970-01-01 (UTC): the compact form of ``activeDays``."""
    return (moment - EPOCH).days


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


def touch_document(touch: Touch, at: datetime) -> dict[str, Any]:
    """The stored form of one attribution touch."""
    return {
        TOUCH_CHANNEL: touch.channel,
        "source": touch.source,
        "medium": touch.medium,
        "campaign": touch.campaign,
        "referrer": touch.referrer,
        TOUCH_AT: at,
    }


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None or a <= b else b


@dataclass
class ProfileChange:
    """The pending change of one profile document within a batch."""

    key: str
    base: dict[str, Any] | None
    rules: Rules
    events: int = 0
    inc: dict[str, int] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    recent: list[str] = field(default_factory=list)
    anonymous_ids: list[str] = field(default_factory=list)
    new_days: list[int] = field(default_factory=list)
    traits: dict[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    absorbed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        base = self.base or {}
        # Running state the order-dependent rules read.
        self.seen_until: datetime | None = base.get("lastSeen")
        self.days: set[int] = set(base.get("activeDays", []))
        self.affinity: dict[str, float] = dict(base.get("affinity", {}))
        self.affinity_at: datetime | None = base.get("affinityAt")
        self.affinity_changed = False
        self.purchases: int = int(base.get("purchases", 0))
        self.revenue: float = float(base.get("revenue", 0.0))
        self.revenue_changed = False
        self.last_purchase: datetime | None = base.get("lastPurchaseAt")
        self.known_anonymous = set(base.get("anonymousIds", []))
        self.stored_recent = unpack(base.get("recentItems"))
        self.consumed = set(unpack(base.get("purchasedItems")))  # bought or rated, all of them
        self.consumed_changed = False
        self.names: set[str] = set(base.get("counts", {}).get("byName", {}))
        self.limited: Counter[str] = Counter()  # what the caps refused (limits.ALL)
        self._trait_sizes: dict[str, int] | None = None  # name -> trait_size, loaded lazily
        self.first_touch: dict[str, Any] | None = base.get(FIRST_TOUCH)
        self.last_touch: dict[str, Any] | None = base.get(LAST_TOUCH)
        self.touched: set[str] = set()  # which of the two touch fields changed
        self._traits_total = 0

    def _count(self, path: str, amount: int = 1) -> None:
        self.inc[path] = self.inc.get(path, 0) + amount

    def can_link(self) -> bool:
        """Whether one more anonymous id fits under the ``anonymous_ids`` cap."""
        return len(self.known_anonymous) < self.rules.limits.anonymous_ids

    def link(self, anonymous_id: str) -> bool:
        """Record ``anonymous_id`` as one of this profile's ids (False: refused by the cap)."""
        if anonymous_id == self.key or anonymous_id in self.known_anonymous:
            return True
        if not self.can_link():
            self.limited[limits.ANONYMOUS_IDS] += 1
            return False
        self.known_anonymous.add(anonymous_id)
        self.anonymous_ids.append(anonymous_id)
        return True

    def _consume(self, item_id: str) -> None:
        if item_id in self.consumed:
            return
        if len(self.consumed) >= self.rules.limits.purchased_items:
            self.limited[limits.PURCHASED_ITEMS] += 1
            return
        self.consumed.add(item_id)
        self.consumed_changed = True

    def _name_path(self, name: str) -> str:
        """The counter of an (escaped) event name: past the cap, the shared ``(other)``."""
        if name not in self.names:
            if len(self.names) >= self.rules.limits.event_names:
                self.limited[limits.EVENT_NAMES] += 1
                name = limits.OTHER_EVENT_NAME
            self.names.add(name)
        return f"counts.byName.{name}"

    def _sizes(self) -> dict[str, int]:
        if self._trait_sizes is None:
            stored = (self.base or {}).get("traits", {})
            self._trait_sizes = {name: trait_size(name, v) for name, v in stored.items()}
            self._traits_total = sum(self._trait_sizes.values())
        return self._trait_sizes

    def set_trait(self, name: str, value: Any, fill_only: bool = False) -> None:
        """Set one trait unless a cap refuses it; ``fill_only`` keeps an existing value."""
        sizes, cap = self._sizes(), self.rules.limits
        if fill_only and name in sizes:
            return
        size, old = trait_size(name, value), sizes.get(name)
        refused = None
        if size > cap.trait_bytes:
            refused = limits.TRAIT_BYTES
        elif old is None and len(sizes) >= cap.traits:
            refused = limits.TRAITS
        elif self._traits_total - (old or 0) + size > cap.traits_bytes:
            refused = limits.TRAITS_BYTES
        if refused is not None:
            self.limited[refused] += 1
            return
        self._traits_total += size - (old or 0)
        sizes[name] = size
        self.traits[name] = value

    def _new_session(self, moment: datetime) -> bool:
        return self.seen_until is None or (
            (moment - self.seen_until).total_seconds() > self.rules.session_gap_seconds
        )

    def _attribute(self, touch: Touch, moment: datetime, new_session: bool) -> None:
        """Record an attribution touch (the rules are in the module's docstring)."""
        stored = touch_document(touch, moment)
        if self.first_touch is None:
            self.first_touch = stored
            self.touched.add(FIRST_TOUCH)
        last = self.last_touch
        if last is not None:
            if moment < last[TOUCH_AT]:
                return
            if touch.channel == DIRECT and last[TOUCH_CHANNEL] != DIRECT and not new_session:
                return
        self.last_touch = stored
        self.touched.add(LAST_TOUCH)

    def _touch(self, moment: datetime) -> None:
        if self._new_session(moment):
            self._count("sessions.count")
        self.seen_until = _later(self.seen_until, moment)
        self.first_seen = _earlier(self.first_seen, moment)
        self.last_seen = _later(self.last_seen, moment)
        day = day_number(moment)
        if day not in self.days:
            self.days.add(day)
            self.new_days.append(day)

    def apply(
        self,
        event: ParsedEvent,
        categories: tuple[str, ...] | list[tuple[str, ...]],
        fill_traits: bool = False,
    ) -> None:
        """Apply one event; ``categories`` are those of each of its interactions (resolved by
        the caller; one tuple for all of them is accepted too).
        Ids are linked by the caller (identity rules); ``fill_traits`` (an anonymous event
        reaching a known user through a link) sets only traits the profile does not have yet,
        as a merge of the anonymous profile would."""
        self.events += 1
        self._count("version")
        self._count(f"counts.byType.{escape(event.type)}")
        if event.name:
            self._count(self._name_path(escape(event.name)))
        if event.touch is not None:
            self._attribute(event.touch, event.at, self._new_session(event.at))
        self._touch(event.at)
        if event.user_id:
            self.user_id = event.user_id
        # Trait names arrive escaped (parsing._storable).
        for name, value in event.traits.items():
            self.set_trait(name, value, fill_only=fill_traits)
        self._revenue(event)
        for n, interaction in enumerate(event.interactions):
            own = categories[n] if isinstance(categories, list) else categories
            self._interact(event, interaction, own)

    def _revenue(self, event: ParsedEvent) -> None:
        """An order counts once in purchases; its amount (a refund's, negated) moves revenue in
        the base currency, never below zero; an amount that cannot be converted is counted."""
        if event.purchase:
            self.purchases += 1
            self.revenue_changed = True
            self.last_purchase = _later(self.last_purchase, event.at)
        if event.revenue is None:
            return
        amount = self.rules.currency.to_base(
            event.revenue, event.currency or self.rules.currency.base
        )
        if amount is None:
            self.limited[limits.REVENUE_CURRENCY] += 1
            return
        self.revenue = max(0.0, self.revenue + amount)
        self.revenue_changed = True

    def _interact(
        self, event: ParsedEvent, interaction: Interaction, categories: tuple[str, ...]
    ) -> None:
        self.recent.append(interaction.item_id)
        if interaction.kind in (PURCHASE, RATING):
            self._consume(interaction.item_id)
        if categories:
            self.affinity, self.affinity_at = decay.add(
                self.affinity,
                self.affinity_at,
                event.at,
                tuple(escape(c) for c in categories),
                decay.weight(interaction),
                self.rules.half_life_seconds,
            )
            self.affinity_changed = True

    def absorb(self, other: dict[str, Any]) -> None:
        """Merge another profile (an anonymous history, an aliased id) into this one."""
        self.absorbed.append(str(other["_id"]))
        self._count("version", int(other.get("version", 0)))
        counts = other.get("counts", {})
        for name, count in counts.get("byType", {}).items():
            self._count(f"counts.byType.{name}", int(count))
        for name, count in counts.get("byName", {}).items():
            self._count(self._name_path(name), int(count))
        self._count("sessions.count", int(other.get("sessions", {}).get("count", 0)))
        self.first_seen = _earlier(self.first_seen, other.get("firstSeen"))
        self.last_seen = _later(self.last_seen, other.get("lastSeen"))
        self.seen_until = _later(self.seen_until, other.get("lastSeen"))
        for day in other.get("activeDays", []):
            if day not in self.days:
                self.days.add(day)
                self.new_days.append(day)
        self.recent.extend(unpack(other.get("recentItems")))
        for item in unpack(other.get("purchasedItems")):
            self._consume(item)
        self.link(str(other["_id"]))
        for anonymous_id in other.get("anonymousIds", []):
            self.link(anonymous_id)
        for name, value in other.get("traits", {}).items():
            self.set_trait(name, value, fill_only=True)  # the known user's own traits win
        self._absorb_touches(other.get(FIRST_TOUCH), other.get(LAST_TOUCH))
        if other.get("affinity"):
            self.affinity, self.affinity_at = decay.merge(
                self.affinity,
                self.affinity_at,
                other["affinity"],
                other.get("affinityAt"),
                self.rules.half_life_seconds,
            )
            self.affinity_changed = True
        if other.get("purchases") or other.get("revenue"):
            self.purchases += int(other["purchases"])
            self.revenue += float(other.get("revenue", 0.0))
            self.revenue_changed = True
            self.last_purchase = _later(self.last_purchase, other.get("lastPurchaseAt"))

    def _absorb_touches(self, first: Any, last: Any) -> None:
        """A merged profile's first touch wins if earlier, its last touch if later."""
        if isinstance(first, dict) and (
            self.first_touch is None or first[TOUCH_AT] < self.first_touch[TOUCH_AT]
        ):
            self.first_touch = first
            self.touched.add(FIRST_TOUCH)
        if isinstance(last, dict) and (
            self.last_touch is None or last[TOUCH_AT] > self.last_touch[TOUCH_AT]
        ):
            self.last_touch = last
            self.touched.add(LAST_TOUCH)

    def version(self) -> int:
        return int((self.base or {}).get("version", 0)) + self.inc.get("version", 0)

    def rfm(self) -> rfm.Rfm | None:
        reference = _later(self.seen_until, self.last_purchase)
        if reference is None:
            return None
        return rfm.scores(self.purchases, self.revenue, self.last_purchase, reference)

    def update(self, now: datetime) -> dict[str, Any]:
        """The MongoDB update document that applies this change to the stored profile."""
        update: dict[str, Any] = {"$inc": dict(self.inc)}
        set_fields: dict[str, Any] = {"updatedAt": now}
        if self.user_id:
            set_fields["userId"] = self.user_id
        for name, value in self.traits.items():
            set_fields[f"traits.{name}"] = value
        if self.affinity_changed:
            set_fields["affinity"] = decay.ordered(self.affinity)
            set_fields["affinityAt"] = self.affinity_at
        if self.revenue_changed:
            set_fields["purchases"] = self.purchases
            set_fields["revenue"] = self.revenue
            set_fields["lastPurchaseAt"] = self.last_purchase
        scores = self.rfm()
        if scores is not None:
            set_fields["rfm"] = scores.as_document()
        if self.recent:
            limit = self.rules.recent_items_max
            set_fields["recentItems"] = pack_sequence((self.stored_recent + self.recent)[-limit:])
        if self.consumed_changed:
            set_fields["purchasedItems"] = pack_set(self.consumed)
        if FIRST_TOUCH in self.touched:
            set_fields[FIRST_TOUCH] = self.first_touch
        if LAST_TOUCH in self.touched:
            set_fields[LAST_TOUCH] = self.last_touch
        update["$set"] = set_fields
        if self.first_seen is not None:
            update["$min"] = {"firstSeen": self.first_seen}
        if self.last_seen is not None:
            update["$max"] = {"lastSeen": self.last_seen}
        if self.new_days:
            update["$push"] = {
                "activeDays": {
                    "$each": sorted(self.new_days),
                    "$sort": 1,
                    "$slice": -self.rules.active_days_max,
                }
            }
        if self.anonymous_ids:
            update["$addToSet"] = {"anonymousIds": {"$each": self.anonymous_ids}}
        return update

    def materialize(self, now: datetime, update: dict[str, Any] | None = None) -> dict[str, Any]:
        """The document as it will be once ``update()`` is applied (for messages and merges);
        pass the update already built for the write to save building it again."""
        base = self.base or {}
        doc: dict[str, Any] = {"_id": self.key, **{k: v for k, v in base.items() if k != "_id"}}
        for path, amount in self.inc.items():
            target = doc
            *parents, leaf = path.split(".")
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = target.get(leaf, 0) + amount
        if update is None:
            update = self.update(now)
        for path, value in update["$set"].items():
            target = doc
            *parents, leaf = path.split(".")
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = value
        doc["firstSeen"] = _earlier(base.get("firstSeen"), self.first_seen)
        doc["lastSeen"] = _later(base.get("lastSeen"), self.last_seen)
        days = sorted(set(base.get("activeDays", [])) | set(self.new_days))
        doc["activeDays"] = days[-self.rules.active_days_max :]
        doc["anonymousIds"] = list(base.get("anonymousIds", [])) + self.anonymous_ids
        return doc


def summary(doc: dict[str, Any], applied: int) -> dict[str, Any]:
    """The compact ``profiles.updated`` message of a changed profile."""

    def iso(value: Any) -> str | None:
        return format_iso(value, "auto") if isinstance(value, datetime) else None

    return {
        "key": doc["_id"],
        "userId": doc.get("userId"),
        "version": doc.get("version", 0),
        "applied": applied,
        "lastSeen": iso(doc.get("lastSeen")),
        "updatedAt": iso(doc.get("updatedAt")),
        "recentItems": unpack(doc.get("recentItems"))[-10:],
        "segment": (doc.get("rfm") or {}).get("segment"),
    }
