"""Settings of the inference server (``LUMEN_INFERENCE_*``).

Maps and per-model knobs are JSON in the environment, e.g.
``LUMEN_INFERENCE_BATCHING='{"intent-classifier": {"max_batch_size": 32}}'``: batching knobs
live beside each model (config.json, Triton's names); these variables only override them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.model_registry import repository_root
from shared.settings import (
    GcSettings,
    GrpcServerSecuritySettings,
    KafkaSettings,
    LogSettings,
    ModeSettings,
    MongoSettings,
)

DEFAULT_ROUTING = {"out_of_scope": "human-triage", "default": "general-support"}


class BatchingConfig(BaseModel):
    """Triton's dynamic-batching knobs for one model."""

    max_batch_size: int = Field(
        32, ge=0, description="Most rows in one execution; 0 or 1 turns batching off."
    )
    max_queue_delay_us: int = Field(
        1000, ge=0, description="How long the oldest request may wait for a fuller batch (µs)."
    )
    preferred_batch_sizes: list[int] = Field(
        default_factory=lambda: [8, 16, 32],
        description="Dispatch at once when the queue holds one of these many rows.",
    )
    max_concurrent_batches: int = Field(
        2,
        ge=1,
        description="Executions of this model that may run at the same time (Triton's "
        "instance count); each takes one executor thread.",
    )
    max_queue_size: int = Field(
        4096,
        ge=1,
        description="Most requests waiting for an execution of this model; a request "
        "beyond it is refused at once with RESOURCE_EXHAUSTED instead of queueing.",
    )
    inline_max_rows: int = Field(
        0,
        ge=0,
        description="Executions of at most this many rows run on the event loop instead of "
        "an executor thread (0: never). For models whose small executions take a fraction "
        "of a millisecond, where the thread hand-off costs more than the run.",
    )

    @property
    def enabled(self) -> bool:
        return self.max_batch_size > 1


class AssistSettings(BaseSettings):
    """The support assistant: knowledge-base answers for support messages (``LUMEN_ASSIST_*``)."""

    model_config = SettingsConfigDict(env_prefix="LUMEN_ASSIST_", extra="ignore")

    enabled: bool = Field(
        True, description="Suggest replies from the knowledge base (SuggestReply, support.intents)."
    )
    min_confidence: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Below this confidence a message is handed off to a human instead of answered.",
    )
    intent_boost: float = Field(
        0.3,
        ge=0.0,
        description="A passage's similarity gains this times the classifier's probability of "
        "the intents its article is tagged with (chosen on the demo questions' dev split).",
    )
    top_passages: int = Field(3, ge=1, le=20, description="Passages returned with a suggestion.")
    context_turns: int = Field(
        2, ge=0, description="Earlier messages of a conversation kept as context (0: none)."
    )
    context_ttl_seconds: float = Field(
        1800.0, gt=0, description="A conversation's context is forgotten after this long idle."
    )
    context_conversations: int = Field(
        10000, ge=1, description="Most conversations whose context is held (oldest dropped)."
    )
    followup_max_words: int = Field(
        6,
        ge=0,
        description="A message of at most this many words is embedded together with the "
        "conversation's previous messages (a follow-up such as 'and how long?').",
    )
    refresh_seconds: float = Field(
        5.0, gt=0, description="How often the knowledge base in MongoDB is checked for changes."
    )
    collection: str = Field("kb_articles", description="MongoDB collection of the articles.")


def _default_repository() -> Path:
    # LUMEN_INFERENCE_MODEL_REPOSITORY wins (via the field), then the shared variable.
    return repository_root(None)


class LabelSettings(BaseSettings):
    """Collecting agents' labels with their messages' texts for training (``LUMEN_LABELS_*``;
    services/inference/labels.py)."""

    model_config = SettingsConfigDict(env_prefix="LUMEN_LABELS_", extra="ignore")

    enabled: bool = Field(
        True,
        description="Collect support.labels and the texts of support.messages into MongoDB (support_labels, support_messages) for `python -m models train intent --from-labels`.",
    )
    consumer_group: str = Field(
        "lumen-inference-labels", description="Kafka consumer group of the label collector."
    )
    offset_reset: Literal["earliest", "latest"] = Field(
        "earliest",
        description="Where a new consumer group starts reading support.labels and support.messages.",
    )
    message_ttl_days: float = Field(
        14.0,
        gt=0,
        description="How long a support message's text is kept for its label (TTL of support_messages).",
    )


