"""The recommender at catalogue scale: ranking quality of the sparse model against the dense
one on MovieLens 100k, training time and peak memory on synthetic products of 10^4 and 10^5
items, and Recommend latency at a fixed request rate with the 10^5-item model.

    .venv/bin/python -m bench.recommender_scale [--seconds 60] [--rate 200] [--largest 10000000]

- Quality: both models fitted on the same leave-last-out split (train + validation), full
  ranking of each user's last item, seen items excluded, the popularity prior added.
- Training: each (model, size) fits in a subprocess of its own on ``bench/synthetic_
  interactions.py`` data; its peak RSS is the child's own high-water mark (VmHWM, new at its
  exec), next to its RSS once the data is generated (what the fit adds is the difference).
  Its ``ru_maxrss`` is saved too, but on Linux that one also counts the parent's RSS at the
  fork, so it overstates small children of this (large) parent.
- Serving: an inference server on a private registry (the baseline registry's other models,
  and the 10^5-item sparse model as ``recommender``) and a private mongod holding the users'
  profiles and the model's catalogue (``items``, which inference keeps in memory); Recommend at ``--rate`` requests/s, open loop, for ``--seconds``. The baseline's
  1,682-item dense model is measured the same way in the same run, so the ratio compares
  the two on the same machine at the same moment.

Saves ``docs/benchmarks/recommender_scale.json`` (and prints the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import machine, peak_rss_bytes, percentile
from bench.synthetic_interactions import SyntheticSpec, generate, histories, item_id

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "docs" / "benchmarks" / "recommender_scale.json"
WORK = REPO / "var" / "bench-recommender-scale"
PROFILES = WORK / "profiles.json"  # the served model's users, written by its fit
PROFILE_USERS = 500
RATE = 200.0  # Recommend requests/s of the load
BATCHING: dict[str, Any] = {}  # --batching: the recommender's knobs in both servers
HISTORY = 50  # recent items per bench profile (the updater keeps the last 50)
# (model, items, users, interactions) fitted in a subprocess each.
TRAINING_RUNS = [
    ("dense", 2_500, 25_000, 250_000),
    ("sparse", 2_500, 25_000, 250_000),
    ("dense", 5_000, 50_000, 500_000),
    ("sparse", 5_000, 50_000, 500_000),
    ("dense", 10_000, 100_000, 1_000_000),
    ("sparse", 10_000, 100_000, 1_000_000),
    ("sparse", 100_000, 1_000_000, 10_000_000),
]


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- one fit (child process)


def fit_one(model: str, spec: SyntheticSpec, publish_to: Path | None) -> dict[str, Any]:
    """Generate, fit and (optionally) publish one model; runs in its own process."""
    from models.recommender.model_choice import DenseRecommender
    from models.recommender.neighbours import SparseNeighbours
    from models.recommender.train import popularity_prior

    started = time.perf_counter()
    data = generate(spec)
    per_user = histories(data, spec.n_users)
    generated = time.perf_counter()
    rss_data = current_rss_bytes()
    fitted: DenseRecommender | SparseNeighbours
    cpu_before = time.process_time()
    if model == "dense":
        fitted = DenseRecommender(per_user, spec.n_items)
        table_bytes = fitted.ease.nbytes + fitted.trans.nbytes
    else:
        fitted = SparseNeighbours(per_user, spec.n_items)
        table_bytes = fitted.neighbour_ids.nbytes + fitted.neighbour_weights.nbytes
    fit_seconds = time.perf_counter() - generated
    fit_cpu_seconds = time.process_time() - cpu_before  # all threads: steadier on a busy host
    out: dict[str, Any] = {
        "model": model,
        "items": spec.n_items,
        "users": spec.n_users,
        "interactions": spec.n_interactions,
        "generate_seconds": generated - started,
        "fit_seconds": fit_seconds,
        "fit_cpu_seconds": fit_cpu_seconds,
        "table_mib": table_bytes / 2**20,
        "rss_after_data_mib": rss_data / 2**20,
        "peak_rss_mib": peak_rss_bytes(os.getpid()) / 2**20,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if publish_to is not None:
        export_started = time.perf_counter()
        prior = popularity_prior(per_user, spec.n_items)
        version = publish_model(fitted.to_onnx(prior), spec, data, publish_to)
        out["export_seconds"] = time.perf_counter() - export_started
        out["model_onnx_mib"] = (version / "model.onnx").stat().st_size / 2**20
        out["published"] = str(version)
        longest = np.argsort([-len(h) for h in per_user], kind="stable")[:PROFILE_USERS]
        profiles = {
            f"scale-user-{int(u)}": [item_id(int(i)) for i in per_user[int(u)][-HISTORY:]]
            for u in longest
        }
        PROFILES.write_text(json.dumps(profiles))
        out["peak_rss_mib"] = peak_rss_bytes(os.getpid()) / 2**20
        out["ru_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def publish_model(graph: Any, spec: SyntheticSpec, data: Any, root: Path) -> Path:
    """The sparse model as ``recommender`` in a private registry, with the serving config of
    the baseline's recommender (same inputs, outputs and roles) and its own item count."""
    import onnx

    from bench.synthetic_interactions import category_name
    from models.publish import publish
    from models.runtime.items import ItemIndex
    from shared.model_registry import DataSource, get_version

    base = get_version("recommender", root=baseline_registry()).config
    inputs = [
        spec_.model_copy(update={"shape": ["batch", spec.n_items]})
        if spec_.name == "exclude_mask"
        else spec_
        for spec_ in base.inputs
    ]
    config = base.model_copy(
        update={
            "inputs": inputs,
            "description": "Sparse top-m neighbours recommender (benchmark build on synthetic data).",
            "metrics": {},
            "latency_ms": {},
            "training_data": [
                DataSource(
                    name="synthetic interactions",
                    source=f"bench/synthetic_interactions.py {spec}",
                    license="generated",
                    split="none (benchmark build)",
                )
            ],
            "inputs_fingerprint": "",
        }
    )
    ids = [item_id(row) for row in range(spec.n_items)]
    categories = [[category_name(int(c))] for c in data.item_category]

    def write(folder: Path) -> None:
        onnx.save(graph, str(folder / "model.onnx"))
        ItemIndex(ids, [f"Item {row}" for row in range(spec.n_items)], categories).save(
            folder / "items.json"
        )

    return publish(config, write, lambda c: f"# {c.name}\n\n{c.description}\n", root=root)


