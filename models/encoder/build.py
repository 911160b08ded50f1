"""Build ``text-encoder`` and ``text-encoder-int8``: export, parity, int8 cost, latency."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from models.encoder.embed import cached_features
from models.encoder.graph import build_encoder, load_weights
from models.encoder.spec import MINILM
from models.evaluation import cosine_rows, measure_latency, session
from models.paths import REPO_ROOT, cache_dir
from models.runtime.text import MAX_TOKENS, TextTokenizer

REFERENCE = REPO_ROOT / "tests" / "fixtures" / "minilm_embeddings.json"
LATENCY_TEXT = "I still haven't received my new card, when will it arrive?"


def export_fp32(minilm_dir: Path) -> onnx.ModelProto:
    return build_encoder(load_weights(minilm_dir / "model.safetensors"))


def quantize_int8(model_path: Path, out_path: Path) -> None:
    """Dynamic int8 quantisation of the weight MatMuls, per output channel.

    The attention products (Q·Kᵀ, softmax·V) multiply two activations; quantising them
    too costs far more accuracy than it saves time, so they stay float."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(model_path))
    weights = {init.name for init in model.graph.initializer}
    activation_matmuls = [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and not any(i in weights for i in n.input)
    ]
    quantize_dynamic(
        str(model_path),
        str(out_path),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=activation_matmuls,
    )


def reference_parity(model: str | Path | bytes, tokenizer: TextTokenizer) -> dict[str, Any]:
    """Cosine of each reference sentence, one at a time and as one padded batch."""
    ref = json.loads(REFERENCE.read_text())
    sess = session(model)
    single = np.concatenate(
        [sess.run(["embedding"], tokenizer.encode([s]))[0] for s in ref["sentences"]]
    )
    batched = sess.run(["embedding"], tokenizer.encode(ref["sentences"]))[0]
    expected = np.asarray(ref["embeddings"], dtype=np.float32)
    cos_single, cos_batch = cosine_rows(single, expected), cosine_rows(batched, expected)
    return {
        "n_sentences": len(ref["sentences"]),
        "min_cosine": float(min(cos_single.min(), cos_batch.min())),
        "mean_cosine": float(cos_single.mean()),
        "worst_sentence": int(np.argmin(cos_single)),
    }


def latency(model: str | Path, tokenizer: TextTokenizer) -> dict[str, float]:
    return measure_latency(session(model), lambda b: tokenizer.encode([LATENCY_TEXT] * b))


def int8_accuracy_cost(
    fp32: Path, int8: Path, tokenizer: TextTokenizer, small: bool
) -> dict[str, float]:
    """Banking77 validation accuracy of a frozen-encoder logistic regression trained on
    fp32 embeddings, fed fp32 vs int8 embeddings of the validation texts."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from models.intent.data import OOS, banking77

    data = banking77()
    train = [(t, y) for t, y in zip(data.train.texts, data.train.labels, strict=True) if y != OOS]
    valid = [(t, y) for t, y in zip(data.report.texts, data.report.labels, strict=True) if y != OOS]
    if small:
        train, valid = train[::10], valid[::4]
    s32, s8 = session(fp32), session(int8)
    cache = cache_dir() / "features"
    (x_train,) = cached_features(s32, tokenizer, [t for t, _ in train], cache, "minilm-fp32")
    (x32,) = cached_features(s32, tokenizer, [t for t, _ in valid], cache, "minilm-fp32")
    (x8,) = cached_features(
        s8, tokenizer, [t for t, _ in valid], cache, f"int8-{int8.stat().st_size}"
    )
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=300))
    clf.fit(x_train, [y for _, y in train])
    gold = np.array([y for _, y in valid])
    acc32 = float((clf.predict(x32) == gold).mean())
    acc8 = float((clf.predict(x8) == gold).mean())
    cos = cosine_rows(x8, x32)
    return {
        "banking77_logreg_accuracy_fp32": acc32,
        "banking77_logreg_accuracy_int8": acc8,
        "accuracy_delta": acc8 - acc32,
        "int8_vs_fp32_mean_cosine": float(cos.mean()),
        "int8_vs_fp32_min_cosine": float(cos.min()),
        "n_valid": len(valid),
    }


def build_encoders(minilm_dir: Path, small: bool = False) -> dict[str, Any]:
    """Export both encoders into a temp folder and measure them; returns paths + metrics."""
    tokenizer = TextTokenizer(minilm_dir / "tokenizer.json")
    work = Path(tempfile.mkdtemp(prefix="lumen-encoder-", dir=cache_dir()))
    fp32, int8 = work / "fp32.onnx", work / "int8.onnx"
    onnx.save(export_fp32(minilm_dir), str(fp32))
    quantize_int8(fp32, int8)
    shutil.copy(minilm_dir / "tokenizer.json", work / "tokenizer.json")
    out = {
        "work": work,
        "fp32": fp32,
        "int8": int8,
        "parity_fp32": reference_parity(fp32, tokenizer),
        "parity_int8": reference_parity(int8, tokenizer),
        "latency_fp32": latency(fp32, tokenizer),
        "latency_int8": latency(int8, tokenizer),
        "int8_cost": int8_accuracy_cost(fp32, int8, tokenizer, small),
        "size_mb": {
            "fp32": round(fp32.stat().st_size / 1e6, 1),
            "int8": round(int8.stat().st_size / 1e6, 1),
        },
        "dim": MINILM.hidden,
        "max_tokens": MAX_TOKENS,
    }
    return out