class InferenceSettings(GrpcServerSecuritySettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LUMEN_INFERENCE_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the gRPC and metrics servers bind.")
    grpc_port: int = Field(50052, description="gRPC port (typed APIs, Open Inference Protocol).")
    metrics_port: int = Field(9102, description="Port of the /metrics HTTP endpoint.")
    shutdown_grace_seconds: float = Field(
        10.0, description="On SIGTERM, how long in-flight calls may take to finish."
    )
    max_request_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="Largest gRPC request message accepted; bigger ones get RESOURCE_EXHAUSTED.",
    )
    default_deadline_seconds: float = Field(
        30.0,
        gt=0,
        description="Deadline given to a call that sends none: its queued model work is "
        "dropped with DEADLINE_EXCEEDED after this long.",
    )

    # Models.
    model_repository: Path = Field(
        default_factory=_default_repository,
        description="Registry root <repo>/<model>/<version>/ (falls back to LUMEN_MODEL_REPOSITORY).",
    )
    poll_interval_seconds: float = Field(
        2.0, gt=0, description="How often the registry is scanned for new versions."
    )
    version_pins: dict[str, int] = Field(
        default_factory=dict, description='Serve exactly this version of a model: {"name": 3}.'
    )
    verify_checksums: bool = Field(
        True, description="Refuse a version whose files do not match the sha256 in config.json."
    )
    batching_default: BatchingConfig = Field(
        default_factory=BatchingConfig,
        description="Overrides only: the knobs given here replace, for every model, what its "
        "config.json declares (max_batch_size, dynamic_batching, instance_group) or its task "
        "defaults; the values shown are the built-in defaults of knobs nothing sets.",
    )
    batching: dict[str, BatchingConfig] = Field(
        default_factory=dict,
        description="Overrides only, per model name: the knobs given replace those of the "
        "model's config.json and of batching_default; knobs not given keep them.",
    )
    intra_op_threads: int = Field(
        1,
        ge=1,
        description="onnxruntime threads inside one operator. One per execution, with "
        "executions running side by side, uses the cores better than splitting each operator.",
    )
    inter_op_threads: int = Field(1, ge=1, description="onnxruntime threads across operators.")
    allow_spinning: bool = Field(
        False,
        description="Let onnxruntime's worker threads spin between operators instead of "
        "sleeping: lower latency per run, but they keep the cores busy between runs.",
    )
    executor_threads: int = Field(
        4,
        ge=1,
        description="Threads that run model executions (onnxruntime releases the GIL): the "
        "sum of max_concurrent_batches of models busy at once, so a short recommender "
        "execution never queues behind intent batches.",
    )
    graph_optimization: str = Field(
        "all", description="onnxruntime graph optimisation: disable, basic, extended or all."
    )

    # Typed APIs: which registry models they use.
    recommender_model: str = Field("recommender", description="Model behind Recommend.")
    intent_model: str = Field("intent-classifier", description="Model behind ClassifyIntent.")
    encoder_model: str = Field("text-encoder", description="Encodes SearchItems queries.")
    search_model: str = Field("item-search", description="Ranks the catalogue for a query.")
    max_text_chars: int = Field(2000, ge=1, description="Longest text ClassifyIntent accepts.")
    max_batch_texts: int = Field(256, ge=1, description="Most texts in one ClassifyIntentBatch.")
    profile_timeout_ms: int = Field(
        100, ge=1, description="Recommend degrades to trending when a profile read takes longer."
    )
    profile_failures_to_degrade: int = Field(
        3, ge=1, description="Profile reads failing in a row before Recommend stops trying them."
    )
    mongo_retry_seconds: float = Field(
        2.0, gt=0, description="Then how long Recommend degrades without reading profiles."
    )
    trends_refresh_seconds: float = Field(
        10.0,
        gt=0,
        description="How often the trending list and the catalogue's changed items are re-read.",
    )
    catalogue_full_refresh_seconds: float = Field(
        600.0,
        gt=0,
        description="How often the whole catalogue is re-read (in between, only the items "
        "whose updatedAt changed).",
    )
    live_search_enabled: bool = Field(
        True,
        description="SearchItems ranks the live catalogue (items, embedded on arrival and "
        "followed through its change stream) instead of the search model's fixed item list, "
        "once it holds items.",
    )
    search_exact_max_items: int = Field(
        20_000,
        ge=0,
        description="Up to this many live items a query scores every one (exact); above it an "
        "HNSW graph answers unfiltered queries (recall@10 >= 0.95; docs/benchmarks.md, Search "
        "at scale). Category-filtered queries score that category's items exactly.",
    )
    search_embed_batch_size: int = Field(
        32, ge=1, description="Items embedded in one encoder run by the live search index."
    )
    reason_template: str = Field(
        "because you viewed {title}",
        description="Reason shown with a collaborative item; {title} is the history item "
        "that adds most to its score (its title, else its id).",
    )
    content_reason_template: str = Field(
        "similar to {title}",
        description="Reason shown with an item that had no interactions when the model was "
        "trained (reached through text similarity); {title} as in reason_template.",
    )

    @field_validator("reason_template", "content_reason_template")
    @classmethod
    def _one_title_field(cls, value: str) -> str:
        try:
            value.format(title="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{title}} may be used ({exc!r})") from exc
        return value

    # Event-driven support classification.
    support_consumer_enabled: bool = Field(
        True, description="Classify support.messages and publish to support.intents."
    )
    support_consumer_group: str = Field(
        "lumen-inference-support", description="Kafka consumer group of the support consumer."
    )
    support_offset_reset: Literal["earliest", "latest"] = Field(
        "latest", description="Where a new consumer group starts reading support.messages."
    )
    routing: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ROUTING),
        description="Intent -> support queue; 'out_of_scope' and 'default' are special keys. "
        "When set, its entries override the served intent model's own map (config.json "
        "extra.routing), which overrides the defaults.",
    )

    def routes(self, model_routing: Mapping[str, str] | None = None) -> dict[str, str]:
        """The routing map in force: defaults < the served model's map < LUMEN_INFERENCE_ROUTING."""
        explicit = self.routing if "routing" in self.model_fields_set else {}
        return {**DEFAULT_ROUTING, **(model_routing or {}), **explicit}

    assist: AssistSettings = Field(default_factory=AssistSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    gc: GcSettings = Field(default_factory=GcSettings)
    mode: ModeSettings = Field(default_factory=ModeSettings)

    @field_validator("graph_optimization")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value not in ("disable", "basic", "extended", "all"):
            raise ValueError("graph_optimization must be disable, basic, extended or all")
        return value

    def batching_for(self, model: str, declared: BatchingConfig | None = None) -> BatchingConfig:
        """The model's knobs as it declares them, overlaid by the ones the environment sets
        for every model, then by the ones it sets for this model."""
        overrides = self.batching_default.model_dump(exclude_unset=True)
        own = self.batching.get(model)
        if own is not None:
            overrides.update(own.model_dump(exclude_unset=True))
        return (declared or BatchingConfig()).model_copy(update=overrides)
