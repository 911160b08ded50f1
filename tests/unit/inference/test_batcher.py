"""Dynamic batching: order, batch formation, padding, deadlines, draining."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from services.inference.batcher import BatchSpec, DynamicBatcher, Tensors
from services.inference.errors import (
    DeadlineExceeded,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from services.inference.settings import BatchingConfig

SPEC = BatchSpec(frozenset({"x", "ids"}), frozenset({"y"}), {"ids": (1, 0)})


class Recorder:
    """A model that doubles ``x`` and sums ``ids`` rows, remembering each batch size."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[int] = []
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, inputs: Tensors) -> Tensors:
        self.gate.wait(5)
        time.sleep(self.delay)
        self.batches.append(int(inputs["x"].shape[0]))
        y = inputs["x"] * 2
        if "ids" in inputs:
            y = y + inputs["ids"].sum(axis=1, keepdims=True)
        return {"y": y}


@pytest.fixture
def executor():
    with ThreadPoolExecutor(2) as pool:
        yield pool


def make(run: Recorder, executor: ThreadPoolExecutor, **knobs: object) -> DynamicBatcher:
    config = BatchingConfig(**knobs)
    return DynamicBatcher("m", 1, run, SPEC, config, executor)


async def test_requests_share_executions_and_get_their_own_rows_back(executor) -> None:
    run = Recorder(delay=0.01)
    batcher = make(
        run, executor, max_batch_size=8, max_queue_delay_us=20_000, preferred_batch_sizes=[8]
    )
    xs = [np.array([[float(i)]], dtype=np.float32) for i in range(20)]
    results = await asyncio.gather(*(batcher.infer({"x": x}) for x in xs))
    assert [float(r["y"][0, 0]) for r in results] == [2.0 * i for i in range(20)]
    assert sum(run.batches) == 20
    assert len(run.batches) < 20 and max(run.batches) <= 8
    await batcher.close()


async def test_token_axes_are_padded_to_the_longest_request(executor) -> None:
    run = Recorder()
    run.gate.clear()  # hold the first execution so the next requests queue together
    batcher = make(
        run,
        executor,
        max_batch_size=8,
        max_queue_delay_us=1000,
        preferred_batch_sizes=[3],
        max_concurrent_batches=1,
    )
    x = np.zeros((1, 1), dtype=np.float32)
    first = asyncio.create_task(batcher.infer({"x": x, "ids": np.array([[1]])}))
    await asyncio.sleep(0.05)
    others = [
        asyncio.create_task(batcher.infer({"x": x, "ids": np.array([[1, 2, 3]])})),
        asyncio.create_task(batcher.infer({"x": x, "ids": np.array([[5]])})),
        asyncio.create_task(batcher.infer({"x": x, "ids": np.array([[1, 1]])})),
    ]
    await asyncio.sleep(0.01)
    run.gate.set()
    results = await asyncio.gather(first, *others)
    assert [float(r["y"][0, 0]) for r in results] == [1.0, 6.0, 5.0, 2.0]
    assert run.batches == [1, 3]
    await batcher.close()


async def test_different_non_batch_inputs_never_share_an_execution(executor) -> None:
    seen: list[tuple[int, int]] = []

    def run(inputs: Tensors) -> Tensors:
        seen.append((int(inputs["x"].shape[0]), int(inputs["k"][0])))
        return {"y": inputs["x"] * inputs["k"][0]}

    spec = BatchSpec(frozenset({"x"}), frozenset({"y"}))
    batcher = DynamicBatcher(
        "m",
        1,
        run,
        spec,
        BatchingConfig(max_batch_size=8, max_queue_delay_us=20_000, max_concurrent_batches=1),
        executor,
    )
    x = np.ones((1, 1), dtype=np.float32)
    calls = [batcher.infer({"x": x, "k": np.array([k])}) for k in (2, 3, 2, 3)]
    results = await asyncio.gather(*calls)
    assert [float(r["y"][0, 0]) for r in results] == [2.0, 3.0, 2.0, 3.0]
    assert sorted(seen) == [(2, 2), (2, 3)]
    await batcher.close()


