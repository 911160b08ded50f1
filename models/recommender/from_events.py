"""Train ``recommender`` from the product's own events, gated against the served version.

Flow (``train_from_store``): read the catalogue and interaction store (``own_data.read_store``)
-> time-ordered split -> ``train_and_gate``: tune on each user's tuning item, refit on train +
tuning, evaluate once on the held-out item against popularity and the served version (same
users, same items, both through their ONNX graphs), gate (``gate.decide``) and publish through
``models/publish.py``. Inference picks a new version up by polling the registry.

The outcome (``TrainingOutcome``) is what ``python -m models train recommender --from-events
--json-result PATH`` writes for the continuous trainer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import onnxruntime as ort
from pymongo.database import Database

from models.cards import render_card
from models.evaluation import measure_latency, session, table
from models.publish import fingerprint, serving
from models.publish import publish as publish_version
from models.recommender.baselines import Popularity
from models.recommender.content import add_catalogue_content
from models.recommender.gate import Decision, Verdict, decide, margin_from_env
from models.recommender.metrics import full_ranking
from models.recommender.model_choice import FittedRecommender, fit, serving_tensors
from models.recommender.own_data import OwnData, Split, read_store, split_histories
from models.recommender.sequential import SequentialParams
from models.recommender.train import popularity_prior
from models.recommender.tuning import FIT_GRID, SCORE_GRID
from models.runtime.items import ItemIndex
from shared.model_registry import (
    DataSource,
    ModelConfig,
    ModelVersion,
    RegistryError,
    get_version,
)

log = logging.getLogger(__name__)

NAME = "recommender"
CODE_VERSION = 1
SEED = 0
MAX_EVAL_USERS = 5_000  # a seeded sample of users is held out beyond this
LARGE_INTERACTIONS = 1_000_000  # above this (or LARGE_ITEMS) tuning skips the refit grid
LARGE_ITEMS = 5_000
TOP_K = 20  # the graphs rank this many; metrics are @10 and @20
METRIC_KEYS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20")
MIN_EVAL_USERS = 2
MIN_ITEMS = 2
PARITY_TOLERANCE = 1e-3  # ONNX vs numpy scores (float32 sums in another order)
SOURCE_NAME = "Lumen interaction store"


# "failed": the run raised; the command line reports it with the reason (exit status 1 or 3).
OutcomeDecision = Literal[Decision, "failed"]


@dataclass
class TrainingOutcome:
    decision: OutcomeDecision
    reason: str
    version: int | None = None  # published version
    served_version: int | None = None  # the version compared against
    metrics: dict[str, dict[str, float] | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    window: list[str] | None = None  # first and last interaction, ISO-8601
    seconds: float = 0.0
    margin: float = 0.0
    database: str = ""
    path: str | None = None  # the published version's folder

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line for logs and the command line."""
        new = (self.metrics.get("challenger") or {}).get("ndcg@10")
        old = (self.metrics.get("champion") or {}).get("ndcg@10")
        parts = [f"recommender from events: {self.decision}"]
        if self.version is not None:
            parts.append(f"version {self.version}")
        if new is not None:
            parts.append(f"ndcg@10 {new:.4f}")
        if old is not None:
            parts.append(f"served v{self.served_version} {old:.4f}")
        counts = self.counts
        if counts:
            parts.append(
                f"{counts.get('users', 0)} users, {counts.get('items', 0)} items, "
                f"{counts.get('interactions', 0)} interactions"
            )
        parts.append(f"{self.seconds:.1f} s")
        return "; ".join(parts) + f" ({self.reason})"


def write_outcome(outcome: TrainingOutcome, path: str | Path) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(outcome.to_json(), indent=2) + "\n")
    tmp.rename(target)  # a reader never sees half a file


# --- evaluation ---------------------------------------------------------------------------


def _ranks_to_metrics(ranks: np.ndarray) -> dict[str, float]:
    """``ranks``: 0-based position of the target, ``TOP_K`` or more for a miss."""
    out: dict[str, float] = {}
    for k in (10, 20):
        hit = ranks < k
        out[f"hr@{k}"] = float(hit.mean())
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
    return out


def onnx_ranking(
    sess: ort.InferenceSession,
    index: ItemIndex,
    length: int,
    histories: Sequence[Sequence[str]],
    targets: Sequence[str],
    batch: int = 256,
) -> dict[str, float]:
    """HR and NDCG @10/@20 of a served recommender graph: each user's history (item ids,
    oldest first) in, seen items other than the target masked. Items the graph does not
    know are dropped from histories and, as targets, are misses."""
    ranks = np.full(len(targets), TOP_K, dtype=np.int64)
    k = np.array([min(TOP_K, len(index))], dtype=np.int64)
    for start in range(0, len(targets), batch):
        hist = histories[start : start + batch]
        tgt = targets[start : start + batch]
        exclude = [set(h) - {t} for h, t in zip(hist, tgt, strict=True)]
        (top,) = sess.run(
            ["top_items"],
            {
                "recent_items": index.recent_items(hist, length),
                "exclude_mask": index.exclude_mask(exclude),
                "k": k,
            },
        )
        for b, target in enumerate(tgt):
            row = index.row(target)
            if row is None:
                continue  # an item the graph does not know: a miss
            found = np.flatnonzero(top[b] == row)
            if len(found):
                ranks[start + b] = int(found[0])
    return _ranks_to_metrics(ranks)


