"""Raw limits measured in the same run as the services: what the bare libraries manage.

- Kafka: a bare kafka-python producer sends ingest's own enriched events to ``events.raw``
  (the ingest benchmark's baseline producer, same settings as the service), then a bare
  kafka-python consumer reads exactly those records back (same topic, same payloads).
- onnxruntime: every registry model alone, batch sizes 1..64, the server's session options,
  inputs already tensors (tokenising excluded; same 24-token rows as the OIP workload).
- MongoDB: unordered ``bulk_write`` of profile-shaped ``UpdateOne(upsert=True)`` documents.

    .venv/bin/python -m bench.raw_limits --quick
"""

from __future__ import annotations

import argparse
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import calls_per_thread_loop, save_results

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
TOKENS = 24
HISTORY = 20


# ---------------------------------------------------------------- Kafka


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        return {tp.partition: int(off) for tp, off in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def kafka_consume(
    bootstrap: str, topic: str, start: dict[int, int], end: dict[int, int]
) -> dict[str, Any]:
    """Read every record between two offset snapshots with a bare kafka-python consumer."""
    from kafka import KafkaConsumer, TopicPartition

    wanted = sum(end[p] - start.get(p, 0) for p in end)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        enable_auto_commit=False,
        fetch_max_bytes=50 * 1024 * 1024,
        max_poll_records=5000,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in end]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, start.get(tp.partition, 0))
        seen = size = 0
        # From the first fetch on: prefetching is part of what a consumer's read rate is.
        started = time.perf_counter()
        give_up = time.monotonic() + 120
        while seen < wanted and time.monotonic() < give_up:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.offset < end[record.partition]:
                        seen += 1
                        size += len(record.value or b"")
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
    return {
        "records": seen,
        "seconds": round(seconds, 3),
        "events_per_s": round(seen / seconds) if seconds else 0,
        "mib_per_s": round(size / seconds / 2**20, 2) if seconds else 0,
    }


def kafka_limits(bootstrap: str, count: int) -> dict[str, Any]:
    from bench.ingest_bench import TOPIC, run_baseline

    before = _end_offsets(bootstrap, TOPIC)
    produced = run_baseline(bootstrap, count)
    after = _end_offsets(bootstrap, TOPIC)
    consumed = kafka_consume(bootstrap, TOPIC, before, after)
    return {
        "topic": TOPIC,
        "produce": {
            "events": produced["events"],
            "seconds": round(produced["seconds"], 3),
            "events_per_s": round(produced["events_per_s"]),
        },
        "consume": consumed,
    }


# ---------------------------------------------------------------- onnxruntime


def model_inputs(found: Any, batch: int) -> dict[str, np.ndarray]:
    """Realistic inputs for one model of the registry at ``batch`` rows."""
    from bench.inference_bench import TEXTS

    config = found.config
    rng = np.random.default_rng(0)
    tokens: dict[str, np.ndarray] = {}
    if (found.path / "tokenizer.json").exists():
        from models.runtime import TextTokenizer

        texts = [TEXTS[i % len(TEXTS)] for i in range(batch)]
        encoded = TextTokenizer(found.path / "tokenizer.json").encode(texts)
        width = encoded["input_ids"].shape[1]
        for name, array in encoded.items():
            padded = np.zeros((batch, TOKENS), dtype=np.int64)
            padded[:, : min(TOKENS, width)] = array[:, :TOKENS]
            tokens[name] = padded
    fixed_items = {
        s.shape[1]
        for s in config.inputs
        if s.dtype == "bool" and len(s.shape) == 2 and isinstance(s.shape[1], int)
    }
    n_items = min(fixed_items) if fixed_items else 100
    inputs: dict[str, np.ndarray] = {}
    for spec in config.inputs:
        if spec.name in tokens:
            inputs[spec.name] = tokens[spec.name]
            continue
        shape = []
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, int):
                shape.append(dim)
            elif axis == 0 and dim == "batch":
                shape.append(batch)
            elif dim == "items":
                shape.append(min(_catalogue_rows(found), 1000))
            else:
                # No more positions than a sequence model was trained for.
                shape.append(min(HISTORY, config.max_history() or HISTORY))
        if spec.name == "k":  # top-k may not exceed the items the model ranks
            inputs[spec.name] = np.full(shape, min(10, n_items, _catalogue_rows(found)), np.int64)
        elif spec.name == "catalogue" and (found.path / "embeddings.npy").exists():
            inputs[spec.name] = np.load(found.path / "embeddings.npy").astype(np.float32)
        elif spec.dtype == "bool":
            inputs[spec.name] = np.zeros(shape, dtype=np.bool_)
        elif spec.dtype.startswith("int"):
            inputs[spec.name] = rng.integers(0, n_items, shape).astype(spec.dtype)
        elif spec.dtype == "string":
            inputs[spec.name] = np.full(shape, "space robots", dtype=object)
        else:
            inputs[spec.name] = rng.standard_normal(shape).astype(np.float32)
    return inputs


def _catalogue_rows(found: Any) -> int:
    embeddings = found.path / "embeddings.npy"
    return int(np.load(embeddings, mmap_mode="r").shape[0]) if embeddings.exists() else 10**9


