"""Labelled support messages in MongoDB: what ``support.labels`` accumulates and what
``python -m models train intent --from-labels`` reads.

Two collections, both keyed by (conversation id, message id) so a replayed record rewrites
the same document instead of counting twice:

- ``support_messages``: the text of every recent ``support.messages`` message, kept for a
  bounded time (a TTL index on ``receivedAt``), only to join labels with their texts.
- ``support_labels``: one document per labelled message: its final label (the latest by
  ``labelledAt``), the agent, the time and, once the message has been seen, its text. A
  label may arrive before its message (two topics, no order between them): the message's
  arrival fills the text in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, OperationFailure

from shared.messages import ExternalId
from shared.timestamps import parse_iso

MESSAGES = "support_messages"
LABELS = "support_labels"
DUPLICATE_KEY = 11000
OOS = "oos"


def key(conversation_id: ExternalId, message_id: ExternalId) -> dict[str, str | None]:
    """The ``_id`` of a message's documents (ids as strings: 7 and "7" are one message)."""
    return {
        "c": None if conversation_id is None else str(conversation_id),
        "m": str(message_id),
    }


@dataclass(frozen=True)
class SeenMessage:
    conversation_id: ExternalId
    message_id: ExternalId
    text: str


@dataclass(frozen=True)
class Label:
    conversation_id: ExternalId
    message_id: ExternalId
    label: str  # "oos" for out-of-scope
    agent_id: str | None
    labelled_at: datetime


def normalise(label: str | None) -> str:
    value = (label or "").strip()
    return OOS if value.lower() in ("", OOS) else value


def labelled_time(text: str | None, fallback: datetime) -> datetime:
    """``labelledAt`` of a record, else when it was read (a bad value counts as missing)."""
    if text:
        try:
            return parse_iso(text)
        except ValueError:
            pass
    return fallback


def ensure_indexes(db: Database, message_ttl_seconds: int) -> None:
    """The TTL index that bounds ``support_messages`` (its expiry changed in place when the
    setting changes) and the time index ``--from-labels`` windows on."""
    index = IndexModel(
        [("receivedAt", ASCENDING)], name="receivedAt_ttl", expireAfterSeconds=message_ttl_seconds
    )
    try:
        db[MESSAGES].create_indexes([index])
    except OperationFailure:  # exists with another expiry
        db.command(
            "collMod",
            MESSAGES,
            index={"name": "receivedAt_ttl", "expireAfterSeconds": message_ttl_seconds},
        )
    db[LABELS].create_indexes([IndexModel([("labelledAt", ASCENDING)], name="labelledAt")])


def record_messages(db: Database, messages: Sequence[SeenMessage], now: datetime) -> None:
    """Keep the messages' texts and give them to labels that were waiting for them."""
    if not messages:
        return
    db[MESSAGES].bulk_write(
        [
            UpdateOne(
                {"_id": key(m.conversation_id, m.message_id)},
                {"$set": {"text": m.text, "receivedAt": now}},
                upsert=True,
            )
            for m in messages
        ],
        ordered=False,
    )
    db[LABELS].bulk_write(
        [
            UpdateOne(
                {"_id": key(m.conversation_id, m.message_id), "text": {"$exists": False}},
                {"$set": {"text": m.text}},
            )
            for m in messages
        ],
        ordered=False,
    )


def record_labels(db: Database, labels: Sequence[Label], now: datetime) -> None:
    """Upsert each message's label unless a later one is stored; add the text when known."""
    if not labels:
        return
    latest: dict[tuple[str | None, str], Label] = {}
    for label in labels:  # one write per message: the batch's latest label
        k = key(label.conversation_id, label.message_id)
        slot = (k["c"], str(k["m"]))
        if slot not in latest or label.labelled_at >= latest[slot].labelled_at:
            latest[slot] = label
    keys = [key(label.conversation_id, label.message_id) for label in latest.values()]
    texts = {
        (doc["_id"]["c"], doc["_id"]["m"]): doc["text"]
        for doc in db[MESSAGES].find({"_id": {"$in": keys}}, {"text": 1})
    }
    writes = []
    for slot, label in latest.items():
        fields: dict[str, Any] = {
            "conversationId": label.conversation_id,
            "messageId": label.message_id,
            "label": normalise(label.label),
            "agentId": label.agent_id,
            "labelledAt": label.labelled_at,
            "updatedAt": now,
        }
        if slot in texts:
            fields["text"] = texts[slot]
        k = key(label.conversation_id, label.message_id)
        writes.append(
            UpdateOne(
                # Matches when absent (then inserted) or older; a newer stored label makes the
                # upsert collide on _id, which leaves it as it is.
                {"_id": k, "labelledAt": {"$lte": label.labelled_at}},
                {"$set": fields},
                upsert=True,
            )
        )
    try:
        db[LABELS].bulk_write(writes, ordered=False)
    except BulkWriteError as exc:
        other = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
        if other or exc.details.get("writeConcernErrors"):
            raise


@dataclass
class StoredLabels:
    texts: list[str]
    labels: list[str]
    without_text: int  # labels whose message text was never seen (or has expired unseen)
    first: datetime | None
    last: datetime | None


def read_labels(db: Database, since: datetime | None = None) -> StoredLabels:
    """Labelled messages with their texts, oldest first; ``since`` windows on ``labelledAt``."""
    query: dict[str, Any] = {} if since is None else {"labelledAt": {"$gte": since}}
    texts, labels, times = [], [], []
    without = 0
    for doc in (
        db[LABELS]
        .find(query, {"text": 1, "label": 1, "labelledAt": 1})
        .sort("labelledAt", ASCENDING)
    ):
        if not doc.get("text"):
            without += 1
            continue
        texts.append(str(doc["text"]))
        labels.append(normalise(doc.get("label")))
        moment = doc.get("labelledAt")
        if isinstance(moment, datetime):
            times.append(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return StoredLabels(
        texts, labels, without, min(times) if times else None, max(times) if times else None
    )
