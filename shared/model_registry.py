"""Model registry: Triton-style folders ``<root>/<model_name>/<version>/``.

Each version folder holds ``model.onnx``, ``config.json`` (this schema), a model card
``README.md`` and the extra files listed in ``config.files`` (tokenizer, labels, item
index). Versions are positive integers; a new version is a new folder, published by
an atomic rename so a watching worker never sees a half-written one.

Runtime-safe: imports only pydantic and the standard library (the inference server
has onnxruntime, numpy, tokenizers and pydantic, not onnx or scikit-learn).
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CONFIG_FILE = "config.json"
MODEL_FILE = "model.onnx"
CARD_FILE = "README.md"
DEFAULT_REPOSITORY = Path(__file__).resolve().parent.parent / "var" / "models"

DType = Literal["int64", "int32", "float32", "bool", "string"]


class RegistryError(RuntimeError):
    """A registry folder or file is missing, malformed or fails its checksum."""


class TensorSpec(BaseModel):
    """One graph input or output. ``shape`` uses names for dynamic axes ("batch")."""

    model_config = ConfigDict(extra="forbid")
    name: str
    dtype: DType
    shape: list[int | str]
    description: str = ""


class DataSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    source: str
    license: str
    split: str = ""


class DynamicBatching(BaseModel):
    """Triton's ``dynamic_batching`` block; a knob left out keeps the server's default."""

    model_config = ConfigDict(extra="forbid")
    max_queue_delay_microseconds: int | None = Field(None, ge=0)
    preferred_batch_size: list[int] | None = None


class InstanceGroup(BaseModel):
    """Triton's ``instance_group`` entry: executions of the model that may run at once."""

    model_config = ConfigDict(extra="forbid")
    count: int = Field(1, ge=1)


class ModelConfig(BaseModel):
    """``config.json`` beside each ``model.onnx``."""

    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    name: str
    version: int = Field(ge=1)
    task: str
    platform: Literal["onnxruntime_onnx"] = "onnxruntime_onnx"
    description: str = ""
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    labels: list[str] | None = None
    preprocessing: dict[str, Any] = Field(default_factory=dict)
    postprocessing: dict[str, Any] = Field(default_factory=dict)
    training_data: list[DataSource] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    latency_ms: dict[str, float] = Field(default_factory=dict)
    sha256: str = Field(description="sha256 of model.onnx")
    files: dict[str, str] = Field(default_factory=dict, description="extra file -> sha256")
    inputs_fingerprint: str = Field(
        "", description="hash of what the build read; equal fingerprints mean an identical rebuild"
    )
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    extra: dict[str, Any] = Field(default_factory=dict)
    output_roles: dict[str, str] = Field(
        default_factory=dict,
        description="what each output is to the task's runtime: role -> output name",
    )
    # Serving knobs beside the model, with Triton's names (config.pbtxt).
    max_batch_size: int | None = Field(None, ge=0)
    dynamic_batching: DynamicBatching | None = None
    instance_group: list[InstanceGroup] = Field(default_factory=list)

    def max_history(self) -> int | None:
        """History positions a sequence model was trained for (its recency weights), from
        ``extra`` or ``preprocessing``; None when it declares none."""
        for holder in (self.extra, self.preprocessing):
            for key in ("max_history", "max_len", "history_length"):
                value = holder.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    return value
        return None


class ModelVersion(BaseModel):
    name: str
    version: int
    path: Path
    config: ModelConfig

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    def file(self, name: str) -> Path:
        """Path of an extra file declared in ``config.files``."""
        if name not in self.config.files:
            raise RegistryError(f"{self.name}/{self.version} has no file {name!r}")
        return self.path / name


def repository_root(root: str | Path | None = None) -> Path:
    """``root``, else ``$LUMEN_MODEL_REPOSITORY``, else ``<repo>/var/models``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("LUMEN_MODEL_REPOSITORY", DEFAULT_REPOSITORY))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_config(version_dir: str | Path) -> ModelConfig:
    path = Path(version_dir) / CONFIG_FILE
    if not path.is_file():
        raise RegistryError(f"missing {path}")
    try:
        return ModelConfig.model_validate_json(path.read_text())
    except ValueError as exc:
        raise RegistryError(f"invalid {path}: {exc}") from exc


def save_config(config: ModelConfig, version_dir: str | Path) -> Path:
    path = Path(version_dir) / CONFIG_FILE
    path.write_text(config.model_dump_json(indent=2) + "\n")
    return path


def list_models(root: str | Path | None = None) -> list[str]:
    """Model names that have at least one complete version."""
    base = repository_root(root)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and list_versions(p.name, base))


def list_versions(name: str, root: str | Path | None = None) -> list[int]:
    """Complete versions (integer folder with a config.json), ascending."""
    folder = repository_root(root) / name
    if not folder.is_dir():
        return []
    return sorted(
        int(p.name)
        for p in folder.iterdir()
        if p.is_dir() and p.name.isdigit() and int(p.name) > 0 and (p / CONFIG_FILE).is_file()
    )


def latest_version(name: str, root: str | Path | None = None) -> int | None:
    versions = list_versions(name, root)
    return versions[-1] if versions else None


def get_version(
    name: str, version: int | None = None, root: str | Path | None = None, verify: bool = False
) -> ModelVersion:
    """Load one version (newest when ``version`` is None); ``verify`` checks sha256s."""
    version = latest_version(name, root) if version is None else version
    if version is None:
        raise RegistryError(f"no versions of {name!r} in {repository_root(root)}")
    path = repository_root(root) / name / str(version)
    config = load_config(path)
    if config.name != name or config.version != version:
        raise RegistryError(f"{path} holds {config.name}/{config.version}")
    found = ModelVersion(name=name, version=version, path=path, config=config)
    if verify:
        verify_version(found)
    return found


def verify_version(found: ModelVersion) -> None:
    """Raise :class:`RegistryError` unless model.onnx and every extra file match."""
    expected = {MODEL_FILE: found.config.sha256, **found.config.files}
    for file_name, digest in expected.items():
        path = found.path / file_name
        if not path.is_file():
            raise RegistryError(f"missing {path}")
        actual = sha256_file(path)
        if actual != digest:
            raise RegistryError(f"sha256 mismatch for {path}: expected {digest}, got {actual}")
