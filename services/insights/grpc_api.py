"""gRPC adapter of the insights core: ``lumen.v1.TrendService``. Thin: it translates messages,
maps :class:`InsightsError` to its status code once and records each call's outcome."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from lumen.v1 import insights_pb2 as pb
from lumen.v1 import insights_pb2_grpc as pb_grpc

from services.insights import metrics
from services.insights.core import ForecastQuery, ForecastResult, Insights, levels_of
from services.insights.errors import InsightsError
from shared.trends import CATEGORY, ITEM

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]

KINDS = {pb.TREND_KIND_ITEM: ITEM, pb.TREND_KIND_CATEGORY: CATEGORY}
KIND_CODES = {name: code for code, name in KINDS.items()}
MEASURES = {pb.TREND_MEASURE_VIEWS: "views", pb.TREND_MEASURE_PURCHASES: "purchases"}
MEASURE_CODES = {name: code for code, name in MEASURES.items()}


def rpc(method: str) -> Callable[[Handler[Req, Resp]], Handler[Req, Resp]]:
    seconds = metrics.GRPC_SECONDS.labels(method)

    def wrap(fn: Handler[Req, Resp]) -> Handler[Req, Resp]:
        @functools.wraps(fn)
        async def handler(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                return await fn(self, request, context)
            except InsightsError as exc:
                code = exc.code
                await context.abort(exc.code, str(exc))
                raise
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("unexpected error", extra={"fields": {"method": method}})
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
                raise
            finally:
                metrics.GRPC_REQUESTS.labels(method, code.name).inc()
                seconds.observe(time.perf_counter() - started)

        return handler

    return wrap


def timestamp(moment: Any) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(moment)
    return out


def forecast_response(result: ForecastResult) -> pb.ForecastResponse:
    fc = result.forecast
    points = [
        pb.ForecastPoint(
            start=timestamp(result.hour(step)),
            mean=float(fc.mean[step]),
            intervals=[
                pb.PredictionInterval(level=level, lower=float(lo[step]), upper=float(hi[step]))
                for level, (lo, hi) in sorted(fc.intervals.items())
            ],
        )
        for step in range(len(fc.mean))
    ]
    query = result.query
    return pb.ForecastResponse(
        kind=KIND_CODES[query.kind],
        key=query.key,
        measure=MEASURE_CODES[query.measure],
        method=fc.method,
        season_hours=fc.season,
        history_hours=result.history_hours,
        first_hour=timestamp(result.first_hour),
        points=points,
        expected_next_24h=float(fc.mean[:24].sum()),
        expected_horizon=float(fc.mean.sum()),
    )


class TrendService(pb_grpc.TrendServiceServicer):
    def __init__(self, insights: Insights) -> None:
        self.insights = insights

    @rpc("Trending")
    async def Trending(
        self, request: pb.TrendingRequest, context: grpc.aio.ServicerContext
    ) -> pb.TrendingResponse:
        rows = await self.insights.trending(
            KINDS.get(request.kind or pb.TREND_KIND_ITEM, ""),
            MEASURES.get(request.by or pb.TREND_MEASURE_VIEWS, ""),
            request.limit or 10,
        )
        return pb.TrendingResponse(
            entries=[pb.TrendingEntry(key=r.key, views=r.views, purchases=r.purchases)
                     for r in rows]
        )  # fmt: skip

    @rpc("Forecast")
    async def Forecast(
        self, request: pb.ForecastRequest, context: grpc.aio.ServicerContext
    ) -> pb.ForecastResponse:
        query = ForecastQuery(
            kind=KINDS.get(request.kind, ""),
            key=request.key,
            measure=MEASURES.get(request.measure or pb.TREND_MEASURE_VIEWS, ""),
            horizon_hours=request.horizon_hours or 24,
            levels=levels_of(request.levels),
        )
        result = await self.insights.forecast(query)
        metrics.FORECASTS.labels(result.forecast.method).inc()
        return forecast_response(result)
