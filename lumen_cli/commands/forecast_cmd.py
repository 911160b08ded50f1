"""``lumen forecast``: the demand forecast of an item or a category (insights' TrendService)."""

from __future__ import annotations

import argparse
from datetime import UTC
from typing import Any

from lumen_cli.output import EXIT_OK, add_json_flag, guarded, print_json
from lumen_cli.settings import CliSettings
from lumen_client.errors import from_rpc_error


def add_parsers(sub: Any) -> None:
    fc = sub.add_parser(
        "forecast", help="views or purchases of an item or category for the next hours"
    )
    fc.add_argument("key", help="item id (or category name with --category)")
    fc.add_argument("--category", action="store_true", help="KEY is a category, not an item")
    fc.add_argument("--by", choices=["views", "purchases"], default="views", help="measure")
    fc.add_argument(
        "--hours", type=int, default=24, help="horizon in hours, 1..168 (default 24; 168: 7 days)"
    )
    fc.add_argument(
        "--level",
        type=int,
        action="append",
        default=[],
        help="interval coverage in percent (repeatable; default 80 and 95)",
    )
    fc.add_argument("--target", help="insights host:port (default $LUMEN_INSIGHTS_TARGET)")
    add_json_flag(fc)
    fc.set_defaults(func=guarded(cmd_forecast))


def cmd_forecast(args: argparse.Namespace) -> int:
    import grpc
    from lumen.v1 import insights_pb2 as pb
    from lumen.v1 import insights_pb2_grpc as pb_grpc

    settings = CliSettings()
    request = pb.ForecastRequest(
        kind=pb.TREND_KIND_CATEGORY if args.category else pb.TREND_KIND_ITEM,
        key=args.key,
        measure=pb.TREND_MEASURE_PURCHASES if args.by == "purchases" else pb.TREND_MEASURE_VIEWS,
        horizon_hours=args.hours,
        levels=args.level,
    )
    token = settings.insights_token
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    with grpc.insecure_channel(args.target or settings.insights_target) as channel:
        try:
            reply = pb_grpc.TrendServiceStub(channel).Forecast(
                request, timeout=settings.cli_timeout_seconds, metadata=metadata
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
    result = as_dict(reply)
    if args.json:
        print_json(result)
        return EXIT_OK
    kind = "category" if args.category else "item"
    print(
        f"Forecast of {args.by} for {kind} {args.key}: {result['method']}, season "
        f"{result['season_hours']} h, fitted on {result['history_hours']} h"
    )
    print(
        f"  next 24 h: {result['expected_next_24h']:.1f}   "
        f"next {args.hours} h: {result['expected_horizon']:.1f}"
    )
    for point in result["points"]:
        bounds = "  ".join(
            f"{i['level']}%: {i['lower']:.1f}..{i['upper']:.1f}" for i in point["intervals"]
        )
        print(f"  {point['start']}  {point['mean']:8.1f}  {bounds}")
    return EXIT_OK


def as_dict(reply: Any) -> dict[str, Any]:
    return {
        "key": reply.key,
        "method": reply.method,
        "season_hours": reply.season_hours,
        "history_hours": reply.history_hours,
        "first_hour": reply.first_hour.ToDatetime(UTC).isoformat(),
        "expected_next_24h": reply.expected_next_24h,
        "expected_horizon": reply.expected_horizon,
        "points": [
            {
                "start": p.start.ToDatetime(UTC).strftime("%Y-%m-%d %H:%M"),
                "mean": p.mean,
                "intervals": [
                    {"level": i.level, "lower": i.lower, "upper": i.upper} for i in p.intervals
                ],
            }
            for p in reply.points
        ],
    }
