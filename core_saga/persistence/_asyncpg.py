"""The PostgreSQL store on raw asyncpg: the production fast path.

The statements are plain SQL text written once below; asyncpg prepares each on first use
per connection and keeps it in its statement cache, so a message costs the round trips
and almost no Python. The tables are the ones in ``_schema.py``, made by the Alembic migrations,
:meth:`SqlStore.create_schema` or :meth:`AsyncpgStore.create_schema` (DDL compiled from
the same metadata); this module adds none.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import asyncpg
import orjson
from sqlalchemy import MetaData
from sqlalchemy.sql.base import Executable

from .._context import Outgoing
from .._errors import ConcurrencyError, MessageClaimedError, StepsagaError
from .._transaction import Parameters, Result, check_statement
from ._factory import redact_url
from ._pg_statements import StatementCache, prepare_connection
from ._pg_statements import run as run_statement
from ._schema import metadata
from ._store import (
    FINAL_STATE,
    ErrorRecord,
    HistoryRecord,
    InboxRecord,
    InstancePage,
    InstanceQuery,
    InstanceRecord,
    OutboxRow,
    SagaStore,
    StateCount,
    StoreTransaction,
    like_pattern,
)

# -- statements ----------------------------------------------------------------------
# Unqualified table names: the schema, if any, is the connection's search path.

_INBOX_CLAIM = ("INSERT INTO inbox (consumer, message_id, processed_at) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING")
_LOAD = ("SELECT state, version, data, created_at, updated_at FROM saga_instances "
         "WHERE saga_type = $1 AND correlation_id = $2")
_LOAD_LOCKED = _LOAD + " FOR UPDATE"
_FIND = ("SELECT correlation_id FROM saga_index "
         "WHERE saga_type = $1 AND name = $2 AND value = $3")
_INSERT = ("INSERT INTO saga_instances "
           "(saga_type, correlation_id, state, version, data, created_at, updated_at) "
           "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING")
_UPDATE = ("UPDATE saga_instances SET state = $3, version = $4, data = $5, updated_at = $6 "
           "WHERE saga_type = $1 AND correlation_id = $2 AND version = $7")
# The index rows go only if the instance did (the CTE's RETURNING gates them).
_DELETE = ("WITH gone AS (DELETE FROM saga_instances WHERE saga_type = $1 "
           "AND correlation_id = $2 AND version = $3 RETURNING 1), "
           "idx AS (DELETE FROM saga_index WHERE saga_type = $1 AND correlation_id = $2 "
           "AND EXISTS (SELECT 1 FROM gone)) "
           "SELECT count(*) FROM gone")
# Replace an instance's index in one statement: drop the pairs not wanted any more, add
# the new ones (pairs kept are neither deleted nor re-inserted, so no row is both).
_SET_INDEX = ("WITH wanted AS (SELECT * FROM unnest($3::text[], $4::text[]) AS w(name, value)), "
              "gone AS (DELETE FROM saga_index i WHERE i.saga_type = $1 "
              "AND i.correlation_id = $2 AND NOT EXISTS (SELECT 1 FROM wanted w "
              "WHERE w.name = i.name AND w.value = i.value)) "
              "INSERT INTO saga_index (saga_type, name, value, correlation_id) "
              "SELECT $1, name, value, $2 FROM wanted ON CONFLICT DO NOTHING")
# Claim the message and read its instance in one round trip. The LATERAL subquery keeps
# FOR UPDATE legal (it may not sit on the nullable side of an outer join) and yields a
# row of NULLs when there is no instance; the claim's count says whether the message
# is new (0: a duplicate, the instance columns are then not used).
_CLAIM_AND_LOAD = ("WITH c AS (INSERT INTO inbox (consumer, message_id, processed_at) "
                   "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1) "
                   "SELECT (SELECT count(*) FROM c)::int, s.state, s.version, s.data, "
                   "s.created_at, s.updated_at FROM (SELECT 1) AS one LEFT JOIN LATERAL "
                   "(SELECT state, version, data, created_at, updated_at FROM saga_instances "
                   "WHERE saga_type = $4 AND correlation_id = $5{lock}) AS s ON true")
_CLAIM_AND_LOAD_PLAIN = _CLAIM_AND_LOAD.format(lock="")
# A deferred transaction's first read (no transaction yet): whether the message is in
# the inbox already, and its instance; the claim goes later, with the writes.
_SEEN_AND_LOAD = ("SELECT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND message_id = $2), "
                  "s.state, s.version, s.data, s.created_at, s.updated_at FROM (SELECT 1) AS one "
                  "LEFT JOIN LATERAL (SELECT state, version, data, created_at, updated_at "
                  "FROM saga_instances WHERE saga_type = $3 AND correlation_id = $4) AS s ON true")
_CLAIM_AND_LOAD_LOCKED = _CLAIM_AND_LOAD.format(lock=" FOR UPDATE")
_HISTORY_COLUMNS = ("saga_type, correlation_id, event, from_state, to_state, message_id, "
                    "message_type, at, detail")
_HISTORY_TYPES = ("text",) * 7 + ("timestamptz", "text")
_OUTBOX_COLUMNS = ("message_id, kind, destination, message_type, correlation_id, body, "
                   "created_at, deliver_at, locked_until, schedule_token")
_OUTBOX_TYPES = ("text",) * 6 + ("timestamptz",) * 3 + ("text",)
_INSTANCE_COLUMNS = "saga_type, correlation_id, state, version, data, created_at, updated_at"

# The engine's writes at the end of a message — the instance (insert or versioned
# update), its history, its outbox rows — go as one statement of data-modifying CTEs:
# one round trip; in a batch, the writes of several messages (and instances) together.
# The instance writes' row count comes back with the outbox ids; a count short of the
# instances written is a version conflict (ConcurrencyError, and the transaction is
# rolled back, so the other CTEs' rows go with it).
_NONE, _ONE, _MANY = 0, 1, 2
_INSTANCE_TYPES = ("text", "text", "text", "int", "text", "timestamptz", "timestamptz")
_UPDATE_TYPES = ("text", "int", "text", "timestamptz", "text", "text", "int")

def _prefetch(lock: bool, limited: bool) -> str:
    """A batch's reads ahead of its messages: every message claimed, every instance they
    name read (one row each, or one row of NULLs when there is none), in one statement;
    `lock` reads them FOR UPDATE.

    `limited` sets the batch's lock wait limit first (``SET LOCAL lock_timeout`` as a
    function, $6 in milliseconds): one round trip fewer a batch. The order is the plan's,
    not luck: the inbox rows are drawn from `l` (the claim's wait, if any, comes after)
    and the instance read is LATERAL to `l` and names it (its row locks likewise)."""
    with_limit = source = condition = ""
    outer = "(SELECT 1) AS one"
    if limited:
        with_limit = ("l AS MATERIALIZED (SELECT set_config('lock_timeout', $6::text, true) "
                      "AS v), ")
        source, outer, condition = "l, ", "l", "l.v IS NOT NULL AND "
    for_update = " FOR UPDATE" if lock else ""
    return (f"WITH {with_limit}c AS (INSERT INTO inbox (consumer, message_id, processed_at) "
            f"SELECT DISTINCT $1::text, m, $3::timestamptz FROM {source}unnest($2::text[]) "
            "AS m ON CONFLICT DO NOTHING RETURNING message_id) "
            "SELECT ARRAY(SELECT message_id FROM c), s.saga_type, s.correlation_id, "
            "s.state, s.version, s.data, s.created_at, s.updated_at "
            f"FROM {outer} LEFT JOIN LATERAL (SELECT saga_type, correlation_id, "
            "state, version, data, created_at, updated_at FROM saga_instances "
            f"WHERE {condition}(saga_type, correlation_id) IN "
            f"(SELECT * FROM unnest($4::text[], $5::text[])){for_update}) AS s ON true")


# By (lock, limited).
_PREFETCH = {(lock, limited): _prefetch(lock, limited)
             for lock in (False, True) for limited in (False, True)}


def _values(first: int, count: int) -> str:
    return ", ".join(f"${n}" for n in range(first, first + count))


def _unnest(first: int, types: Sequence[str]) -> str:
    return ", ".join(f"${first + n}::{t}[]" for n, t in enumerate(types))


def _cast(first: int, types: Sequence[str]) -> str:
    return ", ".join(f"${first + n}::{t}" for n, t in enumerate(types))


@functools.cache
def _writes_statement(inserts: int, updates: int, history: int, outbox: int,
                      claim: str | None = None, gated: bool = False,
                      cancel: bool = False) -> str:
    """The statement for one combination of `inserts` and `updates` of instances and
    `history` and `outbox` rows, each _NONE, _ONE or _MANY (arrays through
    ``unnest``). `claim` ``plain``/``locked`` appends the next message's inbox claim
    and instance read (its five parameters last): a batch sends one message's writes
    with the next one's claim-and-load, one round trip a message. `claim` ``inbox``
    appends the next message's inbox claim alone (three parameters; a consumer's
    message).

    `gated` puts the message's own inbox claim in the statement (three parameters after
    the instances', then the number of instances written): a plain INSERT, so a message
    claimed meanwhile fails the whole statement with a unique violation, made only
    when every instance write matched, and the history and outbox rows only when the
    claim was made. The statement then holds the message's whole effect, all or
    nothing, and can run outside a transaction (see :meth:`AsyncpgTransaction.
    claim_and_load`).

    `cancel` deletes the undispatched timers whose schedule tokens are the array after
    the outbox rows' parameters (gated like them). It runs on the statement's snapshot,
    so an outbox row of this statement with one of those tokens (a timer scheduled
    again after its cancellation) stays."""
    assert not (gated and claim), "a gated claim is the statement's only claim"
    ctes: list[str] = []
    counts: list[str] = []
    n = 1
    if inserts == _ONE:
        ctes.append(f"wi AS (INSERT INTO saga_instances ({_INSTANCE_COLUMNS}) "
                    f"VALUES ({_values(n, 7)}) ON CONFLICT DO NOTHING RETURNING 1)")
    elif inserts == _MANY:
        ctes.append(f"wi AS (INSERT INTO saga_instances ({_INSTANCE_COLUMNS}) "
                    f"SELECT * FROM unnest({_unnest(n, _INSTANCE_TYPES)}) "
                    "ON CONFLICT DO NOTHING RETURNING 1)")
    if inserts:
        counts.append("(SELECT count(*) FROM wi)")
        n += 7
    if updates == _ONE:
        ctes.append(f"wu AS (UPDATE saga_instances SET state = ${n}, version = ${n + 1}, "
                    f"data = ${n + 2}, updated_at = ${n + 3} WHERE saga_type = ${n + 4} "
                    f"AND correlation_id = ${n + 5} AND version = ${n + 6} RETURNING 1)")
    elif updates == _MANY:
        ctes.append("wu AS (UPDATE saga_instances AS i SET state = u.state, "
                    "version = u.version, data = u.data, updated_at = u.updated_at "
                    f"FROM unnest({_unnest(n, _UPDATE_TYPES)}) AS u(state, version, data, "
                    "updated_at, saga_type, correlation_id, expected) "
                    "WHERE i.saga_type = u.saga_type AND i.correlation_id = u.correlation_id "
                    "AND i.version = u.expected RETURNING 1)")
    if updates:
        counts.append("(SELECT count(*) FROM wu)")
        n += 7
    gate = claimed = ""
    if gated:
        where = ""
        if counts:
            where = f" WHERE {' + '.join(counts)} = ${n + 3}::int"
        ctes.append(f"c AS (INSERT INTO inbox (consumer, message_id, processed_at) "
                    f"SELECT ${n}::text, ${n + 1}::text, ${n + 2}::timestamptz{where} "
                    "RETURNING 1)")
        n += 4 if counts else 3
        claimed = " AND EXISTS (SELECT 1 FROM c)"
        gate = " WHERE EXISTS (SELECT 1 FROM c)"
    if history == _ONE:
        ctes.append(f"h AS (INSERT INTO saga_history ({_HISTORY_COLUMNS}) "
                    f"SELECT {_cast(n, _HISTORY_TYPES)}{gate})")
        n += 9
    elif history == _MANY:
        ctes.append(f"h AS (INSERT INTO saga_history ({_HISTORY_COLUMNS}) "
                    f"SELECT * FROM unnest({_unnest(n, _HISTORY_TYPES)}){gate})")
        n += 9
    if outbox == _ONE:
        ctes.append(f"o AS (INSERT INTO outbox ({_OUTBOX_COLUMNS}) "
                    f"SELECT {_cast(n, _OUTBOX_TYPES)}{gate} RETURNING id)")
        n += 10
    elif outbox == _MANY:
        # unnest yields the rows in array order and the sequence numbers them in that
        # order, so the ids sorted ascending line up with the items.
        ctes.append(f"o AS (INSERT INTO outbox ({_OUTBOX_COLUMNS}) "
                    f"SELECT * FROM unnest({_unnest(n, _OUTBOX_TYPES)}){gate} "
                    "RETURNING id)")
        n += 10
    if cancel:
        ctes.append(f"x AS (DELETE FROM outbox WHERE schedule_token = ANY(${n}::text[]) "
                    f"AND dispatched_at IS NULL{claimed})")
        n += 1
    written = f"({' + '.join(counts)})::int" if counts else "NULL::int"
    ids = "ARRAY(SELECT id FROM o ORDER BY id)" if outbox else "NULL::bigint[]"
    if claim is None:
        return f"WITH {', '.join(ctes)} SELECT {written}, {ids}"
    # The read runs on the statement's snapshot: it does not see the writes above,
    # so the caller folds them in only when they are not to the instance it reads.
    ctes.append(f"c AS (INSERT INTO inbox (consumer, message_id, processed_at) "
                f"VALUES (${n}, ${n + 1}, ${n + 2}) ON CONFLICT DO NOTHING RETURNING 1)")
    if claim == "inbox":
        return f"WITH {', '.join(ctes)} SELECT {written}, {ids}, (SELECT count(*) FROM c)::int"
    lock = " FOR UPDATE" if claim == "locked" else ""
    return (f"WITH {', '.join(ctes)} SELECT {written}, {ids}, "
            "(SELECT count(*) FROM c)::int, s.state, s.version, s.data, s.created_at, "
            "s.updated_at FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT state, version, "
            "data, created_at, updated_at FROM saga_instances "
            f"WHERE saga_type = ${n + 3} AND correlation_id = ${n + 4}{lock}) AS s ON true")


_ADD_ERROR = ("INSERT INTO message_errors (endpoint, message_id, message_type, correlation_id, "
              "error_type, reason, body, headers, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")

_OUTBOX_ROW = ("id, message_id, kind, destination, message_type, correlation_id, body, "
               "deliver_at, attempts, created_at, dispatched_at, last_error, failed")
_CLAIM_DUE = (f"UPDATE outbox SET locked_until = $2 WHERE id IN (SELECT id FROM outbox "
              "WHERE dispatched_at IS NULL AND NOT failed AND deliver_at <= $1 "
              "AND (locked_until IS NULL OR locked_until < $1) ORDER BY id LIMIT $3 "
              f"FOR UPDATE SKIP LOCKED) RETURNING {_OUTBOX_ROW}")
_MARK_DISPATCHED = ("UPDATE outbox SET dispatched_at = $2, locked_until = NULL "
                    "WHERE id = ANY($1::bigint[])")
_MARK_FAILED = ("UPDATE outbox SET attempts = attempts + 1, last_error = $2, "
                "locked_until = $3, failed = $4 WHERE id = $1")
_INSTANCE_ROW = "saga_type, correlation_id, state, version, data, created_at, updated_at"
_GET_INSTANCE = (f"SELECT {_INSTANCE_ROW} FROM saga_instances "
                 "WHERE saga_type = $1 AND correlation_id = $2")
_COUNT_INSTANCES = ("SELECT state, count(*) FROM saga_instances WHERE saga_type = $1 "
                    "GROUP BY state")
_HISTORY = (f"SELECT {_HISTORY_COLUMNS}, id FROM saga_history "
            "WHERE saga_type = $1 AND correlation_id = $2 ORDER BY id")
_OUTBOX_FOR = f"SELECT {_OUTBOX_ROW} FROM outbox WHERE correlation_id = $1 ORDER BY id"
_PENDING_OUTBOX = f"SELECT {_OUTBOX_ROW} FROM outbox WHERE dispatched_at IS NULL ORDER BY id"
_ERROR_ROW = ("endpoint, error_type, reason, body, at, message_id, message_type, "
              "correlation_id, headers, id")
_LIST_ERRORS = f"SELECT {_ERROR_ROW} FROM message_errors ORDER BY id DESC LIMIT $1"
_LIST_ERRORS_AT = (f"SELECT {_ERROR_ROW} FROM message_errors WHERE endpoint = $2 "
                   "ORDER BY id DESC LIMIT $1")
_OUTBOX_STATS = ("SELECT count(*), min(deliver_at), count(schedule_token) FROM outbox "
                 "WHERE dispatched_at IS NULL AND NOT failed AND deliver_at <= $1")
_PURGE_INBOX = "DELETE FROM inbox WHERE processed_at < $1"
_PURGE_FAILURES = "DELETE FROM delivery_failures WHERE last_at < $1"
# The operator's reads (console, timeline).
_INSTANCES_OF = (f"SELECT {_INSTANCE_ROW} FROM saga_instances WHERE correlation_id = $1 "
                 "ORDER BY saga_type")
_HISTORY_OF = (f"SELECT {_HISTORY_COLUMNS}, id FROM saga_history WHERE correlation_id = $1 "
               "AND ($2::text IS NULL OR saga_type = $2) ORDER BY id")
_ERRORS_FOR = (f"SELECT {_ERROR_ROW} FROM message_errors WHERE correlation_id = $1 "
               "ORDER BY id")
_INBOX_FOR = ("SELECT consumer, message_id, processed_at FROM inbox "
              "WHERE message_id = ANY($1::text[]) ORDER BY message_id, processed_at, consumer")
_STATE_COUNTS = ("SELECT saga_type, state, count(*) FROM saga_instances "
                 "WHERE $1::text IS NULL OR saga_type = $1 "
                 "GROUP BY saga_type, state ORDER BY saga_type, state")
_MISSING_TABLES = ("SELECT name FROM unnest($1::text[]) AS t(name) "
                   "WHERE to_regclass(quote_ident(name)) IS NULL")
_INSTANCE_ORDER = {"idle": "updated_at, ", "recent": "updated_at DESC, ",
                   "newest": "created_at DESC, ", "oldest": "created_at, ", "id": ""}


def _instance_where(query: InstanceQuery) -> tuple[str, list[Any]]:
    """The WHERE clause of `query` with its arguments (see :class:`InstanceQuery`)."""
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    def final() -> str:
        by_type: dict[str, list[str]] = {}
        for saga_type, state in query.final_pairs():
            by_type.setdefault(saga_type, []).append(state)
        return " OR ".join([f"state = {arg(FINAL_STATE)}", *(
            f"(saga_type = {arg(saga_type)} AND state = ANY({arg(states)}::text[]))"
            for saga_type, states in by_type.items())])

    where = ["TRUE"]
    if query.saga_type is not None:
        where.append(f"saga_type = {arg(query.saga_type)}")
    if query.states:
        where.append(f"state = ANY({arg(sorted(query.states))}::text[])")
    if query.final is not None:
        where.append(f"({final()})" if query.final else f"NOT ({final()})")
    if query.stuck is not None and query.stuck_before is not None:
        stuck = f"(NOT ({final()}) AND updated_at < {arg(_utc(query.stuck_before))})"
        where.append(stuck if query.stuck else f"NOT {stuck}")
    if query.updated_before is not None:
        where.append(f"updated_at < {arg(_utc(query.updated_before))}")
    if query.created_before is not None:
        where.append(f"created_at < {arg(_utc(query.created_before))}")
    if query.created_after is not None:
        where.append(f"created_at >= {arg(_utc(query.created_after))}")
    if query.id_contains is not None:
        where.append(f"lower(correlation_id) LIKE {arg(like_pattern(query.id_contains))} "
                     "ESCAPE '\\'")
    return " AND ".join(where), args
_PURGE_OUTBOX = "DELETE FROM outbox WHERE dispatched_at IS NOT NULL AND dispatched_at < $1"


@functools.cache
def _ddl() -> tuple[str, ...]:
    """CREATE TABLE/INDEX IF NOT EXISTS for the tables of ``_schema.py``, compiled from
    the same SQLAlchemy metadata that SqlStore and the migrations use."""
    return ddl_for(metadata)


def ddl_for(tables: MetaData) -> tuple[str, ...]:
    """CREATE TABLE/INDEX IF NOT EXISTS statements for `tables`, for PostgreSQL."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    statements: list[str] = []
    for table in tables.sorted_tables:
        statements.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
        statements.extend(str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect))
                          for index in sorted(table.indexes, key=lambda i: str(i.name)))
    return tuple(statements)


