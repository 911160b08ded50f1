"""Banking77 and CLINC150 as shipped in ``data/datasets`` (CC BY; see ATTRIBUTION.md)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass

import numpy as np

from models.paths import datasets_dir

OOS = "oos"


@dataclass
class Split:
    texts: list[str]
    labels: list[str]


@dataclass
class IntentData:
    """In-scope labels plus ``oos``; every split may hold ``oos`` examples.

    ``train`` fits the model, ``tune`` picks the out-of-scope threshold, ``report``
    is what the card shows. Official test splits are never read.
    """

    name: str
    label_names: list[str]  # in-scope intents, then "oos" last: the graph's output order
    train: Split
    tune: Split
    report: Split


def _stratified_holdout(labels: list[str], fraction: float, seed: int) -> np.ndarray:
    """Boolean mask selecting ``fraction`` of every class (seeded)."""
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    mask = np.zeros(len(labels), dtype=bool)
    for label in sorted(set(labels)):
        idx = np.flatnonzero(labels_arr == label)
        rng.shuffle(idx)
        mask[idx[: max(1, round(len(idx) * fraction))]] = True
    return mask


def _pick(split: Split, mask: np.ndarray) -> Split:
    return Split(
        [t for t, k in zip(split.texts, mask, strict=True) if k],
        [y for y, k in zip(split.labels, mask, strict=True) if k],
    )


def _join(*splits: Split) -> Split:
    return Split([t for s in splits for t in s.texts], [y for s in splits for y in s.labels])


def _clinc_raw() -> dict[str, Split]:
    raw = json.loads((datasets_dir() / "clinc150" / "data_full_train_val.json").read_text())
    return {k: Split([r[0] for r in v], [r[1] for r in v]) for k, v in raw.items()}


def _halves(split: Split) -> tuple[Split, Split]:
    mid = len(split.texts) // 2
    return Split(split.texts[:mid], split.labels[:mid]), Split(
        split.texts[mid:], split.labels[mid:]
    )


def banking77(seed: int = 0, valid_fraction: float = 0.1) -> IntentData:
    """Banking77 ``train.csv`` split 90/10 (stratified, seeded). Banking77 has no
    out-of-scope queries, so CLINC150's ``oos_train`` is split between training (an
    ``oos`` class) and threshold tuning, and CLINC150's ``oos_val`` is reported."""
    folder = datasets_dir() / "banking77"
    with (folder / "train.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    full = Split([r["text"] for r in rows], [r["category"] for r in rows])
    names = [*json.loads((folder / "categories.json").read_text()), OOS]
    hold = _stratified_holdout(full.labels, valid_fraction, seed)
    clinc = _clinc_raw()
    oos_fit, oos_tune = _halves(clinc["oos_train"])
    valid = _pick(full, hold)
    return IntentData(
        "banking77",
        names,
        _join(_pick(full, ~hold), oos_fit),
        _join(valid, oos_tune),
        _join(valid, clinc["oos_val"]),
    )


def clinc150(seed: int = 0, tune_fraction: float = 0.1) -> IntentData:
    """CLINC150 "full": fit on 90% of ``train`` + half of ``oos_train``; tune the
    threshold on the rest; report on the official ``val`` + ``oos_val``."""
    clinc = _clinc_raw()
    train = clinc["train"]
    names = [*sorted(set(train.labels)), OOS]
    hold = _stratified_holdout(train.labels, tune_fraction, seed)
    oos_fit, oos_tune = _halves(clinc["oos_train"])
    return IntentData(
        "clinc150",
        names,
        _join(_pick(train, ~hold), oos_fit),
        _join(_pick(train, hold), oos_tune),
        _join(clinc["val"], clinc["oos_val"]),
    )


def subsample(data: IntentData, per_class: int, seed: int = 0) -> IntentData:
    """Small version for CI: at most ``per_class`` training texts per label and every
    fifth tune/report text."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(data.train.labels)
    keep = np.zeros(len(labels), dtype=bool)
    for label in sorted(set(data.train.labels)):
        idx = np.flatnonzero(labels == label)
        keep[rng.permutation(idx)[:per_class]] = True
    every = lambda split: Split(split.texts[::5], split.labels[::5])  # noqa: E731
    return IntentData(
        data.name, data.label_names, _pick(data.train, keep), every(data.tune), every(data.report)
    )
