"""Model cards (``README.md`` in each version folder) rendered from the config."""

from __future__ import annotations

from collections.abc import Sequence

from models.evaluation import latency_table, table
from shared.model_registry import ModelConfig


def io_table(config: ModelConfig) -> str:
    role_of = {name: role for role, name in config.output_roles.items()}
    rows = [
        {
            "direction": d,
            "name": t.name,
            "role": role_of.get(t.name, "") if d == "output" else "",
            "dtype": t.dtype,
            "shape": str(t.shape),
            "description": t.description,
        }
        for d, specs in (("input", config.inputs), ("output", config.outputs))
        for t in specs
    ]
    return table(rows, ["direction", "name", "role", "dtype", "shape", "description"])


def serving_line(config: ModelConfig) -> str:
    """Task and batching knobs as the inference server reads them from config.json."""
    parts = [f"task `{config.task}`"]
    if config.max_batch_size is not None:
        parts.append(f"`max_batch_size` {config.max_batch_size}")
    if config.dynamic_batching is not None:
        parts.append(f"`dynamic_batching` {config.dynamic_batching.model_dump(exclude_none=True)}")
    if config.instance_group:
        parts.append(f"`instance_group` count {sum(g.count for g in config.instance_group)}")
    return "Served as " + ", ".join(parts) + " (environment variables may override the knobs)."


def render_card(config: ModelConfig, intro: str, sections: Sequence[tuple[str, str]]) -> str:
    parts = [
        f"# {config.name} — version {config.version}",
        "",
        intro.strip(),
        "",
        "## Inputs and outputs (onnxruntime)",
        io_table(config),
        "",
        serving_line(config),
        "",
    ]
    for title, body in sections:
        parts += [f"## {title}", body.strip(), ""]
    if config.latency_ms:
        parts += [
            "## Latency (onnxruntime, CPU, 2 threads, shared 2-core machine)",
            latency_table(config.latency_ms),
            "",
        ]
    parts += [
        "## Training data",
        *[f"- {d.name} ({d.split}): {d.source} — {d.license}" for d in config.training_data],
        "",
    ]
    parts += [
        "## Files",
        f"- `model.onnx` sha256 `{config.sha256}`",
        *[f"- `{name}` sha256 `{digest}`" for name, digest in config.files.items()],
        "",
        f"Created {config.created_at.isoformat()} by `python -m models`.",
        "",
    ]
    return "\n".join(parts)
