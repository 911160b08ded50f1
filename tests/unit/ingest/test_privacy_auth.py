"""Personal-data scrubbing and write-key authentication."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from services.ingest.auth import WriteKeys, key_from_authorization
from services.ingest.privacy import Scrubber


def test_ip_drop_and_trait_hash() -> None:
    scrub = Scrubber("drop", "email, phone", "hash", "salt").scrub
    event: dict[str, Any] = {
        "context": {"ip": "1.2.3.4", "traits": {"email": "a@b.c", "plan": "pro"}},
        "traits": {"phone": "123", "name": "Ann"},
    }
    original = {"context": dict(event["context"]), "traits": dict(event["traits"])}
    out = scrub(dict(event))
    assert "ip" not in out["context"]
    assert out["context"]["traits"]["plan"] == "pro"
    assert out["context"]["traits"]["email"].startswith("hmac-sha256:")
    assert out["traits"]["phone"] != "123" and out["traits"]["name"] == "Ann"
    assert event["context"] == original["context"], "the caller's nested objects are not edited"


def test_hashes_are_keyed_and_stable() -> None:
    one, two = Scrubber("hash", "", "hash", "k1"), Scrubber("hash", "", "hash", "k2")
    ip = {"context": {"ip": "10.0.0.1"}}
    assert one.scrub(dict(ip))["context"]["ip"] == one.scrub(dict(ip))["context"]["ip"]
    assert one.scrub(dict(ip))["context"]["ip"] != two.scrub(dict(ip))["context"]["ip"]


def test_trait_drop_and_keep_everything() -> None:
    assert Scrubber("keep", "email", "drop", "").scrub({"traits": {"email": "x", "a": 1}}) == {
        "traits": {"a": 1}
    }
    keep = Scrubber("keep", "", "hash", "")
    event = {"context": {"ip": "1.1.1.1"}}
    assert not keep.active and keep.scrub(event) is event


def test_write_keys_match_only_their_hash() -> None:
    keys = WriteKeys(",".join([WriteKeys.entry("web", "k-web"), WriteKeys.entry("app", "k-app")]))
    assert keys.source_for("k-web") == "web"
    assert keys.source_for("k-app") == "app"
    assert keys.source_for("k-nope") is None
    assert keys.source_for(None) is None
    with pytest.raises(ValueError, match="sha256"):
        WriteKeys("web:md5:abc")


def test_authorization_header_forms() -> None:
    basic = "Basic " + base64.b64encode(b"the-key:").decode()
    assert key_from_authorization(basic) == "the-key"
    assert key_from_authorization("Bearer the-key") == "the-key"
    assert key_from_authorization("Basic !!!") is None
    assert key_from_authorization("Digest x") is None
    assert key_from_authorization(None) is None
