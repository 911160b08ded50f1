"""Loading, validation, hot swap and pins of registry versions (tiny ONNX models)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from services.inference import repository
from services.inference.errors import NotFound
from services.inference.repository import ModelRepository
from services.inference.settings import InferenceSettings
from tests.unit.inference import tiny_models as tiny


def settings(root: Path, **extra: object) -> InferenceSettings:
    return InferenceSettings(model_repository=root, intra_op_threads=1, **extra)  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="function")
async def repo(tmp_path: Path) -> AsyncIterator[ModelRepository]:
    tiny.write_recommender(tmp_path, 1)
    tiny.write_intent(tmp_path, 1)
    executor = ThreadPoolExecutor(1)
    repository = ModelRepository(settings(tmp_path), executor)
    await repository.scan()
    yield repository
    await repository.close()
    executor.shutdown()


def rec_inputs() -> dict[str, np.ndarray]:
    return {
        "recent_items": np.array([[-1, -1, -1, 0]]),
        "exclude_mask": np.zeros((1, len(tiny.ITEMS)), dtype=bool),
        "k": np.array([3]),
    }


async def test_loads_the_newest_version_of_every_model(repo: ModelRepository) -> None:
    assert repo.names() == ["intent-classifier", "recommender"]
    out = await repo.get("recommender").infer(rec_inputs())
    assert out["top_items"].tolist() == [[1, 2, 0]]  # item 0 suggests 1, then 2
    assert repo.is_ready("recommender", 1) and not repo.is_ready("recommender", 2)


async def test_unknown_model_or_version_is_not_found(repo: ModelRepository) -> None:
    with pytest.raises(NotFound):
        repo.get("nope")
    with pytest.raises(NotFound):
        repo.get("recommender", 7)


async def test_a_version_taken_before_a_swap_still_serves_that_request(
    repo: ModelRepository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repository, "RETIRE_GRACE_SECONDS", 0.2)
    old = repo.get("recommender")  # taken, then the request awaits something else
    tiny.write_recommender(tmp_path, 2, boost=5.0)
    await repo.scan()
    assert repo.get("recommender").version == 2
    await asyncio.sleep(0.05)
    assert (await old.infer(rec_inputs()))["top_items"].shape[0] == 1
    await asyncio.sleep(0.3)
    assert old.batcher is not None and old.batcher._closing


async def test_a_new_version_is_swapped_in_and_the_old_one_unloaded(
    repo: ModelRepository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repository, "RETIRE_GRACE_SECONDS", 0.0)
    old = repo.get("recommender")
    tiny.write_recommender(tmp_path, 2, boost=5.0)
    await repo.scan()
    new = repo.get("recommender")
    assert new.version == 2 and repo.is_ready("recommender", 2)
    assert (await new.infer(rec_inputs()))["top_items"][0, 0] == len(tiny.ITEMS) - 1
    await asyncio.sleep(0.05)
    assert old.batcher is not None and old.batcher._closing


@pytest.mark.parametrize(
    "breakage",
    ["bad_file", "wrong_shape", "checksum", "labels", "role_names_no_output", "required_role"],
)
async def test_a_broken_version_is_refused_and_the_old_one_keeps_serving(
    repo: ModelRepository, tmp_path: Path, breakage: str
) -> None:
    if breakage == "bad_file":
        tiny.write_version(tmp_path, "recommender", 2, b"not onnx", "recommendation", [], [])
    elif breakage == "wrong_shape":  # config declares 9 items, the graph has 8
        folder = tiny.write_recommender(tmp_path, 2)
        config = json.loads((folder / "config.json").read_text())
        config["inputs"][1]["shape"] = ["batch", 9]
        (folder / "config.json").write_text(json.dumps(config))
    elif breakage == "checksum":
        folder = tiny.write_recommender(tmp_path, 2)
        (folder / "model.onnx").write_bytes(tiny.recommender_model(boost=1.0).SerializeToString())
    elif breakage == "labels":
        probabilities = [tiny._spec("probabilities", "float32", ["batch", 3])]
        tiny.write_version(
            tmp_path,
            "recommender",
            2,
            tiny.intent_model(),
            "intent-classification",
            tiny.TOKENS,
            probabilities,
            labels=["only", "two"],
            output_roles={"probabilities": "probabilities"},
        )
    elif breakage == "role_names_no_output":
        folder = tiny.write_recommender(tmp_path, 2)
        config = json.loads((folder / "config.json").read_text())
        config["output_roles"]["scores"] = "no_such_output"
        (folder / "config.json").write_text(json.dumps(config))
    else:  # a top-k graph whose config says nothing is its item axis
        folder = tiny.write_recommender(tmp_path, 2)
        config = json.loads((folder / "config.json").read_text())
        config["output_roles"] = {"scores": "top_scores"}
        (folder / "config.json").write_text(json.dumps(config))
    await repo.scan()
    assert repo.get("recommender").version == 1
    assert not repo.is_ready("recommender", 2)
    assert (await repo.get("recommender").infer(rec_inputs()))["top_items"].shape == (1, 3)


async def test_a_pinned_version_is_served_even_when_newer_exist(tmp_path: Path) -> None:
    tiny.write_recommender(tmp_path, 1)
    tiny.write_recommender(tmp_path, 2, boost=5.0)
    executor = ThreadPoolExecutor(1)
    repository = ModelRepository(settings(tmp_path, version_pins={"recommender": 1}), executor)
    await repository.scan()
    try:
        assert repository.get("recommender").version == 1
        assert not repository.is_ready("recommender", 2)
    finally:
        await repository.close()
        executor.shutdown()


def _tokenizer_with_extra_words(count: int) -> str:
    """The tiny tokenizer with ``count`` more words than the tiny graphs' embedding table."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = tiny.vocabulary()
    vocab.update({f"extra{i}": len(vocab) + i for i in range(count)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return str(tok.to_str())


async def test_limits_come_from_the_versions_own_files(repo: ModelRepository) -> None:
    limits = repo.get("intent-classifier").limits
    assert limits.values["input_ids"].high == len(tiny.vocabulary())
    assert (limits.values["attention_mask"].low, limits.values["attention_mask"].high) == (0, 2)
    assert limits.axis_max == {"tokens": 256}  # the tokenizer's truncation, none declared


async def test_a_tokenizer_larger_than_the_graph_refuses_the_version(
    repo: ModelRepository, tmp_path: Path
) -> None:
    """A version whose tokenizer yields ids past the embedding table would fail, at run time,
    the batches of the texts holding them: it is refused at load, the old one keeps serving."""
    tiny.write_version(
        tmp_path,
        "intent-classifier",
        2,
        tiny.intent_model(),
        "intent-classification",
        tiny.TOKENS,
        [tiny._spec("probabilities", "float32", ["batch", len(tiny.INTENTS)])],
        files={"tokenizer.json": _tokenizer_with_extra_words(5)},
        labels=tiny.INTENTS,
    )
    await repo.scan()
    assert repo.get("intent-classifier").version == 1
    assert not repo.is_ready("intent-classifier", 2)


async def test_a_declared_position_table_bounds_the_sequence_length(tmp_path: Path) -> None:
    tiny.write_version(
        tmp_path,
        "intent-classifier",
        1,
        tiny.intent_model(),
        "intent-classification",
        tiny.TOKENS,
        [tiny._spec("probabilities", "float32", ["batch", len(tiny.INTENTS)])],
        files={"tokenizer.json": tiny.tokenizer_json()},
        labels=tiny.INTENTS,
        extra={"max_position_embeddings": 12},
    )
    executor = ThreadPoolExecutor(1)
    repository = ModelRepository(settings(tmp_path), executor)
    await repository.scan()
    try:
        assert repository.get("intent-classifier").limits.axis_max == {"tokens": 12}
    finally:
        await repository.close()
        executor.shutdown()
