"""The OpenAPI 3.1 document of the HTTP API, served at /openapi.json.

The committed copy, docs/openapi/ingest.json, is regenerated with
``python -m services.ingest.openapi > docs/openapi/ingest.json``; a unit test keeps both equal.
"""

from __future__ import annotations

import json
from typing import Any

from shared.events import EVENT_TYPES, REQUIRED_FIELD_BY_TYPE

_REF = "#/components/schemas/"
_ERRORS = {
    "400": "Invalid JSON, invalid UTF-8, a corrupt or truncated gzip/deflate body "
    "(`invalid_encoding`) or an invalid event; `field` names the culprit.",
    "401": "Missing or unknown key.",
    "403": "The key lacks the scope the operation needs (`scope` names it: `catalog` for "
    "catalogue events, `admin` for erasure and imports).",
    "408": "The request body was not complete within the body timeout.",
    "413": "The body is larger than 500 KB, compressed or once decompressed (decompression "
    "stops at the limit), or a batch holds more events than LUMEN_INGEST_MAX_BATCH_ITEMS.",
    "415": "A `Content-Encoding` other than gzip, deflate or identity (`unsupported_encoding`).",
    "429": "The source's rate limit is exceeded; retry after `Retry-After` seconds.",
    "503": "Kafka did not acknowledge; retry the same events (same messageIds) after "
    "`Retry-After` seconds: they are stored once.",
}


_BODY = (
    "JSON, optionally compressed: `Content-Encoding: gzip` (as Segment's libraries send with "
    "gzip on) or `deflate` (zlib or raw). The size limits apply to the decompressed body."
)


def _response(description: str, schema: str, headers: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF + schema}}},
    }
    if headers:
        body["headers"] = {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        }
    return body


def _errors(*codes: str) -> dict[str, Any]:
    return {c: _response(_ERRORS[c], "Error", headers=c in ("429", "503")) for c in codes}


def _event_schema(call_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "allOf": [{"$ref": _REF + "Common"}],
        "description": f"A Segment `{call_type}` call; userId or anonymousId is required.",
    }
    if call_type in REQUIRED_FIELD_BY_TYPE:
        schema["required"] = [REQUIRED_FIELD_BY_TYPE[call_type]]
    return schema