def postgres_timeouts(lock: float | None, statement: float | None,
                      idle_in_transaction: float | None) -> dict[str, str]:
    """Server settings for the session timeouts (milliseconds; omitted when None)."""
    found: dict[str, str] = {}
    for name, seconds in (("lock_timeout", lock), ("statement_timeout", statement),
                          ("idle_in_transaction_session_timeout", idle_in_transaction)):
        if seconds is not None:
            if seconds <= 0:
                raise ValueError(f"{name} must be positive seconds, not {seconds!r}")
            found[name] = str(int(seconds * 1000))
    return found


def _utc(value: datetime) -> datetime:
    """Naive datetimes are UTC (as in the SQLAlchemy store); asyncpg would take local time."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _shape(items: Sequence[Any]) -> int:
    return _NONE if not items else _ONE if len(items) == 1 else _MANY


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> tuple[list[Any], ...]:
    """Rows of values as one list per column (the arrays ``unnest`` takes)."""
    if not rows:
        return tuple([] for _ in range(width))
    return tuple(list(column) for column in zip(*rows, strict=True))


def _insert_args(r: InstanceRecord) -> tuple[Any, ...]:
    return (r.saga_type, r.correlation_id, r.state, r.version, _dumps(r.data),
            _utc(r.created_at), _utc(r.updated_at))


def _update_args(r: InstanceRecord, expected: int) -> tuple[Any, ...]:
    return (r.state, r.version, _dumps(r.data), _utc(r.updated_at), r.saga_type,
            r.correlation_id, expected)


def _conflict(inserts: Sequence[InstanceRecord],
              updates: Sequence[tuple[InstanceRecord, int]]) -> ConcurrencyError:
    if len(inserts) + len(updates) > 1:
        return ConcurrencyError(f"{len(inserts) + len(updates)} instances written together: "
                                "one of them was created or changed meanwhile")
    if inserts:
        r = inserts[0]
        return ConcurrencyError(f"{r.saga_type} {r.correlation_id} was created concurrently")
    r, expected = updates[0]
    return ConcurrencyError(f"{r.saga_type} {r.correlation_id} changed since version "
                            f"{expected}")


def _copy(record: InstanceRecord | None) -> InstanceRecord | None:
    """A record as if read again: its data a fresh copy."""
    if record is None:
        return None
    return InstanceRecord(record.saga_type, record.correlation_id, record.state,
                          record.version, orjson.loads(_dumps(record.data)),
                          record.created_at, record.updated_at)


def _count(status: str) -> int:
    """The row count of a command tag such as ``INSERT 0 1`` or ``UPDATE 3``."""
    return int(status.rpartition(" ")[2])


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _history_args(r: HistoryRecord) -> tuple[Any, ...]:
    return (r.saga_type, r.correlation_id, r.event, r.from_state, r.to_state, r.message_id,
            r.message_type, _utc(r.at), None if r.detail is None else _dumps(r.detail))


def _history_arrays(records: Sequence[HistoryRecord]) -> tuple[list[Any], ...]:
    columns: tuple[list[Any], ...] = tuple([] for _ in range(9))
    for r in records:
        for column, value in zip(columns, _history_args(r), strict=True):
            column.append(value)
    return columns


def _outbox_row(r: Any) -> OutboxRow:
    return OutboxRow(id=r[0], message_id=r[1], kind=r[2], destination=r[3],
                     message_type=r[4], correlation_id=r[5], body=r[6].encode(),
                     deliver_at=r[7], attempts=r[8], created_at=r[9], dispatched_at=r[10],
                     last_error=r[11], failed=r[12])


def _instance(r: Any) -> InstanceRecord:
    return InstanceRecord(r[0], r[1], r[2], r[3], orjson.loads(r[4]), r[5], r[6])


class AsyncpgTransaction(StoreTransaction):
    """A StoreTransaction on one pooled asyncpg connection, inside a transaction.

    User code runs SQLAlchemy Core statements with :meth:`execute` (compiled once per
    statement shape, see ``_pg_statements``), as on every store. ``conn`` is the raw
    asyncpg connection, for the engine; the connection goes back to the pool without
    ``RESET ALL`` (see :class:`AsyncpgStore`), so keep session state
    transaction-scoped: ``SET LOCAL``, ``pg_advisory_xact_lock``.

    The engine's writes at the end of a message — the instance (:meth:`save`), its
    history, its outbox rows and the timers it cancels (:meth:`cancel_timers`) — are
    held back and sent as one statement: with the next message's claim-and-load in a
    batch, else just before COMMIT. In a batch whose reads were made ahead
    (:meth:`prefetch`), the messages' writes, of every instance, are held together and
    go as one statement. They are not visible to statements in the same transaction
    until then: the engine's own statements send them first, and so does a user
    statement (:meth:`execute`) that names one of the engine's tables; one on the
    user's own tables does not wait for them (so a batch's consumers, each with its own
    SQL, still write the engine's rows once). :meth:`flush` sends them on demand (to
    read them back through `conn`). The outbox rows :meth:`add_outbox` returns get
    their ids when they are written, by the commit at the latest. A batch's lock wait
    limit (:meth:`limit_lock_wait`) rides with its prefetch.

    Deferred (:meth:`AsyncpgStore.message_transaction`), ``BEGIN`` waits for the first
    statement that needs it: :meth:`claim_and_load` of a saga without a lock only
    reads, and holds the message's inbox claim back to go with its writes as one
    statement (see ``_writes_statement``'s `gated`); every other method begins the
    transaction first. `conn` is then not inside a transaction until something began it.
    """

    __slots__ = ("_cancel", "_claims", "_claims_for", "_deferred", "_history", "_inserts",
                 "_known", "_lock_wait", "_outbox", "_pending", "_statements", "_updates",
                 "_xact", "conn")

    def __init__(self, conn: Any, statements: StatementCache, xact: Any = None) -> None:
        self.conn: Any = conn
        # A deferred transaction: asyncpg's transaction, not started yet.
        self._xact = xact
        self._deferred = xact is not None
        # The message's inbox claim held back: (consumer, message id, time).
        self._pending: tuple[str, str, datetime] | None = None
        self._history: list[HistoryRecord] = []
        self._inserts: dict[tuple[str, str], InstanceRecord] = {}
        self._updates: dict[tuple[str, str], tuple[InstanceRecord, int]] = {}
        self._outbox: list[tuple[tuple[Any, ...], OutboxRow]] = []
        # Timers to cancel (schedule tokens), deleted by the writes' statement.
        self._cancel: list[str] = []
        # A lock wait limit not sent yet (milliseconds, as text): the batch's prefetch
        # sets it, else the next statement sends it first.
        self._lock_wait: str | None = None
        self._statements = statements
        # From prefetch: whether each message id was claimed now, and the instances
        # read (None: there is none), kept current by this transaction's writes.
        self._claims: dict[str, bool] = {}
        self._claims_for = ""
        self._known: dict[tuple[str, str], InstanceRecord | None] = {}

    @property
    def dialect(self) -> str:
        return "postgresql"

    @property
    def _holding(self) -> bool:
        # Not the held inbox claim alone: it goes with the writes, or at the end.
        return bool(self._inserts or self._updates or self._history or self._outbox
                    or self._cancel)

    async def _begin(self) -> None:
        """Send the deferred ``BEGIN`` (once; nothing if the transaction began), and a
        lock wait limit not sent yet."""
        if self._deferred:
            self._deferred = False
            await self._xact.start()
        if self._lock_wait is not None:
            limit, self._lock_wait = self._lock_wait, None
            await self.conn.execute(f"SET LOCAL lock_timeout = {limit}")

    async def execute(self, statement: Executable, parameters: Parameters = None) -> Result:
        await self._begin()
        # The held writes go first only if the statement names one of the engine's
        # tables (it could read them); the user's own tables don't need them yet.
        return await run_statement(self.conn, self._statements, check_statement(statement),
                                   parameters, before=self.flush)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        await self._begin()
        if self._holding:
            await self.flush()
        async with self.conn.transaction():
            yield

    async def limit_lock_wait(self, seconds: float) -> None:
        # Held: the batch's prefetch sets it in its own statement (set_config), else the
        # next statement sends SET LOCAL first. Nothing waits for a lock before either.
        self._lock_wait = str(max(1, int(seconds * 1000)))

    async def prefetch(self, consumer: str, message_ids: Sequence[str], now: datetime,
                       instances: Sequence[tuple[str, str]], *, lock: bool) -> None:
        limit, self._lock_wait = self._lock_wait, None
        await self._begin()
        if self._holding:
            await self.flush()
        r = await self.conn.fetch(
            _PREFETCH[lock, limit is not None], consumer, list(message_ids), _utc(now),
            [t for t, _ in instances], [c for _, c in instances],
            *(() if limit is None else (limit,)))
        claimed = set(r[0][0])
        self._claims = {m: m in claimed for m in message_ids}
        self._claims_for = consumer
        self._known = dict.fromkeys(instances)
        for row in r:
            if row[1] is not None:
                self._known[(row[1], row[2])] = InstanceRecord(
                    row[1], row[2], row[3], row[4], orjson.loads(row[5]), row[6], row[7])

    def _prefetched_claim(self, consumer: str, message_id: str) -> bool | None:
        """The claim made ahead for this message (once: a second copy in the batch
        asks the database), or None."""
        if consumer != self._claims_for:
            return None
        return self._claims.pop(message_id, None)

    async def inbox_claim(self, consumer: str, message_id: str, now: datetime) -> bool:
        claimed = self._prefetched_claim(consumer, message_id)
        if claimed is not None:
            return claimed
        await self._begin()
        if self._pending is not None:
            await self._write()  # the held claim first: a second claim goes on its own
        if self._holding:
            # The previous message's writes ride with this message's claim.
            r = await self._write((consumer, message_id, _utc(now)), "inbox")
            return bool(r[2])
        # A concurrent claim of the same id waits for the first to commit, then does nothing.
        status = await self.conn.execute(_INBOX_CLAIM, consumer, message_id, _utc(now))
        return bool(_count(status))

    async def claim_and_load(self, consumer: str, message_id: str, now: datetime,
                             saga_type: str, correlation_id: str, *, lock: bool
                             ) -> tuple[bool, InstanceRecord | None]:
        key = (saga_type, correlation_id)
        claimed = self._prefetched_claim(consumer, message_id)
        if claimed is not None:
            if not claimed:
                return False, None
            if key in self._known:
                return True, _copy(self._known[key])
            return True, await self.load(saga_type, correlation_id, lock=lock)
        if self._deferred and not lock and not self._holding and self._pending is None:
            # Read only; the claim goes with the writes, in one statement that needs
            # no transaction around it (the version check and the claim gate it).
            r = await self.conn.fetchrow(_SEEN_AND_LOAD, consumer, message_id, saga_type,
                                         correlation_id)
            if r[0]:
                return False, None
            self._pending = (consumer, message_id, _utc(now))
            if r[1] is None:
                return True, None
            return True, InstanceRecord(saga_type, correlation_id, r[1], r[2],
                                        orjson.loads(r[3]), r[4], r[5])
        await self._begin()
        if self._pending is not None:
            await self._write()  # the held claim first: a second claim goes on its own
        if key in self._inserts or key in self._updates:
            await self.flush()  # the read must see the held write: it goes first
        claim = (consumer, message_id, _utc(now), saga_type, correlation_id)
        if self._holding:
            # The previous message's writes ride with this message's claim and read.
            r = await self._write(claim, "locked" if lock else "plain")
            r = r[2:]
        else:
            r = await self.conn.fetchrow(
                _CLAIM_AND_LOAD_LOCKED if lock else _CLAIM_AND_LOAD_PLAIN, *claim)
        if not r[0]:
            return False, None
        if r[1] is None:
            return True, None
        return True, InstanceRecord(saga_type, correlation_id, r[1], r[2], orjson.loads(r[3]),
                                    r[4], r[5])

    async def load(self, saga_type: str, correlation_id: str, *, lock: bool
                   ) -> InstanceRecord | None:
        await self._begin()
        if self._holding:
            await self.flush()
        r = await self.conn.fetchrow(_LOAD_LOCKED if lock else _LOAD, saga_type,
                                     correlation_id)
        if r is None:
            return None
        return InstanceRecord(saga_type, correlation_id, r[0], r[1], orjson.loads(r[2]),
                              r[3], r[4])

    async def find(self, saga_type: str, name: str, value: str) -> list[str]:
        await self._begin()
        if self._holding:
            await self.flush()
        return [r[0] for r in await self.conn.fetch(_FIND, saga_type, name, value)]

    async def insert(self, record: InstanceRecord) -> None:
        await self._begin()
        if self._holding:
            await self.flush()
        # ON CONFLICT DO NOTHING rather than catching the unique violation: an error would
        # abort the whole transaction, a zero row count leaves it usable.
        status = await self.conn.execute(
            _INSERT, record.saga_type, record.correlation_id, record.state, record.version,
            _dumps(record.data), _utc(record.created_at), _utc(record.updated_at))
        if _count(status) != 1:
            raise ConcurrencyError(
                f"{record.saga_type} {record.correlation_id} was created concurrently")
        self._remember(record)

    async def update(self, record: InstanceRecord, expected_version: int) -> None:
        await self._begin()
        if self._holding:
            await self.flush()
        status = await self.conn.execute(
            _UPDATE, record.saga_type, record.correlation_id, record.state, record.version,
            _dumps(record.data), _utc(record.updated_at), expected_version)
        if _count(status) != 1:
            raise ConcurrencyError(
                f"{record.saga_type} {record.correlation_id} changed since version "
                f"{expected_version}")
        self._remember(record)

    def _remember(self, record: InstanceRecord | None, key: tuple[str, str] | None = None
                  ) -> None:
        """Keep a prefetched instance current: `record` as written (None: removed)."""
        if key is None and record is not None:
            key = (record.saga_type, record.correlation_id)
        if key is not None and key in self._known:
            self._known[key] = record

    async def save(self, record: InstanceRecord, expected_version: int | None) -> None:
        # Held back: written with the next message's claim-and-load, or with the rest
        # of a prefetched batch, or before the next other statement, or just before
        # COMMIT (see flush). A second write of one instance replaces the first, from
        # the version the first one expected.
        key = (record.saga_type, record.correlation_id)
        held = self._inserts.get(key) or (self._updates[key][0] if key in self._updates
                                          else None)
        if held is not None and expected_version != held.version:
            await self.flush()  # not the held version's successor: write it first
            held = None
        if held is not None and key in self._inserts:
            self._inserts[key] = record
        elif held is not None:
            self._updates[key] = (record, self._updates[key][1])
        elif expected_version is None:
            self._inserts[key] = record
        else:
            self._updates[key] = (record, expected_version)
        self._remember(record)

    async def delete(self, saga_type: str, correlation_id: str, expected_version: int) -> None:
        await self._begin()
        if self._holding:
            await self.flush()
        if await self.conn.fetchval(_DELETE, saga_type, correlation_id,
                                    expected_version) != 1:
            raise ConcurrencyError(f"{saga_type} {correlation_id} changed before removal")
        self._remember(None, (saga_type, correlation_id))

    async def set_index(self, saga_type: str, correlation_id: str,
                        values: dict[str, str]) -> None:
        await self._begin()
        await self.conn.execute(_SET_INDEX, saga_type, correlation_id, list(values),
                                list(values.values()))

    async def add_history(self, records: Sequence[HistoryRecord]) -> None:
        # Held back and written with the instances and outbox rows (one round trip).
        self._history.extend(records)

    async def flush(self) -> None:
        """Write what is held back — the instances of :meth:`save`, the history of
        :meth:`add_history`, the rows of :meth:`add_outbox`, the timers of
        :meth:`cancel_timers` — now (the store calls this before COMMIT; call it
        yourself to read them back through `conn`).
        ConcurrencyError when an instance changed (or was created) meanwhile. A
        deferred transaction begins first: what is written is still the transaction's."""
        await self._begin()
        if self._holding:
            await self._write()

    async def _write_out(self) -> None:
        """At the end: what is held, the inbox claim included, as one statement, in the
        transaction if one began, else on its own (the deferred path, atomic by
        itself)."""
        if self._holding or self._pending is not None:
            await self._write()

    async def add_outbox(self, items: Sequence[Outgoing], now: datetime,
                         lease_until: datetime | None) -> list[OutboxRow]:
        if not items:
            return []
        now = _utc(now)
        lease = _utc_or_none(lease_until)
        rows = []
        for o in items:
            at = now if o.deliver_at is None else _utc(o.deliver_at)
            row = OutboxRow(id=0, message_id=o.message_id, kind=o.kind,
                            destination=o.destination, message_type=o.message_type,
                            correlation_id=o.correlation_id, body=o.body, deliver_at=at,
                            created_at=now)
            self._outbox.append(((o.message_id, o.kind, o.destination, o.message_type,
                                  o.correlation_id, o.body.decode(), now, at,
                                  lease if at <= now else None, o.schedule_token), row))
            rows.append(row)
        return rows

    async def _write(self, claim: tuple[Any, ...] = (), claim_kind: str | None = None
                     ) -> Any:
        """Send the held instance writes, history and outbox rows as one statement
        (with the next message's inbox claim and instance read when `claim_kind` is
        given); the statement's row."""
        inserts, self._inserts = list(self._inserts.values()), {}
        updates, self._updates = list(self._updates.values()), {}
        history, self._history = self._history, []
        outbox, self._outbox = self._outbox, []
        gate, self._pending = self._pending, None
        cancel, self._cancel = self._cancel, []
        args: list[Any] = []
        if len(inserts) == 1:
            args += _insert_args(inserts[0])
        elif inserts:
            args += _columns([_insert_args(r) for r in inserts], 7)
        if len(updates) == 1:
            args += _update_args(*updates[0])
        elif updates:
            args += _columns([_update_args(r, e) for r, e in updates], 7)
        if gate is not None:
            args += gate
            if inserts or updates:
                args.append(len(inserts) + len(updates))
        if len(history) == 1:
            args += _history_args(history[0])
        elif history:
            args += _history_arrays(history)
        if len(outbox) == 1:
            args += outbox[0][0]
        elif outbox:
            args += _columns([values for values, _ in outbox], 10)
        if cancel:
            args.append(cancel)
        args += claim
        statement = _writes_statement(_shape(inserts), _shape(updates), _shape(history),
                                      _shape(outbox), claim_kind, gate is not None,
                                      bool(cancel))
        try:
            row = await self.conn.fetchrow(statement, *args)
        except asyncpg.UniqueViolationError as error:
            if gate is not None and error.table_name == "inbox":
                raise MessageClaimedError(
                    f"message {gate[1]} was claimed by {gate[0]} meanwhile (another "
                    "delivery of it): nothing of this one was written") from error
            raise
        if (inserts or updates) and row[0] != len(inserts) + len(updates):
            raise _conflict(inserts, updates)
        for (_, written), row_id in zip(outbox, row[1] or (), strict=True):
            written.id = row_id
        return row

    async def cancel_timers(self, tokens: Sequence[str]) -> None:
        if not tokens:
            return
        if any(row[9] in tokens for row, _ in self._outbox):
            # A held row is one of the timers: it must be written before the delete.
            await self.flush()
        # Held: deleted by the writes' statement (gated like them on the deferred path).
        self._cancel.extend(tokens)

    async def add_error(self, record: ErrorRecord) -> None:
        await self._begin()
        await self.conn.execute(
            _ADD_ERROR, record.endpoint, record.message_id, record.message_type,
            record.correlation_id, record.error_type, record.reason, record.body,
            _dumps(record.headers), _utc(record.at))


class _Pool:
    """Raw asyncpg connections for one store: at most `size` at once, idle ones reused.

    Lighter than :class:`asyncpg.Pool` on the per-message path (no proxy, no shielded
    release task, no idle timers), which is the point. The rule that keeps it safe: a
    connection goes back only when the caller could end its transaction cleanly (COMMIT
    or ROLLBACK answered); anything else (a cancelled query, a lost socket, a failed
    COMMIT) closes it, and the server rolls back whatever it held.
    """

    def __init__(self, dsn: str, size: int, connect_kwargs: dict[str, Any],
                 reset_sessions: bool) -> None:
        self._dsn = dsn
        self._connect_kwargs = connect_kwargs
        self._reset_sessions = reset_sessions
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Any] = []
        self._closed = False

    async def acquire(self) -> Any:
        if self._closed:
            raise RuntimeError("the store is closed")
        await self._slots.acquire()
        try:
            while self._idle:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn
            conn = await asyncpg.connect(self._dsn, **self._connect_kwargs)
            try:
                await prepare_connection(conn)
            except BaseException:
                conn.terminate()
                raise
            return conn
        except BaseException:
            self._slots.release()
            raise

    async def release(self, conn: Any, *, reusable: bool) -> None:
        try:
            if reusable and self._reset_sessions and not conn.is_closed():
                try:
                    await conn.reset()
                except Exception:
                    reusable = False
            if not reusable or conn.is_closed() or conn.is_in_transaction():
                conn.terminate()
            elif not self._closed:
                self._idle.append(conn)
            else:
                await _close(conn)
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Close the idle connections; those in use close when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await _close(conn)


