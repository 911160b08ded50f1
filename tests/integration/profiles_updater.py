"""Starting a profile updater of a test's own on the session's stack, and a private registry."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from lumen_cli.platform.services import http_ok
from shared.topics import EVENTS_RAW
from tests.support.stack import (
    TEST_VAR,
    ServiceProcess,
    Stack,
    free_port,
    start_group_at_end,
    start_service,
)


def start_profiles_updater(
    kafka_bootstrap: str, env: dict[str, str], label: str, name: str = "profiles"
) -> ServiceProcess:
    """``python -m services.profiles`` with ``env``, in a consumer group of its own (``label``
    names it) that starts after what earlier tests wrote: the shared topic may hold a long
    backlog."""
    web = free_port()
    app_id = f"lumen-profiles-{label}-{uuid.uuid4().hex[:6]}"
    start_group_at_end(kafka_bootstrap, app_id, EVENTS_RAW.name)
    return start_service(
        name,
        "services.profiles",
        {
            **env,
            "LUMEN_PROFILES_WEB_PORT": str(web),
            "LUMEN_PROFILES_APP_ID": app_id,
            "LUMEN_PROFILES_DATA_DIR": f"var/test/profiles-{uuid.uuid4().hex[:6]}",
        },
        ready=lambda: http_ok(f"http://127.0.0.1:{web}/healthz"),
        ports={"web": web},
    )


@contextlib.contextmanager
def updater_with_own_database(
    stack: Stack, database: str, label: str, name: str
) -> Iterator[ServiceProcess]:
    """A profile updater writing ``database`` (dropped afterwards), so a test's product data
    stays apart from what the session's updater writes."""
    env = {**stack.env(), "LUMEN_MONGO_DATABASE": database}
    service = start_profiles_updater(stack.kafka_bootstrap, env, label, name=name)
    try:
        yield service
    finally:
        service.stop()
        admin: MongoClient[dict[str, Any]] = MongoClient(stack.mongo_uri)
        with admin:
            admin.drop_database(database)


@contextlib.contextmanager
def registry_serving_the_default_recommender(models: Path, name: str) -> Iterator[Path]:
    """A private model registry that holds a copy of the default (offline MovieLens)
    recommender, for a test that publishes versions of its own."""
    root = TEST_VAR / "models" / name
    root.mkdir(parents=True)
    shutil.copytree(models / "recommender", root / "recommender")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