def openapi_document() -> dict[str, Any]:
    string = {"type": "string"}
    obj = {"type": "object"}
    date_time = {"type": "string", "format": "date-time"}
    schemas: dict[str, Any] = {
        "Common": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": list(EVENT_TYPES)},
                "userId": string,
                "anonymousId": string,
                "messageId": string,
                "event": string,
                "previousId": string,
                "groupId": string,
                "name": string,
                "category": string,
                "properties": obj,
                "traits": obj,
                "context": obj,
                "integrations": obj,
                "timestamp": date_time,
                "sentAt": date_time,
                "writeKey": {"type": "string", "description": "Alternative to HTTP Basic auth."},
            },
            "anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}],
        },
        **{call_type.capitalize(): _event_schema(call_type) for call_type in EVENT_TYPES},
        "BatchItem": {"allOf": [{"$ref": _REF + "Common"}], "required": ["type"]},
        "Batch": {
            "type": "object",
            "required": ["batch"],
            "properties": {
                "batch": {"type": "array", "items": {"$ref": _REF + "BatchItem"}},
                "sentAt": date_time,
                "context": obj,
                "integrations": obj,
                "writeKey": string,
            },
        },
        "Success": {
            "type": "object",
            "required": ["success"],
            "properties": {
                "success": {"type": "boolean"},
                "accepted": {"type": "integer"},
                "duplicates": {"type": "integer"},
                "rejected": {
                    "type": "array",
                    "items": {"$ref": _REF + "Rejected"},
                    "description": "The first LUMEN_INGEST_MAX_REPORTED_ERRORS refusals.",
                },
                "rejectedCount": {"type": "integer", "description": "Every refusal."},
            },
        },
        "Rejected": {
            "type": "object",
            "properties": {
                "index": {"type": "integer"},
                "reason": {
                    "type": "string",
                    "examples": ["schema_violation", "size_violation", "insufficient_scope"],
                },
                "field": string,
                "message": string,
            },
        },
        "Error": {
            "type": "object",
            "required": ["success", "error", "reason"],
            "properties": {
                "success": {"type": "boolean", "const": False},
                "error": string,
                "reason": string,
                "code": {
                    "type": "string",
                    "description": "The reason again, where Segment's libraries read it.",
                },
                "message": {
                    "type": "string",
                    "description": "The error again, where Segment's libraries read it.",
                },
                "field": string,
                "scope": {
                    "type": "string",
                    "enum": ["catalog", "admin"],
                    "description": "With 403: the scope the key needs.",
                },
            },
        },
        "Deleted": {
            "type": "object",
            "properties": {"success": {"type": "boolean"}, "messageId": string},
        },
    }
    paths: dict[str, Any] = {}
    for call_type in EVENT_TYPES:
        paths[f"/v1/{call_type}"] = {
            "post": {
                "operationId": call_type,
                "summary": f"Record a {call_type} call.",
                "requestBody": {
                    "required": True,
                    "description": _BODY,
                    "content": {
                        "application/json": {"schema": {"$ref": _REF + call_type.capitalize()}}
                    },
                },
                "responses": {
                    "200": _response("Stored (acknowledged by Kafka) or a duplicate.", "Success"),
                    **_errors("400", "401", "403", "408", "413", "415", "429", "503"),
                },
            }
        }
    for path, operation, summary in (
        (
            "/v1/batch",
            "batch",
            "Record many calls; valid events are stored, invalid ones reported by index.",
        ),
        (
            "/v1/import",
            "import",
            "Bulk load or replay (admin key): like /v1/batch, catalogue events included.",
        ),
    ):
        paths[path] = {
            "post": {
                "operationId": operation,
                "summary": summary,
                "requestBody": {
                    "required": True,
                    "description": _BODY,
                    "content": {"application/json": {"schema": {"$ref": _REF + "Batch"}}},
                },
                "responses": {
                    "200": _response(
                        "Every valid event is stored; `rejected` lists the others "
                        "(a catalogue event sent with a write key among them).",
                        "Success",
                    ),
                    "400": _response(
                        "No event of the batch is valid, or the body is invalid.", "Success"
                    ),
                    **_errors("401", "403", "408", "413", "415", "429", "503"),
                },
            }
        }
    paths["/v1/users/{userId}"] = {
        "delete": {
            "operationId": "deleteUser",
            "summary": "Erase a user (admin key): publishes a deletion event that downstream "
            "services obey.",
            "parameters": [{"name": "userId", "in": "path", "required": True, "schema": string}],
            "responses": {
                "202": _response("The deletion event is stored in Kafka.", "Deleted"),
                **_errors("400", "401", "403", "429", "503"),
            },
        }
    }
    for path, summary in (
        ("/healthz", "Liveness."),
        ("/readyz", "Readiness: 200 only while Kafka is reachable."),
    ):
        paths[path] = {
            "get": {
                "operationId": path.strip("/"),
                "summary": summary,
                "security": [],
                "responses": {"200": {"description": "OK"}, "503": {"description": "Not ready"}},
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lumen ingest",
            "version": "1.0.0",
            "description": "Segment Tracking API compatible event ingestion. A 200 means Kafka "
            "acknowledged the events (acks=all). Request bodies may be compressed "
            "(`Content-Encoding: gzip` or `deflate`).",
        },
        "servers": [{"url": "http://127.0.0.1:8080"}],
        "security": [{"writeKey": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "writeKey": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The write key as user name, empty password.",
                }
            },
        },
    }


def render() -> str:
    return json.dumps(openapi_document(), indent=2) + "\n"


if __name__ == "__main__":
    print(render(), end="")
