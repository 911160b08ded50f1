"""Every model of the registry folder, loaded and kept current.

The newest version of each model is served (or the version pinned in settings). A poller
rescans the folder; a new version is loaded and validated off the event loop, then swapped
in atomically: requests already holding the old version finish on it, and it is unloaded
once its last request is done. A version that fails validation is remembered as refused
(until its files change) and the current one keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import onnxruntime as ort

from services.inference import metrics, runtime
from services.inference.batcher import BatchSpec, DynamicBatcher, Tensors
from services.inference.errors import ModelRefused, NotFound, Unavailable
from services.inference.input_limits import InputLimits, limits_of
from services.inference.model_batching import batching_of
from services.inference.runtimes import Extras, Runtime, output_roles, runtime_for
from services.inference.settings import InferenceSettings
from shared.model_registry import (
    CONFIG_FILE,
    MODEL_FILE,
    ModelConfig,
    RegistryError,
    get_version,
    list_versions,
    verify_version,
)

log = logging.getLogger(__name__)

TaskRuntime = TypeVar("TaskRuntime", bound=Runtime)

# How long a replaced version keeps serving requests that took it just before a swap.
RETIRE_GRACE_SECONDS = 10.0


@dataclass
class LoadedModel:
    name: str
    version: int
    path: Path
    config: ModelConfig
    session: ort.InferenceSession
    spec: BatchSpec
    runtime: Runtime  # by config.task
    roles: dict[str, str]  # output role -> output name
    extras: Extras
    limits: InputLimits = field(default_factory=InputLimits)
    batcher: DynamicBatcher | None = None
    inflight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    async def infer(self, inputs: Tensors, deadline: float | None = None) -> Tensors:
        assert self.batcher is not None
        self.inflight += 1
        self.idle.clear()
        try:
            return await self.batcher.infer(inputs, deadline)
        finally:
            self.inflight -= 1
            if not self.inflight:
                self.idle.set()

    def run(self, inputs: Tensors) -> Tensors:
        """One execution (called in the executor by the batcher)."""
        names = [o.name for o in self.session.get_outputs()]
        values = self.session.run(names, inputs)
        return {name: np.asarray(value) for name, value in zip(names, values, strict=True)}


class ModelRepository:
    def __init__(self, settings: InferenceSettings, executor: Executor) -> None:
        self.settings = settings
        self.root = Path(settings.model_repository)
        self._executor = executor
        self._options = runtime.session_options(
            settings.intra_op_threads,
            settings.inter_op_threads,
            settings.graph_optimization,
            settings.allow_spinning,
        )
        self._current: dict[str, LoadedModel] = {}
        self._refused: dict[tuple[str, int], tuple[int, int]] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._scan_lock = asyncio.Lock()
        self.ready = False

    # -- queries --------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._current)

    def get(self, name: str, version: int | None = None) -> LoadedModel:
        loaded = self._current.get(name)
        if loaded is None:
            raise NotFound(f"unknown model {name!r}")
        if version is not None and version != loaded.version:
            raise NotFound(f"version {version} of model {name!r} is not loaded")
        return loaded

    def serving(self, name: str, kind: type[TaskRuntime]) -> tuple[LoadedModel, TaskRuntime]:
        """The model serving ``name`` and its runtime, when that runtime is ``kind``: a typed
        API never reads a model of another task as its own."""
        loaded = self.get(name)
        if not isinstance(loaded.runtime, kind):
            raise Unavailable(
                f"{name} version {loaded.version} is a {loaded.config.task!r} model, "
                f"not {kind.task!r}"
            )
        return loaded, loaded.runtime

    def is_ready(self, name: str, version: int | None = None) -> bool:
        loaded = self._current.get(name)
        return loaded is not None and (version is None or version == loaded.version)

    def names_on_disk(self) -> list[str]:
        """Model folders directly under the registry root (loaded or not)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def versions_on_disk(self, name: str) -> list[int]:
        """Versions of a model folder of the registry; a name that is not one of its folders
        (``../elsewhere``, an absolute path) has none, so a request never reads outside it."""
        if name not in self.names_on_disk():
            return []
        return list_versions(name, self.root)

    # -- loading --------------------------------------------------------------------

    def _wanted_version(self, name: str) -> int | None:
        if name in self.settings.version_pins:
            return self.settings.version_pins[name]
        versions = list_versions(name, self.root)
        return versions[-1] if versions else None

    def _stamp(self, name: str, version: int) -> tuple[int, int]:
        folder = self.root / name / str(version)
        stamps = [
            (folder / f).stat().st_mtime_ns if (folder / f).exists() else 0
            for f in (CONFIG_FILE, MODEL_FILE)
        ]
        return stamps[0], stamps[1]

    def _load(self, name: str, version: int) -> LoadedModel:
        """Open and validate one version (blocking: runs in a worker thread)."""
        try:
            found = get_version(name, version, self.root)
            if self.settings.verify_checksums:
                verify_version(found)
        except (RegistryError, OSError, ValueError) as exc:
            raise ModelRefused(str(exc)) from exc
        session = runtime.open_session(str(found.model_path), self._options)
        runtime.check_signature(session, found.config)
        runtime.warm_up(session, found.config)
        task_runtime = runtime_for(found.config.task)
        roles = output_roles(found.config)
        try:
            extras = task_runtime.load_extras(found.path, found.config)
            task_runtime.check(found.config, roles, extras)
            truncation = extras.tokenizer.max_tokens if extras.tokenizer is not None else None
            limits = limits_of(found.config, found.path, truncation)
        except ModelRefused:
            raise
        except Exception as exc:
            raise ModelRefused(f"cannot read the files beside the model: {exc}") from exc
        runtime.probe_limits(session, found.config, limits)
        return LoadedModel(
            name=name,
            version=version,
            path=found.path,
            config=found.config,
            session=session,
            spec=runtime.batch_spec(found.config),
            runtime=task_runtime,
            roles=roles,
            extras=extras,
            limits=limits,
        )

    async def scan(self) -> None:
        """Load what is new; keep serving what is current when a new version is refused."""
        async with self._scan_lock:
            for name in self.names_on_disk():
                wanted = self._wanted_version(name)
                current = self._current.get(name)
                if wanted is None or (current is not None and current.version == wanted):
                    continue
                if not (self.root / name / str(wanted) / CONFIG_FILE).is_file():
                    continue  # a pin to a version not published (yet)
                stamp = self._stamp(name, wanted)
                if self._refused.get((name, wanted)) == stamp:
                    continue
                await self._try_load(name, wanted, stamp, current)
            self.ready = True

    async def _try_load(
        self, name: str, version: int, stamp: tuple[int, int], current: LoadedModel | None
    ) -> None:
        started = time.monotonic()
        try:
            loaded = await asyncio.to_thread(self._load, name, version)
        except ModelRefused as exc:
            self._refused[(name, version)] = stamp
            metrics.MODEL_LOAD_FAILURES.labels(name, str(version)).inc()
            log.error(
                "model version refused",
                extra={
                    "fields": {
                        "model": name,
                        "version": version,
                        "reason": str(exc),
                        "serving": current.version if current else None,
                    }
                },
            )
            return
        loaded.batcher = DynamicBatcher(
            name,
            version,
            loaded.run,
            loaded.spec,
            batching_of(name, loaded.config, loaded.runtime, self.settings),
            self._executor,
            default_deadline=self.settings.default_deadline_seconds,
        )
        self._current[name] = loaded
        metrics.MODEL_LOADED.labels(name, str(version)).set(1)
        log.info(
            "model version serving",
            extra={
                "fields": {
                    "model": name,
                    "version": version,
                    "replaced": current.version if current else None,
                    "load_seconds": round(time.monotonic() - started, 3),
                }
            },
        )
        if current is not None:
            task = asyncio.create_task(self._retire(current))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _retire(self, old: LoadedModel, grace_seconds: float | None = None) -> None:
        """Unload once no request holds the old version any more. A request may have taken the
        old version just before the swap and still be awaiting other work (a profile read)
        before it infers: the grace period lets it finish on the version it took."""
        grace = RETIRE_GRACE_SECONDS if grace_seconds is None else grace_seconds
        if grace > 0:
            await asyncio.sleep(grace)
        while old.inflight:
            await old.idle.wait()
        if old.batcher is not None:
            await old.batcher.close()
        metrics.MODEL_LOADED.labels(old.name, str(old.version)).set(0)
        log.info(
            "model version unloaded", extra={"fields": {"model": old.name, "version": old.version}}
        )

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.poll_interval_seconds)
            if stop.is_set():
                return
            try:
                await self.scan()
            except Exception:
                log.exception("registry scan failed")

    async def close(self) -> None:
        """Drain every batch queue, then unload."""
        current = list(self._current.values())
        self._current.clear()
        self.ready = False
        for loaded in current:
            await self._retire(loaded, grace_seconds=0)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
