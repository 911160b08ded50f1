"""The insights core: Trending and Forecast, transport-neutral (grpc_api.py adapts it).

Requests are checked here and refused with :class:`InvalidArgument` and a reason; a forecast
runs on a worker thread so a fit never blocks the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.database import Database

from services.insights.errors import InvalidArgument, NotEnoughHistory, NotFound
from services.insights.forecasting import DEFAULT_LEVELS, SeriesForecast, forecast
from services.insights.reader import HOUR, hourly_series
from services.insights.settings import InsightsSettings
from shared.trends import CATEGORY, CHANNEL, ITEM, Trending, top_trending

KINDS = (ITEM, CATEGORY, CHANNEL)
MEASURES = ("views", "purchases")
MAX_HORIZON_HOURS = 7 * 24
MAX_KEY_CHARS = 512
MAX_TRENDING = 100


@dataclass(frozen=True)
class ForecastQuery:
    kind: str
    key: str
    measure: str = "views"
    horizon_hours: int = 24
    levels: tuple[int, ...] = DEFAULT_LEVELS


@dataclass(frozen=True)
class ForecastResult:
    query: ForecastQuery
    first_hour: datetime
    history_hours: int
    forecast: SeriesForecast

    def hour(self, step: int) -> datetime:
        return self.first_hour + timedelta(seconds=HOUR * step)


def checked(query: ForecastQuery) -> ForecastQuery:
    """The query with defaults filled in; InvalidArgument (with the reason) if it is bad."""
    if query.kind not in KINDS:
        raise InvalidArgument("kind must be item, category or channel")
    if not query.key or len(query.key) > MAX_KEY_CHARS:
        raise InvalidArgument(f"key must be 1 to {MAX_KEY_CHARS} characters")
    if query.measure not in MEASURES:
        raise InvalidArgument("measure must be views or purchases")
    if not 1 <= query.horizon_hours <= MAX_HORIZON_HOURS:
        raise InvalidArgument(f"horizon_hours must be 1 to {MAX_HORIZON_HOURS}")
    if not all(1 <= level <= 99 for level in query.levels):
        raise InvalidArgument("each interval level must be 1 to 99 (percent)")
    levels = tuple(sorted(set(query.levels))) or DEFAULT_LEVELS
    return ForecastQuery(query.kind, query.key, query.measure, query.horizon_hours, levels)


class Insights:
    def __init__(
        self, db: Database, settings: InsightsSettings, executor: ThreadPoolExecutor
    ) -> None:
        self.db = db
        self.settings = settings
        self.executor = executor

    async def trending(self, kind: str, by: str, limit: int) -> list[Trending]:
        if kind not in KINDS:
            raise InvalidArgument("kind must be item, category or channel")
        if by not in MEASURES:
            raise InvalidArgument("by must be views or purchases")
        if not 1 <= limit <= MAX_TRENDING:
            raise InvalidArgument(f"limit must be 1 to {MAX_TRENDING}")
        return await asyncio.get_running_loop().run_in_executor(
            self.executor,
            lambda: top_trending(self.db, kind, "1h", by, limit),  # type: ignore[arg-type]
        )

    async def forecast(self, query: ForecastQuery, now: datetime | None = None) -> ForecastResult:
        query = checked(query)
        moment = now or datetime.now(UTC)
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, self.forecast_now, query, moment
        )

    def forecast_now(self, query: ForecastQuery, now: datetime) -> ForecastResult:
        settings = self.settings
        series = hourly_series(
            self.db, query.kind, query.key, query.measure, now, settings.max_history_hours
        )
        if series is None:
            raise NotFound(f"no hourly trend window is kept for {query.kind} {query.key!r}")
        if len(series.values) < settings.min_history_hours:
            raise NotEnoughHistory(
                f"{len(series.values)} hourly windows are kept, a forecast needs "
                f"{settings.min_history_hours}"
            )
        result = forecast(
            series.values,
            settings.method,
            settings.season_hours,
            query.horizon_hours,
            query.levels,
        )
        return ForecastResult(query, series.end, len(series.values), result)


def levels_of(values: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values) or DEFAULT_LEVELS
