"""Runtimes by task: a model's ``config.task`` picks its runtime, ``output_roles`` say what
its outputs are, and its batching knobs come from its ``config.json`` (Triton's names) with
the environment only overriding them."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from services.inference.errors import Unavailable
from services.inference.intent import IntentClassifier
from services.inference.repository import ModelRepository
from services.inference.runtimes import (
    IntentClassification,
    NextItemRecommendation,
    SemanticSearch,
    TextEmbedding,
    runtime_for,
)
from services.inference.runtimes.intent import softmax
from services.inference.settings import InferenceSettings
from tests.unit.inference import tiny_models as tiny


async def loaded(root: Path, **settings: object) -> tuple[ModelRepository, ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(1)
    repo = ModelRepository(
        InferenceSettings(model_repository=root, intra_op_threads=1, **settings),  # type: ignore[arg-type]
        executor,
    )
    await repo.scan()
    return repo, executor


async def close(repo: ModelRepository, executor: ThreadPoolExecutor) -> None:
    await repo.close()
    executor.shutdown()


async def test_each_model_gets_the_runtime_of_its_declared_task(tmp_path: Path) -> None:
    tiny.write_all(tmp_path)
    tiny.write_version(
        tmp_path,
        "custom",
        1,
        tiny.intent_model(),
        "anomaly-scoring",
        tiny.TOKENS,
        [tiny._spec("probabilities", "float32", ["batch", 3])],
    )
    repo, executor = await loaded(tmp_path)
    try:
        kinds = {name: type(repo.get(name).runtime) for name in repo.names()}
        assert kinds == {
            "intent-classifier": IntentClassification,
            "text-encoder": TextEmbedding,
            "item-search": SemanticSearch,
            "recommender": NextItemRecommendation,
            "custom": type(runtime_for("anomaly-scoring")),
        }
        # A task without a runtime still serves its graph over ModelInfer.
        out = await repo.get("custom").infer(
            {"input_ids": np.array([[1, 2]]), "attention_mask": np.array([[1, 1]])}
        )
        assert out["probabilities"].shape == (1, 3)
    finally:
        await close(repo, executor)


async def test_a_typed_api_refuses_a_model_of_another_task(tmp_path: Path) -> None:
    tiny.write_version(
        tmp_path,
        "intent-classifier",
        1,
        tiny.encoder_model(),
        "text-embedding",
        tiny.TOKENS,
        [tiny._spec("embedding", "float32", ["batch", tiny.DIM])],
        files={"tokenizer.json": tiny.tokenizer_json()},
        output_roles={"embedding": "embedding"},
    )
    repo, executor = await loaded(tmp_path)
    try:
        classifier = IntentClassifier(repo, repo.settings)
        with pytest.raises(
            Unavailable, match="'text-embedding' model, not 'intent-classification'"
        ):
            await classifier.classify(["what is my balance"])
    finally:
        await close(repo, executor)


async def test_the_declared_role_decides_how_outputs_are_read(tmp_path: Path) -> None:
    """The same output read as probabilities, then declared as logits: the name no longer
    decides (it holds "prob", which used to mean probabilities)."""
    tiny.write_intent(tmp_path, 1)
    folder = tiny.write_intent(tmp_path, 1, name="intent-logits")
    config = (folder / "config.json").read_text()
    (folder / "config.json").write_text(
        config.replace('"probabilities": "probabilities"', '"logits": "probabilities"')
    )
    repo, executor = await loaded(tmp_path)
    try:
        texts = ["what is my balance"]
        plain, _ = await IntentClassifier(repo, repo.settings).classify(texts)
        as_logits, _ = await IntentClassifier(
            repo, repo.settings.model_copy(update={"intent_model": "intent-logits"})
        ).classify(texts)
        probabilities = np.array([[c for _, c in sorted(plain[0].alternatives)]])
        read_as_logits = [c for _, c in sorted(as_logits[0].alternatives)]
        assert read_as_logits == pytest.approx(softmax(probabilities)[0].tolist(), rel=1e-5)
        assert not plain[0].out_of_scope and plain[0].intent == "balance"
        assert as_logits[0].out_of_scope  # flattened below the 0.5 threshold
    finally:
        await close(repo, executor)


async def test_a_folder_without_roles_gets_them_from_its_output_names_once_with_a_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tiny.write_intent(tmp_path, 1, roles=False)
    with caplog.at_level(logging.WARNING, logger="services.inference.runtimes"):
        repo, executor = await loaded(tmp_path)
    try:
        assert repo.get("intent-classifier").roles == {"probabilities": "probabilities"}
        derived = [
            r for r in caplog.records if r.getMessage() == "output roles derived from output names"
        ]
        assert len(derived) == 1
        assert derived[0].fields["model"] == "intent-classifier"  # type: ignore[attr-defined]
        results, _ = await IntentClassifier(repo, repo.settings).classify(["what is my balance"])
        assert results[0].intent == "balance"
    finally:
        await close(repo, executor)


TRITON_KNOBS = {
    "max_batch_size": 4,
    "dynamic_batching": {"max_queue_delay_microseconds": 250, "preferred_batch_size": [2, 4]},
    "instance_group": [{"count": 1}],
}


async def test_batching_comes_from_the_models_config_and_the_environment_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny.write_intent(tmp_path, 1, serving=TRITON_KNOBS)
    repo, executor = await loaded(tmp_path)
    try:
        batcher = repo.get("intent-classifier").batcher
        assert batcher is not None and batcher.max_rows == 4
        knobs = batcher._config
        assert (knobs.max_queue_delay_us, knobs.preferred_batch_sizes) == (250, [2, 4])
        assert knobs.max_concurrent_batches == 1
    finally:
        await close(repo, executor)

    monkeypatch.setenv("LUMEN_INFERENCE_BATCHING_DEFAULT", '{"max_concurrent_batches": 3}')
    monkeypatch.setenv("LUMEN_INFERENCE_BATCHING", '{"intent-classifier": {"max_batch_size": 2}}')
    repo, executor = await loaded(tmp_path)
    try:
        batcher = repo.get("intent-classifier").batcher
        assert batcher is not None and batcher.max_rows == 2
        knobs = batcher._config
        assert knobs.max_concurrent_batches == 3
        assert knobs.max_queue_delay_us == 250  # not overridden: the model's own
    finally:
        await close(repo, executor)


async def test_a_recommender_under_any_name_gets_its_tasks_batching(tmp_path: Path) -> None:
    folder = tiny.write_recommender(tmp_path, 1)
    folder.parent.rename(tmp_path / "recs")
    config = (tmp_path / "recs" / "1" / "config.json").read_text()
    (tmp_path / "recs" / "1" / "config.json").write_text(
        config.replace('"name": "recommender"', '"name": "recs"')
    )
    tiny.write_intent(tmp_path, 1)
    repo, executor = await loaded(tmp_path)
    try:
        recs = repo.get("recs").batcher
        intent = repo.get("intent-classifier").batcher
        assert recs is not None and intent is not None
        assert (recs._config.max_queue_delay_us, recs._config.inline_max_rows) == (0, 8)
        assert (intent._config.max_queue_delay_us, intent._config.inline_max_rows) == (1000, 0)
    finally:
        await close(repo, executor)


def test_a_large_catalogue_runs_its_recommender_off_the_event_loop() -> None:
    from shared.model_registry import ModelConfig, TensorSpec

    def config(items: int) -> ModelConfig:
        mask = TensorSpec(name="exclude_mask", dtype="bool", shape=["batch", items])
        return ModelConfig(
            name="recommender",
            version=1,
            task=NextItemRecommendation.task,
            inputs=[mask],
            outputs=[],
            sha256="0" * 64,
        )

    runtime = NextItemRecommendation()
    limit = NextItemRecommendation.INLINE_MAX_ITEMS
    assert runtime.batching_for(config(1_682))["inline_max_rows"] == 8
    assert runtime.batching_for(config(limit))["inline_max_rows"] == 8
    assert runtime.batching_for(config(limit + 1))["inline_max_rows"] == 0
    assert NextItemRecommendation.batching["inline_max_rows"] == 8  # the task's own knobs kept
