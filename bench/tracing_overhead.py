"""What tracing costs: ingest (events/s through ``/v1/batch``) and Recommend (req/s, p50, p99
in a closed loop) with tracing off, sampled at 1 % and at 100 %, as ratios against off.

    .venv/bin/python -m bench.tracing_overhead --quick   # a few minutes, one round
    .venv/bin/python -m bench.tracing_overhead           # three rounds of longer phases

Runs on the test stack (``tests/support/stack.py``: Kafka, mongod and the Jaeger the spans are
exported to; ``LUMEN_TEST_*`` moves it) unless ``--otlp-endpoint`` names another collector.
The modes are set the standard way, by the OTEL_* variables of the service process: off is no
endpoint at all, 1 % is ``parentbased_traceidratio`` with 0.01, 100 % ``parentbased_always_on``.
Each phase starts the service afresh with its mode, warms it up unmeasured, then measures;
the modes alternate within each round and a mode's figure is its median over the rounds, so
a machine whose speed drifts during the run shifts every mode alike. Saves
``bench/results/tracing_overhead.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc

from bench.common import cpu_seconds, percentile, save_results
from bench.inference_bench import drop_database, registry, seed_profiles
from bench.ingest_bench import run_load
from bench.stack import Platform, start_inference, start_ingest

MODES: dict[str, dict[str, str]] = {
    "off": {},
    "sampled_1pct": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.01",
    },
    "sampled_100pct": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
}
INGEST_CONCURRENCY = 8
RECOMMEND_STREAMS = 8
WARMUP_SECONDS = 2.0


def mode_env(mode: str, endpoint: str, service: str) -> dict[str, str]:
    """The OTEL_* variables of a service process in ``mode`` (nothing at all when off)."""
    if mode == "off":
        return {}
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": service, **MODES[mode]}


# ---------------------------------------------------------------- loads


def ingest_phase(platform: Platform, env: dict[str, str], seconds: float) -> dict[str, Any]:
    service = start_ingest(platform, "lumen_bench_tracing", **env)
    try:
        url = f"http://127.0.0.1:{service.ports['http']}/v1/batch"
        run_load("batch", url, WARMUP_SECONDS, INGEST_CONCURRENCY, 1)
        cpu_before = cpu_seconds(service.proc.pid)
        figures = run_load("batch", url, seconds, INGEST_CONCURRENCY, 2)
        figures["server_cpu_us_per_event"] = round(
            (cpu_seconds(service.proc.pid) - cpu_before) / max(figures["events"], 1) * 1e6, 1
        )
        return figures
    finally:
        service.stop()


async def recommend_closed_loop(
    port: int, users: list[str], streams: int, seconds: float
) -> dict[str, Any]:
    """``streams`` callers each sending its next Recommend as soon as the last is answered."""
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        stop_at = time.perf_counter() + seconds

        async def stream(n: int) -> None:
            nonlocal errors
            i = n
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    await stub.Recommend(
                        pb.RecommendRequest(user_id=users[i % len(users)], k=10), timeout=10
                    )
                    latencies.append(time.perf_counter() - started)
                except grpc.aio.AioRpcError:
                    errors += 1
                i += streams

        started = time.perf_counter()
        await asyncio.gather(*(stream(n) for n in range(streams)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * percentile(latencies, 0.5), 3),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 3),
    }


def recommend_phase(
    platform: Platform,
    root: Path,
    database: str,
    users: list[str],
    env: dict[str, str],
    seconds: float,
) -> dict[str, Any]:
    service = start_inference(platform, database, root, **env)
    try:
        port = service.ports["grpc"]
        asyncio.run(recommend_closed_loop(port, users, RECOMMEND_STREAMS, WARMUP_SECONDS))
        cpu_before = cpu_seconds(service.proc.pid)
        figures = asyncio.run(recommend_closed_loop(port, users, RECOMMEND_STREAMS, seconds))
        figures["server_cpu_ms_per_request"] = round(
            1000 * (cpu_seconds(service.proc.pid) - cpu_before) / max(figures["requests"], 1), 3
        )
        return figures
    finally:
        service.stop()


# ---------------------------------------------------------------- summary


def medians(runs: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, float]:
    return {key: round(statistics.median(run[key] for run in runs), 3) for key in keys}


def ratios(
    by_mode: dict[str, dict[str, float]], keys: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """Each mode's figure over off's (throughput below 1 and latency above 1 are the cost)."""
    off = by_mode["off"]
    return {
        mode: {key: round(figures[key] / off[key], 3) if off[key] else 0.0 for key in keys}
        for mode, figures in by_mode.items()
        if mode != "off"
    }


def traces_exported(query_url: str | None, service: str) -> int | None:
    """Traces Jaeger holds for ``service`` (None when there is no Jaeger to ask)."""
    if not query_url:
        return None
    from lumen_cli.platform import jaeger

    try:
        return len(jaeger.find_traces(query_url, service, limit=50))
    except jaeger.JaegerQueryError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round of short phases")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 1 quick, 3)")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds a phase")
    parser.add_argument("--otlp-endpoint", default=None, help="default: the test stack's Jaeger")
    parser.add_argument("--registry", default=None, help="default: var/models or tiny models")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    seconds = args.seconds or (5.0 if args.quick else 15.0)

    # Service processes inherit this environment: an OTEL_* variable here would turn "off" on.
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        del os.environ[name]
    os.environ.setdefault("LUMEN_TEST_KEEP_PLATFORM", "1")
    from tests.support.stack import start_stack

    stack = start_stack()
    platform = Platform(stack.kafka_bootstrap, stack.mongo_uri, private=False)
    endpoint = args.otlp_endpoint or stack.jaeger_otlp_endpoint
    query_url = None if args.otlp_endpoint else stack.jaeger_query_url
    os.environ["LUMEN_MONGO_URI"] = stack.mongo_uri  # seed_profiles reads MongoSettings
    root = registry(args.registry)
    users, database = seed_profiles(root, 500)
    run = uuid.uuid4().hex[:6]
    print(f"registry {root}, spans to {endpoint}, {rounds} round(s) of {seconds:.0f} s")

    ingest_runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    recommend_runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    try:
        for number in range(rounds):
            for mode in MODES:
                env = mode_env(mode, endpoint, f"bench-ingest-{mode}-{run}")
                figures = ingest_phase(platform, env, seconds)
                ingest_runs[mode].append(figures)
                print(
                    f"round {number + 1} ingest {mode}: {figures['events_per_s']} events/s, "
                    f"p99 {figures['p99_ms']} ms",
                    flush=True,
                )
            for mode in MODES:
                env = mode_env(mode, endpoint, f"bench-inference-{mode}-{run}")
                figures = recommend_phase(platform, root, database, users, env, seconds)
                recommend_runs[mode].append(figures)
                print(
                    f"round {number + 1} Recommend {mode}: {figures['requests_per_s']} req/s, "
                    f"p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms",
                    flush=True,
                )
    finally:
        drop_database(database)

    ingest_keys = ("events_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_event")
    recommend_keys = ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_request")
    ingest = {mode: medians(runs, ingest_keys) for mode, runs in ingest_runs.items()}
    recommend = {mode: medians(runs, recommend_keys) for mode, runs in recommend_runs.items()}
    results = {
        "quick": args.quick,
        "rounds": rounds,
        "phase_seconds": seconds,
        "otlp_endpoint": endpoint,
        "modes": {mode: MODES[mode] or "no OTLP endpoint (tracing off)" for mode in MODES},
        "registry": str(root),
        "ingest": {
            "concurrency": INGEST_CONCURRENCY,
            "median": ingest,
            "ratio_to_off": ratios(ingest, ingest_keys),
            "runs": ingest_runs,
        },
        "recommend": {
            "streams": RECOMMEND_STREAMS,
            "median": recommend,
            "ratio_to_off": ratios(recommend, recommend_keys),
            "runs": recommend_runs,
        },
        "traces_in_jaeger_at_100pct": {
            "ingest": traces_exported(query_url, f"bench-ingest-sampled_100pct-{run}"),
            "inference": traces_exported(query_url, f"bench-inference-sampled_100pct-{run}"),
        },
    }
    for part in ("ingest", "recommend"):
        for mode, figures in results[part]["ratio_to_off"].items():
            print(f"{part} {mode} / off: {figures}")
    print(f"saved {save_results('tracing_overhead', results)}")


if __name__ == "__main__":
    main()
