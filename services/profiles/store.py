"""Applies one batch of ``events.raw`` records to MongoDB, exactly once.

Everything a batch changes -- profiles, items, trend windows, trend contributions -- and the
highest applied Kafka offset of each of its partitions are written in ONE MongoDB transaction.
A record whose offset is not above the stored offset of its partition was applied before and
is skipped, so a replay (restart from an older offset, a crash between the MongoDB commit and
the Kafka offset commit, a rebalance) has no effect. Two workers that briefly hold the same
partition during a rebalance both write its offset document; MongoDB aborts one of them with a
write conflict, and the retry re-reads the offsets and skips what the other applied.

The writer of a batch: reads what it touches (the partitions' offsets, the profiles of its
users and of the anonymous ids it mentions, the items whose categories it needs, the hourly
trending budgets), has ``services.profiles.planner`` turn that and the events into operations,
and writes them with one ``bulk_write`` per collection.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, InsertOne, MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import CollectionInvalid, ConnectionFailure, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from services.profiles import metrics
from services.profiles.identity import ERASED_IDS, IDENTITY_CLAIMS
from services.profiles.limits import Limits
from services.profiles.parsing import ParsedEvent, PoisonEvent, parse_record
from services.profiles.planner import (
    INTERACTIONS,
    WRITE_ORDER,
    Plan,
    Policy,
    Slot,
    Snapshot,
    batch_ids,
    likely_trend_slots,
    offset_id,
    offset_writes,
    plan_batch,
    stored_links,
    suppression_candidates,
)
from services.profiles.result import BatchResult, Record
from services.profiles.settings import ProfilesSettings
from services.profiles.trends import Retention, contribution_id
from services.profiles.updates import Rules
from shared import interactions as stored
from shared.currency import Rates
from shared.mongo import ITEMS, OFFSETS, PROFILES, database, ensure_indexes, mongo_client
from shared.tracing import observe_with_exemplar
from shared.trends import TREND_CONTRIBUTIONS, TRENDS

__all__ = ["BatchResult", "ProfileStore", "Record", "ensure_schema"]

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
# Interaction ids looked up per query (an event may carry 100 products: a batch, 10^6 ids).
LOOKUP_CHUNK = 20_000


# Storage of the profiles collection and of its indexes. zstd: profiles are read by key, so
# its extra CPU over the default snappy is small, and MongoDB leaves index pages uncompressed
# unless asked. 1 KB allocation units: a compressed index page no longer rounds up to a
# multiple of 4 KB (this halved the index files; docs/profiles.md, "Storage").
PROFILE_STORAGE = {"wiredTiger": {"configString": "block_compressor=zstd,allocation_size=1KB"}}


def ensure_schema(db: Database, interactions_retention_days: float | None = None) -> None:
    """Indexes the updater and its readers rely on (idempotent; run at start-up). A new
    profiles collection is created with ``PROFILE_STORAGE`` for itself and its indexes; an
    existing collection is kept as it is. ``interactions_retention_days``: the interaction
    store's TTL (None: ``LUMEN_INTERACTIONS_RETENTION_DAYS``)."""
    with contextlib.suppress(CollectionInvalid):
        db.create_collection(
            PROFILES,
            storageEngine=PROFILE_STORAGE,
            indexOptionDefaults={"storageEngine": PROFILE_STORAGE},
        )
    ensure_indexes(db, interactions_retention_days)
    db[TRENDS].create_indexes(
        [
            IndexModel(
                [("window", ASCENDING), ("kind", ASCENDING), ("start", ASCENDING)],
                name="window_kind_start",
            ),
            IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="ttl"),
        ]
    )
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
    """The writer of the worker's batches: one MongoDB transaction per batch."""

    def __init__(
        self, client: MongoClient, db: Database, policy: Policy, item_cache_seconds: float = 30.0
    ) -> None:
        self.client = client
        self.db = db
        self.policy = policy
        self.items = ItemCache(item_cache_seconds)

    @classmethod
    def configured(cls, settings: ProfilesSettings) -> ProfileStore:
        """The store the worker runs, with its client and rules from ``settings``."""
        client = mongo_client(settings.mongo)
        policy = Policy(
            rules=Rules(
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
                currency=Rates.of(settings.currency),
            ),
            retention=Retention(
                minute_seconds=settings.trend_minute_retention_hours * 3600,
                hour_seconds=settings.trend_hour_retention_hours * 3600,
            ),
            hash_key=settings.erasure_hash_key.get_secret_value().encode(),
            trend_events_per_hour=settings.max_trend_events_per_hour,
        )
        db = database(client, settings.mongo)
        return cls(client, db, policy, item_cache_seconds=settings.item_cache_seconds)

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
                    result = _BatchWrite(self, session, now).run(records)
                break
            except PyMongoError as exc:
                conflict = exc.has_error_label("TransientTransactionError") and not isinstance(
                    exc, ConnectionFailure
                )
                if not conflict or attempt == CONFLICT_ATTEMPTS:
                    raise
        observe_with_exemplar(metrics.MONGO_WRITE_SECONDS, time.perf_counter() - started)
        return result


