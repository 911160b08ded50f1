"""Which MongoDB failures are retried and which isolate the record that caused them."""

from __future__ import annotations

from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DocumentTooLarge,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteError,
    WTimeoutError,
)

from services.profiles.mongo_errors import MONGO_REJECTED, PROFILE_TOO_LARGE, record_reason


def bulk(code: int, concern: bool = False) -> BulkWriteError:
    details = {
        "writeErrors": [{"index": 0, "code": code, "errmsg": "x"}],
        "writeConcernErrors": [{"code": 64}] if concern else [],
    }
    return BulkWriteError(details)


def test_transient_failures_are_retried() -> None:
    transient = [
        AutoReconnect("connection reset"),
        ServerSelectionTimeoutError("no primary"),
        NotPrimaryError("stepped down"),
        WTimeoutError("waiting for replication", 64),
        OperationFailure("write conflict", 112),
        bulk(112),
        bulk(121, concern=True),
        OperationFailure("stepdown", 189),
    ]
    labelled = OperationFailure("aborted", 999, {"errorLabels": ["TransientTransactionError"]})
    for exc in [*transient, labelled]:
        assert record_reason(exc) is None, exc


def test_a_too_large_profile_is_its_records_fault() -> None:
    for exc in (
        bulk(17419),
        bulk(10334),
        WriteError("BSONObj size is invalid", 10334),
        DocumentTooLarge("op too large"),
    ):
        assert record_reason(exc) == PROFILE_TOO_LARGE, exc


def test_other_write_errors_are_the_records_fault() -> None:
    assert record_reason(bulk(121)) == MONGO_REJECTED  # document validation failed
    assert record_reason(bulk(52)) == MONGO_REJECTED  # $-prefixed field name


def test_failures_outside_the_records_are_retried_not_dlqed() -> None:
    assert record_reason(OperationFailure("not authorized", 13)) is None
    assert record_reason(OperationFailure("unknown", 0)) is None
