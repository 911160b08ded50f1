"""Where models, caches and bundled data live (overridable by environment)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def model_repository() -> Path:
    """Registry root read by the inference server (``LUMEN_MODEL_REPOSITORY``)."""
    return Path(os.environ.get("LUMEN_MODEL_REPOSITORY", REPO_ROOT / "var" / "models"))


def cache_dir() -> Path:
    """Downloaded wheels, extracted data and embedding caches (``LUMEN_CACHE_DIR``)."""
    return Path(os.environ.get("LUMEN_CACHE_DIR", REPO_ROOT / "var" / "cache"))


def datasets_dir() -> Path:
    """Datasets shipped with the repository (CC BY, attributed in ATTRIBUTION.md)."""
    return REPO_ROOT / "data" / "datasets"


def runs_dir() -> Path:
    """One metrics JSON per train/eval run."""
    return Path(os.environ.get("LUMEN_RUNS_DIR", REPO_ROOT / "var" / "runs"))
