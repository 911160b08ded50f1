"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and catch what they forbid."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
# Every service package of the repository: the contracts name each, and a missing one fails them.
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").is_file())


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A project with the same top-level packages and the project's own contracts."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in ("shared", "lumen_cli", "models", "bench", "services"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "shared" / "topics.py").write_text("import json\n")
    for service in SERVICES:
        (tmp_path / "services" / service).mkdir()
        (tmp_path / "services" / service / "__init__.py").write_text("import shared.topics\n")
    return tmp_path


def test_the_project_keeps_its_contracts() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_tree_that_only_shares_through_shared_passes(tree: Path) -> None:
    result = _lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_service_importing_another_breaks_the_independence_contract(tree: Path) -> None:
    (tree / "services" / "inference" / "profile_api.py").write_text(
        "from services.profiles import field_names\n"
    )
    result = _lint_imports(tree)
    assert result.returncode == 1
    assert "services.inference is not allowed to import services.profiles" in result.stdout


@pytest.mark.parametrize("forbidden", ["services.ingest", "lumen_cli", "models", "bench"])
def test_shared_importing_a_service_cli_model_or_bench_breaks_its_contract(
    tree: Path, forbidden: str
) -> None:
    (tree / "shared" / "leak.py").write_text(f"import {forbidden}\n")
    result = _lint_imports(tree)
    assert result.returncode == 1
    assert f"shared is not allowed to import {forbidden.split('.')[0]}" in result.stdout
