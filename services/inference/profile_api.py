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

from shared.events import MAX_ID_LENGTH
from shared.mongo import PROFILES
from shared.profile_document import AttributionTouch, MalformedProfile, ProfileDocument


def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _touch(touch: AttributionTouch | None) -> profiles_pb2.Touch | None:
    if touch is None:
        return None
    return profiles_pb2.Touch(
        channel=touch.channel,
        source=touch.source,
        medium=touch.medium,
        campaign=touch.campaign,
        referrer=touch.referrer,
        at=_timestamp(touch.at),
    )


def to_proto(doc: dict[str, Any]) -> profiles_pb2.Profile:
    """The ProfileService message of a stored document; ``MalformedProfile`` if it cannot be read."""
    view = ProfileDocument.decode(doc)
    traits = struct_pb2.Struct()
    traits.update(view.traits)
    profile = profiles_pb2.Profile(
        id=view.id,
        user_id=view.user_id,
        anonymous_ids=view.anonymous_ids,
        traits=traits,
        first_seen=_timestamp(view.first_seen),
        last_seen=_timestamp(view.last_seen),
        event_counts_by_type=view.counts_by_type,
        event_counts_by_name=view.counts_by_name,
        sessions=view.sessions,
        active_days=len(view.active_days),
        recent_items=view.recent_items,
        category_affinity=view.affinity,
        purchased_items=view.purchased_items,
        purchases=view.purchases,
        revenue=view.revenue,
        updated_at=_timestamp(view.updated_at),
        version=view.version,
        first_touch=_touch(view.first_touch),
        last_touch=_touch(view.last_touch),
    )
    if view.rfm is not None:  # scored from the first purchase on; before that the field stays unset
        profile.rfm.CopyFrom(
            profiles_pb2.Rfm(
                recency=view.rfm.recency,
                frequency=view.rfm.frequency,
                monetary=view.rfm.monetary,
                segment=view.rfm.segment,
            )
        )
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
        if len(value) > MAX_ID_LENGTH:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the id is longer than {MAX_ID_LENGTH} characters",
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
        except MalformedProfile as exc:
            await context.abort(grpc.StatusCode.DATA_LOSS, str(exc))
            raise  # abort() raises
