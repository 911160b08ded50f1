"""Plans one batch: the stored state it builds on + its parsed events -> MongoDB operations.

Pure: no database. The writer (``services.profiles.store``) reads a ``Snapshot`` of what the
batch touches, ``plan_batch`` applies the identity, erasure, catalogue and trending rules to
it in event order, and the writer applies the ``Plan`` in one transaction.

Two reads depend on the plan itself: the hourly trending budget of a user an interaction
reaches through a link made within the batch, and the stored trend contributions of the ids
an erasure removes. The planner lists what it missed in ``Plan.needs``; the writer reads it
and plans again (routing does not depend on those reads, so a second plan needs nothing more).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import DeleteMany, InsertOne, UpdateMany, UpdateOne
from pymongo.operations import DeleteOne

from services.profiles import decay, identity
from services.profiles.identity import ERASED_IDS, IDENTITY_CLAIMS, hashed_id
from services.profiles.limits import TREND_EVENTS
from services.profiles.parsing import Interaction, ParsedEvent
from services.profiles.result import BatchResult, Record
from services.profiles.trends import (
    HOUR,
    Retention,
    TrendDeltas,
    contribution_id,
    expires_at,
    hour_expiry,
    reversal,
    window_start,
)
from services.profiles.updates import ProfileChange, Rules, summary
from shared import catalogue as items
from shared import interactions as stored
from shared.catalogue import CatalogueItem
from shared.interactions import StoredInteraction, interaction_id
from shared.mongo import ITEMS, PROFILES
from shared.profile_document import TOUCH_CHANNEL
from shared.trends import TREND_CONTRIBUTIONS, TRENDS, trend_id

INTERACTIONS = stored.COLLECTION
# Order of a batch's writes, one bulk_write per collection.
WRITE_ORDER = (
    ITEMS,
    PROFILES,
    INTERACTIONS,
    TRENDS,
    TREND_CONTRIBUTIONS,
    IDENTITY_CLAIMS,
    ERASED_IDS,
)

Slot = tuple[str, int]  # (user, hour start) of the hourly trending budget


@dataclass(frozen=True)
class Policy:
    """The rules a plan applies (from the worker's settings)."""

    rules: Rules = field(default_factory=Rules)
    retention: Retention = field(default_factory=Retention)
    hash_key: bytes = b""  # key of the erased ids' HMAC (LUMEN_PROFILES_ERASURE_HASH_KEY)
    trend_events_per_hour: int = 1000  # LUMEN_PROFILES_MAX_TREND_EVENTS_PER_HOUR

    def hash(self, value: str) -> str:
        return hashed_id(self.hash_key, value)

    def trend_kept(self, hour: int, now: datetime) -> bool:
        """Whether the hour window is still kept (older interactions are not counted)."""
        return hour_expiry(hour, self.retention) > now


@dataclass
class Snapshot:
    """What the stored state says about one batch's ids, as the writer read it."""

    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # by _id, in read order
    erased: set[str] = field(default_factory=set)  # ids of the batch on the suppression list
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)  # item id -> categories
    trend_slots_read: set[Slot] = field(default_factory=set)
    trend_counts: dict[Slot, int] = field(default_factory=dict)  # interactions counted before
    # user -> their stored trend_contributions documents (every user read has an entry)
    contributions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class Needs:
    """Reads a plan missed: the writer loads them and plans again."""

    trend_slots: set[Slot] = field(default_factory=set)
    contributions: set[str] = field(default_factory=set)  # users

    def __bool__(self) -> bool:
        return bool(self.trend_slots or self.contributions)


@dataclass
class Plan:
    result: BatchResult
    writes: dict[str, list[Any]]  # collection -> operations, applied in WRITE_ORDER
    emptied_trends: list[str]  # trend windows an erasure took counts out of (deleted at 0)
    catalogue: dict[str, tuple[str, ...]]  # categories of the batch's catalogue items
    needs: Needs


def batch_ids(events: Iterable[ParsedEvent]) -> tuple[set[str], set[str]]:
    """The profile keys and the anonymous (or aliased) ids a batch mentions."""
    keys: set[str] = set()
    anonymous: set[str] = set()
    for e in events:
        keys.add(e.key)
        if e.anonymous_id:
            anonymous.add(e.anonymous_id)
        if e.previous_id:
            anonymous.add(e.previous_id)
    return keys, anonymous


def suppression_candidates(events: Iterable[ParsedEvent]) -> set[str]:
    """The ids whose erasure would drop or refuse one of the batch's events."""
    return {
        value
        for e in events
        if e.catalogue is None
        for value in (e.key, e.anonymous_id, e.previous_id)
        if value
    }