def _pick(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(float(metrics[k]), 6) for k in METRIC_KEYS}


@dataclass(frozen=True)
class Champion:
    version: ModelVersion
    index: ItemIndex
    session: ort.InferenceSession
    length: int


def load_champion(registry: Path | None) -> Champion | None:
    """The newest version of ``recommender`` with its item index, or None when none."""
    try:
        found = get_version(NAME, root=registry, verify=True)
    except RegistryError as exc:
        log.info("no served recommender to compare with: %s", exc)
        return None
    index = ItemIndex.load(found.file("items.json"))
    length = found.config.max_history() or SequentialParams().max_len
    return Champion(found, index, session(found.model_path), length)


# --- tuning, fitting, parity --------------------------------------------------------------


def tune(
    split: Split, start: SequentialParams, small_grid: bool
) -> tuple[SequentialParams, list[dict[str, object]]]:
    """Coordinate search (models/recommender/tuning.py's grids) on the tuning item only;
    ``small_grid`` tries the scoring settings alone (no refits) for large data."""
    fit_on = split.fit_histories("tuning")
    hist, targets = split.histories("tuning"), split.targets("tuning")

    def objective(model: FittedRecommender) -> float:
        m = full_ranking(model.score, hist, targets)
        return m["ndcg@10"] + m["hr@10"]

    best = start
    model = fit(fit_on, split.n_items, best)
    best_value = objective(model)
    steps = [] if small_grid else [(k, v, True) for k, vs in FIT_GRID.items() for v in vs]
    steps += [(k, v, False) for k, vs in SCORE_GRID.items() for v in vs]
    trace: list[dict[str, object]] = []
    for key, value, refit in steps:
        if getattr(best, key) == value:
            continue
        trial = replace(best, **{key: value})  # type: ignore[arg-type]
        if refit:
            candidate = fit(fit_on, split.n_items, trial)
        else:
            candidate = model
            candidate.params = trial
        value_ = objective(candidate)
        trace.append({"param": key, "value": value, "objective": value_})
        if value_ > best_value:
            best, best_value, model = trial, value_, candidate
        else:
            model.params = best
    return best, trace


def parity(model: FittedRecommender, prior: np.ndarray, graph: onnx.ModelProto) -> dict[str, float]:
    """The exported graph against the training-time scorer on 16 random histories."""
    sess = session(graph.SerializeToString())
    n, max_len = model.n_items, model.params.max_len
    rng = np.random.default_rng(SEED)
    recent = np.stack(
        [np.where(rng.random(max_len) < 0.3, -1, rng.integers(0, n, max_len)) for _ in range(16)]
    )
    k = min(10, n)
    top_items, top_scores, top_reasons = sess.run(
        ["top_items", "top_scores", "top_reasons"],
        {
            "recent_items": recent,
            "exclude_mask": np.zeros((16, n), dtype=bool),
            "k": np.array([k], dtype=np.int64),
        },
    )
    ref = model.score_recent(recent) + prior
    ref_top = np.sort(ref, axis=1)[:, ::-1][:, :k]
    return {
        "onnx_vs_training_max_abs_diff": float(abs(top_scores - ref_top).max()),
        "onnx_same_top10_items": float(
            np.mean(top_items == np.argsort(-ref, axis=1, kind="stable")[:, :k])
        ),
        "onnx_same_top10_reasons": float(np.mean(top_reasons == model.reasons(recent, top_items))),
    }


# --- the flow -----------------------------------------------------------------------------


def counts_of(data: OwnData, split: Split) -> dict[str, int]:
    return {
        "users": len(data.users),
        "items": data.n_items,
        "interactions": data.n_interactions,
        "eval_users": len(split.eval_users),
        "eval_candidates": split.eval_candidates,
        "cold_items": len(data.cold),
    }


def window_of(data: OwnData) -> list[str] | None:
    if data.first is None or data.last is None:
        return None
    return [data.first.isoformat(), data.last.isoformat()]


def too_little(data: OwnData, split: Split) -> str | None:
    if data.n_items < MIN_ITEMS:
        return f"too little data: {data.n_items} items (at least {MIN_ITEMS})"
    if len(split.eval_users) < MIN_EVAL_USERS:
        return (
            f"too little data: {len(split.eval_users)} users with 3 or more interactions "
            f"(at least {MIN_EVAL_USERS})"
        )
    if not any(len(h) >= 2 for h in split.train):
        return "too little data: no user has two training interactions (no transitions)"
    return None


