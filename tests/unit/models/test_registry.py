"""Registry config round-trip, listing, newest version and checksum checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.cards import render_card
from models.publish import current_if_unchanged, publish, serving
from shared.model_registry import (
    DataSource,
    ModelConfig,
    RegistryError,
    TensorSpec,
    get_version,
    latest_version,
    list_models,
    list_versions,
    load_config,
    save_config,
)


def _config(**kw: object) -> ModelConfig:
    base = dict(
        name="demo",
        version=1,
        task="test",
        sha256="",
        inputs=[TensorSpec(name="x", dtype="float32", shape=["batch", 3])],
        outputs=[TensorSpec(name="y", dtype="int64", shape=["batch", "k"])],
        labels=["a", "b"],
        metrics={"acc": 0.5, "nested": {"hr@10": 0.2}},
        training_data=[DataSource(name="d", source="s", license="CC BY 4.0")],
        inputs_fingerprint="abc",
        extra={"oos_threshold": 0.3},
    )
    base.update(kw)
    return ModelConfig.model_validate(base)


def _write(folder: Path, content: bytes = b"onnx") -> None:
    (folder / "model.onnx").write_bytes(content)
    (folder / "labels.json").write_text('["a", "b"]')


def test_config_round_trip(tmp_path: Path) -> None:
    config = _config(sha256="f" * 64)
    save_config(config, tmp_path)
    assert load_config(tmp_path) == config


def test_max_history_is_read_from_extra_or_preprocessing() -> None:
    assert _config().max_history() is None  # not a sequence model
    assert _config(extra={"max_history": 50}).max_history() == 50
    assert _config(preprocessing={"max_len": 8}).max_history() == 8
    assert _config(extra={"max_history": True, "pad": -1}).max_history() is None


def test_invalid_config_is_a_registry_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"name": "x"}')
    with pytest.raises(RegistryError, match="invalid"):
        load_config(tmp_path)


def test_publish_lists_versions_and_verifies(tmp_path: Path) -> None:
    first = publish(_config(), _write, lambda c: f"# {c.name}", root=tmp_path)
    second = publish(
        _config(inputs_fingerprint="def"),
        lambda f: _write(f, b"v2"),
        lambda c: "# card",
        root=tmp_path,
    )
    assert (first.name, second.name) == ("1", "2")
    assert list_models(tmp_path) == ["demo"]
    assert list_versions("demo", tmp_path) == [1, 2]
    assert latest_version("demo", tmp_path) == 2
    found = get_version("demo", root=tmp_path, verify=True)
    assert found.version == 2 and found.config.files.keys() == {"labels.json"}
    assert (second / "README.md").read_text() == "# card"
    assert current_if_unchanged("demo", "def", tmp_path) is not None
    assert current_if_unchanged("demo", "abc", tmp_path) is None
    (second / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(RegistryError, match="sha256 mismatch"):
        get_version("demo", root=tmp_path, verify=True)


def test_partial_versions_are_invisible(tmp_path: Path) -> None:
    (tmp_path / "demo" / ".tmp-1").mkdir(parents=True)
    (tmp_path / "demo" / "3").mkdir()  # no config.json yet
    assert list_versions("demo", tmp_path) == []
    with pytest.raises(RegistryError, match="no versions"):
        get_version("demo", root=tmp_path)


def test_roles_and_serving_knobs_round_trip_and_a_role_must_name_an_output(
    tmp_path: Path,
) -> None:
    config = _config(output_roles={"items": "y"}, **serving(max_queue_delay_microseconds=0))
    folder = publish(config, _write, render_card_for_test, root=tmp_path)
    loaded = load_config(folder)
    assert loaded.output_roles == {"items": "y"}
    assert loaded.max_batch_size == 32 and loaded.instance_group[0].count == 2
    assert loaded.dynamic_batching is not None
    assert loaded.dynamic_batching.max_queue_delay_microseconds == 0
    card = (folder / "README.md").read_text()
    assert "| output | y | items |" in card and "`max_batch_size` 32" in card
    with pytest.raises(RegistryError, match="name no output"):
        publish(
            _config(output_roles={"items": "nope"}), _write, render_card_for_test, root=tmp_path
        )
    assert list_versions("demo", tmp_path) == [1]


def render_card_for_test(config: ModelConfig) -> str:
    return render_card(config, "Test model.", [])
