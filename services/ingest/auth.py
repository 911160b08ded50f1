"""Write-key authentication: keys are known only by their sha256, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


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
