"""Lumen's inference server beside MLServer and KServe on a light intent model:
``python -m bench.peers_light``.

On the default MPNet intent model the model's own run dominates every request, so every
server looks alike. This benchmark serves the MiniLM intent model
(``intent-classifier-clinc150``) instead, where the server's own cost per request shows.
Every server gets the same model file (one registry folder, linked), the same Open
Inference Protocol ModelInfer request bytes (one text of 24 padded tokens per request, only
``probabilities`` asked for), the same multi-process closed-loop load generator (client
processes separate from the servers) at 1, 16 and 32 streams, and its best documented
settings with batching on and off:

- Lumen: the model's declared dynamic batching (config.json: 32 rows, 1 ms, preferred
  8/16/32, two single-thread executions at once), the same with one execution of two
  intra-op threads (the peers' shape), and batching off (``max_batch_size`` 1);
- MLServer 1.7.1: adaptive batching 32 rows / 2 ms and 32 rows / 5 ms, and off, inference in
  the server process (``parallel_workers`` 0, see bench/peers/mlserver.py);
- KServe 0.21.0: no server-side batching exists, so off only.

Each round starts every configuration once, in an order rotated from round to round, so a
change in the shared machine's load meanwhile falls on all of them. Ratios (Lumen / peer,
texts/s and p99) are taken within each round, then their median over the rounds is
reported, beside each configuration's median figures, its server CPU per request and the
host's load average, and the bare model's CPU per row (one onnxruntime thread, batch 1 and
8, measured after each round): the floor under every server's CPU per request. Results: docs/benchmarks/peers_light.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench import inference_bench as ib
from bench.common import StealMeter, machine
from bench.loadgen import GrpcWorkload, run_load
from bench.peers import kserve_server, mlserver
from bench.peers.process_tree import tree_cpu_seconds
from bench.workloads import OIP_INFER, oip_intent_requests

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "benchmarks" / "peers_light.json"
MODEL = "intent-classifier-clinc150"
LEVELS = (1, 16, 32)
MLSERVER_BATCHING = ((32, 0.002), (32, 0.005))


class Running(Protocol):
    @property
    def target(self) -> str: ...

    @property
    def pid(self) -> int: ...

    def stop(self) -> None: ...


@dataclass
class LumenServer:
    server: ib.Server

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.grpc_port}"

    @property
    def pid(self) -> int:
        return self.server.proc.pid

    def stop(self) -> None:
        self.server.stop()


@dataclass
class PeerServer:
    peer: mlserver.MLServer | kserve_server.KServe

    @property
    def target(self) -> str:
        return self.peer.target

    @property
    def pid(self) -> int:
        return self.peer.proc.pid

    def stop(self) -> None:
        self.peer.stop()


@dataclass(frozen=True)
class Contender:
    server: str  # lumen | mlserver | kserve
    mode: str  # batching_off | batching_on[_<rows>x<ms>ms]
    start: Callable[[], Running]

    @property
    def label(self) -> str:
        return f"{self.server}/{self.mode}"


def light_registry(source: Path) -> Path:
    """A registry holding only the light model, linked to ``source``'s folder (same file)."""
    root = Path(tempfile.mkdtemp(prefix="lumen-bench-light-"))
    (root / MODEL).symlink_to((source / MODEL).resolve(), target_is_directory=True)
    return root


def contenders(registry: Path) -> list[Contender]:
    from shared.model_registry import get_version

    model_path = get_version(MODEL, root=registry).model_path

    def lumen(batching: dict[str, Any] | None, intra_op_threads: int = 1) -> Callable[[], Running]:
        env = {
            "LUMEN_INFERENCE_INTRA_OP_THREADS": str(intra_op_threads),
            "LUMEN_LOG_LEVEL": "WARNING",
            "LUMEN_INFERENCE_INTENT_MODEL": MODEL,
            "LUMEN_ASSIST_ENABLED": "false",
            "LUMEN_INFERENCE_LIVE_SEARCH_ENABLED": "false",
            # No MongoDB: nothing on this path reads it (profiles and trends fail fast).
            "LUMEN_MONGO_URI": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200",
        }
        if batching is not None:
            env["LUMEN_INFERENCE_BATCHING"] = json.dumps({MODEL: batching})
        return lambda: LumenServer(ib.Server(registry, env))

    def ml(size: int, delay: float) -> Callable[[], Running]:
        return lambda: PeerServer(
            mlserver.start(MODEL, model_path, max_batch_size=size, max_batch_time_s=delay)
        )

    out = [
        Contender("lumen", "batching_on", lumen(None)),
        Contender("lumen", "batching_off", lumen({"max_batch_size": 1})),
        # The peers' shape (one execution at a time, two intra-op threads): the same two cores
        # through Lumen's documented knobs instead of two single-thread executions.
        Contender("lumen", "batching_on_1x2threads", lumen({"max_concurrent_batches": 1}, 2)),
        Contender("mlserver", "batching_off", ml(1, 0.0)),
    ]
    out += [
        Contender("mlserver", f"batching_on_{size}x{round(delay * 1000)}ms", ml(size, delay))
        for size, delay in MLSERVER_BATCHING
    ]
    if kserve_server.available():
        out.append(
            Contender(
                "kserve", "batching_off", lambda: PeerServer(kserve_server.start(MODEL, model_path))
            )
        )
    return out


