"""Dynamic batching for one loaded model version, with Triton's knobs.

Requests wait in one FIFO queue. A batch is formed from the oldest request and every later
request that can share its execution (same non-batch inputs and shapes, after padding the
declared axes), dispatched when it reaches the preferred size, the maximum batch size, or
when the oldest request has waited ``max_queue_delay_us``. With several executions at once,
one that starts while others run takes its share of the queue rather than all of it. Each
request gets its own rows back in order. Executions run in a thread pool (onnxruntime
releases the GIL), so the event loop never waits on them, except small ones of a model whose
``inline_max_rows`` lets them run on the loop (cheaper than the thread hand-off); a request
whose deadline passes while queued is dropped with :class:`DeadlineExceeded`; a request
that sends none gets ``default_deadline`` seconds. At most ``max_queue_size`` requests wait:
one more is refused with :class:`ResourceExhausted`. When an execution of several requests
fails, each is run again alone, so that one request the model cannot run fails by itself
(:class:`InvalidArgument` when others of its batch succeed) and the rest get their outputs.
With tracing on, each request's queue wait and execution are spans in its caller's trace
(``services/inference/spans.py``) and the queue and compute histograms carry its trace id as
exemplar.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

from services.inference import metrics, spans
from services.inference.errors import (
    DeadlineExceeded,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from services.inference.settings import BatchingConfig

log = logging.getLogger(__name__)

KEY_BYTES = 1024  # non-batch inputs up to this size are compared by value
Tensors = dict[str, np.ndarray]
RunFn = Callable[[Tensors], Tensors]


@dataclass(frozen=True)
class BatchSpec:
    """How a model's tensors are batched.

    ``batched_inputs``/``batched_outputs`` have the batch on axis 0; other inputs must be
    equal for requests to share an execution. ``pad`` gives, per input, the axis padded on
    the right to the longest request and the value used (token ids: 0 with a 0 mask).
    """

    batched_inputs: frozenset[str]
    batched_outputs: frozenset[str]
    pad: dict[str, tuple[int, int | float]] = field(default_factory=dict)


@dataclass
class _Pending:
    inputs: Tensors
    rows: int
    key: tuple[object, ...]
    future: asyncio.Future[Tensors]
    enqueued: float
    deadline: float | None
    # Tracing on: the caller's context (its span is the parent of the queue and execution
    # spans) and the wall-clock enqueue time those spans start at.
    trace_parent: Context | None = None
    enqueued_ns: int = 0


class DynamicBatcher:
    def __init__(
        self,
        model: str,
        version: int,
        run: RunFn,
        spec: BatchSpec,
        config: BatchingConfig,
        executor: Executor,
        default_deadline: float | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.model, self.version = model, version
        self._tracer = tracer if tracer is not None else spans.request_tracer()
        self._default_deadline = default_deadline
        self._run, self._spec, self._config, self._executor = run, spec, config, executor
        self._series = metrics.ModelSeries.of(model, str(version))
        self._max_rows = config.max_batch_size if config.enabled else 1
        preferred = [s for s in config.preferred_batch_sizes if s <= self._max_rows]
        self._target_rows = max(preferred) if preferred else self._max_rows
        self._delay = config.max_queue_delay_us / 1e6 if config.enabled else 0.0
        self._queue: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(config.max_concurrent_batches)
        self._running: set[asyncio.Task[None]] = set()  # executions holding a slot
        self._closing = False
        self._task = asyncio.create_task(self._loop(), name=f"batcher-{model}-{version}")

    @property
    def max_rows(self) -> int:
        return self._max_rows

    @property
    def running_executions(self) -> int:
        return len(self._running)

    async def infer(self, inputs: Tensors, deadline: float | None = None) -> Tensors:
        """Queue one request (its rows on axis 0 of each batched input) and await its outputs."""
        if self._closing:
            raise Unavailable(f"{self.model} version {self.version} is unloading")
        if len(self._queue) >= self._config.max_queue_size:
            self._series.failed.inc()
            raise ResourceExhausted(
                f"{self.model} has {len(self._queue)} requests queued (the most it takes); "
                "retry later"
            )
        if deadline is None and self._default_deadline is not None:
            deadline = time.monotonic() + self._default_deadline
        loop = asyncio.get_running_loop()
        pending = _Pending(
            inputs=inputs,
            rows=self._rows(inputs),
            key=self._key(inputs),
            future=loop.create_future(),
            enqueued=time.monotonic(),
            deadline=deadline,
        )
        if self._tracer is not None:
            parent = otel_context.get_current()
            # Only a sampled caller's spans are kept: the unsampled 99 % of a 1 % sampler cost
            # nothing more here than this look-up.
            if trace.get_current_span(parent).get_span_context().trace_flags.sampled:
                pending.trace_parent = parent
                pending.enqueued_ns = time.time_ns()
        self._queue.append(pending)
        self._series.queue_depth.set(len(self._queue))
        self._wakeup.set()
        if deadline is None:
            return await pending.future
        # A timer, not asyncio.wait_for: that adds a waiter future and callbacks per request.
        timer = loop.call_later(max(0.0, deadline - time.monotonic()), self._expire, pending)
        try:
            return await pending.future
        finally:
            timer.cancel()

    def _expire(self, pending: _Pending) -> None:
        if not pending.future.done():  # queued or executing: its rows are dropped unread
            pending.future.set_exception(
                DeadlineExceeded("the deadline passed before the model answered")
            )
            self._series.failed.inc()

    async def close(self) -> None:
        """Stop accepting requests, run everything already queued, wait for executions."""
        self._closing = True
        self._wakeup.set()
        await self._task
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    # -- batch formation ------------------------------------------------------------

    def _rows(self, inputs: Tensors) -> int:
        for name in self._spec.batched_inputs:
            if name in inputs:
                return int(inputs[name].shape[0]) if inputs[name].ndim else 1
        return 1

    def _key(self, inputs: Tensors) -> tuple[object, ...]:
        parts: list[object] = []
        for name in sorted(inputs):
            array = inputs[name]
            if name in self._spec.batched_inputs:
                shape = list(array.shape[1:])
                if name in self._spec.pad:
                    shape[self._spec.pad[name][0] - 1] = -1
                parts.append((name, array.dtype.str, tuple(shape)))
            elif array.nbytes > KEY_BYTES:
                # Large shared tensors (a catalogue) are passed as the same cached array.
                parts.append((name, array.dtype.str, array.shape, id(array)))
            else:
                parts.append((name, array.dtype.str, array.shape, array.tobytes()))
        return tuple(parts)

    def _drop_expired(self) -> None:
        now = time.monotonic()
        kept: deque[_Pending] = deque()
        for pending in self._queue:
            if pending.future.done():
                continue  # cancelled by its caller, or its deadline timer fired
            if pending.deadline is not None and pending.deadline <= now:
                self._expire(pending)  # past due, its timer not run yet
                continue
            kept.append(pending)
        self._queue = kept

    def _share(self, queued_rows: int) -> int:
        """Rows for the execution about to start. While others run, it takes its share of
        the queue, not all of it: the slot that frees next would otherwise find the queue
        empty, and one long execution next to short ones gives its requests the tail."""
        share = -(-queued_rows // (1 + len(self._running)))  # ceiling division
        return min(self._max_rows, max(1, share))

    def _compatible_rows(self, key: tuple[object, ...]) -> int:
        return sum(p.rows for p in self._queue if p.key == key)

    def _take(self, key: tuple[object, ...], limit: int) -> list[_Pending]:
        batch: list[_Pending] = []
        rows = 0
        rest: deque[_Pending] = deque()
        for pending in self._queue:
            if pending.key == key and (not batch or rows + pending.rows <= limit):
                batch.append(pending)
                rows += pending.rows
            else:
                rest.append(pending)
        self._queue = rest
        self._series.queue_depth.set(len(self._queue))
        return batch

    async def _wait(self, seconds: float | None) -> None:
        self._wakeup.clear()
        if seconds is None:
            await self._wakeup.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), max(0.0, seconds))

    async def _loop(self) -> None:
        while True:
            self._drop_expired()
            if not self._queue:
                if self._closing:
                    return
                await self._wait(None)
                continue
            # Wait for a free execution slot first: requests keep arriving meanwhile, so a
            # busy model naturally runs larger batches.
            await self._slots.acquire()
            released = False
            try:
                self._drop_expired()
                if not self._queue:
                    continue
                oldest = self._queue[0]
                dispatch_at = oldest.enqueued + self._delay
                while not self._closing:
                    rows = self._compatible_rows(oldest.key)
                    now = time.monotonic()
                    if rows >= self._target_rows or now >= dispatch_at:
                        break
                    await self._wait(dispatch_at - now)
                    self._drop_expired()
                    if oldest.future.done():
                        break
                self._drop_expired()
                if not self._queue:
                    continue
                key = self._queue[0].key
                batch = self._take(key, self._share(self._compatible_rows(key)))
                task = asyncio.create_task(self._execute(batch))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
                released = True  # _execute releases the slot
            finally:
                if not released:
                    self._slots.release()

    # -- execution ------------------------------------------------------------------

    def _merge(self, batch: list[_Pending]) -> Tensors:
        if len(batch) == 1:
            return batch[0].inputs
        merged: Tensors = {}
        for name, first in batch[0].inputs.items():
            if name not in self._spec.batched_inputs:
                merged[name] = first
                continue
            parts = [p.inputs[name] for p in batch]
            if name in self._spec.pad:
                axis, value = self._spec.pad[name]
                longest = max(part.shape[axis] for part in parts)
                parts = [_pad(part, axis, longest, value) for part in parts]
            merged[name] = np.concatenate(parts, axis=0)
        return merged

    def _timed_run(self, inputs: Tensors) -> tuple[Tensors, float]:
        started = time.perf_counter()
        outputs = self._run(inputs)
        return outputs, time.perf_counter() - started

    def _run_off_loop(self, inputs: Tensors, rows: int) -> Awaitable[tuple[Tensors, float]]:
        if rows <= self._config.inline_max_rows:
            done: asyncio.Future[tuple[Tensors, float]] = asyncio.get_running_loop().create_future()
            try:
                done.set_result(self._timed_run(inputs))  # shorter than a thread hand-off
            except Exception as exc:
                done.set_exception(exc)
            return done
        return asyncio.get_running_loop().run_in_executor(self._executor, self._timed_run, inputs)

    def _deliver(self, pending: _Pending, part: Tensors) -> None:
        if not pending.future.done():
            pending.future.set_result(part)
            self._series.succeeded.inc()

    def _fail(self, pending: _Pending, exc: BaseException) -> None:
        if not pending.future.done():
            pending.future.set_exception(exc)
            self._series.failed.inc()

    async def _execute(self, batch: list[_Pending]) -> None:
        series = self._series
        try:
            started = time.monotonic()
            started_ns = time.time_ns() if self._tracer is not None else 0
            rows = 0
            for pending in batch:
                series.queue_seconds.observe(started - pending.enqueued, self._exemplar(pending))
                rows += pending.rows
            try:
                outputs, seconds = await self._run_off_loop(self._merge(batch), rows)
            except Exception as exc:
                self._trace(batch, rows, started_ns, exc)
                if len(batch) == 1:
                    raise
                log.warning(
                    "batched execution failed; running its requests one by one",
                    extra={
                        "fields": {
                            "model": self.model,
                            "version": self.version,
                            "requests": len(batch),
                            "error": str(exc),
                        }
                    },
                )
                await self._isolate(batch)
                return
            self._trace(batch, rows, started_ns)
            series.compute_seconds.observe(seconds, self._exemplar(batch[0]))
            series.executions.inc()
            series.inferences.inc(rows)
            series.batch_size.observe(rows)
            offset = 0
            for pending in batch:
                part = {
                    name: value[offset : offset + pending.rows]
                    if name in self._spec.batched_outputs and len(batch) > 1
                    else value
                    for name, value in outputs.items()
                }
                offset += pending.rows
                self._deliver(pending, part)
        except Exception as exc:
            log.exception(
                "execution failed", extra={"fields": {"model": self.model, "version": self.version}}
            )
            for pending in batch:
                self._fail(pending, exc)
        finally:
            # Leave the set before the slot frees: the next batch's share counts the others.
            if (task := asyncio.current_task()) is not None:
                self._running.discard(task)
            self._slots.release()
            self._wakeup.set()

    def _exemplar(self, pending: _Pending) -> dict[str, str] | None:
        return spans.exemplar_of(pending.trace_parent) if self._tracer is not None else None

    def _trace(
        self,
        batch: list[_Pending],
        rows: int,
        started_ns: int,
        error: BaseException | None = None,
    ) -> None:
        """The queue wait and execution spans of each traced request of an execution."""
        if self._tracer is None:
            return
        spans.record_execution(
            self._tracer,
            [(p.trace_parent, p.enqueued_ns, p.rows) for p in batch if p.trace_parent is not None],
            self.model,
            self.version,
            rows,
            len(batch),
            started_ns,
            time.time_ns(),
            error,
        )

    async def _isolate(self, batch: list[_Pending]) -> None:
        """Run each request of a failed batch alone. Those that fail while others succeed
        are the cause: they get INVALID_ARGUMENT; if every one fails, the model is at fault
        and each gets its own error."""
        failures: list[tuple[_Pending, Exception]] = []
        succeeded = 0
        for pending in batch:
            if pending.future.done():
                continue  # its deadline passed meanwhile
            started_ns = time.time_ns() if self._tracer is not None else 0
            try:
                outputs, seconds = await self._run_off_loop(pending.inputs, pending.rows)
            except Exception as exc:
                self._trace([pending], pending.rows, started_ns, exc)
                failures.append((pending, exc))
                continue
            self._trace([pending], pending.rows, started_ns)
            self._series.compute_seconds.observe(seconds, self._exemplar(pending))
            self._series.executions.inc()
            self._series.inferences.inc(pending.rows)
            self._series.batch_size.observe(pending.rows)
            self._deliver(pending, outputs)
            succeeded += 1
        isolated = succeeded > 0
        for pending, error in failures:
            log.warning(
                "request failed its model alone" if isolated else "execution failed",
                extra={
                    "fields": {"model": self.model, "version": self.version, "error": str(error)}
                },
            )
            self._fail(pending, InvalidArgument(_refusal(self.model, error)) if isolated else error)


def _refusal(model: str, error: Exception) -> str:
    """The model's own reason, last line only (onnxruntime prefixes the node's context)."""
    lines = str(error).strip().splitlines()
    reason = lines[-1][:300] if lines else type(error).__name__
    return f"{model} cannot run this request's inputs: {reason}"


def _pad(array: np.ndarray, axis: int, length: int, value: int | float) -> np.ndarray:
    missing = length - array.shape[axis]
    if missing <= 0:
        return array
    widths = [(0, 0)] * array.ndim
    widths[axis] = (0, missing)
    return np.pad(array, widths, constant_values=value)
