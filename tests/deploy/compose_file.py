"""Loading docker-compose.yml the way Compose does: interpolation, then the specification."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from compose_spec import PyOptions

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
# What an operator's .env holds: the credentials Compose refuses to start without, and the
# optional key scopes. Hashes of keys used nowhere but in these tests.
CREDENTIALS = {
    "LUMEN_INGEST_WRITE_KEYS": "shop:sha256:d684875b83ce2772a0f6a4dd1c18977eba3dcd6a54f61a0b7a3fe927f6d0cf7c",
    "LUMEN_INGEST_CATALOG_KEYS": "shop-backend:sha256:ebfe1d073c24623e18c94b9cd27ba452496f58ec6b7e43ea0891a7888df411df",
    "LUMEN_INGEST_ADMIN_KEYS": "ops:sha256:f97a78362a5acd3c8bef28539bc8fdd1e4745e781ba3f2c3547891e380363902",
    "LUMEN_INFERENCE_AUTH_TOKEN": "ci-only-inference-token-not-secret",
    "LUMEN_INSIGHTS_AUTH_TOKEN": "ci-only-insights-token-not-secret",
    "LUMEN_PROFILES_ERASURE_HASH_KEY": "ci-only-erasure-hash-key-not-secret",
}

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; $$ is a literal $.
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class InterpolationError(ValueError):
    pass


def interpolate(text: str, environment: dict[str, str]) -> str:
    """Compose's variable substitution (no nesting, which this project's file does not use)."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        value = environment.get(name)
        if op in (":-", ":?") and not value:
            value = None
        if value is not None:
            return value
        if op in ("-", ":-"):
            return arg
        if op in ("?", ":?"):
            raise InterpolationError(f"${{{name}}} is required: {arg}")
        return ""

    protected = text.replace("$$", "\0")
    return _VARIABLE.sub(substitute, protected).replace("\0", "$")


def load(text: str | None = None, environment: dict[str, str] | None = None) -> dict[str, Any]:
    """Parse and validate against the Compose specification; return the normalised model.

    Raises ValueError with the specification's message for anything Compose would refuse
    (unknown keys, wrong types, invalid image references, undefined networks or volumes).
    """
    raw = COMPOSE_FILE.read_text() if text is None else text
    compose = PyOptions(apply_merge=True).from_yaml(interpolate(raw, environment or {}))
    compose.validate()
    model: dict[str, Any] = compose.to_dict()
    return model
