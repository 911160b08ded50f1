"""Client processes, their event loops and the merged figures.

Closed loop: ``concurrency`` streams, each sends its next request when the previous one
answers (throughput is what the server sustains at that concurrency).
Open loop: requests leave on a fixed schedule (``rate`` per second over all processes); each
latency counts from the scheduled time, so queueing behind a slow answer is measured
rather than hidden. ``max_send_lag_ms`` and ``client_cpu_percent`` show whether the
generator itself kept up.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue as queue_module
import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from bench.common import percentile

Mode = Literal["closed", "open"]


@dataclass(frozen=True)
class GrpcWorkload:
    """Unary calls of ``method`` with pre-serialised request messages (used round-robin)."""

    target: str
    method: str
    requests: tuple[bytes, ...]
    metadata: tuple[tuple[str, str], ...] = ()
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class HttpWorkload:
    """POSTs of pre-encoded bodies to ``url``; a status in ``ok_statuses`` is a success."""

    url: str
    bodies: tuple[bytes, ...]
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    ok_statuses: tuple[int, ...] = (200,)
    timeout_seconds: float = 10.0


Workload = GrpcWorkload | HttpWorkload


@dataclass
class LoadResult:
    mode: str
    processes: int
    concurrency: int
    offered_rps: float | None
    seconds: float
    requests: int
    errors: dict[str, int]
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float
    max_send_lag_ms: float
    client_cpu_percent: float
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        """Every figure except the raw latencies (for the JSON results)."""
        out = asdict(self)
        out.pop("latencies_ms")
        return out


# ---------------------------------------------------------------- one client process


class _Sender:
    """One connection (gRPC channel or HTTP session) that sends the workload's requests."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.index = 0
        self._close: Any = None

    async def open(self) -> None:
        if isinstance(self.workload, GrpcWorkload):
            import grpc

            channel = grpc.aio.insecure_channel(self.workload.target)
            # No serializers: the pre-serialised bytes go out as they are.
            self._call = channel.unary_unary(self.workload.method)
            self._metadata = self.workload.metadata or None
            self._close = channel.close
        else:
            import aiohttp

            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=self.workload.timeout_seconds),
            )
            self._session = session
            self._headers = dict(self.workload.headers)
            self._close = session.close

    async def close(self) -> None:
        if self._close is not None:
            await self._close()

    def _next(self, items: tuple[bytes, ...]) -> bytes:
        item = items[self.index % len(items)]
        self.index += 1
        return item

    async def send(self) -> str | None:
        """Send one request; None on success, else a short error name."""
        workload = self.workload
        if isinstance(workload, GrpcWorkload):
            import grpc

            try:
                await self._call(
                    self._next(workload.requests),
                    timeout=workload.timeout_seconds,
                    metadata=self._metadata,
                )
                return None
            except grpc.aio.AioRpcError as error:
                return str(error.code().name)
        try:
            async with self._session.post(
                workload.url, data=self._next(workload.bodies), headers=self._headers
            ) as response:
                await response.read()
                return None if response.status in workload.ok_statuses else str(response.status)
        except (TimeoutError, OSError) as error:
            return type(error).__name__


async def _closed_loop(
    sender: _Sender, streams: int, start: float, seconds: float
) -> tuple[list[float], dict[str, int], float]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = start + seconds

    async def stream() -> None:
        while (began := time.monotonic()) < deadline:
            error = await sender.send()
            if error is None:
                latencies.append(time.monotonic() - began)
            else:
                errors[error] = errors.get(error, 0) + 1

    await asyncio.gather(*(stream() for _ in range(streams)))
    return latencies, errors, 0.0


