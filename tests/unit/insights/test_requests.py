"""Forecast requests are checked before any read: each bad field is refused with its reason."""

from __future__ import annotations

import pytest
from lumen.v1 import insights_pb2 as pb

from services.insights.core import MAX_HORIZON_HOURS, ForecastQuery, checked
from services.insights.errors import InvalidArgument
from services.insights.grpc_api import KINDS


def test_a_good_query_gets_sorted_distinct_levels() -> None:
    query = checked(ForecastQuery("item", "42", "purchases", MAX_HORIZON_HOURS, (95, 80, 95)))
    assert query == ForecastQuery("item", "42", "purchases", MAX_HORIZON_HOURS, (80, 95))


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        (ForecastQuery("", "42"), "kind"),
        (ForecastQuery("user", "42"), "kind"),
        (ForecastQuery("item", ""), "key"),
        (ForecastQuery("item", "x" * 513), "key"),
        (ForecastQuery("item", "42", "revenue"), "measure"),
        (ForecastQuery("item", "42", horizon_hours=0), "horizon_hours"),
        (ForecastQuery("item", "42", horizon_hours=MAX_HORIZON_HOURS + 1), "horizon_hours"),
        (ForecastQuery("item", "42", levels=(0,)), "level"),
        (ForecastQuery("item", "42", levels=(80, 100)), "level"),
    ],
)
def test_bad_queries_are_refused_with_the_reason(query: ForecastQuery, reason: str) -> None:
    with pytest.raises(InvalidArgument, match=reason):
        checked(query)


def test_a_channel_trend_can_be_forecast_and_listed() -> None:
    assert checked(ForecastQuery("channel", "paid_search")).kind == "channel"
    assert KINDS[pb.TREND_KIND_CHANNEL] == "channel"