def stored_links(profiles: dict[str, dict[str, Any]], anonymous: set[str]) -> dict[str, str]:
    """Anonymous id -> the stored profile holding it, for the ids in ``anonymous``."""
    links: dict[str, str] = {}
    for doc in profiles.values():
        for linked in doc.get("anonymousIds", []):
            if linked in anonymous:
                links[linked] = doc["_id"]
    return links


def likely_trend_slots(
    events: Iterable[ParsedEvent], links: dict[str, str], policy: Policy, now: datetime
) -> set[Slot]:
    """The budget slots the batch's interactions will most likely count in (read in one query;
    a link made within the batch can route one elsewhere: the plan then asks for it)."""
    slots: set[Slot] = set()
    for e in events:
        hour = window_start(e.at, HOUR)
        if e.interaction is None or not policy.trend_kept(hour, now):
            continue
        for user in (e.key, links.get(e.anonymous_id or "")):
            if user:
                slots.add((user, hour))
    return slots


def offset_writes(records: Iterable[Record], now: datetime) -> list[UpdateOne]:
    """The highest offset of each partition in ``records``, recorded as applied."""
    last: dict[str, int] = defaultdict(lambda: -1)
    for record in records:
        oid = offset_id(record.topic, record.partition)
        last[oid] = max(last[oid], record.offset)
    return [
        UpdateOne(
            {"_id": oid}, {"$max": {"offset": offset}, "$set": {"updatedAt": now}}, upsert=True
        )
        for oid, offset in last.items()
    ]


def offset_id(topic: str, partition: int) -> str:
    return f"{topic}|{partition}"


def plan_batch(
    events: list[ParsedEvent], snapshot: Snapshot, policy: Policy, now: datetime
) -> Plan:
    """The operations that apply ``events`` (in order) on top of ``snapshot``."""
    return _Planning(snapshot, policy, now).run(events)