async def test_batching_off_runs_one_request_per_execution(executor) -> None:
    run = Recorder()
    batcher = make(run, executor, max_batch_size=1)
    x = np.ones((1, 1), dtype=np.float32)
    await asyncio.gather(*(batcher.infer({"x": x}) for _ in range(5)))
    assert run.batches == [1] * 5
    await batcher.close()


async def test_an_expired_request_is_dropped_from_the_queue(executor) -> None:
    run = Recorder()
    run.gate.clear()
    batcher = make(run, executor, max_batch_size=4, max_queue_delay_us=0, max_concurrent_batches=1)
    x = np.ones((1, 1), dtype=np.float32)
    blocking = asyncio.create_task(batcher.infer({"x": x}))
    await asyncio.sleep(0.02)
    with pytest.raises(DeadlineExceeded):
        await batcher.infer({"x": x * 3}, deadline=time.monotonic() + 0.05)
    run.gate.set()
    await blocking
    await batcher.close()
    assert run.batches == [1]  # the expired request never ran


async def test_a_second_execution_slot_runs_a_batch_while_the_first_is_busy(executor) -> None:
    run = Recorder()
    run.gate.clear()  # both executions block until released
    batcher = make(run, executor, max_batch_size=4, max_queue_delay_us=0, max_concurrent_batches=2)
    x = np.ones((1, 1), dtype=np.float32)
    first = asyncio.create_task(batcher.infer({"x": x}))
    await asyncio.sleep(0.02)
    second = asyncio.create_task(batcher.infer({"x": x * 3}))
    await asyncio.sleep(0.02)
    assert batcher.running_executions == 2  # the second slot took the next request
    third = asyncio.create_task(batcher.infer({"x": x * 5}))
    await asyncio.sleep(0.02)
    assert batcher.running_executions == 2 and not third.done()  # no third slot
    run.gate.set()
    results = await asyncio.gather(first, second, third)
    assert [float(r["y"][0, 0]) for r in results] == [2.0, 6.0, 10.0]
    assert sorted(run.batches) == [1, 1, 1]
    await batcher.close()


async def test_a_batch_started_beside_a_running_one_takes_its_share_of_the_queue(
    executor,
) -> None:
    run = Recorder()
    run.gate.clear()
    batcher = make(run, executor, max_batch_size=8, max_queue_delay_us=0, max_concurrent_batches=2)
    x = np.ones((1, 1), dtype=np.float32)
    first = asyncio.create_task(batcher.infer({"x": x}))
    await asyncio.sleep(0.02)  # running in the first slot
    queued = [asyncio.create_task(batcher.infer({"x": x * i})) for i in range(2, 8)]
    await asyncio.sleep(0.02)
    run.gate.set()
    results = await asyncio.gather(first, *queued)
    assert [float(r["y"][0, 0]) for r in results] == [2.0 * i for i in range(1, 8)]
    assert sum(run.batches) == 7
    assert max(run.batches) == 3  # half of the six queued, not all of them


async def test_small_executions_run_on_the_event_loop_when_allowed(executor) -> None:
    threads: list[int] = []

    def run(inputs: Tensors) -> Tensors:
        threads.append(threading.get_ident())
        return {"y": inputs["x"]}

    batcher = DynamicBatcher(
        "m",
        1,
        run,
        BatchSpec(frozenset({"x"}), frozenset({"y"})),
        BatchingConfig(max_batch_size=8, max_queue_delay_us=0, inline_max_rows=2),
        executor,
    )
    await batcher.infer({"x": np.ones((2, 1))})  # two rows: on the loop
    await batcher.infer({"x": np.ones((3, 1))})  # three: on an executor thread
    assert threads[0] == threading.get_ident()
    assert threads[1] != threading.get_ident()
    await batcher.close()


async def test_close_drains_the_queue_then_refuses_new_requests(executor) -> None:
    run = Recorder(delay=0.01)
    batcher = make(run, executor, max_batch_size=2, max_queue_delay_us=100_000)
    x = np.ones((1, 1), dtype=np.float32)
    pending = [asyncio.create_task(batcher.infer({"x": x})) for _ in range(5)]
    await asyncio.sleep(0)
    await batcher.close()
    assert all(task.done() and not task.exception() for task in pending)
    with pytest.raises(Unavailable):
        await batcher.infer({"x": x})


