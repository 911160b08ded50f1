"""Which MongoDB failures a retry can cure, and which are caused by the records being written.

* Transient (network, server selection, primary stepdown, write-concern timeouts, write
  conflicts, anything labelled ``TransientTransactionError``/``RetryableWriteError``): retried
  with back-off; the worker reports itself not ready meanwhile.
* Caused by a record (a document past 16 MB, a value MongoDB refuses, a failed document
  validation): retrying would fail forever, so the batch is halved until the record is isolated
  and it goes to ``events.dlq`` with the reason returned by ``record_reason``.
* Anything else (authentication, configuration, an unknown command failure) is not the records'
  fault: moving every event aside would empty the stream into the DLQ, so it is retried like a
  transient error and shows on ``/readyz`` until an operator fixes it.
"""

from __future__ import annotations

from bson.errors import InvalidDocument
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DocumentTooLarge,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WaitQueueTimeoutError,
    WriteConcernError,
    WriteError,
)

# DLQ reasons (also the ``kind`` label of lumen_profiles_events_failed_total).
PROFILE_TOO_LARGE = "profile_too_large"
MONGO_REJECTED = "mongo_rejected"

# Server codes a retry can cure: network, elections and stepdowns, interrupted or timed-out
# operations, lock and write conflicts, a transaction the server dropped.
TRANSIENT_CODES = frozenset(
    {6, 7, 24, 46, 50, 64, 89, 91, 112, 117, 133, 134, 189, 251, 262, 9001, 10107, 11600}
    | {11602, 13435, 13436}
)
# Server codes that mean "the resulting document would be too large".
TOO_LARGE_CODES = frozenset({10334, 17419, 17420, 13548})


def _codes(exc: OperationFailure) -> list[int]:
    if isinstance(exc, BulkWriteError):
        details = exc.details or {}
        if details.get("writeConcernErrors"):
            return [64]
        return [int(e.get("code", 0)) for e in details.get("writeErrors", [])]
    return [int(exc.code or 0)]


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, PyMongoError) and (
        exc.has_error_label("TransientTransactionError")
        or exc.has_error_label("RetryableWriteError")
    ):
        return True
    retryable = (ConnectionFailure, ExecutionTimeout, WaitQueueTimeoutError, WriteConcernError)
    if isinstance(exc, retryable):
        return True
    if isinstance(exc, OperationFailure):
        codes = _codes(exc)
        return bool(codes) and all(code in TRANSIENT_CODES for code in codes)
    return False


def record_reason(exc: BaseException) -> str | None:
    """The DLQ reason when ``exc`` was caused by the records written, else None (retry)."""
    if is_transient(exc):
        return None
    if isinstance(exc, DocumentTooLarge):
        return PROFILE_TOO_LARGE
    if isinstance(exc, InvalidDocument):
        return MONGO_REJECTED
    if isinstance(exc, (WriteError, BulkWriteError)):
        codes = _codes(exc)
        if any(code in TOO_LARGE_CODES for code in codes):
            return PROFILE_TOO_LARGE
        return MONGO_REJECTED
    if isinstance(exc, OperationFailure) and exc.code in TOO_LARGE_CODES:
        return PROFILE_TOO_LARGE  # "BSONObj size ... is invalid" outside a write error
    return None