async def _open_loop(
    sender: _Sender, rate: float, offset: float, start: float, seconds: float, max_outstanding: int
) -> tuple[list[float], dict[str, int], float]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    pending: set[asyncio.Task[None]] = set()
    max_lag = 0.0

    async def one(scheduled: float) -> None:
        error = await sender.send()
        if error is None:
            latencies.append(time.monotonic() - scheduled)  # from the schedule: CO-aware
        else:
            errors[error] = errors.get(error, 0) + 1

    total = int(rate * seconds)
    for n in range(total):
        scheduled = start + offset + n / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            max_lag = max(max_lag, -delay)
        if len(pending) >= max_outstanding:
            errors["client_backlog"] = errors.get("client_backlog", 0) + 1
            continue
        task = asyncio.create_task(one(scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    return latencies, errors, max_lag


def _worker(
    workload: Workload,
    mode: Mode,
    streams: int,
    rate: float,
    offset: float,
    seconds: float,
    warmup_seconds: float,
    max_outstanding: int,
    barrier: Any,
    out: Any,
) -> None:
    async def main() -> None:
        sender = _Sender(workload)
        await sender.open()
        try:
            if warmup_seconds > 0:  # connections up, server caches warm
                await _closed_loop(
                    sender, max(1, min(streams, 4)), time.monotonic(), warmup_seconds
                )
            await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
            start = time.monotonic()
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            if mode == "closed":
                result = await _closed_loop(sender, streams, start, seconds)
            else:
                result = await _open_loop(sender, rate, offset, start, seconds, max_outstanding)
            elapsed = time.monotonic() - start
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            latencies, errors, lag = result
            out.put(
                {
                    "latencies": latencies,
                    "errors": errors,
                    "elapsed": elapsed,
                    "max_lag": lag,
                    "cpu_seconds": cpu,
                }
            )
        finally:
            await sender.close()

    try:
        asyncio.run(main())
    except Exception as error:  # reported to the parent instead of a silent hang
        out.put({"failure": f"{type(error).__name__}: {error}"})


# ---------------------------------------------------------------- the run


def run_load(
    workload: Workload,
    *,
    mode: Mode = "closed",
    concurrency: int = 1,
    rate: float | None = None,
    seconds: float = 5.0,
    processes: int = 2,
    warmup_seconds: float = 0.5,
    max_outstanding: int = 2000,
    keep_latencies: bool = False,
) -> LoadResult:
    """Run ``workload`` from ``processes`` client processes and merge their figures.

    Closed loop splits ``concurrency`` streams over the processes; open loop splits ``rate``
    (requests/s), staggering the processes' schedules so arrivals interleave evenly.
    """
    if mode == "open" and not rate:
        raise ValueError("open loop needs a rate")
    processes = max(1, min(processes, concurrency if mode == "closed" else processes))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    barrier = ctx.Barrier(processes)
    per_rate = (rate or 0.0) / processes
    procs = []
    for i in range(processes):
        streams = concurrency // processes + (i < concurrency % processes)
        offset = i / (rate or 1.0)
        procs.append(
            ctx.Process(
                target=_worker,
                args=(
                    workload,
                    mode,
                    streams,
                    per_rate,
                    offset,
                    seconds,
                    warmup_seconds,
                    max_outstanding,
                    barrier,
                    queue,
                ),
                daemon=True,
            )
        )
    for proc in procs:
        proc.start()
    parts: list[dict[str, Any]] = []
    give_up = time.monotonic() + seconds + warmup_seconds + 120
    try:
        while len(parts) < len(procs):
            try:
                parts.append(queue.get(timeout=1.0))
            except queue_module.Empty:
                dead = sum(not p.is_alive() and p.exitcode not in (0, None) for p in procs)
                if dead or time.monotonic() > give_up:
                    raise RuntimeError(
                        f"load generator: {dead} client process(es) died or the run hung"
                    ) from None
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    failures = [p["failure"] for p in parts if "failure" in p]
    if failures:
        raise RuntimeError(f"load generator process failed: {failures[0]}")
    latencies = sorted(x for p in parts for x in p["latencies"])
    errors: dict[str, int] = {}
    for part in parts:
        for name, n in part["errors"].items():
            errors[name] = errors.get(name, 0) + n
    elapsed = max(p["elapsed"] for p in parts)
    ms = [x * 1000 for x in latencies]
    return LoadResult(
        mode=mode,
        processes=processes,
        concurrency=concurrency,
        offered_rps=rate if mode == "open" else None,
        seconds=round(elapsed, 3),
        requests=len(ms),
        errors=errors,
        throughput_rps=round(len(ms) / elapsed, 1),
        p50_ms=round(percentile(ms, 0.50), 3),
        p90_ms=round(percentile(ms, 0.90), 3),
        p99_ms=round(percentile(ms, 0.99), 3),
        p999_ms=round(percentile(ms, 0.999), 3),
        max_ms=round(ms[-1], 3) if ms else 0.0,
        mean_ms=round(sum(ms) / len(ms), 3) if ms else 0.0,
        max_send_lag_ms=round(1000 * max(p["max_lag"] for p in parts), 3),
        client_cpu_percent=round(100 * sum(p["cpu_seconds"] for p in parts) / elapsed, 1),
        latencies_ms=ms if keep_latencies else [],
    )