async def _close(conn: Any) -> None:
    try:
        await conn.close(timeout=5)
    except Exception:
        conn.terminate()


class _Connection:
    """``async with store._connection() as conn``: one pooled connection, no explicit
    transaction (each statement commits on its own)."""

    __slots__ = ("_conn", "_pool", "_store")

    def __init__(self, store: AsyncpgStore) -> None:
        self._store = store
        self._pool: _Pool
        self._conn: Any = None

    async def __aenter__(self) -> Any:
        self._pool = self._store._pool or self._store._open()
        self._conn = await self._pool.acquire()
        return self._conn

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        # An error the server reported leaves the connection idle and usable.
        reusable = exc_type is None or issubclass(exc_type, asyncpg.PostgresError)
        await self._pool.release(self._conn, reusable=reusable)


class _Transaction:
    """``async with store.transaction() as tx``: a pooled connection, BEGIN … COMMIT
    (ROLLBACK on error), the connection back to the pool. A plain class rather than
    ``@asynccontextmanager``: this runs once per message."""

    __slots__ = ("_deferred", "_pool", "_readonly", "_store", "_tx", "_xact")

    def __init__(self, store: AsyncpgStore, readonly: bool = False,
                 deferred: bool = False) -> None:
        self._store = store
        self._readonly = readonly
        self._deferred = deferred
        self._pool: _Pool
        self._xact: Any = None
        self._tx: AsyncpgTransaction

    async def __aenter__(self) -> AsyncpgTransaction:
        pool = self._pool = self._store._pool or self._store._open()
        conn = await pool.acquire()
        if self._deferred:
            # BEGIN waits for the first statement that needs it (AsyncpgTransaction).
            self._xact = conn.transaction()
            tx = self._tx = AsyncpgTransaction(conn, self._store.statements, self._xact)
            return tx
        try:
            self._xact = conn.transaction(readonly=True) if self._readonly \
                else conn.transaction()
            await self._xact.start()
        except BaseException:
            await pool.release(conn, reusable=False)
            raise
        tx = self._tx = AsyncpgTransaction(conn, self._store.statements)
        return tx

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._tx._deferred:
            await self._end_unbegun(exc_type)
            return
        ended = False
        try:
            if exc_type is None:
                try:
                    await self._tx._write_out()
                except BaseException:
                    ended = await _rollback(self._xact)
                    raise
                await self._xact.commit()
                ended = True
            else:
                ended = await _rollback(self._xact)
        finally:
            await self._pool.release(self._tx.conn, reusable=ended)


    async def _end_unbegun(self, exc_type: type[BaseException] | None) -> None:
        """The end of a deferred transaction that never began: its writes, if any, go
        as one statement of their own; the connection goes back to the pool if it is
        idle (after an error the server reported, or one of ours, it is)."""
        conn = self._tx.conn
        reusable = False
        try:
            if exc_type is None:
                await self._tx._write_out()
                reusable = True
            else:
                reusable = issubclass(exc_type, asyncpg.PostgresError | StepsagaError) \
                    or await _idle(conn)
        except (asyncpg.PostgresError, StepsagaError):
            reusable = True
            raise
        finally:
            await self._pool.release(conn, reusable=reusable)