class _BatchWrite:
    """One attempt at applying a batch inside a transaction (re-created on retry): reads what
    the batch touches, plans it (``services.profiles.planner``) and writes the plan."""

    def __init__(self, store: ProfileStore, session: ClientSession, now: datetime) -> None:
        self.store = store
        self.db = store.db
        self.session = session
        self.now = now

    def _find(self, collection: str, query: dict[str, Any], *fields: str) -> Any:
        projection = dict.fromkeys(fields, 1) if fields else None
        return self.db[collection].find(query, projection, session=self.session)

    def _fresh(self, records: list[Record]) -> list[Record]:
        ids = list({offset_id(r.topic, r.partition) for r in records})
        applied = {d["_id"]: int(d["offset"]) for d in self._find(OFFSETS, {"_id": {"$in": ids}})}
        return [r for r in records if r.offset > applied.get(offset_id(r.topic, r.partition), -1)]

    def _read(self, events: list[ParsedEvent]) -> Snapshot:
        """The stored state the batch's plan builds on, in one query per collection."""
        snapshot = Snapshot()
        # Which of the batch's ids are on the suppression list (each id hashed once).
        by_hash = {self.store.policy.hash(v): v for v in suppression_candidates(events)}
        if by_hash:
            found = self._find(ERASED_IDS, {"_id": {"$in": list(by_hash)}}, "_id")
            snapshot.erased = {by_hash[d["_id"]] for d in found}
        keys, anonymous = batch_ids(events)
        if keys:
            query = {
                "$or": [
                    {"_id": {"$in": list(keys | anonymous)}},
                    {"anonymousIds": {"$in": list(anonymous)}},
                ]
            }
            snapshot.profiles = {doc["_id"]: doc for doc in self._find(PROFILES, query)}
        links = stored_links(snapshot.profiles, anonymous)
        slots = likely_trend_slots(events, links, self.store.policy, self.now)
        if slots:
            self._read_trend_counts(snapshot, slots)
        self._read_categories(snapshot, events)
        return snapshot

    def _read_trend_counts(self, snapshot: Snapshot, slots: set[Slot]) -> None:
        """How many interactions earlier batches counted in trending, for (user, hour) slots."""
        snapshot.trend_slots_read |= slots
        by_id = {contribution_id(*slot): slot for slot in slots}
        query = {"_id": {"$in": list(by_id)}, "n": {"$exists": True}}
        for doc in self._find(TREND_CONTRIBUTIONS, query, "n"):
            snapshot.trend_counts[by_id[doc["_id"]]] = int(doc["n"])

    def _read_contributions(self, snapshot: Snapshot, users: set[str]) -> None:
        for user in users:
            snapshot.contributions.setdefault(user, [])
        for doc in self._find(TREND_CONTRIBUTIONS, {"user": {"$in": sorted(users)}}):
            snapshot.contributions[doc["user"]].append(doc)

    def _read_categories(self, snapshot: Snapshot, events: list[ParsedEvent]) -> None:
        wanted = {i.item_id for e in events for i in e.interactions if i.categories is None}
        cache = self.store.items
        missing = []
        for item_id in wanted:
            cached = cache.get(item_id)
            if cached is None:
                missing.append(item_id)
            else:
                snapshot.categories[item_id] = cached
        if not missing:
            return
        found = {
            d["_id"]: tuple(d.get("categories", []))
            for d in self._find(ITEMS, {"_id": {"$in": missing}}, "categories")
        }
        for item_id in missing:
            snapshot.categories[item_id] = found.get(item_id, ())
            cache.put(item_id, snapshot.categories[item_id])

    def _unstored(self, ops: list[Any]) -> list[Any]:
        """The interaction store's operations without the inserts of interactions stored
        already (one query). Cheaper than an upsert per interaction: the store's writes are
        most of a batch's (docs/profiles.md, "Interaction store")."""
        ids = [op._doc[stored.ID] for op in ops if isinstance(op, InsertOne)]
        if not ids:
            return ops
        found: set[str] = set()
        for start in range(0, len(ids), LOOKUP_CHUNK):  # a query stays far below 16 MB
            chunk = ids[start : start + LOOKUP_CHUNK]
            found.update(d["_id"] for d in self._find(INTERACTIONS, {"_id": {"$in": chunk}}, "_id"))
        if not found:
            return ops
        return [op for op in ops if not (isinstance(op, InsertOne) and op._doc["_id"] in found)]

    def _plan(self, events: list[ParsedEvent]) -> Plan:
        snapshot = self._read(events)
        plan = plan_batch(events, snapshot, self.store.policy, self.now)
        # Each pass reads only what no earlier pass read, so this ends (after one more pass:
        # these reads do not change how the batch's ids are linked).
        while plan.needs:
            if plan.needs.trend_slots:
                self._read_trend_counts(snapshot, plan.needs.trend_slots)
            if plan.needs.contributions:
                self._read_contributions(snapshot, plan.needs.contributions)
            plan = plan_batch(events, snapshot, self.store.policy, self.now)
        return plan

    def run(self, records: list[Record]) -> BatchResult:
        fresh = self._fresh(records)
        parsed: list[ParsedEvent] = []
        poison: list[tuple[Record, PoisonEvent]] = []
        for record in fresh:
            if record.failure is not None:
                poison.append((record, PoisonEvent(record.failure_reason, record.failure)))
                continue
            try:
                event = parse_record(record.value)
            except PoisonEvent as exc:
                poison.append((record, exc))
                continue
            if event.message_id is None:
                # The record's place in the topic names its interactions instead (stable
                # across replays of the same topic).
                event = replace(
                    event, message_id=f"{record.topic}/{record.partition}/{record.offset}"
                )
            parsed.append(event)
        plan = self._plan(parsed)
        for item_id, categories in plan.catalogue.items():
            self.store.items.put(item_id, categories)
        plan.writes[INTERACTIONS] = self._unstored(plan.writes[INTERACTIONS])
        writes = [(name, plan.writes[name]) for name in WRITE_ORDER]
        writes.append((OFFSETS, offset_writes(records, self.now)))
        for collection, ops in writes:
            if ops:
                self.db[collection].bulk_write(ops, ordered=True, session=self.session)
        if plan.emptied_trends:
            # A window left empty by an erasure goes, as if the user had never been counted.
            empty = {"_id": {"$in": plan.emptied_trends}, "views": {"$lte": 0}}
            self.db[TRENDS].delete_many({**empty, "purchases": {"$lte": 0}}, session=self.session)
        result = plan.result
        result.skipped = len(records) - len(fresh)
        result.poison = poison
        return result
