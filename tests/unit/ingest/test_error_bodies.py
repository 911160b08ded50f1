"""Error bodies carry Lumen's fields and the ``code`` and ``message`` Segment's and
RudderStack's libraries read (RudderStack's fails on a non-200 body without them)."""

from __future__ import annotations

import orjson
import pytest

from services.ingest.errors import BadRequest, IngestError, RateLimited, Unavailable
from services.ingest.http_api import error_response


@pytest.mark.parametrize(
    "error",
    [
        BadRequest("userId must be a string", field="userId"),
        RateLimited("slow down", retry_after=2),
        Unavailable("Kafka did not acknowledge", retry_after=1),
    ],
)
def test_an_error_body_names_its_code_and_message(error: IngestError) -> None:
    response = error_response(error)
    body = orjson.loads(bytes(response.body))
    assert body["success"] is False
    assert (body["code"], body["message"]) == (error.reason, str(error.message))
    assert (body["reason"], body["error"]) == (body["code"], body["message"])
    assert response.status_code == error.http_status