async def _idle(conn: Any) -> bool:
    """Whether `conn` answers a statement: not broken, not in the middle of one."""
    try:
        await conn.execute("SELECT 1")
    except Exception:
        return False
    return True


async def _rollback(xact: Any) -> bool:
    """Roll back after an error; False when that failed too (the connection is then
    closed, which rolls back on the server), so the first error is the one raised."""
    try:
        await xact.rollback()
    except Exception:
        return False
    return True


class AsyncpgStore(SagaStore):
    """A SagaStore on PostgreSQL through raw asyncpg connections. Build it with
    :meth:`from_url`; connections open on first use, up to `pool_size` at once.

    A transaction's connection goes back to the pool without asyncpg's session reset
    (``RESET ALL``, ``UNLISTEN *``, …: one more round trip per message) unless
    `reset_sessions` is set; the store itself leaves no session state behind. A
    connection is not pinged before use: one the server dropped fails its message,
    which is redelivered, and is replaced.
    """

    def __init__(self, dsn: str, *, schema: str | None = None, pool_size: int = 20,
                 reset_sessions: bool = False, lock_timeout: float | None = 10.0,
                 statement_timeout: float | None = 60.0,
                 idle_in_transaction_timeout: float | None = 60.0,
                 **connect_kwargs: Any) -> None:
        settings = dict(connect_kwargs.pop("server_settings", None) or {})
        settings.update(postgres_timeouts(lock_timeout, statement_timeout,
                                          idle_in_transaction_timeout))
        if schema is not None:
            if not schema.replace("_", "").isalnum():
                raise ValueError(f"schema name {schema!r} must be letters, digits and _")
            settings["search_path"] = schema
        if settings:
            connect_kwargs["server_settings"] = settings
        self.dsn = dsn
        self.schema = schema
        self.pool_size = pool_size
        self._reset_sessions = reset_sessions
        self._connect_kwargs = connect_kwargs
        self._pool: _Pool | None = None
        self.statements = StatementCache()
        """User statements (``ctx.transaction.execute``) compiled for PostgreSQL, by shape."""

    @classmethod
    def from_url(cls, url: str, *, schema: str | None = None, pool_size: int = 20,
                 reset_sessions: bool = False, lock_timeout: float | None = 10.0,
                 statement_timeout: float | None = 60.0,
                 idle_in_transaction_timeout: float | None = 60.0,
                 **connect_kwargs: Any) -> AsyncpgStore:
        """A store for ``postgresql://user@host/db`` (``postgresql+asyncpg://`` too).
        `schema` puts the tables in their own schema via the search path, as
        :meth:`SqlStore.from_url` does; `pool_size` caps the connections. The timeouts
        (seconds; None: the server's) keep one stuck transaction from halting the rest:
        a lock wait gives up after `lock_timeout` (the message is tried again later,
        uncounted), a statement after `statement_timeout`, and a transaction left idle
        (a frozen process) is ended after `idle_in_transaction_timeout`. Other keywords
        go to :func:`asyncpg.connect` (``ssl=``, ``statement_cache_size=``, …)."""
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in ("postgresql", "postgresql+asyncpg", "postgres"):
            raise ValueError(f"unsupported database URL {redact_url(url)!r}: AsyncpgStore takes "
                             "postgresql:// or postgresql+asyncpg://")
        return cls(f"postgresql://{rest}", schema=schema, pool_size=pool_size,
                   reset_sessions=reset_sessions, lock_timeout=lock_timeout,
                   statement_timeout=statement_timeout,
                   idle_in_transaction_timeout=idle_in_transaction_timeout, **connect_kwargs)

    @property
    def url(self) -> str:
        """The database URL (libpq form, ``postgresql://``)."""
        return self.dsn

    def _open(self) -> _Pool:
        if self._pool is None:
            self._pool = _Pool(self.dsn, self.pool_size, self._connect_kwargs,
                               self._reset_sessions)
        return self._pool

    def transaction(self, *, readonly: bool = False) -> _Transaction:
        return _Transaction(self, readonly)

    def message_transaction(self) -> _Transaction:
        return _Transaction(self, deferred=True)

    def _connection(self) -> _Connection:
        return _Connection(self)

    async def create_schema(self) -> None:
        async with self._connection() as conn, conn.transaction():
            if self.schema is not None:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            for statement in _ddl():
                await conn.execute(statement)

    async def create_tables(self, metadata: MetaData) -> None:
        async with self._connection() as conn, conn.transaction():
            if self.schema is not None:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            for statement in ddl_for(metadata):
                await conn.execute(statement)

    async def outbox_stats(self, now: datetime) -> dict[str, float]:
        async with self._connection() as conn:
            row = await conn.fetchrow(_OUTBOX_STATS, _utc(now))
        count, oldest, timers = row[0], row[1], row[2]
        age = 0.0 if oldest is None else max(0.0, (_utc(now) - oldest).total_seconds())
        return {"backlog": float(count), "oldest_age": age, "timers_due": float(timers)}

    async def database_time(self) -> datetime | None:
        async with self._connection() as conn:
            value = await conn.fetchval("SELECT clock_timestamp()")
        assert isinstance(value, datetime)
        return value

    async def drop_schema(self) -> None:
        """Drop every table, and the schema if the store has one (tests)."""
        await self.close()  # the connections' cached plans name the dropped tables
        conn = await asyncpg.connect(self.dsn, **self._connect_kwargs)
        try:
            if self.schema is not None:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            else:
                for table in reversed(metadata.sorted_tables):
                    await conn.execute(f'DROP TABLE IF EXISTS "{table.name}"')
        finally:
            await conn.close()

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    # -- outbox dispatch ------------------------------------------------------------
    async def claim_due(self, now: datetime, lease_until: datetime, limit: int
                        ) -> list[OutboxRow]:
        async with self._connection() as conn:
            found = await conn.fetch(_CLAIM_DUE, _utc(now), _utc(lease_until), limit)
        rows = [_outbox_row(r) for r in found]
        rows.sort(key=lambda r: r.id)
        return rows

    async def mark_dispatched(self, ids: Sequence[int], now: datetime) -> None:
        if not ids:
            return
        async with self._connection() as conn:
            await conn.execute(_MARK_DISPATCHED, list(ids), _utc(now))

    async def mark_attempt_failed(self, row_id: int, error: str, retry_at: datetime | None,
                                  now: datetime) -> None:
        async with self._connection() as conn:
            await conn.execute(_MARK_FAILED, row_id, error[:4000], _utc_or_none(retry_at),
                               retry_at is None)

    # -- reading ----------------------------------------------------------------------
    async def get_instance(self, saga_type: str, correlation_id: str) -> InstanceRecord | None:
        async with self._connection() as conn:
            r = await conn.fetchrow(_GET_INSTANCE, saga_type, correlation_id)
        return None if r is None else _instance(r)

    async def list_instances(self, saga_type: str, *, state: str | None = None,
                             updated_before: datetime | None = None,
                             limit: int = 100, offset: int = 0) -> list[InstanceRecord]:
        where = ["saga_type = $1"]
        args: list[Any] = [saga_type]
        if state is not None:
            args.append(state)
            where.append(f"state = ${len(args)}")
        if updated_before is not None:
            args.append(_utc(updated_before))
            where.append(f"updated_at < ${len(args)}")
        args += [limit, offset]
        query = (f"SELECT {_INSTANCE_ROW} FROM saga_instances WHERE {' AND '.join(where)} "
                 f"ORDER BY updated_at DESC, correlation_id "
                 f"LIMIT ${len(args) - 1} OFFSET ${len(args)}")
        async with self._connection() as conn:
            return [_instance(r) for r in await conn.fetch(query, *args)]

    async def count_instances(self, saga_type: str) -> dict[str, int]:
        async with self._connection() as conn:
            return {r[0]: int(r[1]) for r in await conn.fetch(_COUNT_INSTANCES, saga_type)}

    async def history(self, saga_type: str, correlation_id: str) -> list[HistoryRecord]:
        async with self._connection() as conn:
            found = await conn.fetch(_HISTORY, saga_type, correlation_id)
        return [
            HistoryRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                          None if r[8] is None else orjson.loads(r[8]), r[9])
            for r in found
        ]

    async def outbox_for(self, correlation_id: str) -> list[OutboxRow]:
        async with self._connection() as conn:
            return [_outbox_row(r) for r in await conn.fetch(_OUTBOX_FOR, correlation_id)]

    async def pending_outbox(self) -> list[OutboxRow]:
        async with self._connection() as conn:
            return [_outbox_row(r) for r in await conn.fetch(_PENDING_OUTBOX)]

    async def list_errors(self, *, endpoint: str | None = None,
                          limit: int = 100) -> list[ErrorRecord]:
        async with self._connection() as conn:
            found = (await conn.fetch(_LIST_ERRORS, limit) if endpoint is None
                     else await conn.fetch(_LIST_ERRORS_AT, limit, endpoint))
        return [
            ErrorRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                        orjson.loads(r[8]) if r[8] else {}, r[9])
            for r in found
        ]

    async def purge(self, *, inbox_before: datetime, outbox_before: datetime
                    ) -> tuple[int, int]:
        async with self.transaction() as tx:
            a = await tx.conn.execute(_PURGE_INBOX, _utc(inbox_before))
            b = await tx.conn.execute(_PURGE_OUTBOX, _utc(outbox_before))
            await tx.conn.execute(_PURGE_FAILURES, _utc(inbox_before))
        return _count(a), _count(b)

    # -- the operator's reads (console, timeline) ------------------------------------
    async def query_instances(self, query: InstanceQuery) -> InstancePage:
        where, args = _instance_where(query)
        n = len(args)
        page = (f"SELECT {_INSTANCE_ROW} FROM saga_instances WHERE {where} "
                f"ORDER BY {_INSTANCE_ORDER[query.order]}saga_type, correlation_id "
                f"LIMIT ${n + 1} OFFSET ${n + 2}")
        async with self._connection() as conn:
            found = await conn.fetch(page, *args, query.limit, query.offset)
            total = await conn.fetchval(f"SELECT count(*) FROM saga_instances WHERE {where}",
                                        *args)
        return InstancePage([_instance(r) for r in found], int(total))

    async def instances_of(self, correlation_id: str) -> list[InstanceRecord]:
        async with self._connection() as conn:
            return [_instance(r) for r in await conn.fetch(_INSTANCES_OF, correlation_id)]

    async def history_of(self, correlation_id: str, *, saga_type: str | None = None
                         ) -> list[HistoryRecord]:
        async with self._connection() as conn:
            found = await conn.fetch(_HISTORY_OF, correlation_id, saga_type)
        return [
            HistoryRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                          None if r[8] is None else orjson.loads(r[8]), r[9])
            for r in found
        ]

    async def errors_for(self, correlation_id: str) -> list[ErrorRecord]:
        async with self._connection() as conn:
            found = await conn.fetch(_ERRORS_FOR, correlation_id)
        return [
            ErrorRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                        orjson.loads(r[8]) if r[8] else {}, r[9])
            for r in found
        ]

    async def inbox_for(self, message_ids: Collection[str]) -> list[InboxRecord]:
        async with self._connection() as conn:
            found = await conn.fetch(_INBOX_FOR, sorted(set(message_ids)))
        return [InboxRecord(r[0], r[1], r[2]) for r in found]

    async def state_counts(self, saga_type: str | None = None) -> list[StateCount]:
        async with self._connection() as conn:
            found = await conn.fetch(_STATE_COUNTS, saga_type)
        return [StateCount(r[0], r[1], int(r[2])) for r in found]

    async def missing_tables(self) -> list[str]:
        names = [table.name for table in metadata.sorted_tables]
        async with self._connection() as conn:
            gone = {r[0] for r in await conn.fetch(_MISSING_TABLES, names)}
        return [name for name in names if name in gone]
