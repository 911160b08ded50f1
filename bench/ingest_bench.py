"""Ingest throughput and latency against a real Kafka, load generator on the same machine.

    .venv/bin/python -m bench.ingest_bench --quick            # ~1 minute, shared test Kafka
    .venv/bin/python -m bench.ingest_bench --bootstrap 127.0.0.1:9092   # full run, dev Kafka
    .venv/bin/python -m bench.ingest_bench --quick --frameworks        # + HTTP framework choice

Figures (saved to bench/results/ingest.json):
- ``/v1/batch`` with 100-event batches: events/s stored by ingest, against a bare kafka-python
  producer sending the same serialized events to the same topic in the same run (measured
  before and after the ingest phase; their mean is the baseline). Target ratio >= 0.70.
- ``/v1/track``: req/s with p50/p99 at 50 concurrent clients (closed loop), and p50/p99 at a
  paced 1,000 req/s (latency counted from each request's scheduled start). Target p99 < 25 ms.
- Peak RSS of the ingest process.
The load comes from several client processes so that one client core is not the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.common import StealMeter, cpu_seconds, peak_rss_bytes, percentile, save_results

REPO = Path(__file__).resolve().parents[1]
WRITE_KEY = "bench-write-key"
SOURCE = "bench"
BATCH_SIZE = 100
TOPIC = "events.raw"
TARGET_RATIO = 0.70


def sample_event(prefix: str, i: int) -> dict[str, Any]:
    """A typical Segment track call from a web client (about 450 bytes)."""
    return {
        "type": "track",
        "userId": f"bench-{prefix}-{i % 5000}",
        "event": "Product Viewed",
        "messageId": f"{prefix}-{i}",
        "timestamp": "2025-06-01T12:00:00.000Z",
        "properties": {
            "productId": f"sku-{i % 977}",
            "price": 19.99,
            "currency": "EUR",
            "category": "shoes",
            "position": i % 20,
        },
        "context": {
            "library": {"name": "analytics.js", "version": "5.2.0"},
            "page": {"path": "/shoes", "url": "https://shop.example/shoes"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
            "locale": "en-GB",
        },
    }


# ---------------------------------------------------------------- baseline: bare producer


def baseline_worker(bootstrap: str, count: int, out: Any) -> None:
    """Send ``count`` enriched events with a bare kafka-python producer; report events/s."""
    from kafka import KafkaProducer

    from services.ingest.validation import enrich
    from shared.events import encode, user_key

    now = datetime.now(UTC)
    prefix = uuid.uuid4().hex[:8]
    records = []
    for i in range(count):
        event = enrich(sample_event(prefix, i), SOURCE, now)
        records.append((user_key(event).encode(), encode(event)))
    # The same producer settings as the ingest service (acks=all, idempotent, linger, batch).
    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=5,
    )
    producer.partitions_for(TOPIC)
    started, cpu_started = time.perf_counter(), time.process_time()
    for key, value in records:
        producer.send(TOPIC, key=key, value=value)
    producer.flush()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    producer.close()
    out.put(
        {
            "events": count,
            "seconds": elapsed,
            "events_per_s": count / elapsed,
            "cpu_us_per_event": round(cpu / count * 1e6, 1),
        }
    )


def run_baseline(bootstrap: str, count: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=baseline_worker, args=(bootstrap, count, queue))
    proc.start()
    result: dict[str, Any] = queue.get(timeout=600)
    proc.join()
    return result


# ---------------------------------------------------------------- load generator


def auth_header() -> str:
    return "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()


async def _batch_load(url: str, seconds: float, concurrency: int) -> dict[str, Any]:
    import aiohttp

    prefix = uuid.uuid4().hex[:8]
    counter = iter(range(10**12))
    stored = 0
    failures: dict[str, int] = {}
    latencies: list[float] = []
    headers = {"Authorization": auth_header(), "Content-Type": "application/json"}
    deadline = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal stored
        while time.perf_counter() < deadline:
            body = orjson.dumps(
                {"batch": [sample_event(prefix, next(counter)) for _ in range(BATCH_SIZE)]}
            )
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status == 200:
                    stored += BATCH_SIZE
                    latencies.append(time.perf_counter() - started)
                else:
                    failures[str(response.status)] = failures.get(str(response.status), 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"events": stored, "seconds": elapsed, "failures": failures, "latencies": latencies}


async def _track_load(
    url: str, seconds: float, concurrency: int, rate: float | None
) -> dict[str, Any]:
    """Closed loop when ``rate`` is None; else each client paces itself to rate/concurrency."""
    import aiohttp

    prefix = uuid.uuid4().hex[:8]
    counter = iter(range(10**12))
    latencies: list[float] = []
    failures: dict[str, int] = {}
    headers = {"Authorization": auth_header(), "Content-Type": "application/json"}
    start = time.perf_counter()
    deadline = start + seconds

    async def client(offset: int) -> None:
        interval = concurrency / rate if rate else 0.0
        scheduled = start + (offset / concurrency) * interval
        while True:
            if rate:
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            began = scheduled if rate else time.perf_counter()
            if began >= deadline:
                return
            event = sample_event(prefix, next(counter))
            del event["type"]
            async with session.post(url, data=orjson.dumps(event), headers=headers) as response:
                await response.read()
                if response.status == 200:
                    latencies.append(time.perf_counter() - began)
                else:
                    failures[str(response.status)] = failures.get(str(response.status), 0) + 1
            scheduled += interval

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(i) for i in range(concurrency)))
    return {
        "requests": len(latencies),
        "seconds": time.perf_counter() - start,
        "failures": failures,
        "latencies": latencies,
    }


def load_worker(
    kind: str, url: str, seconds: float, concurrency: int, rate: float | None, out: Any
) -> None:
    import uvloop

    if kind == "batch":
        out.put(uvloop.run(_batch_load(url, seconds, concurrency)))
    else:
        out.put(uvloop.run(_track_load(url, seconds, concurrency, rate)))


def run_load(
    kind: str, url: str, seconds: float, concurrency: int, processes: int, rate: float | None = None
) -> dict[str, Any]:
    """Spread ``concurrency`` clients (and ``rate``) over ``processes`` client processes."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    per_process = [
        concurrency // processes + (i < concurrency % processes) for i in range(processes)
    ]
    procs = [
        ctx.Process(
            target=load_worker,
            args=(kind, url, seconds, n, rate * n / concurrency if rate else None, queue),
        )
        for n in per_process
    ]
    for proc in procs:
        proc.start()
    parts = [queue.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join()
    latencies = sorted(x for part in parts for x in part["latencies"])
    failures: dict[str, int] = {}
    for part in parts:
        for status, n in part["failures"].items():
            failures[status] = failures.get(status, 0) + n
    elapsed = max(part["seconds"] for part in parts)
    summary: dict[str, Any] = {
        "seconds": round(elapsed, 2),
        "client_processes": processes,
        "concurrency": concurrency,
        "failures": failures,
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
    }
    if kind == "batch":
        events = sum(part["events"] for part in parts)
        summary.update(
            events=events,
            events_per_s=round(events / elapsed),
            requests_per_s=round(len(latencies) / elapsed),
        )
    else:
        summary.update(requests=len(latencies), requests_per_s=round(len(latencies) / elapsed))
    return summary


# ---------------------------------------------------------------- servers under test


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(bootstrap: str, http_port: int, grpc_port: int) -> dict[str, str]:
    from services.ingest.auth import WriteKeys

    return {
        **os.environ,
        "LUMEN_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "LUMEN_INGEST_HTTP_PORT": str(http_port),
        "LUMEN_INGEST_GRPC_PORT": str(grpc_port),
        "LUMEN_INGEST_METRICS_PORT": str(free_port()),
        "LUMEN_INGEST_WRITE_KEYS": WriteKeys.entry(SOURCE, WRITE_KEY),
        "LUMEN_INGEST_RATE_LIMIT_EVENTS_PER_SECOND": "0",
        "LUMEN_LOG_LEVEL": "WARNING",
    }


def start_server(argv: list[str], env: dict[str, str], ready_url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, cwd=REPO, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(ready_url, timeout=1) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{argv} was not ready in time")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve_aiohttp(port: int) -> None:
    """The alternative framework: aiohttp's server in front of the same EventIngestor."""
    import uvloop
    from aiohttp import web

    from services.ingest import metrics
    from services.ingest.auth import WriteKeys, key_from_authorization
    from services.ingest.core import EventIngestor
    from services.ingest.errors import IngestError, Unauthorized
    from services.ingest.http_api import parse_json
    from services.ingest.producer import EventProducer
    from services.ingest.settings import IngestSettings
    from shared.topics import EVENTS_DLQ, EVENTS_RAW

    async def main() -> None:
        settings = IngestSettings()
        producer = EventProducer(settings.kafka, timeout_seconds=settings.produce_timeout_seconds)
        await producer.start(warm_topics=(EVENTS_RAW.name, EVENTS_DLQ.name))
        # As in the service: the reachability probe decides readiness.
        connected = asyncio.Event()
        probe = asyncio.create_task(
            producer.monitor(1.0, lambda up: connected.set() if up else None)
        )
        await connected.wait()
        ingestor = EventIngestor(settings, producer)
        keys = WriteKeys(settings.write_keys)

        duration = metrics.REQUEST_SECONDS.labels("http", "/v1/{type}")
        by_status: dict[int, Any] = {}

        async def track(request: web.Request) -> web.Response:
            # The same bookkeeping as the service's Starlette adapter (instrumented()).
            started = time.perf_counter()
            metrics.IN_FLIGHT.inc()
            try:
                response = await handle(request)
            finally:
                metrics.IN_FLIGHT.dec()
            counter = by_status.get(response.status)
            if counter is None:
                counter = by_status[response.status] = metrics.REQUESTS.labels(
                    "http", "/v1/{type}", str(response.status)
                )
            counter.inc()
            duration.observe(time.perf_counter() - started)
            return response

        async def handle(request: web.Request) -> web.Response:
            try:
                body = parse_json(await request.read())
                source = keys.source_for(
                    key_from_authorization(request.headers.get("authorization"))
                )
                if source is None:
                    raise Unauthorized("unknown write key")
                result = await ingestor.ingest([body], "track", source)
                status = 400 if result.errors else 200
                return web.Response(
                    body=orjson.dumps({"success": status == 200}),
                    status=status,
                    content_type="application/json",
                )
            except IngestError as error:
                return web.Response(
                    body=orjson.dumps({"success": False, "error": error.message}),
                    status=error.http_status,
                    content_type="application/json",
                )

        async def readyz(request: web.Request) -> web.Response:
            return web.Response(text="ready")

        app = web.Application()
        app.add_routes([web.post("/v1/track", track), web.get("/readyz", readyz)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await probe  # runs until the process is stopped

    uvloop.run(main())


# ---------------------------------------------------------------- the run


def framework_comparison(
    bootstrap: str, seconds: float, processes: int, rounds: int
) -> dict[str, Any]:
    """/v1/track closed loop at 50 clients: Starlette+uvicorn (the service) vs aiohttp, in
    alternating rounds; server CPU per request is the figure least disturbed by other load."""
    http_port, grpc_port = free_port(), free_port()
    env = server_env(bootstrap, http_port, grpc_port)
    candidates = {
        "starlette+uvicorn(httptools,uvloop)": [sys.executable, "-m", "services.ingest"],
        "aiohttp(uvloop)": [
            sys.executable,
            "-m",
            "bench.ingest_bench",
            "--serve-aiohttp",
            str(http_port),
        ],
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, argv in candidates.items():
            proc = start_server(argv, env, f"http://127.0.0.1:{http_port}/readyz")
            try:
                url = f"http://127.0.0.1:{http_port}/v1/track"
                run_load("track", url, 1.0, 50, processes)  # warm-up
                cpu_before = cpu_seconds(proc.pid)
                run = run_load("track", url, seconds, 50, processes)
                run["server_cpu_us_per_request"] = round(
                    (cpu_seconds(proc.pid) - cpu_before) / max(run["requests"], 1) * 1e6
                )
                run["peak_rss_bytes"] = peak_rss_bytes(proc.pid)
            finally:
                stop_server(proc)
            runs[name].append(run)
            print(
                f"  {name}: {run['requests_per_s']} req/s, p50 {run['p50_ms']} ms, "
                f"p99 {run['p99_ms']} ms, {run['server_cpu_us_per_request']} us CPU/request"
            )
    summary: dict[str, Any] = {}
    for name, results in runs.items():
        summary[name] = {
            "runs": results,
            "median_requests_per_s": sorted(r["requests_per_s"] for r in results)[
                len(results) // 2
            ],
            "median_server_cpu_us_per_request": sorted(
                r["server_cpu_us_per_request"] for r in results
            )[len(results) // 2],
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short phases (about a minute)")
    parser.add_argument("--bootstrap", default="127.0.0.1:19092", help="Kafka to write to")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument(
        "--frameworks",
        action="store_true",
        help="also compare Starlette+uvicorn with aiohttp on /v1/track",
    )
    parser.add_argument("--serve-aiohttp", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_aiohttp:
        serve_aiohttp(args.serve_aiohttp)
        return

    seconds = 6.0 if args.quick else 20.0
    baseline_events = 60_000 if args.quick else 300_000
    processes = args.client_processes
    results: dict[str, Any] = {"kafka": args.bootstrap, "topic": TOPIC, "quick": args.quick}

    print("baseline: bare kafka-python producer ...")
    before = run_baseline(args.bootstrap, baseline_events)
    print(f"  {before['events_per_s']:.0f} events/s")

    http_port, grpc_port = free_port(), free_port()
    proc = start_server(
        [sys.executable, "-m", "services.ingest"],
        server_env(args.bootstrap, http_port, grpc_port),
        f"http://127.0.0.1:{http_port}/readyz",
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        print(f"/v1/batch x{BATCH_SIZE}, {processes} client processes ...")
        run_load("batch", f"{base}/v1/batch", 1.0, 8, processes)  # warm-up
        cpu_before = cpu_seconds(proc.pid)
        batch = run_load("batch", f"{base}/v1/batch", seconds, 8, processes)
        batch["server_cpu_us_per_event"] = round(
            (cpu_seconds(proc.pid) - cpu_before) / max(batch["events"], 1) * 1e6, 1
        )
        print(f"  {batch['events_per_s']} events/s, p99 {batch['p99_ms']} ms")

        print("/v1/track closed loop, 50 clients ...")
        cpu_before = cpu_seconds(proc.pid)
        closed = run_load("track", f"{base}/v1/track", seconds, 50, processes)
        closed["server_cpu_us_per_request"] = round(
            (cpu_seconds(proc.pid) - cpu_before) / max(closed["requests"], 1) * 1e6
        )
        print(
            f"  {closed['requests_per_s']} req/s, p50 {closed['p50_ms']} ms, "
            f"p99 {closed['p99_ms']} ms"
        )

        print("/v1/track paced at 1,000 req/s, 50 clients ...")
        steal = StealMeter()
        paced = run_load("track", f"{base}/v1/track", seconds, 50, processes, rate=1000)
        paced["host_steal_share"] = round(steal.share(), 4)
        print(
            f"  {paced['requests_per_s']} req/s, p50 {paced['p50_ms']} ms, p99 {paced['p99_ms']} ms"
        )
        rss = peak_rss_bytes(proc.pid)
    finally:
        stop_server(proc)

    print("baseline again ...")
    after = run_baseline(args.bootstrap, baseline_events)
    print(f"  {after['events_per_s']:.0f} events/s")
    baseline = (before["events_per_s"] + after["events_per_s"]) / 2
    ratio = batch["events_per_s"] / baseline
    results["batch"] = {
        "batch_size": BATCH_SIZE,
        "baseline_bare_producer_events_per_s": {
            "before": round(before["events_per_s"]),
            "after": round(after["events_per_s"]),
            "mean": round(baseline),
        },
        "baseline_cpu_us_per_event": [before["cpu_us_per_event"], after["cpu_us_per_event"]],
        "ingest": batch,
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
    }
    results["track_closed_loop_50_clients"] = closed
    results["track_paced_1000_rps"] = {
        **paced,
        "target_p99_ms": 25,
        "meets_target": paced["p99_ms"] < 25 and paced["requests_per_s"] >= 950,
    }
    results["ingest_peak_rss_bytes"] = rss
    print(
        f"ratio ingest/bare producer: {ratio:.2f} (target {TARGET_RATIO}); "
        f"peak RSS {rss / 2**20:.0f} MiB"
    )
    if args.frameworks:
        print("HTTP framework comparison on /v1/track ...")
        results["frameworks"] = framework_comparison(
            args.bootstrap, seconds, processes, rounds=2 if args.quick else 3
        )
    print(f"saved {save_results('ingest', results)}")


if __name__ == "__main__":
    main()
