"""docs/configuration.md matches the settings classes and names every variable the code reads."""

from __future__ import annotations

import re
import subprocess
import sys

from lumen_cli.platform.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "gen_config_docs.py"
PAGE = REPO_ROOT / "docs" / "configuration.md"
# Plain os.environ reads outside the settings classes (tests' own variables excluded).
READ = re.compile(r"""environ(?:\.get\(|\[)\s*["'](LUMEN_[A-Z0-9_]+)["']""")
SCANNED = ["lumen_cli", "lumen_client", "shared", "models", "services"]


def test_configuration_page_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_every_variable_the_code_reads_is_documented() -> None:
    page = PAGE.read_text()
    documented = set(re.findall(r"`(LUMEN_[A-Z0-9_]+)`", page))
    read: set[str] = set()
    for folder in SCANNED:
        for path in (REPO_ROOT / folder).rglob("*.py"):
            read.update(READ.findall(path.read_text(errors="replace")))
    assert read, "the scan found no variables: the pattern is broken"
    assert read - documented == set(), "undocumented; add them to scripts/gen_config_docs.py"


def test_page_documents_the_services_own_settings() -> None:
    page = PAGE.read_text()
    for variable, default in [
        ("LUMEN_INGEST_HTTP_PORT", "`8080`"),
        ("LUMEN_INFERENCE_GRPC_PORT", "`50052`"),
        ("LUMEN_INFERENCE_TARGET", "`127.0.0.1:50052`"),
        ("LUMEN_WRITE_KEY", "`lumen-dev-key`"),
    ]:
        row = next(line for line in page.splitlines() if line.startswith(f"| `{variable}` |"))
        assert row.split(" | ")[1] == default
