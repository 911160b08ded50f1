"""ProfileService: reads the real-time profiles that the profile updater writes."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import grpc
from google.protobuf import struct_pb2, timestamp_pb2
from lumen.v1 import profiles_pb2, profiles_pb2_grpc
from pymongo.database import Database
from pymongo.errors import PyMongoError

from services.profiles.field_names import unescape
from shared.mongo import PROFILES
from shared.packed_ids import unpack


def _timestamp(value: Any) -> timestamp_pb2.Timestamp | None:
    if not isinstance(value, datetime):
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


class UndecodableProfile(ValueError):
    """A stored field that Lumen's own writer would never leave unreadable."""


def _item_ids(doc: dict[str, Any], field: str) -> list[str]:
    try:
        return unpack(doc.get(field))
    except (ValueError, TypeError) as exc:
        raise UndecodableProfile(
            f"{field} of profile {doc.get('_id')!r} cannot be decoded: {exc}"
        ) from None


def to_proto(doc: dict[str, Any]) -> profiles_pb2.Profile:
    counts = doc.get("counts", {})
    rfm = doc.get("rfm") or {}
    traits = struct_pb2.Struct()
    traits.update(doc.get("traits") or {})
    profile = profiles_pb2.Profile(
        id=str(doc["_id"]),
        user_id=doc.get("userId") or "",
        anonymous_ids=list(doc.get("anonymousIds", [])),
        traits=traits,
        first_seen=_timestamp(doc.get("firstSeen")),
        last_seen=_timestamp(doc.get("lastSeen")),
        event_counts_by_type={unescape(k): int(v) for k, v in counts.get("byType", {}).items()},
        event_counts_by_name={unescape(k): int(v) for k, v in counts.get("byName", {}).items()},
        sessions=int(doc.get("sessions", {}).get("count", 0))
        if isinstance(doc.get("sessions"), dict)
        else 0,
        active_days=len(doc.get("activeDays", [])),
        recent_items=_item_ids(doc, "recentItems"),
        category_affinity={unescape(k): float(v) for k, v in doc.get("affinity", {}).items()},
        purchased_items=_item_ids(doc, "purchasedItems"),
        purchases=int(doc.get("purchases", 0)),
        revenue=float(doc.get("revenue", 0.0)),
        updated_at=_timestamp(doc.get("updatedAt")),
        version=int(doc.get("version", 0)),
    )
    if rfm:  # scored from the first purchase on; before that the field stays unset
        profile.rfm.CopyFrom(profiles_pb2.Rfm(
            recency=int(rfm.get("r", 0)), frequency=int(rfm.get("f", 0)),
            monetary=int(rfm.get("m", 0)), segment=str(rfm.get("segment", "")),
        ))  # fmt: skip
    return profile


class ProfileService(profiles_pb2_grpc.ProfileServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def GetProfile(
        self, request: profiles_pb2.GetProfileRequest, context: grpc.aio.ServicerContext
    ) -> profiles_pb2.GetProfileResponse:
        key = request.WhichOneof("key")
        value = getattr(request, key) if key else ""
        if not value:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "user_id or anonymous_id is required"
            )
        if len(value) > 256:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the id is longer than 256 characters"
            )
        query = (
            {"_id": value}
            if key == "user_id"
            else {"$or": [{"_id": value}, {"anonymousIds": value}]}
        )
        try:
            doc = await asyncio.to_thread(self.db[PROFILES].find_one, query)
        except PyMongoError:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the profile store is unavailable")
        if doc is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no profile for {key} {value!r}")
        assert doc is not None  # abort() raises
        try:
            return profiles_pb2.GetProfileResponse(profile=to_proto(doc))
        except UndecodableProfile as exc:
            await context.abort(grpc.StatusCode.DATA_LOSS, str(exc))
            raise  # abort() raises
