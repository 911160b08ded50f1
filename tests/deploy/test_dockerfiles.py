"""services/<name>/Dockerfile: multi-stage, pinned, non-root, health-checked, built from the lock."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.settings_catalog import REPO, known_variables, service_names

# Instructions that bring compilers or package managers' build tools into an image.
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|cmake|clang|rustc|cargo)\b")
PINNED_PYTHON = re.compile(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?$")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]

    def resolve(self, text: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: self.args.get(m[1], m[0]), text)

    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def runtime_chain(self) -> list[Stage]:
        """The final stage and the stages it is built FROM, up to a base image."""
        chain = [self.final()]
        names = {s.name for s in self.stages}
        while True:
            base = self.resolve(chain[-1].base)
            if base not in names:
                return chain
            chain.append(self.stage(base))


def parse(path: Path) -> Dockerfile:
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        elif not stages and keyword == "ARG":
            key, _, value = rest.partition("=")
            args[key.strip()] = value.strip()
        else:
            stages[-1].instructions.append((keyword, rest.strip()))
    return Dockerfile(args, stages)


@pytest.fixture(scope="module", params=service_names())
def service(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def dockerfile(service: str) -> Dockerfile:
    path = REPO / "services" / service / "Dockerfile"
    assert path.is_file(), f"services/{service} has no Dockerfile"
    return parse(path)


def test_base_image_is_a_pinned_slim_python(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages:
        base = dockerfile.resolve(stage.base)
        if base in {s.name for s in dockerfile.stages} or base.startswith("models-"):
            continue
        assert PINNED_PYTHON.match(base), f"unpinned base image {base}"


def test_multi_stage_build_installs_the_locked_dependencies_with_uv(
    dockerfile: Dockerfile,
) -> None:
    builder = dockerfile.stage("builder")
    runs = " ".join(builder.all("RUN"))
    assert "uv sync --frozen --no-dev" in runs
    assert "--no-editable" in runs, "the project must be installed, not linked to /src"
    assert any("uv.lock" in c for c in builder.all("COPY"))
    runtime = dockerfile.runtime_chain()
    copies = [c for stage in runtime for c in stage.all("COPY")]
    assert "--from=builder /opt/venv /opt/venv" in copies


def test_final_image_has_no_build_tools(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.runtime_chain():
        for command in stage.all("RUN"):
            assert not BUILD_TOOLS.search(command), command
            assert "apt-get install" not in command, command
            assert "pip install" not in command, command


def test_runs_as_a_numeric_non_root_user(dockerfile: Dockerfile) -> None:
    users = [u for stage in reversed(dockerfile.runtime_chain()) for u in stage.all("USER")]
    assert users, "no USER: the container would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, f"USER {users[-1]} is not a numeric non-root uid"


def test_healthcheck_and_entrypoint_match_the_service(service: str, dockerfile: Dockerfile) -> None:
    runtime = dockerfile.runtime_chain()
    checks = [h for stage in runtime for h in stage.all("HEALTHCHECK")]
    assert checks and "/opt/lumen/healthcheck.py" in checks[-1]
    entrypoints = [e for stage in runtime for e in stage.all("ENTRYPOINT")]
    assert entrypoints[-1] == f'["python", "-m", "services.{service}"]'


def test_environment_binds_all_interfaces_with_real_settings(
    service: str, dockerfile: Dockerfile
) -> None:
    env = " ".join(e for stage in dockerfile.runtime_chain() for e in stage.all("ENV"))
    assert f"LUMEN_{service.upper()}_HOST=0.0.0.0" in env
    lumen_vars = set(re.findall(r"\b(LUMEN_[A-Z0-9_]+)=", env))
    assert lumen_vars <= known_variables(), lumen_vars - known_variables()


def test_healthcheck_ports_are_the_services_defaults(service: str, dockerfile: Dockerfile) -> None:
    import importlib

    module = importlib.import_module(f"services.{service}.settings")
    check = [h for stage in dockerfile.runtime_chain() for h in stage.all("HEALTHCHECK")][-1]
    variable, default = re.findall(r'"(LUMEN_[A-Z_]+)", "(\d+)"', check)[0]
    # The service's own settings class: the one under the LUMEN_<SERVICE>_ prefix (a module
    # may hold others, e.g. inference's LUMEN_ASSIST_* settings).
    prefix = f"LUMEN_{service.upper()}_"
    settings_class = next(
        v
        for k, v in vars(module).items()
        if k.endswith("Settings")
        and v.__module__ == module.__name__
        and v.model_config.get("env_prefix") == prefix
    )
    field = variable.removeprefix(prefix).lower()
    assert settings_class.model_fields[field].default == int(default)
    exposed = " ".join(e for stage in dockerfile.runtime_chain() for e in stage.all("EXPOSE"))
    assert default in exposed.split()


def test_copied_sources_exist(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages:
        for copy in stage.all("COPY"):
            parts = [p for p in copy.split() if not p.startswith("--")]
            if "--from=" in copy:
                continue
            for source in parts[:-1]:
                if source.startswith("var/models"):
                    continue  # the MODELS=baked input, produced by the model pipeline
                assert (REPO / source).exists(), f"COPY source {source} does not exist"


def test_inference_models_are_mounted_or_baked_by_build_arg() -> None:
    dockerfile = parse(REPO / "services" / "inference" / "Dockerfile")
    assert dockerfile.args["MODELS"] == "mounted"
    assert dockerfile.final().base == "models-${MODELS}"
    assert any("var/models/ /models/" in c for c in dockerfile.stage("models-baked").all("COPY"))
    assert dockerfile.stage("models-mounted").all("VOLUME") == ['["/models"]']
    env = " ".join(dockerfile.stage("runtime").all("ENV"))
    assert "LUMEN_MODEL_REPOSITORY=/models" in env


def test_dockerignore_sends_only_what_the_images_copy() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "**", "start from nothing, then re-include"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for path in ("pyproject.toml", "uv.lock", "shared", "services", "protos/gen", "deploy/docker"):
        assert path in included, path
    for secret_or_cache in ("**/__pycache__", "**/.env"):
        assert secret_or_cache in lines
    assert not included & {".venv", "var", ".git", "tests"}


# Settings that would ship a credential or development mode inside an image.
CREDENTIALS = re.compile(r"\bLUMEN_(DEV_MODE|[A-Z_]*_KEYS|[A-Z_]*AUTH_TOKEN|[A-Z_]*PASSWORD)\b")


def test_images_carry_no_credential_and_no_development_mode(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages:
        for keyword, args in stage.instructions:
            if keyword in ("ENV", "ARG", "LABEL"):
                assert not CREDENTIALS.search(args), f"{keyword} {args}"
    assert not any(CREDENTIALS.search(f"{k}={v}") for k, v in dockerfile.args.items())


def image_environment(service: str) -> dict[str, str]:
    """The LUMEN_* variables the image sets, as its entrypoint would see them."""
    dockerfile = parse(REPO / "services" / service / "Dockerfile")
    env = " ".join(e for stage in dockerfile.runtime_chain() for e in stage.all("ENV"))
    return dict(re.findall(r"\b(LUMEN_[A-Z0-9_]+)=(\S+)", env))


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("ingest", "LUMEN_INGEST_WRITE_KEYS"),
        ("inference", "LUMEN_INFERENCE_AUTH_TOKEN"),
        ("insights", "LUMEN_INSIGHTS_AUTH_TOKEN"),
    ],
)
def test_an_image_started_without_credentials_refuses_to_start(image: str, reason: str) -> None:
    # The image's own environment and nothing else: no key, no token, no development mode.
    environment = {"PATH": os.environ["PATH"], "HOME": "/tmp", **image_environment(image)}
    environment["LUMEN_MODEL_REPOSITORY"] = str(REPO / "var" / "no-models")
    result = subprocess.run(
        [sys.executable, "-m", f"services.{image}"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "refus" in result.stderr + result.stdout and reason in result.stderr + result.stdout
