"""Keeps the live search index equal to the catalogue (``items``) as it changes.

On start (and after an error it cannot resume from, or when the served text encoder
changes) it resyncs: reads the live catalogue and the vectors cached in ``item_vectors``,
embeds the items whose vector is missing or stale, writes those back, and swaps in a new
index. Then it follows the collection's change stream: an upsert is embedded and
searchable within seconds, a removal (``removed: true`` or a deleted document) leaves the
index at once.

Two tasks: the reader follows the change stream and queues changes; the applier drains the
queue in batches (one encoder run for many upserts) and is the only writer of the index.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from services.inference import metrics
from services.inference.catalogue_index import CatalogueIndex, IndexedItem, build
from services.inference.errors import InferenceError
from services.inference.item_vectors import CachedVector, VectorCache, text_hash
from services.inference.repository import LoadedModel, ModelRepository
from services.inference.runtimes import SemanticSearch, TextEmbedding
from services.inference.settings import InferenceSettings
from services.inference.spans import untraced
from shared.catalogue import COLLECTION, LIVE, CatalogueItem

log = logging.getLogger(__name__)

ITEM_FIELDS = {"title": 1, "categories": 1, "description": 1, "removed": 1, "updatedAt": 1}
MAX_BACKOFF_SECONDS = 30.0
ENCODER_CHECK_SECONDS = 2.0
CACHE_SCAN_ITEMS = 10_000


@dataclass
class LiveCatalogue:
    """What SearchItems reads: the current index (None until the first load) and the
    sha256 of the encoder its vectors came from."""

    index: CatalogueIndex | None = None
    encoder: str = ""

    def searchable(self, encoder: str) -> CatalogueIndex | None:
        """The index, when it holds items embedded by ``encoder`` (the one serving queries):
        right after a new encoder version, until the index is re-embedded with it, its
        vectors and the queries' would not be comparable."""
        index = self.index
        if index is None or not len(index) or encoder != self.encoder:
            return None
        return index


@dataclass(frozen=True)
class _Resync:
    reason: str


@dataclass(frozen=True)
class _Change:
    item_id: str
    document: Mapping[str, Any] | None  # None: the item is gone


