"""The updater is built by ``create_app``: importing it reads no settings and builds nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import faust
import pytest
from pydantic import ValidationError

from services.profiles.agents import AGENT_NAME
from services.profiles.app import create_app
from services.profiles.settings import ProfilesSettings
from tests.support.stack import REPO

# Imports every module of the package with settings that cannot be read, with spies on what
# building the app, its settings or a MongoDB client would call.
IMPORT_ALL = """
import importlib, pkgutil, faust, pymongo, pydantic_settings
built = []
def spy(name, cls):
    original = cls.__init__
    def init(self, *args, **kwargs):
        built.append(name)
        original(self, *args, **kwargs)
    cls.__init__ = init
spy("faust.App", faust.App)
spy("MongoClient", pymongo.MongoClient)
spy("settings", pydantic_settings.BaseSettings)
import services.profiles
modules = sorted(m.name for m in pkgutil.iter_modules(services.profiles.__path__))
for name in modules:
    importlib.import_module(f"services.profiles.{name}")
print(len(modules), built)
"""

BROKEN = {
    "LUMEN_PROFILES_BATCH_SIZE": "not a number",
    "LUMEN_KAFKA_SECURITY_PROTOCOL": "CARRIER_PIGEON",
    "LUMEN_MONGO_URI": "nowhere",
}


def test_importing_every_module_reads_no_settings_and_builds_no_app() -> None:
    env = {**os.environ, **BROKEN}
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    count, built = done.stdout.strip().split(" ", 1)
    assert int(count) >= 15  # every module of the package was imported (__main__ included)
    assert built == "[]", built


def test_the_broken_environment_is_refused_when_the_settings_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in BROKEN.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        ProfilesSettings()


def test_each_app_owns_its_agent_pages_health_and_store() -> None:
    settings = ProfilesSettings(app_id="lumen-profiles-a", events_topic="events.a")
    other = ProfilesSettings(app_id="lumen-profiles-b", events_topic="events.b")
    first, second = create_app(settings), create_app(other)
    assert isinstance(first.app, faust.App) and first.app is not second.app
    assert first.app.conf.id == "lumen-profiles-a" and second.app.conf.id == "lumen-profiles-b"
    assert list(first.app.agents) == [AGENT_NAME]
    assert first.events_topic.get_topic_name() == "events.a"
    paths = {view.view_path for view in first.app.web.views.values()}
    assert {"/healthz", "/readyz", "/metrics"} <= paths
    # One worker's failing writes do not make another look unready.
    first.health.failed("mongo: down")
    assert first.health.not_ready_reason() and second.health.not_ready_reason() is None
    # The store connects at its first use, not when the app is built.
    assert first.updater._store is None