def measure(
    contender: Contender,
    requests: tuple[bytes, ...],
    seconds: float,
    processes: int,
    levels: tuple[int, ...],
) -> dict[str, Any]:
    """Every concurrency level against one fresh server: figures per level."""
    running = contender.start()
    out: dict[str, Any] = {}
    try:
        for streams in levels:
            load_before = os.getloadavg()[0]
            cpu_before, steal = tree_cpu_seconds(running.pid), StealMeter()
            metrics_before = running.server.metrics() if isinstance(running, LumenServer) else {}
            result = run_load(
                GrpcWorkload(running.target, OIP_INFER, requests),
                mode="closed",
                concurrency=streams,
                seconds=seconds,
                processes=processes,
            )
            figures = result.summary()
            figures["server_cpu_ms_per_request"] = round(
                1000 * (tree_cpu_seconds(running.pid) - cpu_before) / max(1, result.requests), 3
            )
            figures["host_steal_share"] = round(steal.share(), 4)
            figures["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
            if isinstance(running, LumenServer):  # rows per execution, from its own /metrics
                batches = ib.batch_figures(metrics_before, running.server.metrics(), MODEL)
                figures["server_batching"] = {k: round(v, 3) for k, v in batches.items()}
            out[str(streams)] = figures
    finally:
        running.stop()
    return out


def raw_model_cpu(registry: Path, requests: tuple[bytes, ...], seconds: float) -> dict[str, float]:
    """CPU ms per row of the bare model (one onnxruntime session, one thread, this process)
    at batch 1 and 8 on the same rows: the floor under every server's CPU per request."""
    import inference.grpc_service_pb2 as oip
    import numpy as np

    from services.inference import runtime
    from services.inference.settings import InferenceSettings
    from shared.model_registry import get_version

    settings = InferenceSettings()
    options = runtime.session_options(
        1, settings.inter_op_threads, settings.graph_optimization, settings.allow_spinning
    )
    session = runtime.open_session(str(get_version(MODEL, root=registry).model_path), options)
    rows = []
    for raw in requests:
        message = oip.ModelInferRequest.FromString(raw)
        rows.append(
            {
                t.name: np.frombuffer(c, dtype="<i8").reshape(list(t.shape))
                for t, c in zip(message.inputs, message.raw_input_contents, strict=True)
            }
        )
    out: dict[str, float] = {}
    for batch in (1, 8):
        feeds = {
            name: np.concatenate([rows[i % len(rows)][name] for i in range(batch)])
            for name in rows[0]
        }
        session.run(["probabilities"], feeds)
        runs, began, cpu = 0, time.monotonic(), time.process_time()
        while time.monotonic() - began < seconds:
            session.run(["probabilities"], feeds)
            runs += 1
        out[str(batch)] = round(1000 * (time.process_time() - cpu) / (runs * batch), 3)
    return out


def best_mode(round_figures: dict[str, Any], prefix: str, streams: str) -> str:
    """The mode (label starting with ``prefix``, e.g. ``mlserver/``) with the most texts/s
    at ``streams`` in this round."""
    modes = [m for m in round_figures if m.startswith(prefix)]
    return max(modes, key=lambda m: round_figures[m][streams]["throughput_rps"])


def ratios(
    rounds: list[dict[str, Any]], levels: tuple[int, ...], peers: list[str]
) -> dict[str, Any]:
    """Lumen / peer texts/s and p99 per round (best mode of each side, and like for like),
    and their medians."""
    out: dict[str, Any] = {}
    for streams in map(str, levels):
        per_level: dict[str, Any] = {}
        for peer in peers:
            pairs: dict[str, list[tuple[str, str]]] = {"best_vs_best": []}
            for figures in rounds:
                pairs["best_vs_best"].append(
                    (best_mode(figures, "lumen/", streams), best_mode(figures, f"{peer}/", streams))
                )
            if any(m == f"{peer}/batching_off" for m in rounds[0]):
                pairs["batching_off_vs_off"] = [
                    ("lumen/batching_off", f"{peer}/batching_off") for _ in rounds
                ]
            if any(m.startswith(f"{peer}/batching_on") for m in rounds[0]):
                pairs["batching_on_vs_best_on"] = [
                    ("lumen/batching_on", best_mode(figures, f"{peer}/batching_on", streams))
                    for figures in rounds
                ]
            per_peer: dict[str, Any] = {}
            for kind, chosen in pairs.items():
                texts = [
                    f[lm][streams]["throughput_rps"] / f[pm][streams]["throughput_rps"]
                    for f, (lm, pm) in zip(rounds, chosen, strict=True)
                ]
                p99 = [
                    f[lm][streams]["p99_ms"] / f[pm][streams]["p99_ms"]
                    for f, (lm, pm) in zip(rounds, chosen, strict=True)
                ]
                per_peer[kind] = {
                    "texts_per_second_ratio_median": round(statistics.median(texts), 3),
                    "p99_ratio_median": round(statistics.median(p99), 3),
                    "texts_per_second_ratio_by_round": [round(r, 3) for r in texts],
                    "p99_ratio_by_round": [round(r, 3) for r in p99],
                    "modes_by_round": [list(c) for c in chosen],
                }
            per_level[peer] = per_peer
        out[streams] = per_level
    return out


def medians(rounds: list[dict[str, Any]], levels: tuple[int, ...]) -> dict[str, Any]:
    keys = ("throughput_rps", "p50_ms", "p99_ms", "server_cpu_ms_per_request")
    return {
        label: {
            str(s): {
                key: round(statistics.median(r[label][str(s)][key] for r in rounds), 3)
                for key in keys
            }
            for s in levels
        }
        for label in rounds[0]
    }


def git_commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False, cwd=REPO
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--registry",
        type=Path,
        default=Path(os.environ.get("LUMEN_TEST_SMALL_REGISTRY", REPO / "var" / "models")),
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="each measured phase")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not mlserver.available():
        raise SystemExit("MLServer is not installed: run bench/peers/setup_mlserver.sh")

    # The peers' sessions spin exactly when Lumen's do (they inherit this variable).
    from services.inference.settings import InferenceSettings

    os.environ["PEER_ALLOW_SPINNING"] = "1" if InferenceSettings().allow_spinning else "0"
    registry = light_registry(args.registry)
    try:
        run(args, registry)
    finally:
        shutil.rmtree(registry)  # the link only: rmtree does not follow it


