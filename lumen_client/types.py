"""Plain, typed results of the client's calls (no protobuf types leak to callers)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Model:
    name: str
    version: str


@dataclass(frozen=True)
class RecommendedItem:
    item_id: str
    title: str
    score: float
    reason: str
    categories: list[str]
    # "collaborative", "content" (an item without interactions when the model was trained,
    # reached through text similarity), "trending", "popular"; "unspecified" from older servers.
    reason_kind: str = "unspecified"


@dataclass(frozen=True)
class Recommendations:
    items: list[RecommendedItem]
    # "personalised", "trending" or "trending_degraded".
    source: str
    model: Model
    recommendation_id: str


@dataclass(frozen=True)
class IntentScore:
    intent: str
    confidence: float


@dataclass(frozen=True)
class IntentPrediction:
    intent: str
    confidence: float
    out_of_scope: bool
    alternatives: list[IntentScore]


@dataclass(frozen=True)
class IntentResult:
    prediction: IntentPrediction
    model: Model


@dataclass(frozen=True)
class IntentBatchResult:
    predictions: list[IntentPrediction]
    model: Model


@dataclass(frozen=True)
class SearchHit:
    item_id: str
    title: str
    score: float
    categories: list[str]


@dataclass(frozen=True)
class SearchResults:
    hits: list[SearchHit]
    model: Model


@dataclass(frozen=True)
class Passage:
    article_id: str
    title: str
    text: str
    score: float
    intents: list[str]


@dataclass(frozen=True)
class SuggestedReply:
    """SuggestReply's answer; ``handoff_reason`` is "" when the reply can be suggested, else
    out_of_scope, low_confidence or no_answer."""

    reply: str
    confidence: float
    handoff: bool
    handoff_reason: str
    article_id: str
    article_title: str
    passages: list[Passage]
    intent: str
    intent_confidence: float
    out_of_scope: bool
    context_messages: int
    model: Model
    encoder: str
    knowledge_base: str


@dataclass(frozen=True)
class Rfm:
    recency: int
    frequency: int
    monetary: int
    segment: str


@dataclass(frozen=True)
class Touch:
    """An acquisition touch: channel, the campaign fields it came with, and when."""

    channel: str
    source: str
    medium: str
    campaign: str
    referrer: str
    at: str | None


@dataclass(frozen=True)
class Profile:
    id: str
    user_id: str
    anonymous_ids: list[str]
    traits: dict[str, Any]
    first_seen: str | None
    last_seen: str | None
    event_counts_by_type: dict[str, int]
    event_counts_by_name: dict[str, int]
    sessions: int
    active_days: int
    recent_items: list[str]
    category_affinity: dict[str, float]
    purchased_items: list[str]
    purchases: int
    revenue: float
    rfm: Rfm | None
    updated_at: str | None
    version: int
    first_touch: Touch | None = None
    last_touch: Touch | None = None


@dataclass(frozen=True)
class EventError:
    index: int
    reason: str
    field: str
    message: str


@dataclass(frozen=True)
class PublishResult:
    accepted: int
    duplicates: int
    errors: list[EventError] = field(default_factory=list)


def to_dict(result: Any) -> dict[str, Any]:
    """A JSON-ready dict of any result above."""
    return asdict(result)