class _Planning:
    """One pass over a batch's events (state of the pass; the snapshot is not changed)."""

    def __init__(self, snapshot: Snapshot, policy: Policy, now: datetime) -> None:
        self.snapshot = snapshot
        self.policy = policy
        self.now = now
        self.result = BatchResult()
        self.needs = Needs()
        self.changes: dict[str, ProfileChange] = {}
        self.docs = dict(snapshot.profiles)
        self.link_of: dict[str, str] = {}  # anonymous id -> profile key holding it
        self.erased = set(snapshot.erased)  # grows with the batch's own erasures
        self.categories = dict(snapshot.categories)
        self.catalogue: dict[str, tuple[str, ...]] = {}
        self.deltas = TrendDeltas(policy.retention, policy.trend_events_per_hour)
        self.deltas.stored = dict(snapshot.trend_counts)
        self.reversed: set[str] = set()  # trend documents an erasure took counts out of
        self.reversed_users: set[str] = set()  # whose stored share is already taken out
        self.ops: dict[str, list[Any]] = {name: [] for name in WRITE_ORDER}
        self.interaction_ids: set[str] = set()  # planned inserts of the interaction store

    # -- identity ----------------------------------------------------------------------------
    def _change(self, key: str) -> ProfileChange:
        change = self.changes.get(key)
        if change is None:
            change = self.changes[key] = ProfileChange(key, self.docs.get(key), self.policy.rules)
        return change

    def _identified(self, key: str) -> bool:
        """Whether ``key`` has a profile of an identified user (one with a ``userId``)."""
        change = self.changes.get(key)
        if change is not None and (change.user_id or (change.base or {}).get("userId")):
            return True
        return bool((self.docs.get(key) or {}).get("userId"))

    def _claim(self, target: str, source: str, merge: bool) -> bool:
        """Link ``source`` to the profile ``target`` under the identity rules (see
        ``services.profiles.identity``), and fold its profile in when ``merge``. Returns
        whether the link holds."""
        if source == target:
            return True
        reason = None
        owner = self.link_of.get(source)
        change = self._change(target)
        if source in self.erased:
            reason = identity.ERASED
        elif owner is not None and owner != target:
            reason = identity.CLAIMED
        elif self._identified(source):
            reason = identity.IDENTIFIED
        elif owner is None and source not in change.known_anonymous and not change.can_link():
            reason = identity.TOO_MANY
        if reason is not None:
            self.result.refused[reason] += 1
            return False
        if owner is None and source not in change.known_anonymous:
            # Written by every claim of ``source``: concurrent claims conflict on it.
            self.ops[IDENTITY_CLAIMS].append(
                UpdateOne(
                    {"_id": self.policy.hash(source)},
                    {"$set": {"expiresAt": identity.claim_expiry(self.now)}},
                    upsert=True,
                )
            )
        if merge:
            self._absorb(target, source)
        change.link(source)
        self.link_of[source] = target
        return True

    def _absorb(self, target: str, source: str) -> None:
        """Move the profile ``source`` (if any) into ``target`` and delete it."""
        if source == target:
            return
        pending = self.changes.pop(source, None)
        other = pending.materialize(self.now) if pending else self.docs.get(source)
        self.link_of[source] = target
        if other is None:
            return
        self.docs.pop(source, None)
        self._change(target).absorb(other)
        self.ops[PROFILES].append(DeleteOne({"_id": source}))
        # Its interactions go with it (after any the batch wrote under ``source``: ops are
        # applied in order).
        self.ops[INTERACTIONS].append(
            UpdateMany({stored.USER: source}, {"$set": {stored.USER: target}})
        )
        self.deltas.move(source, target)
        self.result.messages.append((source, None))

    # -- erasure -----------------------------------------------------------------------------
    def _erase(self, key: str) -> None:
        change = self.changes.pop(key, None)
        doc = self.docs.pop(key, None)
        linked = set((doc or {}).get("anonymousIds", []))
        if change is not None:
            linked |= change.known_anonymous
        ids = sorted({key, *linked})
        for other in ids:
            self.changes.pop(other, None)
            self.docs.pop(other, None)
            self.deltas.forget(other)
        self.link_of = {a: k for a, k in self.link_of.items() if k != key and a not in ids}
        self.ops[PROFILES].append(DeleteMany({"_id": {"$in": ids}}))
        self.ops[INTERACTIONS].append(DeleteMany({stored.USER: {"$in": ids}}))
        self._take_back_trends(ids)
        self.ops[TREND_CONTRIBUTIONS].append(DeleteMany({"user": {"$in": ids}}))
        # Remembered by hash only: later events of any of these ids build no profile.
        for erased in ids:
            self.erased.add(erased)
            self.ops[ERASED_IDS].append(
                UpdateOne(
                    {"_id": self.policy.hash(erased)},
                    {"$setOnInsert": {"erasedAt": self.now}},
                    upsert=True,
                )
            )
        self.result.messages.extend((i, None) for i in ids)
        self.result.erased += 1

    def _take_back_trends(self, users: list[str]) -> None:
        """Take the users' stored share back out of the trend windows that are still kept
        (once per user, however often the batch erases them)."""
        stored = self.snapshot.contributions
        for user in users:
            if user in self.reversed_users:
                continue
            if user not in stored:
                self.needs.contributions.add(user)
                continue
            self.reversed_users.add(user)
            for contribution in stored[user]:
                taken = reversal(contribution.get("c", {}), self.now, self.policy.retention)
                for doc_id, (views, purchases) in taken.items():
                    self.reversed.add(doc_id)
                    self.ops[TRENDS].append(
                        UpdateOne(
                            {"_id": doc_id}, {"$inc": {"views": -views, "purchases": -purchases}}
                        )
                    )

    # -- events ------------------------------------------------------------------------------
    def _count_in_trends(
        self, key: str, event: ParsedEvent, interaction: Interaction, categories: tuple[str, ...]
    ) -> None:
        slot = (key, window_start(event.at, HOUR))
        if slot not in self.snapshot.trend_slots_read and self.policy.trend_kept(slot[1], self.now):
            self.needs.trend_slots.add(slot)
        # The user's last touch once this event is applied: their current acquisition channel.
        last_touch = self._change(key).last_touch or {}
        channel = last_touch.get(TOUCH_CHANNEL)
        if not self.deltas.add(key, event.at, interaction, categories, self.now, channel):
            self.result.limited[TREND_EVENTS] += 1

    def _catalogue(self, item: CatalogueItem) -> None:
        if item.removed:
            # A mark, not a delete: readers skip it, and a later upsert revives the item.
            mark = {items.REMOVED: True, items.UPDATED_AT: self.now}
            self.ops[ITEMS].append(UpdateOne({"_id": item.item_id}, {"$set": mark}, upsert=True))
            return
        self.catalogue[item.item_id] = item.categories
        self.categories[item.item_id] = item.categories
        # The item's whole state: a field the product no longer sends is cleared.
        state = {
            items.TITLE: item.title,
            items.CATEGORIES: list(item.categories),
            items.DESCRIPTION: item.description,
            items.ATTRIBUTES: dict(item.attributes),
            items.REMOVED: False,
            items.UPDATED_AT: self.now,
        }
        self.ops[ITEMS].append(UpdateOne({"_id": item.item_id}, {"$set": state}, upsert=True))

    def _store_interactions(self, key: str, event: ParsedEvent) -> None:
        """One interaction store document per applied interaction. The writer drops the
        inserts whose ``_id`` is stored already (the same event sent twice: a client's retry
        at another offset), and the batch plans each ``_id`` once."""
        message_id = event.message_id or ""
        for index, interaction in enumerate(event.interactions):
            doc = StoredInteraction(
                interaction_id(message_id, index),
                key,
                interaction.item_id,
                interaction.kind,
                event.at,
                decay.weight(interaction),
            ).to_document()
            if doc[stored.ID] not in self.interaction_ids:
                self.interaction_ids.add(doc[stored.ID])
                self.ops[INTERACTIONS].append(InsertOne(doc))

    def _apply(self, event: ParsedEvent) -> None:
        if event.catalogue is not None:
            self._catalogue(event.catalogue)
            return
        if event.is_delete:
            self._erase(event.key)
            return
        key = event.key
        if key in self.erased:
            self.result.suppressed += 1
            return
        routed = False
        if not event.user_id and event.anonymous_id in self.link_of:
            key, routed = self.link_of[event.anonymous_id], True
            if not self._identified(event.anonymous_id):
                self._claim(key, event.anonymous_id, merge=True)  # folds a stray copy in
        elif event.user_id and event.anonymous_id:
            self._claim(key, event.anonymous_id, merge=event.type == "identify")
        if event.type == "alias" and event.previous_id:
            self._claim(key, event.previous_id, merge=True)
        # Each interaction's own categories, else its item's in the catalogue (an order's
        # products each count, in the profile and in trends).
        categories = [
            i.categories if i.categories is not None else self.categories.get(i.item_id, ())
            for i in event.interactions
        ]
        self._change(key).apply(event, categories, fill_traits=routed)
        for interaction, own in zip(event.interactions, categories, strict=True):
            self._count_in_trends(key, event, interaction, own)
        self._store_interactions(key, event)
        self.result.applied.append(event)

    # -- operations --------------------------------------------------------------------------
    def _trend_writes(self) -> None:
        starts: dict[int, datetime] = {}  # few distinct window starts per batch
        retention = self.policy.retention
        for (window, kind, start, key), (views, purchases) in self.deltas.window_totals(
            self.now
        ).items():
            moment = starts.get(start)
            if moment is None:
                moment = starts[start] = datetime.fromtimestamp(start, self.now.tzinfo)
            on_insert = {
                "window": window,
                "kind": kind,
                "key": key,
                "start": moment,
                "expiresAt": expires_at(start, window, retention),
            }
            self.ops[TRENDS].append(
                UpdateOne(
                    {"_id": trend_id(window, kind, start, key)},
                    {"$inc": {"views": views, "purchases": purchases}, "$setOnInsert": on_insert},
                    upsert=True,
                )
            )
        for (user, hour), cells in self.deltas.contributions().items():
            # ``n``: interactions counted, read back against the hourly budget.
            inc: dict[str, int] = {"n": self.deltas.events.get((user, hour), 0)}
            for name, (views, purchases) in cells.items():
                if views:
                    inc[f"c.{name}.v"] = views
                if purchases:
                    inc[f"c.{name}.p"] = purchases
            on_insert = {"user": user, "expiresAt": hour_expiry(hour, retention)}
            self.ops[TREND_CONTRIBUTIONS].append(
                UpdateOne(
                    {"_id": contribution_id(user, hour)},
                    {"$inc": inc, "$setOnInsert": on_insert},
                    upsert=True,
                )
            )

    def run(self, events: list[ParsedEvent]) -> Plan:
        _, anonymous = batch_ids(events)
        self.link_of = stored_links(self.docs, anonymous)
        for event in events:
            self._apply(event)
        for key, change in self.changes.items():
            self.result.limited.update(change.limited)
            update = change.update(self.now)
            self.ops[PROFILES].append(UpdateOne({"_id": key}, update, upsert=True))
            applied = change.materialize(self.now, update)
            self.result.messages.append((key, summary(applied, change.events)))
        self._trend_writes()
        return Plan(
            result=self.result,
            writes=self.ops,
            emptied_trends=sorted(self.reversed),
            catalogue=self.catalogue,
            needs=self.needs,
        )
