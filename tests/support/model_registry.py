"""One registry of the small default models (``python -m models build-defaults --small``),
built once and shared by every test session that needs real models.

The build takes minutes, so it lands in a cached folder under the test var directory whose
name is a digest of everything the models are built from (``models/``, the registry module,
the shipped datasets, the encoder parity fixture). A code or data change therefore gets a
fresh folder where every model is version 1, instead of new versions piling up on old ones.
A marker file written after a successful build lets later sessions skip even the
``build-defaults`` start-up; an interrupted build is resumed by ``build-defaults``' own
per-model fingerprints. A file lock keeps two sessions from building the same folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from tests.support.stack import REPO, TEST_VAR

MODELS = (
    "text-encoder",
    "text-encoder-int8",
    "intent-classifier",
    "intent-classifier-clinc150",
    "recommender",
    "item-search",
)
MARKER = ".complete.json"
BUILD_TIMEOUT_SECONDS = 3600.0
# What the build reads, besides the pinned wheels that models/sources.py names by sha256.
INPUTS = ("models", "shared/model_registry.py", "data/datasets", "tests/fixtures")


class ModelsUnavailable(RuntimeError):
    """The small models cannot be built here (no training extra installed)."""


def inputs_digest(paths: Iterable[str] = INPUTS) -> str:
    digest = hashlib.sha256()
    for top in paths:
        base = REPO / top
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(REPO)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def registry_dir() -> Path:
    return TEST_VAR / "models" / f"small-{inputs_digest()}"


def is_complete(root: Path) -> bool:
    """True when a build finished here and every model's recorded version is present."""
    try:
        built = json.loads((root / MARKER).read_text())["models"]
    except (OSError, ValueError, KeyError):
        return False
    return set(built) == set(MODELS) and all(
        (root / name / str(version) / "config.json").is_file() for name, version in built.items()
    )


def small_registry() -> Path:
    """The path of a complete small registry, building it first when needed.

    ``LUMEN_TEST_SMALL_REGISTRY`` names a complete registry to use as it is (a developer
    changing ``models/`` keeps the one built before instead of rebuilding on every edit)."""
    pinned = os.environ.get("LUMEN_TEST_SMALL_REGISTRY")
    if pinned:
        if not is_complete(Path(pinned)):
            raise RuntimeError(f"LUMEN_TEST_SMALL_REGISTRY={pinned} is not a complete registry")
        return Path(pinned)
    root = registry_dir()
    if is_complete(root):
        return root
    if importlib.util.find_spec("onnx") is None:
        raise ModelsUnavailable("building models needs the 'train' extra (uv sync --extra train)")
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / ".small-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building the same folder
        if not is_complete(root):
            _build(root)
    return root


def _build(root: Path) -> None:
    from shared.model_registry import latest_version

    root.mkdir(parents=True, exist_ok=True)
    log_path = root.parent / f"{root.name}.build.log"
    env = {
        **os.environ,
        "LUMEN_MODEL_REPOSITORY": str(root),
        "LUMEN_RUNS_DIR": str(root.parent / f"{root.name}.runs"),
    }
    start = time.monotonic()
    with open(log_path, "wb") as log:
        done = subprocess.run(
            [sys.executable, "-m", "models", "build-defaults", "--small"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_SECONDS,
            check=False,
        )
    seconds = round(time.monotonic() - start, 1)
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"build-defaults --small failed ({done.returncode}):\n{tail}")
    versions = {name: latest_version(name, root) for name in MODELS}
    missing = [name for name, version in versions.items() if version is None]
    if missing:
        raise RuntimeError(f"build-defaults --small did not publish {missing}; see {log_path}")
    marker = {"models": versions, "build_seconds": seconds, "built_at": time.time()}
    (root / MARKER).write_text(json.dumps(marker, indent=2))
    _remove_stale(root)


def _remove_stale(current: Path) -> None:
    # Registries built from older sources are never read again; each is a few hundred MB.
    for old in current.parent.glob("small-*"):
        if old.name.startswith(current.name):
            continue  # this registry, its build log and its run metrics
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
