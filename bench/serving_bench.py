"""Lumen's inference server and its peers under the same multi-process load generator.

Lumen: ClassifyIntent (typed API, tokenises on the server) and Open Inference Protocol
ModelInfer of the intent model (pre-tokenised rows) at each concurrency level, with dynamic
batching on (the shipped defaults) and off; Recommend open loop at a fixed rate against seeded
profiles; SearchItems closed loop. Average batch size and queue time come from the server's
own metrics, per run. Peers: MLServer serving the same ONNX file, the same ModelInfer bytes,
the same concurrency levels, adaptive batching on and off.

Helpers of the inference owner's benchmark (bench/inference_bench.py) start the server, read
its metrics, seed profiles and measure the tokenising raw baseline.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import inference_bench as ib
from bench.common import StealMeter, peak_rss_bytes
from bench.loadgen import GrpcWorkload, run_load
from bench.stack import Platform
from bench.workloads import (
    CLASSIFY,
    INTENT_MODEL,
    OIP_INFER,
    RECOMMEND,
    SEARCH,
    classify_requests,
    oip_intent_requests,
    recommend_requests,
    search_requests,
)

if TYPE_CHECKING:
    from bench.run_all import Profile

BATCHING_OFF = {INTENT_MODEL: {"max_batch_size": 1}}
# MLServer's adaptive batching: the settings tried, the best at the target concurrency is kept.
MLSERVER_BATCHING = ((32, 0.002), (32, 0.005))
SEARCH_STREAMS = 8


def _closed(
    target: str, method: str, requests: tuple[bytes, ...], concurrency: int, profile: Profile
) -> dict[str, Any]:
    workload = GrpcWorkload(target, method, requests)
    return run_load(
        workload,
        mode="closed",
        concurrency=concurrency,
        seconds=profile.phase_seconds,
        processes=profile.client_processes,
    ).summary()


def _open(
    target: str, method: str, requests: tuple[bytes, ...], profile: Profile
) -> dict[str, Any]:
    workload = GrpcWorkload(target, method, requests)
    return run_load(
        workload,
        mode="open",
        rate=profile.recommend_rps,
        seconds=profile.phase_seconds,
        processes=profile.client_processes,
    ).summary()


def batch_size_buckets(metrics_port: int, model: str) -> dict[str, float]:
    """Cumulative counts of the server's rows-per-execution histogram for ``model``."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "lumen_inference_model_batch_size":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("model") == model:
                le = sample.labels["le"]
                out[le] = out.get(le, 0.0) + sample.value
    return out