def split_store_data(data: OwnData, max_eval_users: int = MAX_EVAL_USERS) -> Split:
    return split_histories(
        data.histories, data.n_items, data.users, max_eval_users=max_eval_users, seed=SEED
    )


def train_from_store(
    db: Database,
    registry: Path | None = None,
    *,
    force: bool = False,
    margin: float | None = None,
    publish: bool = True,
    since_days: float | None = None,
    max_eval_users: int = MAX_EVAL_USERS,
) -> TrainingOutcome:
    """Read the store, split, train, gate and (maybe) publish; see the module docstring."""
    start = time.perf_counter()
    data = read_store(db, since_days=since_days)
    split = split_store_data(data, max_eval_users)
    return train_and_gate(
        data, split, registry, force=force, margin=margin, publish=publish, started=start
    )


def train_and_gate(
    data: OwnData,
    split: Split,
    registry: Path | None = None,
    *,
    force: bool = False,
    margin: float | None = None,
    publish: bool = True,
    started: float | None = None,
) -> TrainingOutcome:
    """Train a challenger on ``split``, evaluate it beside popularity and the served version,
    gate and publish. The split's train part may differ from ``data``'s histories (a test
    shuffles it); its test items must be the users' last interactions, and every model is
    evaluated on the users' real histories before them."""
    started = time.perf_counter() if started is None else started
    margin = margin_from_env() if margin is None else margin
    outcome = TrainingOutcome(
        "skipped",
        "",
        counts=counts_of(data, split),
        window=window_of(data),
        margin=margin,
        database=data.database,
    )
    if (reason := too_little(data, split)) is not None:
        outcome.reason = reason
        outcome.seconds = round(time.perf_counter() - started, 2)
        log.info("%s", outcome.summary())
        return outcome

    large = data.n_interactions > LARGE_INTERACTIONS or data.n_items > LARGE_ITEMS
    params, trace = tune(split, SequentialParams(), small_grid=large)
    final_histories = split.fit_histories("test")
    model = fit(final_histories, split.n_items, params)
    # Item-to-item edges beyond the interactions (model.add_edges) go here: after the fit,
    # before the prior, the evaluation and the export, so that all of them see the same model.
    cold = add_catalogue_content(
        model,
        data.titles,
        data.categories,
        final_histories,
        (split.histories("tuning"), split.targets("tuning")),
        descriptions=data.descriptions or None,
        encoder=registry,
        tuning_fit=split.fit_histories("tuning"),
    )
    prior = popularity_prior(final_histories, split.n_items)
    graph = model.to_onnx(prior)
    checked = parity(model, prior, graph)
    if checked["onnx_vs_training_max_abs_diff"] > PARITY_TOLERANCE:
        raise RuntimeError(f"the exported graph does not match the trained model: {checked}")

    index = ItemIndex(
        data.item_ids, data.titles, data.categories, data.cold | set(cold.cold_ids(data.item_ids))
    )
    # Every model sees the users' real histories at evaluation, whatever it was trained on.
    ids = data.item_ids
    real = [data.histories[u][:-1] for u in split.eval_users.tolist()]
    if [int(data.histories[u][-1]) for u in split.eval_users.tolist()] != split.test.tolist():
        raise ValueError("the split's test items are not the users' last interactions")
    histories = [[ids[r] for r in h] for h in real]
    targets = [ids[r] for r in split.targets("test").tolist()]
    challenger = onnx_ranking(
        session(graph.SerializeToString()), index, params.max_len, histories, targets
    )
    popularity = full_ranking(Popularity(final_histories, split.n_items).score, real, split.test)
    champion = load_champion(registry)
    champion_metrics: dict[str, float] | None = None
    known = None
    if champion is not None:
        known = len(champion.index.rows(ids))
        champion_metrics = onnx_ranking(
            champion.session, champion.index, champion.length, histories, targets
        )
        outcome.served_version = champion.version.version
    outcome.metrics = {
        "challenger": _pick(challenger),
        "champion": _pick(champion_metrics) if champion_metrics is not None else None,
        "popularity": _pick(popularity),
    }
    verdict = decide(
        challenger, champion_metrics, margin=margin, force=force, champion_known_items=known
    )
    outcome.decision, outcome.reason = verdict.decision, verdict.reason
    if publish and verdict.decision in ("published", "forced"):
        path = _publish(
            data, split, outcome, verdict, model, graph, index, params, trace, checked, registry
        )
        outcome.path = str(path)
        outcome.version = int(path.name)
    outcome.seconds = round(time.perf_counter() - started, 2)
    log.info("%s", outcome.summary())
    return outcome


