"""gRPC adapter of the insights core: ``lumen.v1.TrendService``. Thin: it translates messages,
maps :class:`InsightsError` to its status code once and records each call's outcome."""

from __future__ import annotations

import logging
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from lumen.v1 import insights_pb2 as pb
from lumen.v1 import insights_pb2_grpc as pb_grpc

from services.insights import metrics
from services.insights.core import ForecastQuery, ForecastResult, Insights, levels_of
from services.insights.errors import InsightsError
from shared.grpc_rpc import rpc_decorator
from shared.trends import CATEGORY, CHANNEL, ITEM

log = logging.getLogger(__name__)

KINDS = {
    pb.TREND_KIND_ITEM: ITEM,
    pb.TREND_KIND_CATEGORY: CATEGORY,
    pb.TREND_KIND_CHANNEL: CHANNEL,
}
KIND_CODES = {name: code for code, name in KINDS.items()}
MEASURES = {pb.TREND_MEASURE_VIEWS: "views", pb.TREND_MEASURE_PURCHASES: "purchases"}
MEASURE_CODES = {name: code for code, name in MEASURES.items()}


# Map core errors to status codes and record each call's outcome and latency.
rpc = rpc_decorator(InsightsError, metrics.GRPC_REQUESTS, metrics.GRPC_SECONDS, log)


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
            entries=[
                pb.TrendingEntry(key=r.key, views=r.views, purchases=r.purchases) for r in rows
            ]
        )

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
