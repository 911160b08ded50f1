"""Applies one batch of ``events.raw`` records to MongoDB, exactly once.

Everything a batch changes -- profiles, items, trend windows, trend contributions -- and the
highest applied Kafka offset of each of its partitions are written in ONE MongoDB transaction.
A record whose offset is not above the stored offset of its partition was applied before and
is skipped, so a replay (restart from an older offset, a crash between the MongoDB commit and
the Kafka offset commit, a rebalance) has no effect. Two workers that briefly hold the same
partition during a rebalance both write its offset document; MongoDB aborts one of them with a
write conflict, and the retry re-reads the offsets and skips what the other applied.

Reads per batch, whatever its size: the partitions' offsets, the profiles of its users (and of
the anonymous ids it mentions), the items whose categories it needs; then one ``bulk_write``
per collection.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DeleteMany, IndexModel, MongoClient, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import CollectionInvalid, ConnectionFailure, PyMongoError
from pymongo.operations import DeleteOne
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from services.profiles import identity, metrics
from services.profiles.identity import ERASED_IDS, IDENTITY_CLAIMS, hashed_id
from services.profiles.limits import TREND_EVENTS, Limits
from services.profiles.parsing import PROCESSING_ERROR, ParsedEvent, PoisonEvent, parse_record
from services.profiles.settings import ProfilesSettings
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
from shared.mongo import ITEMS, OFFSETS, PROFILES, database, ensure_indexes, mongo_client
from shared.trends import TREND_CONTRIBUTIONS, TRENDS, trend_id

# Stated rather than inherited from the client's URI: the commit must be majority-acknowledged
# (and journaled) or a failover could lose a batch whose Kafka offsets were then committed. On a
# one-node replica set this costs one journal flush per batch, the same as w=1 with j=true.
# Reads inside the transaction see its snapshot; a concurrent writer of the same offset
# document aborts it with a write conflict, so "local" is enough for the skip test.
TRANSACTION_COMMIT = WriteConcern("majority")
TRANSACTION_READS = ReadConcern("local")
# Immediate attempts of a transaction that lost a write conflict (another worker wrote the same
# document: its retry re-reads and skips what the other applied).
CONFLICT_ATTEMPTS = 5


@dataclass(frozen=True)
class Record:
    """One Kafka record as the store needs it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    failure: str | None = None  # set when applying it failed: DLQ it with failure_reason
    failure_reason: str = PROCESSING_ERROR


@dataclass
class BatchResult:
    applied: list[ParsedEvent] = field(default_factory=list)
    skipped: int = 0  # already applied earlier (a replay)
    poison: list[tuple[Record, PoisonEvent]] = field(default_factory=list)
    # profiles.updated: (key, compact summary), or (key, None) for a tombstone
    messages: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    erased: int = 0
    suppressed: int = 0  # events of erased ids, dropped
    limited: Counter[str] = field(default_factory=Counter)  # what the profile caps refused
    refused: Counter[str] = field(default_factory=Counter)  # links the identity rules refused


def offset_id(topic: str, partition: int) -> str:
    return f"{topic}|{partition}"


# Storage of the profiles collection and of its indexes. zstd: profiles are read by key, so
# its extra CPU over the default snappy is small, and MongoDB leaves index pages uncompressed
# unless asked. 1 KB allocation units: a compressed index page no longer rounds up to a
# multiple of 4 KB (this halved the index files; docs/profiles.md, "Storage").
PROFILE_STORAGE = {"wiredTiger": {"configString": "block_compressor=zstd,allocation_size=1KB"}}