def run_fit(
    model: str, items: int, users: int, interactions: int, publish_to: Path | None = None
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.recommender_scale",
        "--fit-one",
        f"{model},{items},{users},{interactions}",
    ]
    if publish_to is not None:
        command += ["--publish", str(publish_to)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {
            "model": model,
            "items": items,
            "users": users,
            "interactions": interactions,
            "failed": done.stderr.strip().splitlines()[-3:],
        }
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------- quality (MovieLens 100k)


def quality() -> dict[str, Any]:
    from models.recommender.data import load_catalogue, load_sequences
    from models.recommender.metrics import full_ranking
    from models.recommender.model_choice import DenseRecommender
    from models.recommender.neighbours import SparseNeighbours
    from models.recommender.train import popularity_prior, shift

    seqs = load_sequences(load_catalogue())
    final = shift(seqs)
    prior = popularity_prior(final.train, seqs.n_items)
    out: dict[str, Any] = {
        "dataset": "MovieLens 100k, leave-last-out, fit on train + validation, test = last item",
        "users": len(seqs.users),
        "items": seqs.n_items,
    }
    models: dict[str, Any] = {}
    for name, build in (("dense", DenseRecommender), ("sparse", SparseNeighbours)):
        started = time.perf_counter()
        model = build(final.train, seqs.n_items)
        fit_seconds = time.perf_counter() - started

        def served(users: np.ndarray, hist: list[np.ndarray], model: Any = model) -> np.ndarray:
            return np.asarray(model.score(users, hist)) + prior

        metrics = full_ranking(served, seqs.history("test"), seqs.targets("test"))
        models[name] = {"fit_seconds": fit_seconds, **metrics}
        print(f"MovieLens 100k {name}: {models[name]}", flush=True)
    out["models"] = models
    out["sparse_over_dense_hr@10"] = models["sparse"]["hr@10"] / models["dense"]["hr@10"]
    out["sparse_over_dense_ndcg@10"] = models["sparse"]["ndcg@10"] / models["dense"]["ndcg@10"]
    return out


# ---------------------------------------------------------------- serving


def baseline_registry() -> Path:
    """The registry of the default models: ``LUMEN_BENCH_BASELINE_REGISTRY``, else
    ``var/models``, else the tests' pinned small registry."""
    from shared.model_registry import list_versions

    for candidate in (
        os.environ.get("LUMEN_BENCH_BASELINE_REGISTRY"),
        str(REPO / "var" / "models"),
        os.environ.get("LUMEN_TEST_SMALL_REGISTRY"),
    ):
        if (
            candidate
            and list_versions("recommender", candidate)
            and list_versions("intent-classifier", candidate)
        ):
            return Path(candidate)
    raise SystemExit("no registry with recommender and intent-classifier (make models)")


def scale_registry(root: Path) -> Path:
    """A private registry: the baseline's other models (linked, read only) and an empty
    ``recommender`` the fit publishes into."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for model in baseline_registry().iterdir():
        if model.is_dir() and model.name != "recommender" and not model.name.startswith("."):
            (root / model.name).symlink_to(model.resolve())
    return root


@contextmanager
def private_mongo() -> Iterator[str]:
    """A mongod of the benchmark's own (no Kafka: Recommend reads only profiles)."""
    from bench.inference_bench import free_port
    from lumen_cli.platform import mongo

    variables = {
        "LUMEN_VAR_DIR": str(WORK / "platform"),
        "LUMEN_CACHE_DIR": str(REPO / "var" / "cache"),
        "LUMEN_LOCAL_MONGO_PORT": str(free_port()),
    }
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        mongo.stop()  # left over from an interrupted run (its pid file says so)
        shutil.rmtree(WORK / "platform" / "data", ignore_errors=True)
        yield mongo.start()
    finally:
        mongo.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def write_profiles(uri: str, database: str, profiles: dict[str, list[str]]) -> None:
    from pymongo import MongoClient

    from shared import profile_document as doc
    from shared.packed_ids import pack_sequence, pack_set

    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
    client[database]["profiles"].insert_many(
        [
            {
                doc.ID: user,
                doc.RECENT_ITEMS: pack_sequence(items),
                doc.PURCHASED_ITEMS: pack_set(items),
            }
            for user, items in profiles.items()
        ]
    )
    client.close()


def write_catalogue(uri: str, database: str, root: Path) -> int:
    """The served model's items as the profile updater stores them (``items``, with
    ``updatedAt`` and its index): inference reads the catalogue from there, as in a product."""
    from datetime import UTC, datetime

    from pymongo import MongoClient

    from models.runtime.items import ItemIndex
    from shared import catalogue
    from shared.model_registry import get_version
    from shared.mongo import ITEMS, ensure_indexes

    index = ItemIndex.load(get_version("recommender", root=root).file("items.json"))
    now = datetime.now(UTC)
    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
    db = client[database]
    ensure_indexes(db)
    docs = [
        {
            "_id": item,
            catalogue.TITLE: index.titles[row] if index.titles else item,
            catalogue.CATEGORIES: index.categories[row] if index.categories else [],
            catalogue.REMOVED: False,
            catalogue.UPDATED_AT: now,
        }
        for row, item in enumerate(index.item_ids)
    ]
    for start in range(0, len(docs), 10_000):
        db[ITEMS].insert_many(docs[start : start + 10_000], ordered=False)
    client.close()
    return len(docs)


def baseline_profiles(root: Path) -> dict[str, list[str]]:
    """Users of the baseline model: 50 recent items each, as the MovieLens users have."""
    from models.runtime.items import ItemIndex
    from shared.model_registry import get_version

    items = ItemIndex.load(get_version("recommender", root=root).file("items.json")).item_ids
    rng = np.random.default_rng(0)
    count = min(HISTORY, len(items))
    return {
        f"baseline-user-{u}": [items[int(j)] for j in rng.choice(len(items), count, replace=False)]
        for u in range(PROFILE_USERS)
    }


def raw_latency(root: Path, runs: int = 2_000) -> dict[str, float]:
    """One execution of the registry's recommender in onnxruntime (batch 1, a 50-item
    history, k = 100 as the server asks), without the server around it."""
    import onnxruntime as ort

    from models.runtime.items import ItemIndex
    from shared.model_registry import get_version

    found = get_version("recommender", root=root)
    n = len(ItemIndex.load(found.file("items.json")))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(found.model_path), options, ["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = [
        {
            "recent_items": rng.integers(0, n, (1, HISTORY)),
            "exclude_mask": np.zeros((1, n), dtype=bool),
            "k": np.array([min(100, n)], dtype=np.int64),
        }
        for _ in range(64)
    ]
    for feed in feeds:
        session.run(None, feed)
    latencies = []
    for r in range(runs):
        started = time.perf_counter()
        session.run(None, feeds[r % len(feeds)])
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    return {
        "items": n,
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
    }


def load_average() -> float:
    return os.getloadavg()[0]


def serve(
    root: Path, uri: str, database: str, users: list[str], rate: float, seconds: float
) -> dict[str, Any]:
    from bench.inference_bench import Server, batch_figures, noop_load, recommend_load

    env = {
        "LUMEN_MONGO_URI": uri,
        "LUMEN_MONGO_DATABASE": database,
        # Recommend alone: the live search index would embed the whole catalogue at start
        # (once, then cached in item_vectors); search is measured by bench.search_scale.
        "LUMEN_INFERENCE_LIVE_SEARCH_ENABLED": "false",
    }
    if BATCHING:
        env["LUMEN_INFERENCE_BATCHING"] = json.dumps({"recommender": BATCHING})
    server = Server(root, env)
    try:
        load_before = load_average()
        floor = asyncio.run(noop_load(server, rate, min(seconds, 20.0)))
        before = server.metrics()
        load = asyncio.run(recommend_load(server, users, rate, seconds))
        load.update(batch_figures(before, server.metrics(), "recommender"))
        load["health_check_floor"] = floor
        # Other work on this shared machine shows here (1-minute load averages, 2 cores).
        load["host_load_average"] = {"before": load_before, "after": load_average()}
        load["server_peak_rss_mib"] = peak_rss_bytes(server.proc.pid) / 2**20
        return load
    finally:
        server.stop()


def serving(
    rate: float, seconds: float, scale_root: Path, scale_users: dict[str, list[str]]
) -> dict[str, Any]:
    base_root = baseline_registry()
    base_users = baseline_profiles(base_root)
    out: dict[str, Any] = {
        "rate_per_second": rate,
        "seconds": seconds,
        "baseline_registry": str(base_root),
        "raw_onnxruntime": {"baseline": raw_latency(base_root), "scale": raw_latency(scale_root)},
    }
    print(f"raw onnxruntime: {out['raw_onnxruntime']}", flush=True)
    with private_mongo() as uri:
        for label, root, users in (
            ("baseline", base_root, base_users),
            ("scale", scale_root, scale_users),
        ):
            # Each model's own catalogue in a database of its own, as its product would have.
            database = f"lumen_scale_{label}_{uuid.uuid4().hex[:6]}"
            write_profiles(uri, database, users)
            catalogue_items = write_catalogue(uri, database, root)
            out[label] = serve(root, uri, database, list(users), rate, seconds)
            out[label]["catalogue_items_in_mongodb"] = catalogue_items
            print(f"Recommend {label}: {out[label]}", flush=True)
    out["p99_scale_over_baseline"] = out["scale"]["p99_ms"] / out["baseline"]["p99_ms"]
    return out


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="Recommend load duration")
    parser.add_argument("--rate", type=float, default=RATE, help="Recommend requests/s")
    parser.add_argument(
        "--largest",
        type=int,
        default=10_000_000,
        help="skip training runs above this many interactions",
    )
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-serving", action="store_true")
    parser.add_argument(
        "--serve-only",
        action="store_true",
        help="only the Recommend load, on the model and profiles of the last full run",
    )
    parser.add_argument(
        "--batching",
        metavar="JSON",
        help="the recommender's batching knobs in both servers, e.g. '{\"inline_max_rows\": 0}' "
        "(saved beside the run with the shipped knobs)",
    )
    parser.add_argument(
        "--refit",
        action="store_true",
        help="with --serve-only: fit and publish the served model again first (after a "
        "change to the model or its graph), replacing its training figures",
    )
    parser.add_argument(
        "--add-run",
        metavar="MODEL,ITEMS,USERS,INTERACTIONS",
        help="one more training run, added to (or replacing the same run in) the saved figures",
    )
    parser.add_argument("--fit-one", help=argparse.SUPPRESS)  # model,items,users,interactions
    parser.add_argument("--publish", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fit_one:
        model, *sizes = args.fit_one.split(",")
        items, users, interactions = map(int, sizes)
        spec = SyntheticSpec(n_items=items, n_users=users, n_interactions=interactions)
        publish_to = Path(args.publish) if args.publish else None
        print(json.dumps(fit_one(model, spec, publish_to)))
        return

    results: dict[str, Any] = {"machine": machine()}
    if args.add_run:
        saved = json.loads(OUTPUT.read_text())
        model, *sizes = args.add_run.split(",")
        items, users, interactions = map(int, sizes)
        result = run_fit(model, items, users, interactions)
        print(f"fit: {result}", flush=True)
        saved["training"] = [
            t for t in saved["training"] if (t["model"], t["items"]) != (model, items)
        ] + [result]
        OUTPUT.write_text(json.dumps(saved, indent=2) + "\n")
        print(f"saved {OUTPUT}")
        return
    if args.serve_only:
        saved = json.loads(OUTPUT.read_text())
        if args.refit:
            run = max(
                (r for r in TRAINING_RUNS if r[0] == "sparse" and r[3] <= args.largest),
                key=lambda r: r[3],
            )
            result = run_fit(*run, publish_to=scale_registry(WORK / "registry"))
            print(f"fit: {result}", flush=True)
            saved["training"] = [
                result if (t["model"], t["items"]) == (run[0], run[1]) else t
                for t in saved["training"]
            ]
        # A run at another rate is kept beside the one at the default rate.
        key = "serving" if args.rate == RATE else f"serving_at_{args.rate:g}_per_second"
        if args.batching:
            BATCHING.update(json.loads(args.batching))
            key += "_batching_" + "_".join(f"{k}_{v}" for k, v in sorted(BATCHING.items()))
        saved[key] = serving(
            args.rate, args.seconds, WORK / "registry", json.loads(PROFILES.read_text())
        )
        OUTPUT.write_text(json.dumps(saved, indent=2) + "\n")
        print(f"saved {OUTPUT}")
        return

    def save() -> None:
        results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        OUTPUT.write_text(json.dumps(results, indent=2) + "\n")
        print(f"saved {OUTPUT}", flush=True)

    if not args.skip_quality:
        results["quality"] = quality()
    runs = [run for run in TRAINING_RUNS if run[3] <= args.largest]
    served = max(run[3] for run in runs if run[0] == "sparse")
    scale_root = scale_registry(WORK / "registry")
    # The sparse runs and the load on the largest first, the dense ones (slowest) last; the
    # file is saved after each run, so an interrupted run keeps what it measured.
    results["training"] = []
    for model, items, users, interactions in sorted(runs, key=lambda run: run[0] == "dense"):
        publish_to = scale_root if model == "sparse" and interactions == served else None
        result = run_fit(model, items, users, interactions, publish_to)
        results["training"].append(result)
        print(f"fit: {result}", flush=True)
        save()
        if publish_to is not None and not args.skip_serving and "published" in result:
            profiles = json.loads(PROFILES.read_text())
            results["serving"] = serving(args.rate, args.seconds, scale_root, profiles)
            save()


if __name__ == "__main__":
    main()
