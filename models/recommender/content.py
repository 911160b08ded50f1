"""Content edges for cold items: catalogue items the training interactions never name.

A collaborative model cannot score an item nobody has interacted with. Each cold item is
linked instead to its ``neighbours`` most similar *warm* items (cosine of the registry's
text-encoder embeddings of ``shared.catalogue.item_text``), with edges warm -> cold of weight
``alpha * cosine`` added to the fitted model (``FittedRecommender.add_edges``). A user whose
recent items resemble a cold item then gets it, and the graph's ``top_reasons`` names the
history item its text resembles most ("similar to X").

``alpha`` is chosen on the tuning split when cold items are among its targets: the weight
best for the cold targets among those that cost at most ``MAX_TUNING_LOSS`` of NDCG@10 over
every tuning target (a weight that lifts cold targets by pushing many warm ones down loses);
otherwise it is ``DEFAULT_ALPHA_SCALE`` times the weight at which a cold item whose
nearest warm item is the user's newest one scores like the model's typical 10th item
(``default_alpha``), so the default follows the model's own score range.

Embedding runs the encoder's ONNX graph through onnxruntime (never torch).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.encoder.embed import run_text_graph
from models.recommender.model_choice import FittedRecommender, fit
from models.runtime.text import TextTokenizer
from shared.catalogue import item_text
from shared.model_registry import ModelVersion, RegistryError, get_version

log = logging.getLogger(__name__)

ENCODER = "text-encoder"
DEFAULT_NEIGHBOURS = 10  # warm items each cold item is linked from
# x default_alpha when no tuning target is cold. At 1x every cold item near a user's newest
# item competes with their 10th item, and cold items crowd the lists (MovieLens 100k with
# 10 % of items cold: NDCG@10 over all tuning targets 0.113 -> 0.054); half lets the most
# similar ones in (docs/benchmarks.md, "Cold items").
DEFAULT_ALPHA_SCALE = 0.5
ALPHA_GRID = tuple(2 ** (k / 2) for k in range(-8, 5))  # x default_alpha: 1/16 .. 4
# Tuning gives cold items as much weight as costs at most this share of NDCG@10 over every
# tuning target: the best weight for all targets alone is often "none" (a cold target's gain
# rarely pays for the warm ones it pushes down), and then new items would never be shown.
MAX_TUNING_LOSS = 0.02
TOP_K = 10
RANK_BATCH = 256
SCORES_PER_BATCH = 4_000_000  # users x items scored at once (32 MB of float64)


@dataclass(frozen=True)
class ContentEdges:
    """What ``add_content_edges`` did: which rows are cold and the edges it added."""

    cold_rows: np.ndarray  # item rows without training interactions
    warm: np.ndarray  # edge sources (warm item rows)
    cold: np.ndarray  # edge targets (cold item rows)
    cosine: np.ndarray  # per edge
    alpha: float
    neighbours: int
    alpha_from: str  # "tuning" or "default"
    tuning_trace: list[dict[str, float]] = field(default_factory=list)

    def cold_ids(self, item_ids: Sequence[str]) -> list[str]:
        """The cold items' ids, for ``items.json`` (``ItemIndex(..., cold=...)``)."""
        return [item_ids[int(r)] for r in self.cold_rows]

    def summary(self) -> dict[str, object]:
        return {
            "cold_items": len(self.cold_rows),
            "edges": len(self.cold),
            "neighbours": self.neighbours,
            "alpha": self.alpha,
            "alpha_from": self.alpha_from,
            "tuning_trace": self.tuning_trace,
        }


def catalogue_texts(
    titles: Sequence[str],
    categories: Sequence[Sequence[str]] | None = None,
    descriptions: Sequence[str] | None = None,
) -> list[str]:
    """``item_text`` per item row (what the search index embeds too)."""
    return [
        item_text(
            title,
            categories[row] if categories is not None else (),
            descriptions[row] if descriptions is not None else "",
        )
        for row, title in enumerate(titles)
    ]


def embed_texts(texts: Sequence[str], encoder: ModelVersion | None = None) -> np.ndarray:
    """L2-normalised embeddings [N, D] from the registry's text encoder (newest version)."""
    from models.evaluation import session  # onnxruntime session pinned to the shared cores

    encoder = encoder or get_version(ENCODER)
    tokenizer = TextTokenizer(encoder.file("tokenizer.json"))
    (vectors,) = run_text_graph(
        session(encoder.model_path), tokenizer, list(texts), desc="embedding items"
    )
    return normalise(vectors)


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def cold_rows(histories: Sequence[np.ndarray], n_items: int) -> np.ndarray:
    """Item rows that no training history names."""
    seen = np.zeros(n_items, dtype=bool)
    for history in histories:
        seen[np.asarray(history, dtype=np.int64)] = True
    return np.flatnonzero(~seen)