async def test_a_failing_execution_fails_only_its_batch(executor) -> None:
    def run(inputs: Tensors) -> Tensors:
        if (inputs["x"] < 0).any():
            raise RuntimeError("bad row")
        return {"y": inputs["x"]}

    batcher = DynamicBatcher(
        "m",
        1,
        run,
        BatchSpec(frozenset({"x"}), frozenset({"y"})),
        BatchingConfig(max_batch_size=1),
        executor,
    )
    bad = batcher.infer({"x": -np.ones((1, 1))})
    good = batcher.infer({"x": np.ones((1, 1))})
    results = await asyncio.gather(bad, good, return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert isinstance(results[1], dict)
    await batcher.close()


class PoisonedRows(Recorder):
    """Fails any execution holding a row whose ``x`` is negative, as onnxruntime fails a
    whole batch on one out-of-range index."""

    def __call__(self, inputs: Tensors) -> Tensors:
        if (inputs["x"] < 0).any():
            self.batches.append(int(inputs["x"].shape[0]))
            raise RuntimeError("Gather: indices element out of data bounds")
        return super().__call__(inputs)


async def test_a_poisoned_row_fails_alone_and_its_batch_mates_succeed(executor) -> None:
    run = PoisonedRows()
    run.gate.clear()  # hold the first execution so the rest queue into one batch
    batcher = make(
        run,
        executor,
        max_batch_size=8,
        max_queue_delay_us=50_000,
        preferred_batch_sizes=[8],
        max_concurrent_batches=1,
    )
    first = asyncio.create_task(batcher.infer({"x": np.array([[1.0]], dtype=np.float32)}))
    await asyncio.sleep(0.05)
    values = [2.0, 3.0, -1.0, 4.0, 5.0]
    queued = [
        asyncio.create_task(batcher.infer({"x": np.array([[v]], dtype=np.float32)})) for v in values
    ]
    await asyncio.sleep(0.01)
    run.gate.set()
    results = await asyncio.gather(first, *queued, return_exceptions=True)
    for value, result in zip([1.0, *values], results, strict=True):
        if value < 0:
            assert isinstance(result, InvalidArgument)
            assert "out of data bounds" in str(result)
        else:
            assert isinstance(result, dict) and float(result["y"][0, 0]) == 2 * value
    assert max(run.batches) >= 5  # the poisoned row did share an execution with others first
    await batcher.close()


async def test_a_lone_failing_request_keeps_the_model_error(executor) -> None:
    batcher = make(PoisonedRows(), executor, max_batch_size=8, max_queue_delay_us=0)
    with pytest.raises(RuntimeError, match="out of data bounds"):
        await batcher.infer({"x": np.array([[-1.0]], dtype=np.float32)})
    await batcher.close()


async def test_requests_beyond_the_queue_bound_are_refused_at_once(executor) -> None:
    run = Recorder()
    run.gate.clear()  # the first execution holds the only slot; the rest queue
    batcher = make(run, executor, max_batch_size=1, max_concurrent_batches=1, max_queue_size=3)
    x = np.array([[1.0]], dtype=np.float32)
    running = asyncio.create_task(batcher.infer({"x": x}))
    await asyncio.sleep(0.05)
    queued = [asyncio.create_task(batcher.infer({"x": x})) for _ in range(3)]
    await asyncio.sleep(0.01)
    with pytest.raises(ResourceExhausted, match="3 requests queued"):
        await batcher.infer({"x": x})
    run.gate.set()
    results = await asyncio.gather(running, *queued)
    assert [float(r["y"][0, 0]) for r in results] == [2.0] * 4
    await batcher.close()


async def test_a_call_without_deadline_gets_the_default_one(executor) -> None:
    run = Recorder()
    run.gate.clear()  # the model never answers while the gate is shut
    batcher = DynamicBatcher(
        "m", 1, run, SPEC, BatchingConfig(max_batch_size=1), executor, default_deadline=0.2
    )
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await batcher.infer({"x": np.array([[1.0]], dtype=np.float32)})
    assert 0.15 <= time.monotonic() - started < 2.0
    run.gate.set()
    await batcher.close()