def _with_batches(
    server: ib.Server, model: str, run: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    before, buckets = server.metrics(), batch_size_buckets(server.metrics_port, model)
    steal = StealMeter()
    figures: dict[str, Any] = run()
    figures["host_steal_share"] = round(steal.share(), 4)
    figures["server_batching"] = ib.batch_figures(before, server.metrics(), model)
    after = batch_size_buckets(server.metrics_port, model)
    cumulative = {le: after[le] - buckets.get(le, 0.0) for le in after}
    # Executions whose batch had at most `le` rows, minus those counted in the bucket below.
    edges = sorted(cumulative, key=lambda le: float(le))
    figures["server_batching"]["executions_by_batch_size"] = {
        le: int(cumulative[le] - (cumulative[edges[i - 1]] if i else 0.0))
        for i, le in enumerate(edges)
    }
    return figures


def measure_lumen(platform: Platform, registry: Path, profile: Profile) -> dict[str, Any]:
    from services.inference.settings import InferenceSettings

    settings = InferenceSettings()
    raw_seconds = 0.2 if profile.quick else 2.0
    # Measured before the servers and again after the batching-on ClassifyIntent phases: the
    # targets use the mean, so a drift in the machine's speed meanwhile moves both sides.
    raw_typed = ib.raw_onnxruntime(registry, raw_seconds, settings)
    users, database = ib.seed_profiles(registry, 500)
    oip_requests = oip_intent_requests(registry)
    out: dict[str, Any] = {
        "raw_with_tokeniser": raw_typed,
        "concurrency_levels": list(profile.concurrency_levels),
        "modes": {},
    }
    try:
        for mode, batching in (("batching_on", None), ("batching_off", BATCHING_OFF)):
            env = {**platform.env(database), "LUMEN_LOG_LEVEL": "WARNING"}
            if batching is not None:
                env["LUMEN_INFERENCE_BATCHING"] = json.dumps(batching)
            server = ib.Server(registry, env)
            target = f"127.0.0.1:{server.grpc_port}"
            figures: dict[str, Any] = {"classify_intent": {}, "oip_model_infer": {}}
            try:
                levels = (
                    profile.concurrency_levels
                    if mode == "batching_on"
                    else (profile.classify_streams,)
                )
                for c in sorted({*levels, profile.classify_streams}):
                    figures["classify_intent"][str(c)] = _with_batches(
                        server,
                        INTENT_MODEL,
                        partial(_closed, target, CLASSIFY, classify_requests(), c, profile),
                    )
                if mode == "batching_on":  # the first mode; the server idles meanwhile
                    ib.measure_baseline_after_server(registry, raw_typed, 2 * raw_seconds, settings)
                for c in profile.concurrency_levels:
                    figures["oip_model_infer"][str(c)] = _with_batches(
                        server,
                        INTENT_MODEL,
                        partial(_closed, target, OIP_INFER, oip_requests, c, profile),
                    )
                if mode == "batching_on":
                    figures["recommend_open_loop"] = _with_batches(
                        server,
                        "recommender",
                        partial(_open, target, RECOMMEND, recommend_requests(users), profile),
                    )
                    figures["search_items"] = _with_batches(
                        server,
                        "item-search",
                        partial(
                            _closed, target, SEARCH, search_requests(), SEARCH_STREAMS, profile
                        ),
                    )
                figures["peak_rss_bytes"] = peak_rss_bytes(server.proc.pid)
            finally:
                server.stop()
            out["modes"][mode] = figures
            top = figures["classify_intent"][str(profile.classify_streams)]
            print(
                f"  Lumen {mode}: ClassifyIntent x{profile.classify_streams} "
                f"{top['throughput_rps']} req/s p99 {top['p99_ms']} ms",
                flush=True,
            )
    finally:
        ib.drop_database(database)
    out["peak_rss_bytes"] = {"inference": max(m["peak_rss_bytes"] for m in out["modes"].values())}
    return out


def measure_peers(registry: Path, profile: Profile) -> dict[str, Any]:
    """MLServer with the same model file and the same ModelInfer bytes as Lumen."""
    from bench.peers import mlserver
    from services.inference.settings import InferenceSettings
    from shared.model_registry import get_version

    # The peers' onnxruntime sessions spin exactly when Lumen's do (they inherit this variable).
    os.environ["PEER_ALLOW_SPINNING"] = "1" if InferenceSettings().allow_spinning else "0"
    model_path = get_version(INTENT_MODEL, root=registry).model_path
    requests = oip_intent_requests(registry)
    configs: list[tuple[str, int, float]] = [("batching_off", 1, 0.0)]
    tried = MLSERVER_BATCHING[:1] if profile.quick else MLSERVER_BATCHING
    configs += [(f"batching_on_{size}x{int(delay * 1000)}ms", size, delay) for size, delay in tried]
    modes: dict[str, Any] = {}
    for label, size, delay in configs:
        server = mlserver.start(
            INTENT_MODEL, model_path, max_batch_size=size, max_batch_time_s=delay
        )
        try:
            levels = {
                str(c): _closed(server.target, OIP_INFER, requests, c, profile)
                for c in profile.concurrency_levels
            }
            modes[label] = {
                "max_batch_size": size,
                "max_batch_time_s": delay,
                "oip_model_infer": levels,
                "peak_rss_bytes": server.peak_rss_bytes(),
            }
        finally:
            server.stop()
        top = levels[str(max(profile.concurrency_levels))]
        print(
            f"  MLServer {label}: {top['throughput_rps']} req/s p99 {top['p99_ms']} ms", flush=True
        )
    key = str(
        profile.classify_streams
        if profile.classify_streams in profile.concurrency_levels
        else max(profile.concurrency_levels)
    )
    best_on = max(
        (m for m in modes if m.startswith("batching_on")),
        key=lambda m: modes[m]["oip_model_infer"][key]["throughput_rps"],
    )
    out: dict[str, Any] = {
        "mlserver": {"modes": modes, "best_batching_mode": best_on, "parallel_workers": 0}
    }
    out["kserve"] = measure_kserve(model_path, requests, profile)
    return out


def measure_kserve(
    model_path: Path, requests: tuple[bytes, ...], profile: Profile
) -> dict[str, Any]:
    """KServe's Python server when .peers/kserve exists (optional peer; it has no batching)."""
    from bench.peers import kserve_server

    if not kserve_server.available():
        return {"status": "skipped", "reason": "bench/peers/setup_kserve.sh was not run"}
    server = kserve_server.start(INTENT_MODEL, model_path)
    try:
        levels = {
            str(c): _closed(server.target, OIP_INFER, requests, c, profile)
            for c in profile.concurrency_levels
        }
        rss = server.peak_rss_bytes()
    finally:
        server.stop()
    top = levels[str(max(profile.concurrency_levels))]
    print(f"  KServe: {top['throughput_rps']} req/s p99 {top['p99_ms']} ms", flush=True)
    return {
        "status": "ok",
        "modes": {"batching_off": {"oip_model_infer": levels, "peak_rss_bytes": rss}},
    }
