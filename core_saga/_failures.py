"""Whose fault is a failure: the message's, or the infrastructure's.

Only a message's own failures — its handler raised, it could not be decoded — count
toward dead-lettering. A database that is down, a disk that is full, AWS throttling or
out of reach, a lock held by a stuck transaction: none of that says anything about the
message, and it must not cost the message one of its deliveries. The worker keeps such
a message (its visibility extended) and tries it again when the outage is over.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterator

from ._errors import ConcurrencyError


class FailureKind(enum.Enum):
    """What a failure says about the message that was being handled."""

    HANDLER = "handler"
    """The message's own failure: it counts toward dead-lettering."""
    CONFLICT = "conflict"
    """Contention (a version conflict, a deadlock, a lock not granted in time): run it
    again shortly; it does not count."""
    OUTAGE = "outage"
    """The database or AWS is unavailable (unreachable, restarting, out of disk or
    connections, throttling): keep the message until it is back; it does not count."""


# SQLSTATE classes and codes (PostgreSQL appendix A).
_PG_CONFLICT_CODES = frozenset({"40001", "40P01", "55P03"})
"""serialization_failure, deadlock_detected, lock_not_available (lock_timeout)."""
_PG_OUTAGE_CLASSES = ("08", "53", "57P", "58", "XX")
"""connection exception, insufficient resources (disk full, out of memory, too many
connections), operator intervention except query_canceled (admin/crash shutdown,
cannot connect now), system error (I/O), internal error."""

# SQLite primary result codes.
_SQLITE_CONFLICT = frozenset({5, 6})
"""SQLITE_BUSY, SQLITE_LOCKED: another writer holds the database."""
_SQLITE_OUTAGE = frozenset({7, 10, 13, 14, 8, 26})
"""SQLITE_NOMEM, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_READONLY,
SQLITE_NOTADB: the file or its disk is not usable."""
_SQLITE_CONFLICT_TEXT = ("database is locked", "database table is locked")
_SQLITE_OUTAGE_TEXT = ("disk i/o error", "database or disk is full", "unable to open database",
                       "disk is full", "attempt to write a readonly database")

_AWS_THROTTLING = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "ProvisionedThroughputExceeded",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "SlowDown",
    "ServiceUnavailable", "ServiceUnavailableException", "InternalError",
    "InternalFailure", "InternalServerError", "RequestTimeout", "RequestTimeoutException",
    "KMS.ThrottlingException", "KmsThrottled",
})


def _chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, its causes and contexts, and the driver errors wrapped in them."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (getattr(current, "orig", None), current.__cause__,
                       current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)


def _pg_code(error: BaseException) -> str | None:
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code if isinstance(code, str) and len(code) == 5 else None


def _kind_of(error: BaseException) -> FailureKind | None:
    """The kind this one error shows, or None when it says nothing either way."""
    if isinstance(error, ConcurrencyError):
        return FailureKind.CONFLICT
    code = _pg_code(error)
    if code is not None:
        if code in _PG_CONFLICT_CODES:
            return FailureKind.CONFLICT
        if code.startswith(_PG_OUTAGE_CLASSES):
            return FailureKind.OUTAGE
        return None
    module = type(error).__module__
    if module.startswith("asyncpg"):
        # Client-side connection errors carry no SQLSTATE.
        name = type(error).__name__
        if name in ("ConnectionDoesNotExistError", "ConnectionFailureError",
                    "ClientCannotConnectError"):
            return FailureKind.OUTAGE
        if name == "InterfaceError" and "connection" in str(error).lower() and (
                "closed" in str(error).lower()):
            return FailureKind.OUTAGE
        return None
    errorcode = getattr(error, "sqlite_errorcode", None)
    if isinstance(errorcode, int):
        primary = errorcode & 0xFF
        if primary in _SQLITE_CONFLICT:
            return FailureKind.CONFLICT
        if primary in _SQLITE_OUTAGE:
            return FailureKind.OUTAGE
    if module.startswith(("sqlite3", "aiosqlite")) or "sqlite" in module:
        text = str(error).lower()
        if any(t in text for t in _SQLITE_CONFLICT_TEXT):
            return FailureKind.CONFLICT
        if any(t in text for t in _SQLITE_OUTAGE_TEXT):
            return FailureKind.OUTAGE
    if module.startswith("sqlalchemy"):
        name = type(error).__name__
        if name in ("DisconnectionError", "TimeoutError") or getattr(
                error, "connection_invalidated", False):
            return FailureKind.OUTAGE
        return None
    if module.startswith("botocore") or module.startswith("aiobotocore"):
        name = type(error).__name__
        if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                    "ConnectionClosedError", "ProxyConnectionError", "HTTPClientError",
                    "ConnectionError"):
            return FailureKind.OUTAGE
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            aws_code = str(response.get("Error", {}).get("Code", ""))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if aws_code in _AWS_THROTTLING or (isinstance(status, int) and status >= 500):
                return FailureKind.OUTAGE
        return None
    return None


def classify_failure(error: BaseException) -> FailureKind:
    """Whose fault `error` is: the handler's (counts toward dead-lettering), or
    contention or an outage (never counts). Looks through wrapped and chained errors,
    so that a driver error SQLAlchemy wrapped, or one a handler let through, is seen."""
    found: FailureKind | None = None
    for linked in _chain(error):
        kind = _kind_of(linked)
        if kind is FailureKind.OUTAGE:
            return kind
        if kind is FailureKind.CONFLICT:
            found = kind
    return found or FailureKind.HANDLER


def looks_like_network_failure(error: BaseException) -> bool:
    """A connection refused or reset, a timeout: an outage if the database does not
    answer either, the handler's own failure if it does (its gateway is down)."""
    return any(isinstance(linked, OSError | asyncio.TimeoutError | TimeoutError)
               for linked in _chain(error))
