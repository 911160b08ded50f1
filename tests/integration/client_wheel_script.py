"""Run by tests/integration/test_client_wheel.py inside a clean virtual environment holding only
the lumen-client wheel (and its dependencies): real calls, sync and asyncio, over mTLS with a
bearer token. Prints one JSON object. Stays Python 3.9 compatible and imports nothing of Lumen's
server."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

from lumen_client import AsyncLumenClient, LumenClient, Unauthenticated, to_dict

target, ca, cert, key, token, user = sys.argv[1:7]
out: dict[str, object] = {"python": list(sys.version_info[:2])}


def sync_client(bearer: str) -> LumenClient:
    return LumenClient(
        target,
        token=bearer,
        timeout=10,
        root_certificates=ca,
        certificate_chain=cert,
        private_key=key,
    )


with sync_client(token) as client:
    out["sync_intent"] = to_dict(client.classify_intent("refund", top_k=2))
    out["sync_recommend"] = to_dict(client.recommend(user, k=3, exclude_seen=False))
try:
    with sync_client("wrong") as client:
        client.classify_intent("refund")
    out["wrong_token"] = "accepted"
except Unauthenticated as error:
    out["wrong_token"] = error.code.name


async def main() -> None:
    async with AsyncLumenClient(
        target,
        token=token,
        timeout=10,
        root_certificates=ca,
        certificate_chain=cert,
        private_key=key,
    ) as client:
        batch = await client.classify_intents(["refund", "transfer money"])
        out["async_intents"] = [p.intent for p in batch.predictions]
        recommended = await client.recommend(user, k=3, exclude_seen=False)
        out["async_recommend"] = to_dict(recommended)
        anonymous = await client.recommend(anonymous_id=f"anon-{uuid.uuid4().hex}", k=2)
        out["async_anonymous_source"] = anonymous.source


asyncio.run(main())
try:
    import lumen  # noqa: F401

    out["lumen_importable"] = True
except ImportError:
    out["lumen_importable"] = False
print(json.dumps(out))
