"""Key authentication: keys are known only by their sha256, compared in constant time.

Three kinds of key, each a scope: ``write`` (public: it ships in web and mobile apps, and sends
the Segment calls of the source's own users), ``catalog`` (the product's backend: everything a
write key may, plus catalogue changes) and ``admin`` (operators: erasure and ``/v1/import``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.ingest.settings import IngestSettings

WRITE, CATALOG, ADMIN = "write", "catalog", "admin"
# The documented development keys, used only in development mode when nothing is configured.
DEV_SOURCE = "dev"
DEV_WRITE_KEY = "lumen-dev-key"
DEV_ADMIN_KEY = "lumen-dev-admin-key"


class WriteKeys:
    """Maps a presented write key to its source id."""

    def __init__(self, entries: str) -> None:
        self._by_digest: dict[bytes, str] = {}
        for entry in filter(None, (e.strip() for e in entries.split(","))):
            source, algo, digest = entry.split(":", 2)
            if algo != "sha256" or len(digest) != 64:
                raise ValueError(
                    f"write key entry for source {source!r} must be sourceId:sha256:<64 hex>"
                )
            self._by_digest[bytes.fromhex(digest)] = source

    @staticmethod
    def entry(source: str, key: str) -> str:
        return f"{source}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"

    def sources(self) -> set[str]:
        return set(self._by_digest.values())

    def items(self) -> list[tuple[bytes, str]]:
        return list(self._by_digest.items())

    def source_for(self, key: str | None) -> str | None:
        """The source id of a valid key, else None. Every stored digest is compared, in
        constant time, so the answer's timing does not reveal how close a guess was."""
        if not key:
            return None
        presented = hashlib.sha256(key.encode()).digest()
        found = None
        for digest, source in self._by_digest.items():
            if hmac.compare_digest(presented, digest):
                found = source
        return found


class MissingKeys(ValueError):
    """Outside development mode, ingest has no write key to accept events with."""


@dataclass(frozen=True)
class Credential:
    source: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


class KeyRing:
    """Write, catalogue and admin keys: maps a presented key to its source and scopes."""

    def __init__(self, write: str, catalog: str = "", admin: str = "") -> None:
        granted: dict[bytes, tuple[str, set[str]]] = {}
        # A catalogue key may send everything a write key may.
        for entries, scopes in ((write, {WRITE}), (catalog, {WRITE, CATALOG}), (admin, {ADMIN})):
            for digest, source in WriteKeys(entries).items():
                _, held = granted.setdefault(digest, (source, set()))
                held.update(scopes)
        self._by_digest = {d: Credential(s, frozenset(held)) for d, (s, held) in granted.items()}

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> KeyRing:
        """The configured keys; in development mode the documented keys stand in for a kind
        left empty. Outside development mode no write key is a configuration error."""
        write, catalog, admin = settings.write_keys, settings.catalog_keys, settings.admin_keys
        if settings.mode.dev_mode:
            if not (write.strip() or catalog.strip()):
                catalog = WriteKeys.entry(DEV_SOURCE, DEV_WRITE_KEY)
            if not admin.strip():
                admin = WriteKeys.entry(DEV_SOURCE, DEV_ADMIN_KEY)
        elif not write.strip():
            raise MissingKeys(
                "no write key configured: set LUMEN_INGEST_WRITE_KEYS (hashed entries, see "
                "docs/ingest.md), or LUMEN_DEV_MODE=1 for the development keys"
            )
        return cls(write, catalog, admin)

    def sources(self) -> set[str]:
        return {c.source for c in self._by_digest.values()}

    def credential_for(self, key: str | None) -> Credential | None:
        """The credential of a valid key, else None; every digest is compared in constant time."""
        if not key:
            return None
        presented = hashlib.sha256(key.encode()).digest()
        found = None
        for digest, credential in self._by_digest.items():
            if hmac.compare_digest(presented, digest):
                found = credential
        return found


def key_from_authorization(header: str | None) -> str | None:
    """The write key from `Basic base64(key:)` (Segment clients) or `Bearer key`."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python -m services.ingest.auth <sourceId> <writeKey>")
    print(WriteKeys.entry(sys.argv[1], sys.argv[2]))
