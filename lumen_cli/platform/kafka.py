"""Apache Kafka in KRaft mode, one node on 127.0.0.1, from jars that Maven fetches.

The broker's jars come from Maven Central through ``scripts/platform/kafka/pom.xml`` into the
cache folder; the broker runs on the machine's Java 17 with a generated ``server.properties``.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from lumen_cli.platform import paths, processes
from lumen_cli.platform.processes import PlatformError

COMPONENT = "kafka"
POM = paths.REPO_ROOT / "scripts" / "platform" / "kafka" / "pom.xml"
MIN_JAVA = 17


@dataclass(frozen=True)
class KafkaConfig:
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9093
    heap: str = "768m"

    @classmethod
    def from_env(cls) -> KafkaConfig:
        return cls(
            port=int(os.environ.get("LUMEN_LOCAL_KAFKA_PORT", "9092")),
            controller_port=int(os.environ.get("LUMEN_LOCAL_KAFKA_CONTROLLER_PORT", "9093")),
            heap=os.environ.get("LUMEN_LOCAL_KAFKA_HEAP", "768m"),
        )

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    if not match:
        raise PlatformError(f"{POM} names no <kafka.version>")
    return match.group(1)


def java_binary() -> str:
    """The java to run Kafka with: $JAVA_HOME/bin/java, else the one on PATH (17 or newer)."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise PlatformError(
            "Java was not found. Kafka needs a JDK or JRE 17 or newer: install one "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    if not match or int(match.group(1)) < MIN_JAVA:
        raise PlatformError(
            f"{java} is not Java {MIN_JAVA} or newer ({(out.stderr or out.stdout).strip()[:80]!r}); "
            "Kafka 4 needs Java 17+. Install it or point JAVA_HOME at it."
        )
    return java


def libs_dir() -> Path:
    return paths.cache_dir() / f"kafka-{kafka_version()}" / "libs"


def ensure_jars() -> Path:
    """Fetch the broker's jars with Maven once; later calls find them in the cache."""
    libs = libs_dir()
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise PlatformError(
            "Maven (mvn) was not found; it fetches Kafka's jars from Maven Central once. "
            "Install it (Debian/Ubuntu: apt-get install maven)."
        )
    libs.mkdir(parents=True, exist_ok=True)
    # A corporate mirror or proxy can be configured with a Maven settings file.
    settings = os.environ.get("LUMEN_MAVEN_SETTINGS")
    cmd = [
        mvn,
        "-q",
        "-B",
        *(["-s", settings] if settings else []),
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={libs}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n  ".join((result.stdout + result.stderr).strip().splitlines()[-10:])
        raise PlatformError(
            "Maven could not fetch Kafka's jars from Maven Central (is the repository reachable, "
            f"and ~/.m2 writable?).\n  {tail}"
        )
    marker.write_text(kafka_version())
    return libs


def _log4j_config(workdir: Path) -> Path:
    path = workdir / "log4j2.properties"
    path.write_text(
        "status = warn\n"
        "appender.console.type = Console\n"
        "appender.console.name = STDOUT\n"
        "appender.console.layout.type = PatternLayout\n"
        "appender.console.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.stdout.ref = STDOUT\n"
        "logger.kafka.name = kafka\nlogger.kafka.level = WARN\n"
        "logger.apache.name = org.apache.kafka\nlogger.apache.level = WARN\n"
        # Keep the line that says the broker started.
        "logger.server.name = kafka.server.KafkaRaftServer\nlogger.server.level = INFO\n"
    )
    return path


def server_properties(config: KafkaConfig, data: Path) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{config.host}:{config.controller_port}",
            f"listeners=PLAINTEXT://{config.host}:{config.port},"
            f"CONTROLLER://{config.host}:{config.controller_port}",
            f"advertised.listeners=PLAINTEXT://{config.host}:{config.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data / 'logs'}",
            "num.partitions=6",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=12",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            # One node: start consumer groups at once instead of waiting for more members.
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.retention.hours=168",
            "",
        ]
    )


def _run_java(java: str, libs: Path, main: str, args: list[str], log4j: Path) -> None:
    cmd = [java, f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*", main, *args]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PlatformError(f"{main} failed:\n{result.stdout}{result.stderr}")


def metadata_ready(bootstrap: str) -> bool:
    """True when the broker answers a metadata request."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=[bootstrap], request_timeout_ms=3000, client_id="lumen-probe"
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def start(config: KafkaConfig | None = None, timeout: float = 120.0) -> str:
    """Start the broker unless it runs already; return its bootstrap address."""
    config = config or KafkaConfig.from_env()
    if processes.read_pid(COMPONENT) is not None:
        return config.bootstrap
    java = java_binary()
    libs = ensure_jars()
    processes.require_port_free(COMPONENT, config.host, config.port)
    processes.require_port_free(COMPONENT, config.host, config.controller_port)
    data = paths.data_dir(COMPONENT)
    props = data / "server.properties"
    props.write_text(server_properties(config, data))
    log4j = _log4j_config(data)
    if not (data / "logs" / "meta.properties").exists():
        # A new cluster: format the storage once, with a fresh cluster id (passed as
        # --cluster-id=..., since a random id may start with "-").
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        _run_java(
            java,
            libs,
            "kafka.tools.StorageTool",
            ["format", f"--cluster-id={cluster_id}", "-c", str(props)],
            log4j,
        )
    heap = [f"-Xmx{config.heap}", f"-Xms{config.heap}"]
    pid = processes.spawn(
        COMPONENT,
        [
            java,
            *heap,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={data}",
            "-cp",
            f"{libs}/*",
            "kafka.Kafka",
            str(props),
        ],
    )
    processes.wait_until(
        f"Kafka on {config.bootstrap}",
        lambda: metadata_ready(config.bootstrap),
        timeout,
        component=COMPONENT,
        pid=pid,
    )
    return config.bootstrap


def stop() -> bool:
    return processes.stop(COMPONENT, grace_seconds=60)
