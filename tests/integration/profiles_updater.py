"""Starting a profile updater of a test's own on the session's stack."""

from __future__ import annotations

import uuid

from lumen_cli.platform.services import http_ok
from shared.topics import EVENTS_RAW
from tests.support.stack import ServiceProcess, free_port, start_group_at_end, start_service


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
