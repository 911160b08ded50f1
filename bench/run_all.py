"""The whole benchmark suite in one run: raw limits, every stage, end to end, peer servers.

    .venv/bin/python -m bench --quick                 # smoke run on the shared test stack
    .venv/bin/python -m bench --private-stack --peers # full run (about 20 minutes)

Each part is saved to ``bench/results/<name>.json`` (machine, versions, parameters,
figures) and the whole to ``bench/results/suite.json``; ``bench/report.py`` turns that into
``bench/results/report.md`` with PNG plots. A part that cannot run is recorded as
``failed`` with its error and the run goes on; the exit status is 1 if any part failed.
Figures never decide the exit status: missed targets are highlighted in the report.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, machine, save_results
from bench.stack import Platform

PARTS = ("raw_limits", "ingest", "profiles", "inference", "peers", "e2e")


@dataclass(frozen=True)
class Profile:
    """How long and how hard each part runs."""

    quick: bool
    phase_seconds: float
    concurrency_levels: tuple[int, ...]
    classify_streams: int
    recommend_rps: float
    profile_events: int
    storage_copies: int
    freshness_rate: int
    freshness_seconds: float
    client_processes: int

    @staticmethod
    def of(quick: bool) -> Profile:
        if quick:
            return Profile(True, 1.0, (32,), 32, 200, 2000, 2, 200, 1.0, 2)
        return Profile(False, 10.0, (1, 8, 32, 64), 32, 200, 100_000, 16, 2000, 20.0, 2)


# ---------------------------------------------------------------- environment


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in (
        "onnxruntime",
        "grpcio",
        "kafka-python",
        "aiokafka",
        "pymongo",
        "faust-streaming",
        "starlette",
        "uvicorn",
        "numpy",
        "matplotlib",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    from bench.peers import mlserver

    if mlserver.available():
        pip = mlserver.VENV / "bin" / "pip"
        shown = subprocess.run(
            [str(pip), "show", "mlserver"], capture_output=True, text=True, check=False
        ).stdout
        out["mlserver"] = next(
            (
                line.split(":", 1)[1].strip()
                for line in shown.splitlines()
                if line.startswith("Version:")
            ),
            "unknown",
        )
    return out


def load_conditions() -> dict[str, Any]:
    """Load average and the busiest other processes: the figures depend on them."""
    ps = subprocess.run(
        ["ps", "-eo", "pid,pcpu,rss,comm,args", "--sort=-pcpu"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    own = os.getpid()
    busy = []
    for line in ps[1:]:
        parts = line.split(None, 4)
        if len(parts) == 5 and int(parts[0]) != own and float(parts[1]) >= 5.0:
            busy.append(
                {
                    "pid": int(parts[0]),
                    "cpu_percent": float(parts[1]),
                    "rss_mib": round(int(parts[2]) / 1024),
                    "command": parts[4][:120],
                }
            )
    return {
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "busy_processes": busy[:12],
    }


# ---------------------------------------------------------------- the parts


def part_raw_limits(platform: Platform, registry: Path, profile: Profile) -> dict[str, Any]:
    from bench import raw_limits

    return raw_limits.measure(platform.bootstrap, platform.mongo_uri, registry, profile.quick)


def part_ingest(platform: Platform, registry: Path, profile: Profile) -> dict[str, Any]:
    """The ingest owner's measurements (bench/ingest_bench.py) with the suite's durations."""
    from bench import ingest_bench as ib
    from bench.common import peak_rss_bytes

    seconds, processes = profile.phase_seconds, profile.client_processes
    http_port, grpc_port = ib.free_port(), ib.free_port()
    env = {**ib.server_env(platform.bootstrap, http_port, grpc_port), "LUMEN_LOG_LEVEL": "WARNING"}
    proc = ib.start_server(
        [sys.executable, "-m", "services.ingest"], env, f"http://127.0.0.1:{http_port}/readyz"
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        ib.run_load("batch", f"{base}/v1/batch", 1.0, 8, processes)  # warm-up
        batch = ib.run_load("batch", f"{base}/v1/batch", seconds, 8, processes)
        closed = ib.run_load("track", f"{base}/v1/track", seconds, 50, processes)
        paced = ib.run_load("track", f"{base}/v1/track", seconds, 50, processes, rate=1000)
        rss = peak_rss_bytes(proc.pid)
    finally:
        ib.stop_server(proc)
    return {
        "batch_size": ib.BATCH_SIZE,
        "batch": batch,
        "track_closed_loop_50_clients": closed,
        "track_paced_1000_rps": paced,
        "peak_rss_bytes": {"ingest": rss},
    }


def part_profiles(platform: Platform, registry: Path, profile: Profile) -> dict[str, Any]:
    """The profile owner's measurements (bench/profiles_bench.py) with the suite's sizes."""
    from pymongo import MongoClient

    from bench import profiles_bench as pb

    args = argparse.Namespace(
        kafka=platform.bootstrap,
        mongo=platform.mongo_uri,
        events=profile.profile_events,
        batch_size=2000,
        storage_copies=profile.storage_copies,
        rate=profile.freshness_rate,
        seconds=profile.freshness_seconds,
        keep=False,
    )
    client: MongoClient[dict[str, Any]] = MongoClient(platform.mongo_uri, tz_aware=True)
    try:
        throughput = pb.throughput_and_storage(args, client)
        at_scale = pb.storage_at_scale(args, client)
        fresh = pb.freshness(args, client)
    finally:
        client.close()
    return {
        "throughput": throughput,
        "storage_at_scale": at_scale,
        "freshness": fresh,
        "peak_rss_bytes": {
            "profiles": max(
                throughput.get("worker_peak_rss_bytes", 0), fresh.get("worker_peak_rss_bytes", 0)
            )
        },
    }


def part_inference(platform: Platform, registry: Path, profile: Profile) -> dict[str, Any]:
    from bench import serving_bench

    return serving_bench.measure_lumen(platform, registry, profile)


def part_peers(platform: Platform, registry: Path, profile: Profile) -> dict[str, Any]:
    from bench import serving_bench

    return serving_bench.measure_peers(registry, profile)


def part_e2e(platform: Platform, registry: Path, profile: Profile) -> dict[str, Any]:
    from bench import e2e_bench

    return e2e_bench.measure(platform, registry, e2e_bench.params_for(profile.quick))


RUNNERS: dict[str, Callable[[Platform, Path, Profile], dict[str, Any]]] = {
    "raw_limits": part_raw_limits,
    "ingest": part_ingest,
    "profiles": part_profiles,
    "inference": part_inference,
    "peers": part_peers,
    "e2e": part_e2e,
}


# ---------------------------------------------------------------- the run


def run(
    parts: list[str],
    profile: Profile,
    platform_cm: AbstractContextManager[Platform],
    registry_path: str | None,
    peers: bool,
) -> dict[str, Any]:
    from bench.stack import default_registry

    suite: dict[str, Any] = {
        "quick": profile.quick,
        "profile": asdict(profile),
        "versions": versions(),
        "load_before": load_conditions(),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "parts": {},
    }
    with platform_cm as platform:
        registry = default_registry(registry_path)
        suite["registry"] = str(registry)
        suite["platform"] = {
            "kafka": platform.bootstrap,
            "mongo": platform.mongo_uri,
            "private": platform.private,
        }
        # Services and the benchmark's own clients read these (MongoSettings, KafkaSettings).
        os.environ.update(platform.env(f"lumen_bench_{uuid.uuid4().hex[:6]}"))
        for name in parts:
            if name == "peers" and not peers:
                suite["parts"][name] = {
                    "status": "skipped",
                    "reason": "peers run only with --peers",
                }
                print(f"== {name}: skipped (peers run only with --peers)", flush=True)
                continue
            print(f"== {name}", flush=True)
            started = time.monotonic()
            try:
                figures = RUNNERS[name](platform, registry, profile)
                entry = {"status": "ok", **figures}
            except Exception as error:
                traceback.print_exc()
                entry = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
            entry["wall_seconds"] = round(time.monotonic() - started, 1)
            suite["parts"][name] = entry
            save_results(name if name != "inference" else "serving", entry)
            print(f"   {entry['status']} in {entry['wall_seconds']} s", flush=True)
    suite["load_after"] = load_conditions()
    from bench.targets import evaluate

    suite["targets"] = evaluate(suite["parts"])
    return suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: seconds, not minutes")
    parser.add_argument("--peers", action="store_true", help="also run MLServer (needs .peers/)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma list of {PARTS}")
    parser.add_argument(
        "--private-stack",
        action="store_true",
        help="start a Kafka and mongod of the run's own (var/bench)",
    )
    parser.add_argument("--registry", default=None, help="model registry (default var/models)")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="where report.md and plots go")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}")
    from bench.stack import private_stack, shared_test_stack

    platform_cm = private_stack() if args.private_stack else shared_test_stack()
    started = time.monotonic()
    suite = run(parts, Profile.of(args.quick), platform_cm, args.registry, args.peers)
    suite["wall_seconds"] = round(time.monotonic() - started, 1)
    suite["machine"] = machine()
    path = save_results("suite", suite)
    print(f"saved {path}")
    from bench import report

    out = Path(args.out)
    written = report.write(suite, out)
    print(f"report {written}")
    failed = [n for n, p in suite["parts"].items() if p["status"] == "failed"]
    if failed:
        print(f"FAILED parts: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