def onnx_limits(
    registry: Path, seconds: float, batch_sizes: tuple[int, ...] = BATCH_SIZES, min_runs: int = 3
) -> dict[str, Any]:
    """Rows/s of each model alone per batch size, with the inference server's session options
    and as many executions side by side as it runs per model."""
    from services.inference import runtime
    from services.inference.settings import InferenceSettings
    from shared.model_registry import get_version, list_models

    settings = InferenceSettings()
    options = runtime.session_options(
        settings.intra_op_threads, settings.inter_op_threads, settings.graph_optimization
    )
    executions = settings.batching_default.max_concurrent_batches
    out: dict[str, Any] = {
        "session": {
            "intra_op_threads": settings.intra_op_threads,
            "inter_op_threads": settings.inter_op_threads,
            "graph_optimization": settings.graph_optimization,
            "executions_side_by_side": executions,
        },
        "models": {},
    }
    for name in list_models(registry):
        found = get_version(name, root=registry)
        session = runtime.open_session(str(found.model_path), options)
        per_batch: dict[str, dict[str, float]] = {}
        for batch in batch_sizes:
            inputs = model_inputs(found, batch)
            session.run(None, inputs)  # warm-up
            runs, elapsed = calls_per_thread_loop(
                partial(session.run, None, inputs), executions, seconds, min_runs
            )
            per_batch[str(batch)] = {
                "rows_per_s": round(runs * batch / elapsed, 1),
                "ms_per_run": round(1000 * elapsed * executions / runs, 3),
            }
        best = max(per_batch, key=lambda b: per_batch[b]["rows_per_s"])
        out["models"][name] = {
            "version": found.version,
            "by_batch": per_batch,
            "best_batch": int(best),
            "best_rows_per_s": per_batch[best]["rows_per_s"],
        }
        print(
            f"  onnxruntime {name}: best {per_batch[best]['rows_per_s']:.0f} rows/s "
            f"at batch {best}",
            flush=True,
        )
    return out


# ---------------------------------------------------------------- MongoDB


def _item_ids(user: int, count: int) -> list[str]:
    """MovieLens-like item ids for one synthetic profile: 1..1682, distinct for up to 106."""
    return [str((user + 16 * j) % 1682 + 1) for j in range(count)]


def mongo_limits(uri: str, documents: int, batch: int = 1000) -> dict[str, Any]:
    """Upserts/s of profile-shaped documents (unordered bulk writes, as the updater does; the
    item lists packed as the updater stores them: 50 recent, 106 bought)."""
    from pymongo import MongoClient, UpdateOne

    from shared.packed_ids import pack_sequence, pack_set

    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
    database = f"lumen_bench_raw_{uuid.uuid4().hex[:8]}"
    collection = client[database]["profiles"]
    prefix = uuid.uuid4().hex[:6]
    try:
        ops = [
            UpdateOne(
                {"_id": f"{prefix}-{i}"},
                {
                    "$set": {
                        "lastSeen": time.time(),
                        "recentItems": pack_sequence(_item_ids(i, 50)),
                        "purchasedItems": pack_set(_item_ids(i, 106)),
                        "affinity": {"Drama": 0.4, "Comedy": 0.2, "Action": 0.1},
                    },
                    "$inc": {"events": 1},
                },
                upsert=True,
            )
            for i in range(documents)
        ]
        started = time.perf_counter()
        for i in range(0, documents, batch):
            collection.bulk_write(ops[i : i + batch], ordered=False)
        seconds = time.perf_counter() - started
        return {
            "documents": documents,
            "batch": batch,
            "seconds": round(seconds, 3),
            "upserts_per_s": round(documents / seconds),
        }
    finally:
        client.drop_database(database)
        client.close()


# ---------------------------------------------------------------- the run


def measure(bootstrap: str, mongo_uri: str, registry: Path, quick: bool) -> dict[str, Any]:
    print("raw limits: bare kafka-python producer and consumer ...", flush=True)
    kafka = kafka_limits(bootstrap, 5_000 if quick else 100_000)
    print(
        f"  produce {kafka['produce']['events_per_s']} events/s, "
        f"consume {kafka['consume']['events_per_s']} events/s",
        flush=True,
    )
    print("raw limits: onnxruntime per model ...", flush=True)
    # Quick: three batch sizes, one timed run each (a MiniLM batch of 64 takes about a second).
    onnx = (
        onnx_limits(registry, 0.1, (1, 8, 32), min_runs=1) if quick else onnx_limits(registry, 1.0)
    )
    print("raw limits: MongoDB bulk upserts ...", flush=True)
    mongo = mongo_limits(mongo_uri, 5_000 if quick else 100_000)
    print(f"  {mongo['upserts_per_s']} upserts/s", flush=True)
    return {"kafka": kafka, "onnxruntime": onnx, "mongodb": mongo}


def main() -> None:
    from bench.stack import default_registry

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--kafka", default="127.0.0.1:19092")
    parser.add_argument("--mongo", default="mongodb://127.0.0.1:27018/?replicaSet=lumen")
    parser.add_argument("--registry", default=None)
    args = parser.parse_args()
    registry = default_registry(args.registry)
    results = measure(args.kafka, args.mongo, registry, args.quick)
    print(f"saved {save_results('raw_limits', {'registry': str(registry), **results})}")


if __name__ == "__main__":
    main()
