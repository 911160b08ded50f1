"""The support assistant (transport-neutral): for a support message, its intent, the best
knowledge-base passages and a suggested reply, or a hand-off to a human.

The reply is the best passage itself, chosen by retrieval: no generative model writes text,
so every reply is one a person wrote and reviewed in the knowledge base. Retrieval embeds
the message with the served text encoder and scores it against every passage in memory
(cosine); a passage gains ``intent_boost`` times the classifier's probability of the intents
its article is tagged with (the top three), so a sure prediction promotes its articles and an
unsure one moves little.
Hand-off: the classifier routes the message out of scope, the knowledge base is empty, or the
confidence (the best passage's boosted score, at most 1) is below ``min_confidence``.

Context: the last ``context_turns`` messages of each conversation are held in memory (bounded,
forgotten after ``context_ttl_seconds`` idle). A short follow-up ("and how long does it
take?") is classified and embedded together with them; a longer message stands alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymongo.collection import Collection

from services.inference import metrics
from services.inference.errors import InvalidArgument, Unavailable
from services.inference.intent import IntentClassifier, IntentResult, check_text
from services.inference.knowledge_base import (
    EMPTY_INDEX,
    PassageIndex,
    build_index,
    embedded_text,
    fingerprint,
    to_bytes,
)
from services.inference.repository import LoadedModel, ModelRepository
from services.inference.runtimes import TextEmbedding
from services.inference.settings import AssistSettings, InferenceSettings
from shared.messages import HandoffReason, SuggestedPassage, Suggestion

log = logging.getLogger(__name__)

HANDOFF_REPLY = "Thanks for your message. I am passing it to a colleague who will answer shortly."
MAX_CONTEXT_MESSAGES = 10  # most earlier messages a SuggestReply caller may send


class ConversationMemory:
    """The last messages of recent conversations: at most ``capacity`` conversations (the
    least recently active dropped first), each forgotten ``ttl`` seconds after its last one."""

    def __init__(
        self,
        turns: int,
        ttl: float,
        capacity: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.turns = turns
        self.ttl = ttl
        self.capacity = capacity
        self.clock = clock
        self._conversations: OrderedDict[str, tuple[float, deque[str]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._conversations)

    def context(self, conversation: str) -> list[str]:
        entry = self._conversations.get(conversation)
        if entry is None:
            return []
        if self.clock() - entry[0] > self.ttl:
            del self._conversations[conversation]
            return []
        return list(entry[1])

    def remember(self, conversation: str, text: str) -> None:
        if self.turns == 0:
            return
        now = self.clock()
        entry = self._conversations.pop(conversation, None)
        messages = entry[1] if entry and now - entry[0] <= self.ttl else deque(maxlen=self.turns)
        messages.append(text)
        self._conversations[conversation] = (now, messages)
        while len(self._conversations) > self.capacity:
            self._conversations.popitem(last=False)


def query_text(text: str, context: list[str], followup_max_words: int) -> tuple[str, int]:
    """(what is classified and embedded, how many earlier messages it includes)."""
    if context and len(text.split()) <= followup_max_words:
        return " ".join([*context, text]), len(context)
    return text, 0


@dataclass(frozen=True)
class Hit:
    article_id: str
    title: str
    text: str
    score: float  # cosine similarity plus the intent boost
    intents: frozenset[str]


@dataclass(frozen=True)
class Answer:
    intent: IntentResult
    reply: str
    confidence: float
    handoff_reason: HandoffReason | None
    hits: list[Hit]  # best passage of each article, best first
    context_messages: int  # earlier messages classified and embedded with this one
    earlier_messages: int  # earlier messages of the conversation held (0: its first)
    knowledge_base: str
    encoder: str

    @property
    def handoff(self) -> bool:
        return self.handoff_reason is not None

    def suggestion(self) -> Suggestion:
        best = self.hits[0] if self.hits and not self.handoff else None
        return Suggestion(
            text=self.reply,
            confidence=round(self.confidence, 6),
            handoff=self.handoff,
            handoff_reason=self.handoff_reason,
            article_id=best.article_id if best else None,
            article_title=best.title if best else None,
            passages=[
                SuggestedPassage(article_id=h.article_id, title=h.title, score=round(h.score, 6))
                for h in self.hits
            ],
            context_messages=self.context_messages,
            knowledge_base=self.knowledge_base,
            encoder=self.encoder,
        )


def rank(
    index: PassageIndex,
    query: np.ndarray,
    intent: IntentResult,
    boost: float,
    top: int,
) -> list[Hit]:
    """The best passage of each of the ``top`` best articles for one query vector."""
    if index.empty:
        return []
    scores = index.scores(query[None, :])[0]
    if boost and not intent.out_of_scope:
        # Soft: each article gains the classifier's probability of the intents it is tagged
        # with (among the top alternatives), so an unsure prediction moves little.
        weights = dict(intent.alternatives)
        tagged = np.fromiter(
            (sum(weights.get(tag, 0.0) for tag in tags) for tags in index.intents),
            np.float32,
            len(scores),
        )
        scores = scores + boost * tagged
    hits: list[Hit] = []
    seen: set[str] = set()
    for row in np.argsort(-scores, kind="stable"):
        article = index.article_ids[row]
        if article in seen:
            continue
        seen.add(article)
        hits.append(
            Hit(
                article, index.titles[row], index.texts[row], float(scores[row]), index.intents[row]
            )
        )
        if len(hits) == top:
            break
    return hits


def decide(
    intent: IntentResult, hits: list[Hit], min_confidence: float
) -> tuple[str, float, HandoffReason | None]:
    """(reply, confidence, hand-off reason or None)."""
    confidence = min(1.0, max(0.0, hits[0].score)) if hits else 0.0
    if intent.out_of_scope:
        return HANDOFF_REPLY, confidence, "out_of_scope"
    if not hits:
        return HANDOFF_REPLY, 0.0, "no_answer"
    if confidence < min_confidence:
        return HANDOFF_REPLY, confidence, "low_confidence"
    return hits[0].text, confidence, None


class KnowledgeBaseCache:
    """The passages of ``kb_articles`` in memory, re-read when an article or the served
    encoder changes; passages stored with another encoder are re-embedded here and written
    back (only if the article did not change meanwhile)."""

    def __init__(
        self,
        collection: Collection[dict[str, Any]],
        repository: ModelRepository,
        settings: InferenceSettings,
    ) -> None:
        self.collection = collection
        self.repository = repository
        self.settings = settings
        self.index: PassageIndex = EMPTY_INDEX
        self.encoder_id = ""
        self._seen: tuple[str, str] | None = None  # (articles' fingerprint, encoder sha)

    def encoder(self) -> tuple[LoadedModel, TextEmbedding]:
        return self.repository.serving(self.settings.encoder_model, TextEmbedding)

    async def embed(self, texts: list[str], deadline: float | None = None) -> np.ndarray:
        encoder, runtime = self.encoder()
        tokenizer = encoder.extras.tokenizer
        if tokenizer is None:
            raise Unavailable(f"{encoder.name} version {encoder.version} has no tokenizer")
        size = max(1, encoder.batcher.max_rows if encoder.batcher else 32)
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        outputs = await asyncio.gather(
            *(encoder.infer(runtime.encode(encoder.extras, chunk), deadline) for chunk in chunks)
        )
        return np.concatenate([runtime.decode(encoder.roles, out) for out in outputs], axis=0)

    async def refresh(self) -> bool:
        """Re-read the articles if anything changed; True when the index was rebuilt."""
        encoder, _ = self.encoder()
        sha = encoder.config.sha256 or f"{encoder.name}:{encoder.version}"
        heads = await asyncio.to_thread(
            lambda: list(self.collection.find({}, {"contentSha": 1, "encoder.sha256": 1}))
        )
        seen = (fingerprint(heads), sha)
        if seen == self._seen:
            return False
        docs = await asyncio.to_thread(lambda: list(self.collection.find({})))
        dim = 0
        for doc in docs:
            if (doc.get("encoder") or {}).get("sha256") != sha:
                await self._reembed(doc, encoder)
            if not dim and doc.get("passages"):
                dim = len(doc["passages"][0]["embedding"]) // 4
        self.index = build_index(docs, dim) if dim else EMPTY_INDEX
        self.encoder_id = f"{encoder.name}:{encoder.version}"
        self._seen = (fingerprint(docs), sha)
        metrics.ASSIST_KB_PASSAGES.set(len(self.index.article_ids))
        log.info(
            "knowledge base loaded",
            extra={
                "fields": {
                    "articles": len(docs),
                    "passages": len(self.index.article_ids),
                    "digest": self.index.digest,
                    "encoder": self.encoder_id,
                }
            },
        )
        return True

    async def _reembed(self, doc: dict[str, Any], encoder: LoadedModel) -> None:
        passages = doc.get("passages") or []
        if passages:
            title = str(doc.get("title", ""))
            vectors = await self.embed([embedded_text(title, p["text"]) for p in passages])
            for passage, vector in zip(passages, vectors, strict=True):
                passage["embedding"] = to_bytes(vector)
        doc["encoder"] = {
            "name": encoder.name,
            "version": encoder.version,
            "sha256": encoder.config.sha256 or f"{encoder.name}:{encoder.version}",
        }
        update = {"$set": {"passages": passages, "encoder": doc["encoder"]}}
        await asyncio.to_thread(
            self.collection.update_one,
            {"_id": doc["_id"], "contentSha": doc.get("contentSha")},
            update,
        )
        log.info(
            "knowledge-base article re-embedded for the served encoder",
            extra={"fields": {"article": doc["_id"], "encoder": doc["encoder"]}},
        )

    async def refresh_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh()
            except Unavailable as exc:
                log.warning("knowledge base not loaded: %s", exc)
            except Exception:
                log.exception("knowledge base refresh failed; keeping the passages held")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.assist.refresh_seconds)


@dataclass(frozen=True)
class AssistRequest:
    text: str
    conversation_id: str = ""
    context: list[str] | None = None  # earlier messages from the caller; None: the memory's


class Assistant:
    def __init__(
        self,
        classifier: IntentClassifier,
        knowledge_base: KnowledgeBaseCache,
        settings: InferenceSettings,
    ) -> None:
        self.classifier = classifier
        self.knowledge_base = knowledge_base
        self.settings = settings
        self.assist: AssistSettings = settings.assist
        self.memory = ConversationMemory(
            self.assist.context_turns,
            self.assist.context_ttl_seconds,
            self.assist.context_conversations,
        )

    def check(self, request: AssistRequest) -> None:
        check_text(request.text, self.settings.max_text_chars)
        context = request.context or []
        if len(context) > MAX_CONTEXT_MESSAGES:
            raise InvalidArgument(
                f"at most {MAX_CONTEXT_MESSAGES} context messages ({len(context)} sent)"
            )
        for i, earlier in enumerate(context):
            check_text(earlier, self.settings.max_text_chars, f"context[{i}]")

    async def answer(
        self, requests: list[AssistRequest], deadline: float | None = None
    ) -> tuple[list[Answer], LoadedModel]:
        """One answer per request, in order; a conversation's earlier requests of the same
        call are context for its later ones."""
        for request in requests:
            self.check(request)
        queries: list[tuple[str, int]] = []
        held: list[int] = []
        turns = self.assist.context_turns
        pending: dict[str, list[str]] = {}  # this call's messages, remembered once answered
        for request in requests:
            conversation = request.conversation_id
            if request.context is not None:
                context = request.context
            elif conversation:
                context = self.memory.context(conversation) + pending.get(conversation, [])
            else:
                context = []
            context = context[-turns:] if turns else []
            held.append(len(context))
            queries.append(query_text(request.text, context, self.assist.followup_max_words))
            if conversation:
                pending.setdefault(conversation, []).append(request.text)
        texts = [q for q, _ in queries]
        results, model = await self.classifier.classify(texts, 3, deadline)
        index = self.knowledge_base.index
        vectors = await self.knowledge_base.embed(texts, deadline) if not index.empty else None
        answers = []
        for i, ((_, used), result) in enumerate(zip(queries, results, strict=True)):
            hits = (
                rank(index, vectors[i], result, self.assist.intent_boost, self.assist.top_passages)
                if vectors is not None
                else []
            )
            reply, confidence, reason = decide(result, hits, self.assist.min_confidence)
            answers.append(
                Answer(
                    result,
                    reply,
                    confidence,
                    reason,
                    hits,
                    used,
                    held[i],
                    index.digest,
                    self.knowledge_base.encoder_id,
                )
            )
        for conversation, texts_sent in pending.items():
            for text in texts_sent:
                self.memory.remember(conversation, text)
        return answers, model
