"""docs/api/ is what scripts/gen_api_docs.py makes from the protos and the OpenAPI document."""

from __future__ import annotations

import subprocess
import sys

from lumen_cli.platform.paths import REPO_ROOT


def test_api_reference_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "gen_api_docs.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_api_reference_covers_every_rpc() -> None:
    from lumen.v1 import events_pb2, inference_pb2, profiles_pb2

    text = "".join(p.read_text() for p in (REPO_ROOT / "docs" / "api").glob("*.md"))
    for module in (events_pb2, inference_pb2, profiles_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            assert f"service `{service.full_name}`" in text
            for method in service.methods:
                assert f"| `{method.name}` |" in text