# --- publishing ---------------------------------------------------------------------------


def _publish(
    data: OwnData,
    split: Split,
    outcome: TrainingOutcome,
    verdict: Verdict,
    model: FittedRecommender,
    graph: onnx.ModelProto,
    index: ItemIndex,
    params: SequentialParams,
    trace: list[dict[str, object]],
    checked: dict[str, float],
    registry: Path | None,
) -> Path:
    n, max_len = split.n_items, params.max_len
    sess = session(graph.SerializeToString())

    def feed(b: int) -> dict[str, np.ndarray]:
        return {
            "recent_items": np.tile(model.recent([split.train[int(split.eval_users[0])]]), (b, 1)),
            "exclude_mask": np.zeros((b, n), dtype=bool),
            "k": np.array([min(10, n)], np.int64),
        }

    latency = measure_latency(sess, feed)
    window = " to ".join(outcome.window or ["(empty)"])
    sampled = outcome.counts["eval_users"] < outcome.counts["eval_candidates"]
    split_text = (
        "time-ordered per user: last interaction test (held out), the one before tuning, "
        "the rest train; users with fewer than 3 interactions only train"
        + (
            f"; {outcome.counts['eval_users']} of {outcome.counts['eval_candidates']} "
            f"eligible users held out (seeded sample, seed {SEED})"
            if sampled
            else ""
        )
    )
    source = DataSource(
        name=SOURCE_NAME,
        source=f"MongoDB database `{data.database}`: `items` and `interactions`, {window}",
        license="the product's own data (not redistributed)",
        split=split_text,
    )
    metrics = {
        "test": outcome.metrics,
        "gate": {
            "decision": outcome.decision,
            "reason": outcome.reason,
            "margin": outcome.margin,
            "served_version": outcome.served_version,
            "forced": verdict.decision == "forced",
        },
        "params": asdict(params),
        "tuning_trace": trace,
        **checked,
        "dataset": outcome.counts,
        "window": outcome.window,
    }
    inputs, outputs = serving_tensors(n, max_len)
    config = ModelConfig(
        name=NAME,
        version=1,
        task="next-item-recommendation",
        sha256="",
        description="Sequence-aware linear item-item recommender (EASE + recency-weighted "
        "next-item transitions) trained on the product's own interactions.",
        inputs=inputs,
        outputs=outputs,
        preprocessing={
            "runtime": "models.runtime.items.ItemIndex.load(items.json)",
            "recent_items": "ItemIndex.recent_items(histories, length)",
            "exclude_mask": "ItemIndex.exclude_mask(seen_item_ids)",
            "max_history": max_len,
        },
        postprocessing={"ids": "ItemIndex.ids(top_items)"},
        training_data=[source],
        metrics=metrics,
        latency_ms=latency,
        inputs_fingerprint=fingerprint(
            {"code": CODE_VERSION, "source": "interactions", "window": outcome.window}
            | outcome.counts
        ),
        extra={"max_history": max_len, "pad": -1, "trained_from": "events"},
        output_roles={"items": "top_items", "scores": "top_scores", "reasons": "top_reasons"},
        **serving(max_queue_delay_microseconds=0),
    )

    def write(folder: Path) -> None:
        onnx.save(graph, str(folder / "model.onnx"))
        index.save(folder / "items.json")

    rows = [
        {"model": name, **(m or {})}
        for name, m in (
            ("challenger (this version)", outcome.metrics["challenger"]),
            (f"served version {outcome.served_version}", outcome.metrics["champion"]),
            ("popularity", outcome.metrics["popularity"]),
        )
        if m is not None
    ]
    decision = f"**{outcome.decision}**: {outcome.reason}." + (
        " The gate refused this version; it was published by force."
        if verdict.decision == "forced"
        else ""
    )
    sections = [
        ("Decision", decision),
        (
            "Data",
            f"{SOURCE_NAME}, database `{data.database}`, interactions {window}: "
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in outcome.counts.items())
            + f".\n\nSplit: {split_text}.",
        ),
        (
            "Results (test = each evaluated user's last interaction, seen items excluded)",
            "Settings tuned on the tuning item only; this version is refit on train + tuning and "
            "evaluated once on the test item. The challenger and the served version are ranked "
            f"by their ONNX graphs (top {TOP_K}; a target the served version does not know is a "
            "miss); popularity counts train + tuning interactions.\n\n"
            + table(rows, ["model", *METRIC_KEYS]),
        ),
        (
            "Parity",
            f"ONNX top-10 scores vs training-time scorer on 16 random histories: "
            f"max |Δ| = {checked['onnx_vs_training_max_abs_diff']:.2e}.",
        ),
    ]
    return publish_version(
        config, write, lambda c: render_card(c, c.description, sections), root=registry
    )
