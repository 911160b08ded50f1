"""The insights service on the real mongod: trend windows written as the profile updater writes
them (``$inc`` upserts of shared/trends.py's documents) -> TrendService answers Trending and
Forecast; the forecast's intervals cover the held-out hours at about their nominal rate; bad
requests get INVALID_ARGUMENT and the service keeps serving; ``lumen forecast`` prints it.
Outside development it refuses to start without a bearer token or mTLS, and with a token every
call but health checks and reflection needs it."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from lumen.v1 import insights_pb2 as pb
from lumen.v1 import insights_pb2_grpc as pb_grpc
from pymongo import MongoClient, UpdateOne

from lumen_cli.platform.paths import REPO_ROOT
from lumen_cli.platform.services import grpc_serving
from shared.trends import CATEGORY, ITEM, TRENDS, trend_id
from tests.security.certificates import make_certificates
from tests.support.stack import ServiceProcess, Stack, free_port, start_service

HISTORY_HOURS = 14 * 24
HORIZON = 168
ITEM_KEY = f"item-{uuid.uuid4().hex[:6]}"
CATEGORY_KEY = "Sci-Fi"


def hourly_views(hours: int, seed: int) -> np.ndarray:
    """Poisson views: level 40 rising 0.05 per hour, a daily swing of +-25."""
    t = np.arange(hours)
    rate = 40 + 0.05 * t + 25 * np.sin(2 * np.pi * (t % 24) / 24)
    return np.random.default_rng(seed).poisson(rate).astype(float)


def this_hour() -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0)


def window_writes(kind: str, key: str, first: datetime, counts: np.ndarray) -> list[UpdateOne]:
    """The profile updater's upsert of each hourly window (services/profiles/store.py)."""
    ops = []
    for i, views in enumerate(counts):
        if not views:
            continue  # the updater writes a window only when something was counted
        start = first + timedelta(hours=i)
        epoch = int(start.timestamp())
        ops.append(
            UpdateOne(
                {"_id": trend_id("1h", kind, epoch, key)},
                {
                    "$inc": {"views": int(views), "purchases": int(views) // 10},
                    "$setOnInsert": {
                        "window": "1h",
                        "kind": kind,
                        "key": key,
                        "start": start,
                        "expiresAt": start + timedelta(days=30),
                    },
                },
                upsert=True,
            )
        )
    return ops


@pytest.fixture(scope="module")
def series(stack: Stack) -> Iterator[tuple[str, np.ndarray]]:
    """A database of its own with 14 days of hourly windows; yields (database, truth): the
    next 168 hours of the same process, never written."""
    name = f"insights_{uuid.uuid4().hex[:8]}"
    both = hourly_views(HISTORY_HOURS + HORIZON, seed=7)
    history, truth = both[:HISTORY_HOURS], both[HISTORY_HOURS:]
    first = this_hour() - timedelta(hours=HISTORY_HOURS)
    client: MongoClient = MongoClient(stack.mongo_uri, tz_aware=True)
    with client:
        trends = client[name][TRENDS]
        trends.bulk_write(window_writes(ITEM, ITEM_KEY, first, history), ordered=False)
        trends.bulk_write(window_writes(CATEGORY, CATEGORY_KEY, first, history * 3), ordered=False)
        # A second item, trending now with fewer views.
        trends.bulk_write(window_writes(ITEM, "other", this_hour(), np.array([3.0])))
        trends.bulk_write(window_writes(ITEM, ITEM_KEY, this_hour(), np.array([9.0])))
        yield name, truth
        client.drop_database(name)


@pytest.fixture(scope="module")
def insights(stack: Stack, series: tuple[str, np.ndarray]) -> Iterator[ServiceProcess]:
    grpc_port, metrics_port = free_port(), free_port()
    service = start_service(
        "insights",
        "services.insights",
        {
            **stack.env(),
            "LUMEN_MONGO_DATABASE": series[0],
            "LUMEN_INSIGHTS_GRPC_PORT": str(grpc_port),
            "LUMEN_INSIGHTS_METRICS_PORT": str(metrics_port),
        },
        ready=lambda: grpc_serving(f"127.0.0.1:{grpc_port}"),
        ports={"grpc": grpc_port, "metrics": metrics_port},
    )
    yield service
    assert service.stop() == 0, service.log()[-2000:]


@pytest.fixture(scope="module")
def stub(insights: ServiceProcess) -> Iterator[pb_grpc.TrendServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{insights.ports['grpc']}") as channel:
        yield pb_grpc.TrendServiceStub(channel)


def test_forecast_intervals_cover_the_held_out_week_at_about_their_rate(
    stub: pb_grpc.TrendServiceStub, series: tuple[str, np.ndarray]
) -> None:
    truth = series[1]
    reply = stub.Forecast(
        pb.ForecastRequest(kind=pb.TREND_KIND_ITEM, key=ITEM_KEY, horizon_hours=HORIZON),
        timeout=60,
    )
    assert reply.method == "AutoTheta" and reply.season_hours == 24
    assert reply.history_hours == HISTORY_HOURS
    assert reply.first_hour.ToDatetime(UTC) == this_hour()
    assert len(reply.points) == HORIZON
    assert reply.points[1].start.ToDatetime(UTC) == this_hour() + timedelta(hours=1)
    means = np.array([p.mean for p in reply.points])
    assert reply.expected_horizon == pytest.approx(means.sum())
    assert reply.expected_next_24h == pytest.approx(means[:24].sum())
    # The week's total is forecast within 20 % of the truth, and the daily swing is kept.
    assert abs(means.sum() - truth.sum()) / truth.sum() < 0.20
    assert np.corrcoef(means, truth)[0, 1] > 0.8
    covered = {}
    for level in (80, 95):
        bounds = [next(i for i in p.intervals if i.level == level) for p in reply.points]
        lower = np.array([b.lower for b in bounds])
        upper = np.array([b.upper for b in bounds])
        assert np.all(lower <= means) and np.all(means <= upper) and np.all(lower >= 0)
        covered[level] = float(np.mean((truth >= lower) & (truth <= upper)))
    assert 0.65 <= covered[80] <= 0.95, covered
    assert 0.85 <= covered[95] <= 1.0, covered


def test_forecast_of_a_category_and_of_purchases(stub: pb_grpc.TrendServiceStub) -> None:
    def next_day(kind: int, key: str, measure: int) -> pb.ForecastResponse:
        request = pb.ForecastRequest(kind=kind, key=key, measure=measure, levels=[50])
        reply: pb.ForecastResponse = stub.Forecast(request, timeout=60)
        assert len(reply.points) == 24 and [i.level for i in reply.points[0].intervals] == [50]
        return reply

    views = next_day(pb.TREND_KIND_ITEM, ITEM_KEY, pb.TREND_MEASURE_VIEWS).expected_next_24h
    purchases = next_day(pb.TREND_KIND_ITEM, ITEM_KEY, pb.TREND_MEASURE_PURCHASES)
    category = next_day(pb.TREND_KIND_CATEGORY, CATEGORY_KEY, pb.TREND_MEASURE_VIEWS)
    assert purchases.measure == pb.TREND_MEASURE_PURCHASES
    assert category.kind == pb.TREND_KIND_CATEGORY and category.key == CATEGORY_KEY
    # The history has a tenth of the views as purchases and the category three times the
    # item's views: so do the forecasts, within their noise.
    assert 0.07 < purchases.expected_next_24h / views < 0.13
    assert 2.7 < category.expected_next_24h / views < 3.3


def test_trending_reads_the_current_and_previous_hour(stub: pb_grpc.TrendServiceStub) -> None:
    reply = stub.Trending(pb.TrendingRequest(limit=2), timeout=10)
    assert [e.key for e in reply.entries] == [ITEM_KEY, "other"]
    # The current hour (9) and the last hour of the history.
    assert reply.entries[0].views > 9 and reply.entries[1].views == 3


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (pb.ForecastRequest(key=ITEM_KEY), "kind"),
        (pb.ForecastRequest(kind=pb.TREND_KIND_ITEM), "key"),
        (pb.ForecastRequest(kind=pb.TREND_KIND_ITEM, key=ITEM_KEY, horizon_hours=169), "horizon"),
        (pb.ForecastRequest(kind=pb.TREND_KIND_ITEM, key=ITEM_KEY, horizon_hours=-1), "horizon"),
        (pb.ForecastRequest(kind=pb.TREND_KIND_ITEM, key=ITEM_KEY, levels=[100]), "level"),
        (pb.ForecastRequest(kind=pb.TREND_KIND_ITEM, key=ITEM_KEY, measure=7), "measure"),
    ],
)
def test_bad_forecast_requests_are_invalid_arguments(
    stub: pb_grpc.TrendServiceStub,
    insights: ServiceProcess,
    request_: pb.ForecastRequest,
    reason: str,
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Forecast(request_, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason in (caught.value.details() or "")
    assert grpc_serving(f"127.0.0.1:{insights.ports['grpc']}")


def test_unknown_key_is_not_found_and_garbage_is_invalid(
    stub: pb_grpc.TrendServiceStub, insights: ServiceProcess
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Forecast(pb.ForecastRequest(kind=pb.TREND_KIND_ITEM, key="never-seen"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with grpc.insecure_channel(f"127.0.0.1:{insights.ports['grpc']}") as channel:
        raw = channel.unary_unary("/lumen.v1.TrendService/Forecast")
        with pytest.raises(grpc.RpcError) as garbage:
            raw(b"\xff\xff\xff", timeout=10)
    assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as limit:
        stub.Trending(pb.TrendingRequest(limit=1000), timeout=10)
    assert limit.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_lumen_forecast_prints_the_forecast(insights: ServiceProcess) -> None:
    target = f"127.0.0.1:{insights.ports['grpc']}"
    done = subprocess.run(
        [sys.executable, "-m", "lumen_cli", "forecast", ITEM_KEY, "--hours", "48", "--json"],
        cwd=REPO_ROOT,
        env={**os.environ, "LUMEN_INSIGHTS_TARGET": target},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["key"] == ITEM_KEY and len(result["points"]) == 48
    assert math.isclose(result["expected_horizon"], sum(p["mean"] for p in result["points"]))
    bad = subprocess.run(
        [sys.executable, "-m", "lumen_cli", "forecast", ITEM_KEY, "--hours", "500"],
        cwd=REPO_ROOT,
        env={**os.environ, "LUMEN_INSIGHTS_TARGET": target},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "horizon_hours" in bad.stderr


def test_metrics_count_the_calls_by_outcome(insights: ServiceProcess) -> None:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{insights.ports['metrics']}/metrics", timeout=10
    ) as response:
        text = response.read().decode()
    assert "lumen_build_info{python=" in text and 'service="insights"' in text
    assert re.search(r'lumen_insights_forecasts_total\{method="AutoTheta"\} [1-9]', text)
    assert re.search(
        r'lumen_insights_grpc_requests_total\{code="INVALID_ARGUMENT",method="Forecast"\} [1-9]',
        text,
    )


# -- authentication: a bearer token (or mTLS) outside development, health open -----------------
PRODUCTION = {"LUMEN_DEV_MODE": "0", "LUMEN_INSIGHTS_METHOD": "SeasonalNaive"}


def production_env(stack: Stack, database: str, **env: str) -> dict[str, str]:
    return {
        **stack.env(),
        "LUMEN_MONGO_DATABASE": database,
        "LUMEN_INSIGHTS_GRPC_PORT": str(free_port()),
        "LUMEN_INSIGHTS_METRICS_PORT": str(free_port()),
        **PRODUCTION,
        **env,
    }


@pytest.mark.parametrize(
    ("env", "told"),
    [
        ({}, "set LUMEN_INSIGHTS_AUTH_TOKEN"),
        (
            {"LUMEN_INSIGHTS_TLS_CLIENT_CA_FILE": "/nonexistent/ca.pem"},
            "LUMEN_INSIGHTS_TLS_CERT_FILE",
        ),
    ],
    ids=["nothing", "client-ca-without-tls"],
)
def test_insights_refuses_to_start_open_outside_development(
    stack: Stack, series: tuple[str, np.ndarray], env: dict[str, str], told: str
) -> None:
    started = subprocess.run(
        [sys.executable, "-m", "services.insights"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **production_env(stack, series[0], **env)},
        timeout=60,
    )
    output = started.stdout + started.stderr
    assert started.returncode == 2, output
    assert "refusing to start" in output and told in output


def test_insights_token_is_required_and_health_stays_open(
    stack: Stack, series: tuple[str, np.ndarray]
) -> None:
    """Production settings with a token: Forecast and Trending need it, health and reflection
    do not; `lumen forecast` sends it from LUMEN_INSIGHTS_TOKEN."""
    token = f"tok-{uuid.uuid4().hex}"
    env = production_env(stack, series[0], LUMEN_INSIGHTS_AUTH_TOKEN=token)
    grpc_port = int(env["LUMEN_INSIGHTS_GRPC_PORT"])
    target = f"127.0.0.1:{grpc_port}"
    service = start_service(
        "insights-token",
        "services.insights",
        env,
        ready=lambda: grpc_serving(target),
        ports={"grpc": grpc_port},
    )
    forecast = pb.ForecastRequest(kind=pb.TREND_KIND_ITEM, key=ITEM_KEY, horizon_hours=24)
    try:
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.TrendServiceStub(channel)
            calls = {
                "Forecast": lambda metadata: stub.Forecast(forecast, metadata=metadata, timeout=30),
                "Trending": lambda metadata: stub.Trending(
                    pb.TrendingRequest(limit=2), metadata=metadata, timeout=10
                ),
            }
            codes: dict[tuple[str, str], str] = {}
            sent = {
                "none": (),
                "wrong": (("authorization", "Bearer x"),),
                "raw token": (("authorization", token),),
                "right": (("authorization", f"Bearer {token}"),),
            }
            for method, call in calls.items():
                for name, metadata in sent.items():
                    try:
                        call(metadata)
                        codes[method, name] = "OK"
                    except grpc.RpcError as exc:
                        codes[method, name] = exc.code().name
            reply = stub.Forecast(
                forecast, metadata=(("authorization", f"Bearer {token}"),), timeout=30
            )
            # Reflection, like health, needs no token.
            services = ProtoReflectionDescriptorDatabase(channel).get_services()
        assert codes == {
            (method, name): "OK" if name == "right" else "UNAUTHENTICATED"
            for method in calls
            for name in sent
        }
        assert len(reply.points) == 24 and reply.method == "SeasonalNaive"
        assert grpc_serving(target)  # grpc.health.v1 needs no token
        assert "lumen.v1.TrendService" in services

        def cli(**extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "lumen_cli",
                    "forecast",
                    ITEM_KEY,
                    "--json",
                    "--target",
                    target,
                ],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "LUMEN_INSIGHTS_TOKEN": "", **extra},
            )

        refused, accepted = cli(), cli(LUMEN_INSIGHTS_TOKEN=token)
        assert refused.returncode != 0 and "bearer token" in refused.stderr
        assert accepted.returncode == 0, accepted.stderr
        assert json.loads(accepted.stdout)["key"] == ITEM_KEY
    finally:
        assert service.stop() == 0, service.log()[-2000:]
    assert token not in service.log()


def test_insights_with_mtls_serves_only_clients_with_a_certificate(
    stack: Stack, series: tuple[str, np.ndarray], tmp_path: Path
) -> None:
    """Production settings with client certificates and no token: the service starts, and only
    a client presenting a certificate signed by the configured CA is served."""
    certs = make_certificates(tmp_path / "tls")
    for args in (
        [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=lumen-test-client",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
        ],
        [
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            "client.pem",
        ],
    ):
        subprocess.run(["openssl", *args], cwd=tmp_path / "tls", check=True, capture_output=True)
    ca = certs.ca.read_bytes()
    with_cert = grpc.ssl_channel_credentials(
        ca, (tmp_path / "tls/client.key").read_bytes(), (tmp_path / "tls/client.pem").read_bytes()
    )
    without_cert = grpc.ssl_channel_credentials(ca)
    env = production_env(
        stack,
        series[0],
        LUMEN_INSIGHTS_TLS_CERT_FILE=str(certs.cert),
        LUMEN_INSIGHTS_TLS_KEY_FILE=str(certs.key),
        LUMEN_INSIGHTS_TLS_CLIENT_CA_FILE=str(certs.ca),
    )
    grpc_port = int(env["LUMEN_INSIGHTS_GRPC_PORT"])

    def trending(credentials: grpc.ChannelCredentials) -> str:
        with grpc.secure_channel(f"127.0.0.1:{grpc_port}", credentials) as channel:
            try:
                pb_grpc.TrendServiceStub(channel).Trending(pb.TrendingRequest(limit=1), timeout=5)
            except grpc.RpcError as exc:
                return str(exc.code().name)
        return "OK"

    service = start_service(
        "insights-mtls",
        "services.insights",
        env,
        ready=lambda: trending(with_cert) == "OK",
        ports={"grpc": grpc_port},
    )
    try:
        assert trending(with_cert) == "OK"
        assert trending(without_cert) == "UNAVAILABLE"  # the TLS handshake is refused
    finally:
        service.stop()
