"""Soak: a bounded run at a steady rate across ingest, the profile updater and inference.

Zero errors, resident memory growth under 10 % after warm-up, consumer lag bounded. CI runs
the short form (LUMEN_SOAK_SECONDS, default 30); ``make soak`` runs ten minutes.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import grpc
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc

from shared.topics import EVENTS_RAW
from tests.integration.inference_helpers import start_inference, tiny_registry
from tests.reliability.checks import caught_up
from tests.reliability.load import EventLoad, delivery, landed
from tests.reliability.services import WRITE_KEY, record, rss_bytes, start_ingest, wait_ready
from tests.support.private_platform import PrivatePlatform
from tests.support.profiles_worker import applied_offsets, end_offsets, mongo, start_worker, unique
from tests.support.stack import ServiceProcess

SECONDS = float(os.environ.get("LUMEN_SOAK_SECONDS", "30"))
RATE = float(os.environ.get("LUMEN_SOAK_RATE", "200"))
WARM_UP = max(10.0, SECONDS / 5)
MAX_RSS_GROWTH = 0.10
MAX_LAG_SECONDS = 10.0  # the updater may fall this far behind, in seconds of load


def test_soak_steady_load_across_all_services(
    platform: PrivatePlatform, owned: list[ServiceProcess]
) -> None:
    stack = platform.stack()
    db = mongo(stack, unique("lumen_soak"))
    # Ingest's dedupe store grows by design until its window or size bound is reached (24 h
    # or 200,000 ids by default: beyond any soak). A window of half the warm-up lets it reach
    # that steady state before memory is measured, so growth after warm-up means a leak.
    ingest = start_ingest(platform, "ingest-soak", dedupe_window_seconds=str(WARM_UP / 2))
    owned.append(ingest)
    wait_ready(ingest)
    worker = start_worker(stack, EVENTS_RAW.name, db.name)
    owned.append(worker)
    caught_up(stack, db)  # the backlog of earlier tests first: lag measures this run only
    inference = start_inference(
        stack, tiny_registry(), LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED="false"
    )
    owned.append(inference)
    services = {"ingest": ingest, "profiles": worker, "inference": inference}

    calls: Counter[str] = Counter()
    stop = threading.Event()

    def inference_load() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{inference.ports['grpc']}") as channel:
            stub = pb_grpc.IntentServiceStub(channel)
            while not stop.is_set():
                try:
                    stub.ClassifyIntent(pb.ClassifyIntentRequest(text="refund please"), timeout=5)
                    calls["OK"] += 1
                except grpc.RpcError as exc:
                    calls[exc.code().name] += 1
                stop.wait(0.05)  # about 20 calls/s

    load = EventLoad(f"http://127.0.0.1:{ingest.ports['http']}", WRITE_KEY, rate=RATE)
    samples: list[dict[str, float]] = []
    caller = threading.Thread(target=inference_load)
    started = time.monotonic()
    load.start()
    caller.start()
    try:
        while (elapsed := time.monotonic() - started) < SECONDS:
            lag = sum(end_offsets(stack, EVENTS_RAW.name).values()) - applied_offsets(
                db, EVENTS_RAW.name
            )
            samples.append(
                {
                    "t": elapsed,
                    "lag": lag,
                    **{name: rss_bytes(s.proc.pid) for name, s in services.items()},
                }
            )
            time.sleep(2)
    finally:
        load.stop()
        stop.set()
        caller.join()
    load.drain(timeout=30)
    caught_up(stack, db)
    counts, _ = landed(stack, EVENTS_RAW.name, load.prefix)
    result = delivery(load, counts)

    warm = [s for s in samples if s["t"] >= WARM_UP]
    assert len(warm) >= 2, "the run is too short for a warm-up and a measurement"
    growth = {
        name: (max(s[name] for s in warm) - warm[0][name]) / warm[0][name] for name in services
    }
    max_lag = max(s["lag"] for s in samples)
    figures = {
        "seconds": SECONDS,
        "rate_events_per_second": RATE,
        "events": load.sent,
        "ingest_dedupe_window_seconds": WARM_UP / 2,
        "http_outcomes": dict(load.statuses),
        "inference_outcomes": dict(calls),
        "rss_growth_after_warm_up": {k: round(v, 4) for k, v in growth.items()},
        "rss_mib_end": {name: round(samples[-1][name] / 2**20, 1) for name in services},
        "max_consumer_lag_records": max_lag,
        **result.as_dict(),
    }
    record(f"soak_{int(SECONDS)}s", figures)
    assert set(load.statuses) == {"200"} and set(calls) == {"OK"}, figures
    assert result.lost == 0 and result.duplicated == 0, result
    assert all(g < MAX_RSS_GROWTH for g in growth.values()), growth
    assert max_lag <= RATE * MAX_LAG_SECONDS, max_lag
