"""Workers killed and restarted under load.

* Profile updater: ``kill -9`` mid-stream and a restart, then a second worker of the same group
  joining and leaving (two rebalances), all while ingest takes a steady HTTP load. Every
  acknowledged event is applied exactly once, and the documents equal a clean single pass.
* Inference server: ``kill -9`` and a restart under a steady gRPC load; calls fail only while it
  is down, and only with UNAVAILABLE (never a wrong answer), and succeed again after.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc

from shared.topics import EVENTS_RAW
from tests.integration.inference_helpers import start_inference, tiny_registry
from tests.reliability.checks import (
    caught_up,
    clean_pass_matches,
    interaction_counts_match,
    profile_counts_match,
)
from tests.reliability.load import EventLoad, delivery, landed
from tests.reliability.services import WRITE_KEY, record, start_ingest, wait_ready
from tests.support.private_platform import PrivatePlatform
from tests.support.profiles_worker import metric, mongo, start_worker, unique
from tests.support.stack import ServiceProcess, Stack, wait_for

RATE = 250.0


def test_profile_updater_kill_restart_and_rebalance_under_load(
    platform: PrivatePlatform, owned: list[ServiceProcess]
) -> None:
    stack = platform.stack()
    db = mongo(stack, unique("lumen_profiles_worker_faults"))
    app_id = unique("lumen-profiles-faults")
    ingest = start_ingest(platform)
    owned.append(ingest)
    wait_ready(ingest)
    load = EventLoad(f"http://127.0.0.1:{ingest.ports['http']}", WRITE_KEY, rate=RATE)
    # Rare Kafka commits: the kill lands after MongoDB commits the Kafka offsets lag behind.
    # A short session timeout: the group drops the killed member soon, not after 30 s.
    options = {"batch_size": 100, "session_timeout_seconds": 8}
    first = start_worker(
        stack, EVENTS_RAW.name, db.name, app_id=app_id, commit_interval_seconds=10, **options
    )
    workers = owned
    workers.append(first)
    started = time.monotonic()
    try:
        load.start()
        time.sleep(5)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        time.sleep(2)
        restarted = start_worker(stack, EVENTS_RAW.name, db.name, app_id=app_id, **options)
        workers.append(restarted)
        time.sleep(4)
        joining = start_worker(stack, EVENTS_RAW.name, db.name, app_id=app_id, **options)
        leaving_start = time.monotonic()
        workers.append(joining)
        # The group rebalances onto both workers; the new one applies its share.
        wait_for(lambda: metric(joining, "lumen_profiles_events_processed_total") > 0, timeout=90)
        joined_after = time.monotonic() - leaving_start
        time.sleep(2)
        joining_processed = metric(joining, "lumen_profiles_events_processed_total")
        leaving = time.monotonic()
        # SIGTERM: the worker leaves the group, which rebalances back onto one worker. (Under a
        # steady load it may not drain within the 30 s grace and is then killed: recorded.)
        left_with = joining.stop()
        left_after = time.monotonic() - leaving
        time.sleep(4)
    finally:
        load.stop()
    load.drain()
    try:
        assert ingest.proc.poll() is None
        counts, users = landed(stack, EVENTS_RAW.name, load.prefix)
        result = delivery(load, counts)
        caught_up(stack, db)
        replays = metric(restarted, "lumen_profiles_events_skipped_total")
        processed_by = {
            "restarted": metric(restarted, "lumen_profiles_events_processed_total"),
            "joining_and_leaving": joining_processed,
        }
    finally:
        for worker in workers:
            worker.stop()
        ingest.stop()
    assert load.unacknowledged == 0 and result.lost == 0 and result.duplicated == 0, result
    profiles = profile_counts_match(db, counts, users)
    profiles |= interaction_counts_match(db, counts, users)
    compared = clean_pass_matches(stack, db, only=load.prefix)
    record(
        "fault_profile_updater_kill_and_rebalance",
        {
            "rate_events_per_second": RATE,
            "duration_seconds": round(time.monotonic() - started, 1),
            "events_generated": load.sent,
            "outcomes": dict(load.statuses),
            "replayed_records_skipped_after_kill": replays,
            "processed_by": processed_by,
            "second_worker_first_event_seconds": round(joined_after, 1),
            "second_worker_exit_code": left_with,
            "second_worker_leave_seconds": round(left_after, 1),
            **result.as_dict(),
            **profiles,
            "clean_pass_profiles_compared": compared,
        },
    )
    assert processed_by["joining_and_leaving"] > 0, "the second worker never got a partition"


def test_inference_kill_9_and_restart_under_load(
    platform: PrivatePlatform, owned: list[ServiceProcess]
) -> None:
    stack = platform.stack()
    registry = tiny_registry()
    env = {"LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED": "false"}
    server = start_inference(stack, registry, **env)
    owned.append(server)
    port = server.ports["grpc"]
    outcomes: list[tuple[float, str]] = []
    per_client: dict[int, list[tuple[float, str]]] = {}
    wrong: list[str] = []
    stop = threading.Event()

    def client() -> None:
        mine = per_client.setdefault(threading.get_ident(), [])
        # A client that reconnects promptly once the server is back (gRPC's default backoff
        # can wait up to two minutes).
        options = [
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 500),
            ("grpc.min_reconnect_backoff_ms", 100),
        ]
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
            stub = pb_grpc.IntentServiceStub(channel)
            while not stop.is_set():
                try:
                    reply = stub.ClassifyIntent(
                        pb.ClassifyIntentRequest(text="refund please"), timeout=2
                    )
                    if reply.prediction.intent != "refund":
                        wrong.append(reply.prediction.intent)
                    outcomes.append((time.monotonic(), "OK"))
                    mine.append(outcomes[-1])
                except grpc.RpcError as exc:
                    outcomes.append((time.monotonic(), exc.code().name))
                    mine.append(outcomes[-1])
                    time.sleep(0.05)
                time.sleep(0.01)  # a steady, modest rate per client

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    restarted = server
    try:
        time.sleep(3)
        killed_at = time.monotonic()
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        time.sleep(2)
        restarted = start_inference_on_port(stack, registry, port, env)
        owned.append(restarted)
        back_at = time.monotonic()
        time.sleep(6)
    finally:
        stop.set()
        for t in threads:
            t.join()
        restarted.stop()
    before = Counter(o for t, o in outcomes if t < killed_at)
    during = Counter(o for t, o in outcomes if killed_at <= t < back_at)
    # Each client channel reconnects on its own schedule; after the last one is back, every
    # call succeeds.
    first_ok = [
        min((t for t, o in mine if t >= back_at and o == "OK"), default=float("inf"))
        for mine in per_client.values()
    ]
    recovered_at = max(first_ok)
    reconnecting = Counter(o for t, o in outcomes if back_at <= t < recovered_at)
    after = Counter(o for t, o in outcomes if t >= recovered_at)
    record(
        "fault_inference_kill",
        {
            "calls": len(outcomes),
            "before_kill": dict(before),
            "while_down": dict(during),
            "reconnecting": dict(reconnecting),
            "after_reconnect": dict(after),
            "reconnected_seconds_after_restart": round(recovered_at - back_at, 2),
            "wrong_answers": len(wrong),
            "down_seconds": round(back_at - killed_at, 1),
        },
    )
    assert wrong == []
    assert recovered_at - back_at < 5, "a client did not reconnect within 5 s"
    assert set(before) == {"OK"} and set(after) == {"OK"}, (before, after)
    assert set(reconnecting) <= {"OK", "UNAVAILABLE"}, reconnecting
    assert set(during) <= {"OK", "UNAVAILABLE"} and during["UNAVAILABLE"] > 0, during


def start_inference_on_port(
    stack: Stack, registry: Path, port: int, env: dict[str, str]
) -> ServiceProcess:
    """The restarted server takes the same address, as a supervisor would restart it."""
    from lumen_cli.platform.services import grpc_serving
    from tests.support.stack import free_port, start_service

    metrics_port = free_port()
    service_env = {
        **stack.env(),
        "LUMEN_MODEL_REPOSITORY": str(registry),
        "LUMEN_INFERENCE_MODEL_REPOSITORY": str(registry),
        "LUMEN_INFERENCE_GRPC_PORT": str(port),
        "LUMEN_INFERENCE_METRICS_PORT": str(metrics_port),
        "LUMEN_INFERENCE_INTRA_OP_THREADS": "1",
        **env,
    }
    return start_service(
        "inference",
        "services.inference",
        service_env,
        ready=lambda: grpc_serving(f"127.0.0.1:{port}"),
        ports={"grpc": port, "metrics": metrics_port},
    )
