"""Forecast accuracy of the insights service's methods: ``python -m bench.forecast_accuracy``.

Two series, each split in time: a method and season are chosen on the *tuning* part (the
lowest mean MASE over its forecast origins), and MASE is reported on the later *held-out*
part, on which nothing was chosen, for the chosen method and for seasonal-naive.

- ``air_passengers``: monthly international airline passengers, 1949-1960 (Box, Jenkins and
  Reinsel, *Time Series Analysis: Forecasting and Control*; series G), as shipped inside the
  statsforecast wheel (``statsforecast.utils.AirPassengers``, Apache-2.0). Season 12, 12 months
  ahead, expanding history.
- ``movielens_hourly``: ratings per hour of MovieLens 100k (F. Maxwell Harper and Joseph A.
  Konstan, 2015, The MovieLens Datasets, ACM TiiS 5(4); GroupLens' usage licence, fetched into
  var/cache by models/sources.py, never committed), i.e. the hourly "views" a trend window
  counts for a replay. 168 hours (7 days) ahead from the last 672 hours, as the service does;
  the 24-hour figures are the first day of the same forecasts.

MASE is the forecast's MAE over the in-sample MAE of seasonal-naive (season 12 for the monthly
series, 24 for the hourly one) on the history before each origin, averaged over the origins.
The figures are written to docs/benchmarks/forecast_accuracy.json and printed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.insights.forecasting import METHODS, MethodName, coverage, forecast, mase

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "forecast_accuracy.json"
LEVELS = (80, 95)


@dataclass(frozen=True)
class Candidate:
    method: MethodName
    season: int

    @property
    def name(self) -> str:
        return f"{self.method}(season={self.season})"


@dataclass(frozen=True)
class Setup:
    name: str
    y: np.ndarray
    scale_season: int
    horizon: int
    max_history: int | None
    tuning_origins: list[int]
    held_out_origins: list[int]
    candidates: list[Candidate]
    baseline: Candidate
    source: str


def air_passengers() -> Setup:
    from statsforecast.utils import AirPassengers

    y = np.asarray(AirPassengers, dtype=float)
    horizon, split = 12, 96  # tuning forecasts end by month 96; held-out ones start there
    return Setup(
        name="air_passengers",
        y=y,
        scale_season=12,
        horizon=horizon,
        max_history=None,
        tuning_origins=list(range(48, split - horizon + 1, 2)),
        held_out_origins=list(range(split, len(y) - horizon + 1, 2)),
        candidates=[Candidate(m, 12) for m in METHODS],
        baseline=Candidate("SeasonalNaive", 12),
        source=(
            "Box, Jenkins & Reinsel, Time Series Analysis (series G: monthly airline passengers "
            "1949-1960), shipped in the statsforecast wheel (Apache-2.0)"
        ),
    )


def movielens_hourly() -> Setup:
    from models.sources import movielens_100k

    stamps = np.loadtxt(
        movielens_100k() / "ml-100k.inter", skiprows=1, usecols=3, delimiter="\t", dtype=np.int64
    )
    hours = stamps // 3600 - stamps.min() // 3600  # UTC hours since the first rating's
    y = np.bincount(hours).astype(float)
    horizon, history, step = 168, 672, 96
    split = history + (len(y) - history) * 3 // 5
    return Setup(
        name="movielens_hourly",
        y=y,
        scale_season=24,
        horizon=horizon,
        max_history=history,
        tuning_origins=list(range(history, split - horizon + 1, step)),
        held_out_origins=list(range(split, len(y) - horizon + 1, step)),
        candidates=[
            Candidate("SeasonalNaive", 24),
            Candidate("SeasonalNaive", 168),
            Candidate("AutoETS", 24),
            Candidate("AutoTheta", 24),
            Candidate("AutoTheta", 168),
        ],
        baseline=Candidate("SeasonalNaive", 24),
        source=(
            "MovieLens 100k rating timestamps (Harper & Konstan 2015, GroupLens), ratings per "
            "hour; fetched by models/sources.py, not redistributed"
        ),
    )


def evaluate(setup: Setup, candidate: Candidate, origins: list[int]) -> dict[str, float]:
    scores: dict[str, list[float]] = {"mase": [], "mase_24h": []}
    covered: dict[int, list[float]] = {level: [] for level in LEVELS}
    for origin in origins:
        start = 0 if setup.max_history is None else max(0, origin - setup.max_history)
        history = setup.y[start:origin]
        actual = setup.y[origin : origin + setup.horizon]
        result = forecast(history, candidate.method, candidate.season, setup.horizon, LEVELS)
        scores["mase"].append(mase(actual, result.mean, history, setup.scale_season))
        if setup.horizon > 24:
            day = slice(0, 24)
            scores["mase_24h"].append(
                mase(actual[day], result.mean[day], history, setup.scale_season)
            )
        for level, (lo, hi) in result.intervals.items():
            covered[level].append(coverage(actual, lo, hi))
    out = {name: float(np.mean(v)) for name, v in scores.items() if v}
    out |= {f"coverage_{level}": float(np.mean(v)) for level, v in covered.items()}
    return out


def run(setup: Setup) -> dict[str, object]:
    started = time.perf_counter()
    tuning = {c.name: evaluate(setup, c, setup.tuning_origins) for c in setup.candidates}
    chosen = min(setup.candidates, key=lambda c: tuning[c.name]["mase"])
    held_out = evaluate(setup, chosen, setup.held_out_origins)
    baseline = evaluate(setup, setup.baseline, setup.held_out_origins)
    return {
        "source": setup.source,
        "points": len(setup.y),
        "horizon": setup.horizon,
        "history": setup.max_history or "expanding",
        "tuning_origins": [setup.tuning_origins[0], setup.tuning_origins[-1]],
        "held_out_origins": [setup.held_out_origins[0], setup.held_out_origins[-1]],
        "tuning_mase": {name: round(v["mase"], 4) for name, v in tuning.items()},
        "chosen": chosen.name,
        "held_out": {
            "chosen": rounded(held_out),
            "seasonal_naive": rounded(baseline),
            "mase_relative_to_seasonal_naive": round(held_out["mase"] / baseline["mase"], 4),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def rounded(figures: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) if math.isfinite(v) else v for k, v in figures.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="JSON file for the figures.")
    args = parser.parse_args(argv)
    results = {setup.name: run(setup) for setup in (air_passengers(), movielens_hourly())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    json.dump(results, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
