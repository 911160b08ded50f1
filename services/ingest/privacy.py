"""Drops or hashes personal data (``context.ip``, listed trait keys) before anything is written."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Literal


class Scrubber:
    def __init__(
        self,
        ip_policy: Literal["keep", "drop", "hash"],
        trait_keys: str,
        trait_policy: Literal["drop", "hash"],
        salt: str,
    ) -> None:
        self.ip_policy = ip_policy
        self.trait_keys = frozenset(k.strip() for k in trait_keys.split(",") if k.strip())
        self.trait_policy = trait_policy
        self._salt = salt.encode()

    @property
    def active(self) -> bool:
        return self.ip_policy != "keep" or bool(self.trait_keys)

    def hash(self, value: Any) -> str:
        text = value if isinstance(value, str) else repr(value)
        return "hmac-sha256:" + hmac.new(self._salt, text.encode(), hashlib.sha256).hexdigest()

    def scrub(self, event: dict[str, Any]) -> dict[str, Any]:
        """Return the event with the configured fields dropped or hashed (copies what it edits)."""
        if not self.active:
            return event
        context = event.get("context")
        if isinstance(context, dict):
            context = dict(context)
            if self.ip_policy != "keep" and "ip" in context:
                if self.ip_policy == "drop":
                    del context["ip"]
                else:
                    context["ip"] = self.hash(context["ip"])
            if isinstance(context.get("traits"), dict):
                context["traits"] = self._scrub_traits(context["traits"])
            event["context"] = context
        if isinstance(event.get("traits"), dict):
            event["traits"] = self._scrub_traits(event["traits"])
        return event

    def _scrub_traits(self, traits: dict[str, Any]) -> dict[str, Any]:
        if not self.trait_keys.intersection(traits):
            return traits
        if self.trait_policy == "drop":
            return {k: v for k, v in traits.items() if k not in self.trait_keys}
        return {k: (self.hash(v) if k in self.trait_keys else v) for k, v in traits.items()}