def ensure_schema(db: Database) -> None:
    """Indexes the updater and its readers rely on (idempotent; run at start-up). A new
    profiles collection is created with ``PROFILE_STORAGE`` for itself and its indexes; an
    existing collection is kept as it is."""
    with contextlib.suppress(CollectionInvalid):
        db.create_collection(PROFILES, storageEngine=PROFILE_STORAGE,
                             indexOptionDefaults={"storageEngine": PROFILE_STORAGE})  # fmt: skip
    ensure_indexes(db)
    db[TRENDS].create_indexes(
        [
            IndexModel([("window", ASCENDING), ("kind", ASCENDING), ("start", ASCENDING)],
                       name="window_kind_start"),
            IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="ttl"),
        ]
    )  # fmt: skip
    db[TREND_CONTRIBUTIONS].create_indexes(
        [
            IndexModel([("user", ASCENDING)], name="user"),
            IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="ttl"),
        ]
    )
    db[IDENTITY_CLAIMS].create_indexes(
        [IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="ttl")]
    )


class ItemCache:
    """Categories of catalogue items, kept for ``ttl`` seconds (catalogue changes are rare)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, tuple[str, ...]]] = {}

    def get(self, item_id: str) -> tuple[str, ...] | None:
        entry = self._entries.get(item_id)
        if entry is None or time.monotonic() - entry[0] > self.ttl:
            return None
        return entry[1]

    def put(self, item_id: str, categories: tuple[str, ...]) -> None:
        if len(self._entries) > 100_000:
            self._entries.clear()
        self._entries[item_id] = (time.monotonic(), categories)


class ProfileStore:
    def __init__(self, client: MongoClient, db: Database, rules: Rules, retention: Retention,
                 item_cache_seconds: float = 30.0) -> None:  # fmt: skip
        self.client = client
        self.db = db
        self.rules = rules
        self.retention = retention
        self.items = ItemCache(item_cache_seconds)
        self.hash_key = b""  # key of the erased ids' HMAC (LUMEN_PROFILES_ERASURE_HASH_KEY)
        self.trend_events_per_hour = 1000  # LUMEN_PROFILES_MAX_TREND_EVENTS_PER_HOUR

    @classmethod
    def configured(cls, settings: ProfilesSettings) -> ProfileStore:
        """The store the worker runs, with its client and rules from ``settings``."""
        client = mongo_client(settings.mongo)
        store = cls(
            client,
            database(client, settings.mongo),
            Rules(
                half_life_seconds=settings.half_life_days * 86400,
                session_gap_seconds=settings.session_gap_minutes * 60,
                recent_items_max=settings.recent_items_max,
                active_days_max=settings.active_days_max,
                limits=Limits(
                    traits=settings.max_traits,
                    trait_bytes=settings.max_trait_bytes,
                    traits_bytes=settings.max_traits_bytes,
                    event_names=settings.max_event_names,
                    anonymous_ids=settings.max_anonymous_ids,
                    purchased_items=settings.max_purchased_items,
                ),
            ),
            Retention(
                minute_seconds=settings.trend_minute_retention_hours * 3600,
                hour_seconds=settings.trend_hour_retention_hours * 3600,
            ),
            item_cache_seconds=settings.item_cache_seconds,
        )
        store.hash_key = settings.erasure_hash_key.get_secret_value().encode()
        store.trend_events_per_hour = settings.max_trend_events_per_hour
        return store

    def apply(self, records: list[Record], now: datetime) -> BatchResult:
        """Apply ``records`` (in partition order) in one transaction, retried at once on a
        write conflict. Anything else is raised to the caller, which retries with back-off
        (``ClientSession.with_transaction`` would retry a lost connection for two minutes, during
        which the worker could not report itself unready)."""
        if not records:
            return BatchResult()
        started = time.perf_counter()
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                with (
                    self.client.start_session() as session,
                    session.start_transaction(
                        read_concern=TRANSACTION_READS, write_concern=TRANSACTION_COMMIT
                    ),
                ):
                    result = _Batch(self, session, now).run(records)
                break
            except PyMongoError as exc:
                conflict = exc.has_error_label("TransientTransactionError") and not isinstance(
                    exc, ConnectionFailure
                )
                if not conflict or attempt == CONFLICT_ATTEMPTS:
                    raise
        metrics.MONGO_WRITE_SECONDS.observe(time.perf_counter() - started)
        return result


class _Batch:
    """One attempt at applying a batch inside a transaction (re-created on retry)."""

    def __init__(self, store: ProfileStore, session: ClientSession, now: datetime) -> None:
        self.store = store
        self.db = store.db
        self.session = session
        self.now = now
        self.result = BatchResult()
        self.changes: dict[str, ProfileChange] = {}
        self.docs: dict[str, dict[str, Any]] = {}
        self.link_of: dict[str, str] = {}  # anonymous id -> profile key holding it
        self.profile_ops: list[Any] = []
        self.trend_ops: list[Any] = []
        self.contribution_ops: list[Any] = []
        self.item_ops: list[Any] = []
        self.deltas = TrendDeltas(store.retention, store.trend_events_per_hour)
        self.categories: dict[str, tuple[str, ...]] = {}  # item id -> categories, this batch
        self.reversed: set[str] = set()  # trend documents an erasure took counts out of
        self.erased: set[str] = set()  # ids of this batch on the suppression list
        self.trend_slots_read: set[tuple[str, int]] = set()  # (user, hour) counts loaded
        self.claim_ops: list[Any] = []
        self.erasure_ops: list[Any] = []

    # -- reading -----------------------------------------------------------------------------
    def _fresh(self, records: list[Record]) -> list[Record]:
        ids = {offset_id(r.topic, r.partition) for r in records}
        applied = {
            d["_id"]: int(d["offset"])
            for d in self.db[OFFSETS].find({"_id": {"$in": list(ids)}}, session=self.session)
        }
        fresh = [r for r in records if r.offset > applied.get(offset_id(r.topic, r.partition), -1)]
        self.result.skipped = len(records) - len(fresh)
        return fresh

    def _load_profiles(self, events: list[ParsedEvent]) -> None:
        keys: set[str] = set()
        anonymous: set[str] = set()
        for e in events:
            keys.add(e.key)
            if e.anonymous_id:
                anonymous.add(e.anonymous_id)
            if e.previous_id:
                anonymous.add(e.previous_id)
        if not keys:
            return
        query = {"$or": [{"_id": {"$in": list(keys | anonymous)}},
                         {"anonymousIds": {"$in": list(anonymous)}}]}  # fmt: skip
        for doc in self.db[PROFILES].find(query, session=self.session):
            self.docs[doc["_id"]] = doc
            for linked in doc.get("anonymousIds", []):
                if linked in anonymous:
                    self.link_of[linked] = doc["_id"]

    def _hash(self, value: str) -> str:
        return hashed_id(self.store.hash_key, value)

    def _load_erased(self, events: list[ParsedEvent]) -> None:
        """Which of the batch's ids are on the suppression list (one query by hash)."""
        ids = {
            value
            for e in events
            if e.catalogue is None
            for value in (e.key, e.anonymous_id, e.previous_id)
            if value
        }
        by_hash = {self._hash(value): value for value in ids}  # each id hashed once per batch
        if not by_hash:
            return
        query = {"_id": {"$in": list(by_hash)}}
        found = self.db[ERASED_IDS].find(query, {"_id": 1}, session=self.session)
        self.erased = {by_hash[d["_id"]] for d in found}

    def _load_trend_counts(self, slots: dict[str, tuple[str, int]]) -> None:
        """How many interactions earlier batches counted in trending, for (user, hour) slots
        by their contribution id."""
        self.trend_slots_read.update(slots.values())
        query = {"_id": {"$in": list(slots)}, "n": {"$exists": True}}
        for doc in self.db[TREND_CONTRIBUTIONS].find(query, {"n": 1}, session=self.session):
            self.deltas.stored[slots[doc["_id"]]] = int(doc["n"])

    def _preload_trend_counts(self, events: list[ParsedEvent]) -> None:
        """One query for the slots the batch's interactions will most likely count in (a link
        made within the batch can route one elsewhere: ``_count_in_trends`` reads that one)."""
        slots: dict[str, tuple[str, int]] = {}
        for e in events:
            hour = window_start(e.at, HOUR)
            if e.interaction is None or not self._trend_kept(hour):
                continue
            for user in (e.key, self.link_of.get(e.anonymous_id or "")):
                if user:
                    slots[contribution_id(user, hour)] = (user, hour)
        if slots:
            self._load_trend_counts(slots)

    def _trend_kept(self, hour: int) -> bool:
        """Whether the hour window is still kept (older interactions are not counted)."""
        return hour_expiry(hour, self.store.retention) > self.now

    def _count_in_trends(self, key: str, event: ParsedEvent, categories: tuple[str, ...]) -> None:
        assert event.interaction is not None
        slot = (key, window_start(event.at, HOUR))
        if slot not in self.trend_slots_read and self._trend_kept(slot[1]):
            self._load_trend_counts({contribution_id(*slot): slot})
        if not self.deltas.add(key, event.at, event.interaction, categories, self.now):
            self.result.limited[TREND_EVENTS] += 1

    def _load_items(self, events: list[ParsedEvent]) -> None:
        wanted = {
            e.interaction.item_id
            for e in events
            if e.interaction is not None and e.interaction.categories is None
        }
        missing = []
        for item_id in wanted:
            cached = self.store.items.get(item_id)
            if cached is None:
                missing.append(item_id)
            else:
                self.categories[item_id] = cached
        if not missing:
            return
        found = {
            d["_id"]: tuple(d.get("categories", []))
            for d in self.db[ITEMS].find(
                {"_id": {"$in": missing}}, {"categories": 1}, session=self.session
            )
        }
        for item_id in missing:
            self.categories[item_id] = found.get(item_id, ())
            self.store.items.put(item_id, self.categories[item_id])

    # -- applying ----------------------------------------------------------------------------
    def _change(self, key: str) -> ProfileChange:
        change = self.changes.get(key)
        if change is None:
            change = self.changes[key] = ProfileChange(key, self.docs.get(key), self.store.rules)
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
            self.claim_ops.append(
                UpdateOne(
                    {"_id": self._hash(source)},
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
        self.profile_ops.append(DeleteOne({"_id": source}))
        self.deltas.move(source, target)
        self.result.messages.append((source, None))

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
        self.profile_ops.append(DeleteMany({"_id": {"$in": ids}}))
        # Take the user's share back out of the trend windows that are still kept.
        stored = self.db[TREND_CONTRIBUTIONS].find({"user": {"$in": ids}}, session=self.session)
        for contribution in stored:
            for doc_id, (views, purchases) in reversal(
                contribution.get("c", {}), self.now, self.store.retention
            ).items():
                self.reversed.add(doc_id)
                self.trend_ops.append(
                    UpdateOne({"_id": doc_id}, {"$inc": {"views": -views, "purchases": -purchases}})
                )
        self.contribution_ops.append(DeleteMany({"user": {"$in": ids}}))
        # Remembered by hash only: later events of any of these ids build no profile.
        for erased in ids:
            self.erased.add(erased)
            self.erasure_ops.append(
                UpdateOne(
                    {"_id": self._hash(erased)},
                    {"$setOnInsert": {"erasedAt": self.now}},
                    upsert=True,
                )
            )
        self.result.messages.extend((i, None) for i in ids)
        self.result.erased += 1

    def _apply(self, event: ParsedEvent) -> None:
        if event.catalogue is not None:
            item = event.catalogue
            self.store.items.put(item.item_id, item.categories)
            self.categories[item.item_id] = item.categories
            self.item_ops.append(UpdateOne(
                {"_id": item.item_id},
                {"$set": {"title": item.title, "categories": list(item.categories),
                          "updatedAt": self.now}},
                upsert=True,
            ))  # fmt: skip
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
        categories: tuple[str, ...] = ()
        interaction = event.interaction
        if interaction is not None:
            categories = (
                interaction.categories
                if interaction.categories is not None
                else self.categories.get(interaction.item_id, ())
            )
        self._change(key).apply(event, categories, fill_traits=routed)
        if interaction is not None:
            self._count_in_trends(key, event, categories)
        self.result.applied.append(event)

    # -- writing -----------------------------------------------------------------------------
    def _trend_writes(self) -> None:
        starts: dict[int, datetime] = {}  # few distinct window starts per batch
        for (window, kind, start, key), (views, purchases) in self.deltas.window_totals(
            self.now
        ).items():
            moment = starts.get(start)
            if moment is None:
                moment = starts[start] = datetime.fromtimestamp(start, self.now.tzinfo)
            self.trend_ops.append(UpdateOne(
                {"_id": trend_id(window, kind, start, key)},
                {"$inc": {"views": views, "purchases": purchases},
                 "$setOnInsert": {"window": window, "kind": kind, "key": key, "start": moment,
                                  "expiresAt": expires_at(start, window, self.store.retention)}},
                upsert=True,
            ))  # fmt: skip
        for (user, hour), cells in self.deltas.contributions().items():
            # ``n``: interactions counted, read back against the hourly budget.
            inc: dict[str, int] = {"n": self.deltas.events.get((user, hour), 0)}
            for name, (views, purchases) in cells.items():
                if views:
                    inc[f"c.{name}.v"] = views
                if purchases:
                    inc[f"c.{name}.p"] = purchases
            self.contribution_ops.append(UpdateOne(
                {"_id": contribution_id(user, hour)},
                {"$inc": inc, "$setOnInsert": {"user": user,
                                               "expiresAt": hour_expiry(hour, self.store.retention)}},
                upsert=True,
            ))  # fmt: skip

    def run(self, records: list[Record]) -> BatchResult:
        fresh = self._fresh(records)
        parsed: list[ParsedEvent] = []
        for record in fresh:
            if record.failure is not None:
                error = PoisonEvent(record.failure_reason, record.failure)
                self.result.poison.append((record, error))
                continue
            try:
                parsed.append(parse_record(record.value))
            except PoisonEvent as exc:
                self.result.poison.append((record, exc))
        self._load_erased(parsed)
        self._load_profiles(parsed)
        self._preload_trend_counts(parsed)
        self._load_items(parsed)
        for event in parsed:
            self._apply(event)
        for key, change in self.changes.items():
            self.result.limited.update(change.limited)
            update = change.update(self.now)
            self.profile_ops.append(UpdateOne({"_id": key}, update, upsert=True))
            applied = change.materialize(self.now, update)
            self.result.messages.append((key, summary(applied, change.events)))
        self._trend_writes()
        last: dict[str, int] = defaultdict(lambda: -1)
        for record in records:
            oid = offset_id(record.topic, record.partition)
            last[oid] = max(last[oid], record.offset)
        offset_ops = [
            UpdateOne({"_id": oid}, {"$max": {"offset": offset}, "$set": {"updatedAt": self.now}},
                      upsert=True)
            for oid, offset in last.items()
        ]  # fmt: skip
        for collection, ops in ((ITEMS, self.item_ops), (PROFILES, self.profile_ops),
                                (TRENDS, self.trend_ops),
                                (TREND_CONTRIBUTIONS, self.contribution_ops),
                                (IDENTITY_CLAIMS, self.claim_ops),
                                (ERASED_IDS, self.erasure_ops),
                                (OFFSETS, offset_ops)):  # fmt: skip
            if ops:
                self.db[collection].bulk_write(ops, ordered=True, session=self.session)
        if self.reversed:
            # A window left empty by an erasure goes, as if the user had never been counted.
            self.db[TRENDS].delete_many(
                {"_id": {"$in": sorted(self.reversed)}, "views": {"$lte": 0},
                 "purchases": {"$lte": 0}},
                session=self.session,
            )  # fmt: skip
        return self.result
