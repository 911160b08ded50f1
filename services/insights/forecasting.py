"""Demand forecasts of one hourly series, with prediction intervals. Pure: arrays in, arrays out.

Methods: ``SeasonalNaive`` (the baseline: each hour repeats the same hour one season earlier)
and statsforecast's ``AutoETS`` and ``AutoTheta``. Which one serves was chosen by measurement
(``python -m bench.forecast_accuracy``, figures in docs/insights.md). statsforecast is imported
on first use: it brings pandas, scipy and statsmodels (about 250 MB and seconds of import), so
only the insights service and the benchmark pay for it.

Counts are never negative: means and interval bounds are clipped at zero. A library method
that fails on a series (a constant or very short one) falls back to seasonal-naive, and the
result says which method answered.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

log = logging.getLogger(__name__)

MethodName = Literal["SeasonalNaive", "AutoETS", "AutoTheta"]
METHODS: tuple[MethodName, ...] = ("SeasonalNaive", "AutoETS", "AutoTheta")
DEFAULT_LEVELS = (80, 95)


@dataclass(frozen=True)
class SeriesForecast:
    """``horizon`` future values: means and, per level (percent), lower and upper bounds."""

    method: MethodName
    season: int
    mean: np.ndarray
    intervals: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def usable_season(length: int, season: int) -> int:
    """The season a series of ``length`` points supports: two full seasons, else none (1)."""
    return season if season > 1 and length >= 2 * season else 1


def seasonal_naive(
    y: np.ndarray, season: int, horizon: int, levels: Sequence[int] = DEFAULT_LEVELS
) -> SeriesForecast:
    """Repeat the last season; intervals from the spread of the in-sample seasonal differences.

    The h-step standard deviation grows with the number of seasons ahead, ``sigma * sqrt(k+1)``
    with ``k = (h-1) // season`` (Hyndman & Athanasopoulos, *Forecasting: principles and
    practice*, 3rd ed., 5.5), and the bounds are normal quantiles around the mean.
    """
    y = np.asarray(y, dtype=float)
    if len(y) == 0:
        raise ValueError("an empty series cannot be forecast")
    season = max(1, min(season, len(y)))
    steps = np.arange(horizon)
    mean = y[len(y) - season + steps % season]
    residuals = y[season:] - y[:-season]
    sigma = float(np.sqrt(np.mean(residuals**2))) if len(residuals) else 0.0
    spread = sigma * np.sqrt(steps // season + 1)
    intervals = {}
    for level in levels:
        z = NormalDist().inv_cdf(0.5 + level / 200)
        intervals[level] = (mean - z * spread, mean + z * spread)
    return clipped(SeriesForecast("SeasonalNaive", season, mean, intervals))


def forecast(
    y: np.ndarray,
    method: MethodName,
    season: int,
    horizon: int,
    levels: Sequence[int] = DEFAULT_LEVELS,
) -> SeriesForecast:
    """Forecast ``horizon`` steps of ``y`` with ``method`` (seasonal-naive if the method fails)."""
    y = np.asarray(y, dtype=float)
    season = usable_season(len(y), season)
    if method == "SeasonalNaive":
        return seasonal_naive(y, season, horizon, levels)
    try:
        model = library_model(method, season).fit(y)
        out = model.predict(horizon, level=list(levels))
    except Exception as exc:  # the library refuses some series (constant, too short)
        log.info(
            "falling back to seasonal-naive",
            extra={"fields": {"method": method, "reason": str(exc)[:200]}},
        )
        return seasonal_naive(y, season, horizon, levels)
    mean = np.asarray(out["mean"], dtype=float)
    if not np.all(np.isfinite(mean)):
        return seasonal_naive(y, season, horizon, levels)
    intervals = {
        level: (np.asarray(out[f"lo-{level}"], float), np.asarray(out[f"hi-{level}"], float))
        for level in levels
    }
    return clipped(SeriesForecast(method, season, mean, intervals))


def library_model(method: MethodName, season: int) -> Any:
    from statsforecast.models import AutoETS, AutoTheta

    if method == "AutoETS":
        return AutoETS(season_length=season)
    if method == "AutoTheta":
        return AutoTheta(season_length=season)
    raise ValueError(f"unknown forecasting method {method!r}")


def clipped(result: SeriesForecast) -> SeriesForecast:
    return SeriesForecast(
        result.method,
        result.season,
        np.maximum(result.mean, 0.0),
        {
            level: (np.maximum(lo, 0.0), np.maximum(hi, 0.0))
            for level, (lo, hi) in result.intervals.items()
        },
    )


def mase(actual: np.ndarray, predicted: np.ndarray, history: np.ndarray, season: int) -> float:
    """Mean absolute scaled error: the forecast's MAE over the in-sample MAE of seasonal-naive
    on ``history`` (Hyndman & Koehler 2006; the M4 competition's definition)."""
    history = np.asarray(history, dtype=float)
    season = max(1, season)
    scale = float(np.mean(np.abs(history[season:] - history[:-season])))
    error = float(np.mean(np.abs(np.asarray(actual, float) - np.asarray(predicted, float))))
    return error / scale if scale > 0 else math.inf


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of ``actual`` values inside their interval."""
    actual = np.asarray(actual, float)
    return float(np.mean((actual >= lower) & (actual <= upper)))