def nearest_warm(
    embeddings: np.ndarray, cold: np.ndarray, neighbours: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(warm rows, cold rows, cosine): each cold item's ``neighbours`` most similar warm
    items with a positive cosine."""
    warm_mask = np.ones(len(embeddings), dtype=bool)
    warm_mask[cold] = False
    warm = np.flatnonzero(warm_mask)
    if len(cold) == 0 or len(warm) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    m = min(neighbours, len(warm))
    sims = embeddings[cold] @ embeddings[warm].T  # [C, W]
    top = np.argpartition(-sims, m - 1, axis=1)[:, :m]
    cos = np.take_along_axis(sims, top, axis=1)
    keep = cos > 0
    sources = warm[top][keep]
    targets = np.repeat(cold, m).reshape(len(cold), m)[keep]
    return sources.astype(np.int64), targets.astype(np.int64), cos[keep].astype(np.float32)


def batch_size(n_items: int) -> int:
    return max(1, min(RANK_BATCH, SCORES_PER_BATCH // max(1, n_items)))


def _scores(model: FittedRecommender, histories: Sequence[np.ndarray]) -> np.ndarray:
    return np.asarray(model.score_recent(model.recent(histories)), dtype=np.float64)


def _content_part(
    model: FittedRecommender,
    histories: Sequence[np.ndarray],
    warm: np.ndarray,
    cold: np.ndarray,
    cosine: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(base scores, what unit-weight edges add): scoring is linear in the edges, so the
    model is scored without and with them once, and the edges are taken out again."""
    base = _scores(model, histories)
    model.add_edges(warm, cold, cosine)
    with_edges = _scores(model, histories)
    model.add_edges(warm, cold, -cosine)
    return base, with_edges - base


def default_alpha(
    model: FittedRecommender,
    histories: Sequence[np.ndarray],
    cosine: np.ndarray,
    warm: np.ndarray,
    cold: np.ndarray,
) -> float:
    """Edge weight at which a cold item whose nearest warm item is a user's newest item
    scores like the model's typical (median) 10th best item (the best one when the 10th
    scores nothing, in a tiny catalogue)."""
    users = [h for h in histories if len(h)][: batch_size(model.n_items)]
    if not users or len(cosine) == 0:
        return 0.0
    ordered = np.sort(_scores(model, users), axis=1)
    tenth = float(np.median(ordered[:, -min(TOP_K, ordered.shape[1])]))
    if tenth <= 0:  # a catalogue too small for a positive 10th score: the best one
        tenth = float(np.median(ordered[:, -1]))
    # What one unit edge from the newest history position adds (the model's own weight).
    probe = np.array([warm[0]], dtype=np.int64)
    _, unit = _content_part(
        model, [probe], probe, np.array([cold[0]]), np.ones(1, dtype=np.float32)
    )
    newest_weight = float(unit[0, cold[0]])
    nearest = np.zeros(int(cold.max()) + 1, dtype=np.float32)
    np.maximum.at(nearest, cold, cosine)
    typical_cos = float(np.median(nearest[np.unique(cold)]))
    if newest_weight <= 0 or typical_cos <= 0 or tenth <= 0:
        return 0.0
    return tenth / (newest_weight * typical_cos)


def ranks(scores: np.ndarray, histories: Sequence[np.ndarray], targets: np.ndarray) -> np.ndarray:
    """Rank of each target among all items, the user's other seen items excluded (as
    ``metrics.full_ranking`` does)."""
    scores = scores.copy()
    for b, history in enumerate(histories):
        seen = history[history != targets[b]]
        scores[b, seen] = -np.inf
    target_scores = scores[np.arange(len(targets)), targets]
    return (scores > target_scores[:, None]).sum(axis=1)


def ndcg_at(rank: np.ndarray, k: int = TOP_K) -> float:
    return float(((rank < k) / np.log2(rank + 2.0)).mean()) if len(rank) else 0.0


def choose_alpha(
    model: FittedRecommender,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    candidates: Sequence[float],
) -> tuple[float, list[dict[str, float]]]:
    """The candidate with the best NDCG@10 on the cold tuning targets among those within
    ``MAX_TUNING_LOSS`` of the best NDCG@10 over every tuning target (``pick``)."""
    warm, cold, cosine = edges
    cold_target = np.isin(targets, cold)
    totals = np.zeros(len(candidates))
    cold_totals = np.zeros(len(candidates))
    batch = batch_size(model.n_items)
    for start in range(0, len(targets), batch):
        hist = list(histories[start : start + batch])
        tgt = targets[start : start + batch]
        base, part = _content_part(model, hist, warm, cold, cosine)
        for c, alpha in enumerate(candidates):
            r = ranks(base + alpha * part, hist, tgt)
            gain = (r < TOP_K) / np.log2(r + 2.0)
            totals[c] += gain.sum()
            cold_totals[c] += gain[cold_target[start : start + batch]].sum()
    trace = [
        {
            "alpha": float(a),
            "ndcg@10": float(totals[c] / len(targets)),
            "ndcg@10_cold_targets": float(cold_totals[c] / max(1, int(cold_target.sum()))),
        }
        for c, a in enumerate(candidates)
    ]
    return float(candidates[pick(trace)]), trace


def pick(trace: Sequence[dict[str, float]]) -> int:
    """Index of the tuning row to keep: among rows within ``MAX_TUNING_LOSS`` of the best
    NDCG@10 over every target, the best on cold targets, then over every target, then the
    first (smallest weight)."""
    floor = (1 - MAX_TUNING_LOSS) * max(t["ndcg@10"] for t in trace)
    eligible = [i for i, t in enumerate(trace) if t["ndcg@10"] >= floor]
    return max(
        eligible,
        key=lambda i: (trace[i]["ndcg@10_cold_targets"], trace[i]["ndcg@10"], -i),
    )


def add_content_edges(
    model: FittedRecommender,
    embeddings: np.ndarray,
    train_histories: Sequence[np.ndarray],
    tuning: tuple[Sequence[np.ndarray], np.ndarray] | None = None,
    neighbours: int = DEFAULT_NEIGHBOURS,
    alpha: float | None = None,
) -> ContentEdges:
    """Link each cold item (no interaction in ``train_histories``) from its most similar
    warm items, in place. ``embeddings`` [N, D] by item row (``embed_texts``); ``tuning`` is
    (histories, targets) of the tuning split; ``alpha`` fixes the weight instead."""
    cold_items = cold_rows(train_histories, model.n_items)
    normalised = normalise(embeddings)
    warm, cold, cosine = nearest_warm(normalised, cold_items, neighbours)
    trace: list[dict[str, float]] = []
    source = "given"
    if alpha is None:
        base = default_alpha(model, train_histories, cosine, warm, cold)
        alpha, source = DEFAULT_ALPHA_SCALE * base, "default"
        if tuning is not None and base > 0 and np.isin(tuning[1], cold_items).any():
            alpha, trace = choose_alpha(
                model, (warm, cold, cosine), tuning[0], tuning[1], [s * base for s in ALPHA_GRID]
            )
            source = "tuning"
    if len(cosine) and alpha > 0:
        model.add_edges(warm, cold, alpha * cosine)
    log.info(
        "content edges",
        extra={
            "fields": {
                "cold_items": len(cold_items),
                "edges": len(cosine),
                "alpha": alpha,
                "alpha_from": source,
            }
        },
    )
    return ContentEdges(cold_items, warm, cold, cosine, float(alpha), neighbours, source, trace)


def _nothing(cold: np.ndarray, why: str) -> ContentEdges:
    empty = np.zeros(0, dtype=np.int64)
    return ContentEdges(cold, empty, empty, np.zeros(0, np.float32), 0.0, DEFAULT_NEIGHBOURS, why)


def add_catalogue_content(
    model: FittedRecommender,
    titles: Sequence[str],
    categories: Sequence[Sequence[str]] | None,
    train_histories: Sequence[np.ndarray],
    tuning: tuple[Sequence[np.ndarray], np.ndarray] | None = None,
    descriptions: Sequence[str] | None = None,
    encoder: ModelVersion | Path | None = None,
    tuning_fit: Sequence[np.ndarray] | None = None,
) -> ContentEdges:
    """``add_content_edges`` from catalogue fields, embedded with the registry's encoder
    (a ``ModelVersion``, a registry root, or the default registry). Embeds nothing when no
    item is cold; adds no edges (and says so) when the registry has no encoder.

    ``tuning_fit``: when ``model`` was fitted on the tuning targets too (the final refit),
    alpha is chosen on a model of the same settings fitted on these histories (the split's
    training part), against which the tuning targets are unseen, and then used as is."""
    cold = cold_rows(train_histories, model.n_items)
    if not len(cold):
        return _nothing(cold, "none")
    try:
        found = encoder if isinstance(encoder, ModelVersion) else get_version(ENCODER, root=encoder)
    except RegistryError as exc:
        log.warning("no content edges", extra={"fields": {"error": str(exc)}})
        return _nothing(cold, "no encoder")
    embeddings = embed_texts(catalogue_texts(titles, categories, descriptions), found)
    if tuning_fit is None or tuning is None:
        return add_content_edges(model, embeddings, train_histories, tuning)
    tuning_model = fit(
        tuning_fit, model.n_items, model.params, getattr(model, "neighbour_params", None)
    )
    tuned = add_content_edges(tuning_model, embeddings, tuning_fit, tuning)
    if tuned.alpha_from != "tuning":  # no cold tuning target: the final model's default
        return add_content_edges(model, embeddings, train_histories)
    edges = add_content_edges(model, embeddings, train_histories, alpha=tuned.alpha)
    return ContentEdges(
        edges.cold_rows,
        edges.warm,
        edges.cold,
        edges.cosine,
        edges.alpha,
        edges.neighbours,
        "tuning",
        tuned.tuning_trace,
    )
