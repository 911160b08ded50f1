"""Where the local platform keeps its state: one gitignored folder, ``var/`` by default."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def var_dir() -> Path:
    """Root of all local state (``LUMEN_VAR_DIR``, default ``<repo>/var``)."""
    return Path(os.environ.get("LUMEN_VAR_DIR", REPO_ROOT / "var")).resolve()


def cache_dir() -> Path:
    """Downloads that survive ``lumen down --purge`` (``LUMEN_CACHE_DIR``, default ``var/cache``)."""
    return Path(os.environ.get("LUMEN_CACHE_DIR", var_dir() / "cache")).resolve()


def data_dir(component: str) -> Path:
    path = var_dir() / "data" / component
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_file(component: str) -> Path:
    path = var_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{component}.log"


def pid_file(component: str) -> Path:
    path = var_dir() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{component}.pid"