def run(args: argparse.Namespace, registry: Path) -> None:
    requests = oip_intent_requests(registry, MODEL)
    lineup = contenders(registry)
    peers = sorted({c.server for c in lineup} - {"lumen"})
    load_at_start = os.getloadavg()
    rounds: list[dict[str, Any]] = []
    raw_cpu: list[dict[str, float]] = []
    for n in range(args.rounds):
        shift = n % len(lineup)
        order = lineup[shift:] + lineup[:shift]
        figures: dict[str, Any] = {}
        for contender in order:
            figures[contender.label] = measure(
                contender, requests, args.seconds, args.processes, LEVELS
            )
            top = figures[contender.label][str(LEVELS[-1])]
            print(
                f"round {n + 1} {contender.label}: "
                + ", ".join(
                    f"x{s} {figures[contender.label][str(s)]['throughput_rps']:.0f}/s "
                    f"p99 {figures[contender.label][str(s)]['p99_ms']:.1f} ms"
                    for s in LEVELS
                )
                + f" (load {top['load_average_1m'][1]})",
                flush=True,
            )
        rounds.append({label: figures[label] for label in (c.label for c in lineup)})
        raw_cpu.append(raw_model_cpu(registry, requests, min(3.0, args.seconds / 2)))
        print(f"round {n + 1} bare model CPU ms per row by batch: {raw_cpu[-1]}", flush=True)
    report = {
        "benchmark": "peers_light",
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": git_commit(),
        "machine": machine(),
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "model": MODEL,
        "request": "ModelInfer, 1 text x 24 tokens (input_ids, attention_mask INT64, raw), "
        "output probabilities",
        "concurrency_levels": list(LEVELS),
        "rounds": args.rounds,
        "phase_seconds": args.seconds,
        "client_processes": args.processes,
        "peer_allow_spinning": os.environ["PEER_ALLOW_SPINNING"],
        "medians": medians(rounds, LEVELS),
        "ratios_lumen_over_peer": ratios(rounds, LEVELS, peers),
        "raw_model_cpu_ms_per_row_by_batch": {
            b: round(statistics.median(r[b] for r in raw_cpu), 3) for b in raw_cpu[0]
        },
        "raw_model_cpu_by_round": raw_cpu,
        "by_round": rounds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for streams, per_peer in report["ratios_lumen_over_peer"].items():
        for peer, kinds in per_peer.items():
            best = kinds["best_vs_best"]
            print(
                f"x{streams} Lumen/{peer}: texts/s {best['texts_per_second_ratio_median']}x, "
                f"p99 {best['p99_ratio_median']}x (best mode of each)",
                flush=True,
            )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
