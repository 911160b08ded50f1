"""Write a model version into the registry (atomically) and decide when to skip."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.model_registry import (
    CARD_FILE,
    MODEL_FILE,
    DynamicBatching,
    InstanceGroup,
    ModelConfig,
    RegistryError,
    get_version,
    latest_version,
    repository_root,
    save_config,
    sha256_file,
)


def fingerprint(parts: dict[str, Any]) -> str:
    """Stable hash of everything a build reads (source digests, code version, options)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def serving(
    max_queue_delay_microseconds: int = 1000,
    max_batch_size: int = 32,
    preferred_batch_size: tuple[int, ...] = (8, 16, 32),
    instances: int = 2,
) -> dict[str, Any]:
    """Batching and instance knobs written beside the model with Triton's names
    (``ModelConfig`` fields); the inference server reads them, its environment may override
    them. The defaults are the server's own on two cores: two single-threaded executions."""
    return {
        "max_batch_size": max_batch_size,
        "dynamic_batching": DynamicBatching(
            max_queue_delay_microseconds=max_queue_delay_microseconds,
            preferred_batch_size=list(preferred_batch_size),
        ),
        "instance_group": [InstanceGroup(count=instances)],
    }


def check_roles(config: ModelConfig) -> None:
    """Every declared output role names an output of the graph."""
    outputs = {spec.name for spec in config.outputs}
    unknown = {role: name for role, name in config.output_roles.items() if name not in outputs}
    if unknown:
        raise RegistryError(f"{config.name}: output roles name no output: {unknown}")


def current_if_unchanged(
    name: str, inputs_fingerprint: str, root: Path | None = None
) -> ModelConfig | None:
    """The newest version's config when it was built from the same inputs."""
    version = latest_version(name, root)
    if version is None:
        return None
    config = get_version(name, version, root).config
    return config if config.inputs_fingerprint == inputs_fingerprint else None


def publish(
    config: ModelConfig,
    write_files: Callable[[Path], None],
    render_card: Callable[[ModelConfig], str],
    root: Path | None = None,
) -> Path:
    """Create ``<root>/<name>/<next version>/`` from ``write_files(tmp_dir)``.

    ``write_files`` must write ``model.onnx`` plus the extra files; their sha256s are
    filled into ``config`` here. The folder appears under its final name only once
    complete (rename), so workers polling the registry never load a partial version.
    """
    check_roles(config)
    base = repository_root(root) / config.name
    base.mkdir(parents=True, exist_ok=True)
    version = (latest_version(config.name, root) or 0) + 1
    tmp = base / f".tmp-{version}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    write_files(tmp)
    files = {
        p.name: sha256_file(p)
        for p in sorted(tmp.iterdir())
        if p.is_file() and p.name not in (MODEL_FILE, CARD_FILE, "config.json")
    }
    config = config.model_copy(
        update={"version": version, "sha256": sha256_file(tmp / MODEL_FILE), "files": files}
    )
    save_config(config, tmp)
    (tmp / CARD_FILE).write_text(render_card(config))
    final = base / str(version)
    tmp.rename(final)
    return final
