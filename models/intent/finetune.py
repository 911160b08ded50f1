"""Supervised fine-tuning of an encoder's top layers + a linear head, in JAX (no PyTorch).

Frozen sentence embeddings with a linear head stop around 0.91-0.93 on Banking77; the
targets need the encoder to adapt. Fine-tuning the whole encoder on 2 CPU cores is
too slow for a build that must take minutes, so we cache the token states after the
first ``layers - top_layers`` layers once (through onnxruntime) and fine-tune only the
top layers, pooling and head with cross-entropy. The updated weights go back into the
same ONNX graph builder, so the exported model is plain onnxruntime. MiniLM and MPNet
share this code (``models.encoder.spec`` holds what differs).

JAX is an optional training dependency (extra ``train``); it is imported lazily.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from models.encoder.spec import (
    RELATIVE_BIAS,
    EncoderSpec,
    relative_position_buckets,
    spec_of,
)
from models.intent.losses import cross_entropy, distillation_loss


@dataclass(frozen=True)
class FinetuneParams:
    encoder: str = "minilm"  # a key of models.encoder.spec.SPECS
    top_layers: int = 2
    epochs: int = 4
    batch_size: int = 32
    lr_encoder: float = 1e-4
    lr_head: float = 1e-3
    head_scale: float = 20.0  # logit scale of the centroid-initialised head
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    warmup: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class DistillParams:
    """How a student learns from a teacher fine-tuned with ``teacher``."""

    teacher: FinetuneParams
    alpha: float  # weight of the hard labels; the teacher's soft targets get 1 - alpha
    temperature: float


@dataclass(frozen=True)
class Distillation:
    """Soft targets from a teacher (``models.intent.losses.distillation_loss``)."""

    teacher_logits: np.ndarray  # [N, C], rows aligned with the training labels
    alpha: float  # weight of the hard-label cross-entropy; the teacher gets 1 - alpha
    temperature: float


@dataclass
class TokenStates:
    """Per-sentence token states after the frozen layers (ragged, unpadded)."""

    states: list[np.ndarray]  # each [T_i, hidden] float32

    @classmethod
    def from_padded(cls, hidden: np.ndarray, mask: np.ndarray) -> TokenStates:
        lengths = mask.sum(axis=1)
        return cls([hidden[i, : lengths[i]].astype(np.float32) for i in range(len(hidden))])

    def batch(self, idx: np.ndarray, bucket: int = 8) -> tuple[np.ndarray, np.ndarray]:
        longest = max(len(self.states[i]) for i in idx)
        t = int(math.ceil(longest / bucket) * bucket)  # few distinct shapes -> few compiles
        h = np.zeros((len(idx), t, self.states[idx[0]].shape[1]), dtype=np.float32)
        m = np.zeros((len(idx), t), dtype=np.float32)
        for row, i in enumerate(idx):
            n = len(self.states[i])
            h[row, :n] = self.states[i]
            m[row, :n] = 1.0
        return h, m


def layer_keys(spec: EncoderSpec, first: int) -> list[str]:
    return [f"encoder.layer.{i}." for i in range(first, spec.layers)]


def _trainable(weights: dict[str, np.ndarray], spec: EncoderSpec, first: int) -> dict[str, Any]:
    import jax.numpy as jnp

    keys = layer_keys(spec, first)
    return {k: jnp.asarray(v) for k, v in weights.items() if any(k.startswith(p) for p in keys)}


def _position_bias(jnp: Any, weights: dict[str, np.ndarray], spec: EncoderSpec, t: int) -> Any:
    """[1,H,T,T] relative-position bias (MPNet), or 0. Kept frozen: the cached lower
    layers were computed with it."""
    if not spec.relative_buckets:
        return 0.0
    buckets = relative_position_buckets(spec, t)
    return jnp.asarray(weights[RELATIVE_BIAS][buckets].transpose(2, 0, 1)[None])


def _forward(
    jnp: Any,
    jax: Any,
    params: dict[str, Any],
    h: Any,
    mask: Any,
    first: int,
    spec: EncoderSpec,
    position_bias: Any,
) -> Any:
    """Top encoder layers + masked mean + L2 norm; mirrors ``models.encoder.graph``."""
    b, t, _ = h.shape
    hd = spec.head_dim

    def lin(x: Any, name: str) -> Any:
        return x @ params[name + ".weight"].T + params[name + ".bias"]

    def ln(x: Any, name: str) -> Any:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        scale = params[name + ".weight"]
        return (x - mu) / jnp.sqrt(var + spec.ln_eps) * scale + params[name + ".bias"]

    bias = ((1.0 - mask) * -1e9)[:, None, None, :] + position_bias
    for p in layer_keys(spec, first):

        def split(x: Any) -> Any:
            return x.reshape(b, t, spec.heads, hd).transpose(0, 2, 1, 3)

        q = split(lin(h, p + "attention.self.query"))
        k = split(lin(h, p + "attention.self.key"))
        v = split(lin(h, p + "attention.self.value"))
        att = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + bias, axis=-1)
        ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, t, spec.hidden)
        h = ln(lin(ctx, p + "attention.output.dense") + h, p + "attention.output.LayerNorm")
        ff = jax.nn.gelu(lin(h, p + "intermediate.dense"), approximate=False)
        h = ln(lin(ff, p + "output.dense") + h, p + "output.LayerNorm")
    pooled = (h * mask[..., None]).sum(1) / jnp.maximum(mask.sum(1, keepdims=True), 1e-9)
    return pooled / jnp.maximum(jnp.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)


def finetune(
    weights: dict[str, np.ndarray],
    states: TokenStates,
    labels: np.ndarray,
    n_classes: int,
    params: FinetuneParams,
    on_epoch: Callable[[int, dict[str, np.ndarray]], None] | None = None,
    distillation: Distillation | None = None,
) -> dict[str, np.ndarray]:
    """Return updated top-layer weights plus ``head.weight`` [C,hidden] / ``head.bias`` [C].
    With ``distillation`` the loss also pulls towards the teacher's softened outputs."""
    import jax
    import jax.numpy as jnp

    spec = spec_of(weights)
    first = spec.layers - params.top_layers
    trainable = _trainable(weights, spec, first)
    # Start the head at scaled class centroids of the frozen embeddings: a decent
    # classifier from step one, so the encoder gets useful gradients immediately.
    start = embed(weights, states, params.top_layers)
    centroids = np.stack(
        [
            start[labels == c].mean(0) if (labels == c).any() else np.zeros(spec.hidden, np.float32)
            for c in range(n_classes)
        ]
    )
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
    trainable["head.weight"] = jnp.asarray(params.head_scale * centroids, jnp.float32)
    trainable["head.bias"] = jnp.zeros((n_classes,), jnp.float32)

    if distillation is not None and distillation.teacher_logits.shape != (len(labels), n_classes):
        raise ValueError(
            f"teacher logits {distillation.teacher_logits.shape} do not match "
            f"{len(labels)} training texts x {n_classes} classes"
        )
    # Without a teacher a one-column placeholder keeps the step's signature.
    soft = (
        distillation.teacher_logits.astype(np.float32)
        if distillation is not None
        else np.zeros((len(labels), 1), np.float32)
    )

    def loss_fn(p: dict[str, Any], h: Any, m: Any, y: Any, t: Any, w: Any) -> Any:
        bias = _position_bias(jnp, weights, spec, h.shape[1])  # shapes are static under jit
        emb = _forward(jnp, jax, p, h, m, first, spec, bias)
        logits = emb @ p["head.weight"].T + p["head.bias"]
        eps = params.label_smoothing
        if distillation is None:
            per_text = cross_entropy(jnp, logits, y, eps)
        else:
            per_text = distillation_loss(
                jnp, logits, t, y, distillation.alpha, distillation.temperature, eps
            )
        return (per_text * w).sum() / jnp.maximum(w.sum(), 1.0)

    is_head = {k: k.startswith("head.") for k in trainable}
    b1, b2 = 0.9, 0.999

    @jax.jit
    def step(
        p: Any, mu: Any, nu: Any, t: Any, scale: Any, h: Any, m: Any, y: Any, s: Any, w: Any
    ) -> tuple[Any, Any, Any, Any]:
        loss, grads = jax.value_and_grad(loss_fn)(p, h, m, y, s, w)
        new_p, new_mu, new_nu = {}, {}, {}
        for k in p:  # AdamW, separate learning rates for encoder and head
            lr = (params.lr_head if is_head[k] else params.lr_encoder) * scale
            new_mu[k] = b1 * mu[k] + (1 - b1) * grads[k]
            new_nu[k] = b2 * nu[k] + (1 - b2) * grads[k] ** 2
            mhat = new_mu[k] / (1 - b1**t)
            vhat = new_nu[k] / (1 - b2**t)
            decay = params.weight_decay * p[k] if p[k].ndim > 1 else 0.0
            new_p[k] = p[k] - lr * (mhat / (jnp.sqrt(vhat) + 1e-8) + decay)
        return new_p, new_mu, new_nu, loss

    mu = {k: jnp.zeros_like(v) for k, v in trainable.items()}
    nu = {k: jnp.zeros_like(v) for k, v in trainable.items()}
    rng = np.random.default_rng(params.seed)
    n = len(labels)
    steps_per_epoch = math.ceil(n / params.batch_size)
    total = steps_per_epoch * params.epochs
    warm = max(1, int(total * params.warmup))
    t = 0
    lengths = np.array([len(x) for x in states.states], dtype=np.float64)
    for epoch in range(params.epochs):
        # Batches of similar length (sorted with random jitter, then shuffled) cut the
        # padding, and so the compute, by about half versus fully random batches.
        order = np.argsort(lengths + rng.uniform(0, 4, n), kind="stable")
        batches = [order[i : i + params.batch_size] for i in range(0, n, params.batch_size)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        bar = tqdm(
            batches, desc=f"fine-tune epoch {epoch + 1}/{params.epochs}", unit="step", leave=False
        )
        for s, idx in enumerate(bar):
            w = np.ones(params.batch_size, dtype=np.float32)
            if len(idx) < params.batch_size:  # pad the last batch with zero-weight rows
                w[len(idx) :] = 0.0
                idx = np.concatenate([idx, np.repeat(idx[:1], params.batch_size - len(idx))])
            h, m = states.batch(idx)
            t += 1
            scale = min(t / warm, max(0.0, (total - t) / max(1, total - warm)))
            trainable, mu, nu, loss = step(
                trainable, mu, nu, float(t), scale, h, m, labels[idx], soft[idx], w
            )
            if s % 20 == 0:
                bar.set_postfix(loss=f"{float(loss):.3f}")
        if on_epoch is not None:
            on_epoch(epoch, {k: np.asarray(v) for k, v in trainable.items()})
    return {k: np.asarray(v, dtype=np.float32) for k, v in trainable.items()}


def embed(
    weights: dict[str, np.ndarray], states: TokenStates, top_layers: int, batch_size: int = 128
) -> np.ndarray:
    """Embeddings from cached states with (fine-tuned) top layers, for quick evaluation."""
    import jax
    import jax.numpy as jnp

    spec = spec_of(weights)
    first = spec.layers - top_layers
    p = _trainable(weights, spec, first)

    def forward(p: dict[str, Any], h: Any, m: Any) -> Any:
        bias = _position_bias(jnp, weights, spec, h.shape[1])
        return _forward(jnp, jax, p, h, m, first, spec, bias)

    fwd = jax.jit(forward)
    order = np.argsort([len(s) for s in states.states], kind="stable")
    out = np.zeros((len(order), spec.hidden), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        h, m = states.batch(idx, bucket=16)
        out[idx] = np.asarray(fwd(p, h, m))
    return out