class CatalogueWatcher:
    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        repository: ModelRepository,
        settings: InferenceSettings,
        live: LiveCatalogue,
    ) -> None:
        self.items = db[COLLECTION]
        self.cache = VectorCache(db)
        self.repository = repository
        self.settings = settings
        self.live = live
        self.queue: asyncio.Queue[_Resync | _Change] = asyncio.Queue()

    async def run(self, stop: asyncio.Event) -> None:
        with untraced():  # background work: the tasks copy this context
            reader = asyncio.create_task(self._read_forever(stop), name="catalogue-reader")
            applier = asyncio.create_task(self._apply_forever(stop), name="catalogue-applier")
        await stop.wait()
        for task in (reader, applier):
            task.cancel()
        await asyncio.gather(reader, applier, return_exceptions=True)

    # -- the encoder ----------------------------------------------------------------

    def _encoder(self) -> tuple[LoadedModel, TextEmbedding, Any]:
        encoder, embedding = self.repository.serving(self.settings.encoder_model, TextEmbedding)
        tokenizer = encoder.extras.tokenizer
        if tokenizer is None:  # tiny registries ship it beside the search model
            with contextlib.suppress(InferenceError):
                searcher, _ = self.repository.serving(self.settings.search_model, SemanticSearch)
                tokenizer = searcher.extras.tokenizer
        if tokenizer is None:
            raise LiveSearchUnavailable(f"{self.settings.encoder_model} has no tokenizer")
        return encoder, embedding, tokenizer

    async def embed(self, texts: list[str]) -> tuple[np.ndarray, str]:
        """Vectors of ``texts`` (batched) and the sha256 of the encoder that made them."""
        encoder, embedding, tokenizer = self._encoder()
        size = self.settings.search_embed_batch_size
        if encoder.batcher is not None and encoder.batcher.max_rows > 1:
            size = min(size, encoder.batcher.max_rows)
        parts: list[np.ndarray] = []
        for start in range(0, len(texts), size):
            chunk = texts[start : start + size]
            began = time.perf_counter()
            outputs = await encoder.infer(tokenizer.encode(chunk))
            parts.append(embedding.decode(encoder.roles, outputs).reshape(len(chunk), -1))
            metrics.SEARCH_EMBED_SECONDS.observe(time.perf_counter() - began)
        if not parts:
            return np.zeros((0, 0), dtype=np.float32), encoder.config.sha256
        return np.concatenate(parts), encoder.config.sha256

    def _served_encoder(self) -> str | None:
        try:
            encoder, _ = self.repository.serving(self.settings.encoder_model, TextEmbedding)
        except InferenceError:
            return None
        return encoder.config.sha256

    async def _vectors_for(
        self, items: list[CatalogueItem], cached: Mapping[str, CachedVector], encoder: str
    ) -> list[IndexedItem]:
        """Indexed items, embedding (and caching) those whose cached vector is stale."""
        texts = {item.item_id: item.text() for item in items}
        hashes = {item_id: text_hash(text) for item_id, text in texts.items()}
        stale = [
            item
            for item in items
            if (hit := cached.get(item.item_id)) is None or hit.text_hash != hashes[item.item_id]
        ]
        fresh: dict[str, CachedVector] = {}
        size = self.settings.search_embed_batch_size * 8  # written back as it goes
        for start in range(0, len(stale), size):
            chunk = stale[start : start + size]
            vectors, used = await self.embed([texts[i.item_id] for i in chunk])
            if used != encoder:
                raise EncoderChanged(encoder, used)
            made = [
                CachedVector(i.item_id, encoder, hashes[i.item_id], v)
                for i, v in zip(chunk, vectors, strict=True)
            ]
            await self.cache.save(made)
            fresh.update((m.item_id, m) for m in made)
        if stale:
            metrics.SEARCH_EMBEDDED.inc(len(stale))
        return [
            IndexedItem(
                item.item_id,
                (fresh.get(item.item_id) or cached[item.item_id]).vector,
                item.title,
                item.categories,
                hashes[item.item_id],
            )
            for item in items
        ]

    # -- resync ---------------------------------------------------------------------

    async def resync(self, reason: str) -> None:
        began = time.monotonic()
        encoder = self._served_encoder()
        if encoder is None:
            raise LiveSearchUnavailable(f"no {self.settings.encoder_model} model is served")
        items = [
            CatalogueItem.from_document(doc) async for doc in self.items.find(LIVE, ITEM_FIELDS)
        ]
        # Many items: one scan of the cache beats an $in of every id.
        ids = [i.item_id for i in items]
        if len(ids) > CACHE_SCAN_ITEMS:
            cached = await self.cache.load(encoder)
        else:
            cached = await self.cache.get(ids, encoder)
        indexed = await self._vectors_for(items, cached, encoder)
        dim = indexed[0].vector.shape[0] if indexed else self._dimension()
        index = await asyncio.to_thread(build, dim, indexed, self.settings.search_exact_max_items)
        self.live.index, self.live.encoder = index, encoder
        metrics.SEARCH_INDEX_ITEMS.set(len(index))
        log.info(
            "live search index loaded",
            extra={
                "fields": {
                    "reason": reason,
                    "items": len(index),
                    "embedded": sum(
                        1
                        for i in indexed
                        if (c := cached.get(i.item_id)) is None or c.text_hash != i.text_hash
                    ),
                    "ann": index.uses_ann,
                    "seconds": round(time.monotonic() - began, 3),
                }
            },
        )

    def _dimension(self) -> int:
        encoder, _ = self.repository.serving(self.settings.encoder_model, TextEmbedding)
        for output in encoder.config.outputs:
            if output.shape and isinstance(output.shape[-1], int):
                return int(output.shape[-1])
        raise LiveSearchUnavailable(f"{self.settings.encoder_model} declares no vector size")

    # -- changes --------------------------------------------------------------------

    async def apply(self, changes: list[_Change]) -> None:
        index = self.live.index
        if index is None:
            raise LiveSearchUnavailable("no index yet")
        latest = {c.item_id: c for c in changes}  # a batch keeps each item's last state
        gone = [i for i, c in latest.items() if c.document is None or c.document.get("removed")]
        upserts = [
            CatalogueItem.from_document(c.document)
            for c in latest.values()
            if c.document is not None and not c.document.get("removed")
        ]
        changed = [i for i in upserts if index.text_hash(i.item_id) != text_hash(i.text())]
        if changed:
            encoder = self.live.encoder
            cached = await self.cache.get([i.item_id for i in changed], encoder)
            indexed = await self._vectors_for(changed, cached, encoder)
            index.upsert(indexed)
            metrics.SEARCH_INDEX_UPDATES.labels("upsert").inc(len(indexed))
            if index.needs_graph:  # crossed the exact limit: build the graph off the loop
                log.info(
                    "live search index: building its graph", extra={"fields": {"items": len(index)}}
                )
                await asyncio.to_thread(index.ensure_graph)
        removed = index.remove(gone)
        if removed:
            metrics.SEARCH_INDEX_UPDATES.labels("remove").inc(removed)
        metrics.SEARCH_INDEX_ITEMS.set(len(index))
        now = time.time()
        for change in latest.values():
            if change.document is not None:
                observe_lag(change.document.get("updatedAt"), now)
        if changed or removed:
            log.debug(
                "live search index updated",
                extra={"fields": {"upserted": len(changed), "removed": removed}},
            )

    async def _apply_forever(self, stop: asyncio.Event) -> None:
        backoff = 1.0
        while not stop.is_set():
            try:
                first = await asyncio.wait_for(self.queue.get(), ENCODER_CHECK_SECONDS)
            except TimeoutError:
                served = self._served_encoder()
                if self.live.index is not None and served and served != self.live.encoder:
                    self.queue.put_nowait(_Resync("the text encoder changed"))
                continue
            batch: list[_Resync | _Change] = [first]
            while len(batch) < self.settings.search_embed_batch_size * 4:
                try:
                    batch.append(self.queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            try:
                await self._apply_batch(batch)
                backoff = 1.0
            except Exception as exc:  # the next resync repairs whatever this batch missed
                metrics.SEARCH_INDEX_ERRORS.labels("apply").inc()
                log.warning(
                    "live search update failed; resyncing after a pause",
                    extra={"fields": {"error": repr(exc), "retry_seconds": backoff}},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                self.queue.put_nowait(_Resync(f"after an error: {type(exc).__name__}"))

    async def _apply_batch(self, batch: list[_Resync | _Change]) -> None:
        # Everything queued before the last resync marker is covered by that resync.
        last_resync = max((n for n, e in enumerate(batch) if isinstance(e, _Resync)), default=-1)
        if last_resync >= 0:
            marker = batch[last_resync]
            assert isinstance(marker, _Resync)
            await self.resync(marker.reason)
        changes = [e for e in batch[last_resync + 1 :] if isinstance(e, _Change)]
        if changes:
            await self.apply(changes)

    async def _read_forever(self, stop: asyncio.Event) -> None:
        token: Mapping[str, Any] | None = None
        backoff = 1.0
        while not stop.is_set():
            try:
                async with await self.items.watch(
                    full_document="updateLookup",
                    resume_after=token,
                    max_await_time_ms=500,
                ) as stream:
                    if token is None:  # opened before reading: nothing falls in between
                        self.queue.put_nowait(_Resync("start" if backoff == 1.0 else "reopened"))
                    backoff = 1.0
                    async for change in stream:
                        token = stream.resume_token
                        self._queue_change(change)
                        if stop.is_set():
                            return
                    token = None  # the stream ended (invalidated): reopen and resync
            except OperationFailure as exc:
                token = None  # the resume point is gone (history lost): start over
                self._stream_failed(exc)
            except PyMongoError as exc:
                self._stream_failed(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _stream_failed(self, exc: Exception) -> None:
        metrics.SEARCH_INDEX_ERRORS.labels("change_stream").inc()
        log.warning(
            "catalogue change stream failed; resuming after a pause",
            extra={"fields": {"error": repr(exc)}},
        )

    def _queue_change(self, change: Mapping[str, Any]) -> None:
        operation = change.get("operationType")
        if operation in ("insert", "update", "replace"):
            key = change.get("documentKey") or {}
            self.queue.put_nowait(_Change(str(key.get("_id")), change.get("fullDocument")))
        elif operation == "delete":
            key = change.get("documentKey") or {}
            self.queue.put_nowait(_Change(str(key.get("_id")), None))
        elif operation in ("drop", "rename", "dropDatabase", "invalidate"):
            self.queue.put_nowait(_Resync(f"the collection saw {operation}"))


def observe_lag(updated_at: Any, now: float) -> None:
    if isinstance(updated_at, datetime):
        stamp = updated_at if updated_at.tzinfo else updated_at.replace(tzinfo=UTC)
        metrics.SEARCH_INDEX_LAG_SECONDS.observe(max(0.0, now - stamp.timestamp()))


class LiveSearchUnavailable(Exception):
    """The live index cannot be built now (no encoder served yet, no index)."""


class EncoderChanged(Exception):
    def __init__(self, expected: str, served: str) -> None:
        super().__init__(f"the encoder changed from {expected[:12]} to {served[:12]}")
