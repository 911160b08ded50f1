"""The ``lumen`` command as a process, without a platform: help, doctor, unreachable targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lumen_cli.main import build_parser
from lumen_cli.platform.paths import REPO_ROOT
from tests.support.stack import free_port


def lumen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lumen_cli", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env if env is not None else dict(os.environ),
    )


def commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)  # type: ignore[arg-type]


def test_every_command_has_help() -> None:
    names = commands()
    assert {
        "seed",
        "recommend",
        "classify",
        "search",
        "profile",
        "trending",
        "tail",
        "doctor",
    } <= set(names)
    for name in names:
        done = lumen(name, "--help")
        assert done.returncode == 0, (name, done.stderr)
        assert done.stdout.startswith("usage: lumen " + name)


def test_wrong_usage_exits_2() -> None:
    done = lumen("recommend")
    assert done.returncode == 2
    assert "user" in done.stderr


def test_unreachable_inference_exits_3_and_says_what_to_do() -> None:
    target = f"127.0.0.1:{free_port()}"
    done = lumen("classify", "where is my card?", "--target", target)
    assert done.returncode == 3
    assert "lumen status" in done.stderr
    as_json = lumen("search", "robots", "--target", target, "--json")
    assert as_json.returncode == 3
    assert json.loads(as_json.stdout)["error"] == "UNAVAILABLE"


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """No java or mvn on PATH, no JAVA_HOME, and an empty download cache."""
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    (tmp_path / "bin").mkdir()
    env["PATH"] = str(tmp_path / "bin")
    env["LUMEN_CACHE_DIR"] = str(tmp_path / "cache")
    return env


def test_doctor_names_java_and_maven_when_they_are_missing(bare_env: dict[str, str]) -> None:
    done = lumen("doctor", env=bare_env)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    java = next(line for line in lines if " java " in line)
    maven = next(line for line in lines if " maven " in line)
    assert java.startswith("PROBLEM") and "Java not found" in java
    assert maven.startswith("PROBLEM") and "Maven (mvn) not found" in maven
    assert "apt-get install openjdk-17-jre-headless" in done.stdout
    assert "apt-get install maven" in done.stdout
    assert "java" in done.stdout.splitlines()[-1] and "maven" in done.stdout.splitlines()[-1]


def test_doctor_json_names_the_missing_pieces(bare_env: dict[str, str]) -> None:
    done = lumen("doctor", "--json", env=bare_env)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert report["ok"] is False
    assert status["java"] == "problem" and status["maven"] == "problem"
    assert status["python"] == "ok"
    assert any(name.startswith("port ") for name in status)


def test_doctor_with_java_and_maven_present_does_not_blame_them() -> None:
    done = lumen("doctor", "--json")
    status = {c["name"]: c["status"] for c in json.loads(done.stdout)["checks"]}
    if not (status["java"] == "ok" and status["maven"] == "ok"):
        pytest.skip("this machine has no Java 17 or Maven")
    problems = {n for n, s in status.items() if s == "problem"}
    assert "java" not in problems and "maven" not in problems
    assert done.returncode == (1 if problems else 0)


def test_version_is_the_installed_distributions() -> None:
    from importlib import metadata

    done = lumen("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"lumen {metadata.version('lumen')}"


def test_purge_deletes_the_seed_checkpoint_with_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The checkpoint describes what the data holds: after a purge the demo must be seeded again.
    from lumen_cli.commands.seed_cmd import checkpoint_file

    monkeypatch.setenv("LUMEN_VAR_DIR", str(tmp_path))
    checkpoint = checkpoint_file()
    assert checkpoint.is_relative_to(tmp_path / "data")
    checkpoint.write_text('{"ratings": {"done": 5}}')
    done = lumen("down", "--purge", env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert not checkpoint.exists()
