"""What the engine needs from a database, as two abstract classes and their records."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import MetaData, bindparam, text
from sqlalchemy.sql.base import Executable

from .._context import Outgoing
from .._transaction import Parameters, Result, ScalarResult
from ._schema import UTCDateTime

PROBE_CONSUMER = "__stepsaga_probe__"
"""The inbox "consumer" of the rows :meth:`SagaStore.probe` writes (one per worker)."""

_PROBE_UPSERT = text(
    "INSERT INTO inbox (consumer, message_id, processed_at) "
    "VALUES (:consumer, :message_id, :processed_at) "
    "ON CONFLICT (consumer, message_id) DO UPDATE SET processed_at = excluded.processed_at"
).bindparams(bindparam("processed_at", type_=UTCDateTime()))

# Both databases take this form (SQLite from 3.35 on): one statement, no race between
# two workers counting failures of the same message.
_COUNT_FAILURE = text(
    "INSERT INTO delivery_failures (endpoint, message_id, failures, reason, first_at, "
    "last_at) VALUES (:endpoint, :message_id, 1, :reason, :now, :now) "
    "ON CONFLICT (endpoint, message_id) DO UPDATE SET "
    "failures = delivery_failures.failures + 1, reason = excluded.reason, "
    "last_at = excluded.last_at RETURNING failures"
).bindparams(bindparam("now", type_=UTCDateTime()))
_FORGET_FAILURES = text(
    "DELETE FROM delivery_failures WHERE endpoint = :endpoint AND message_id = :message_id")


@dataclass(slots=True)
class InstanceRecord:
    """A saga instance as stored."""

    saga_type: str
    correlation_id: str
    state: str
    version: int
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class HistoryRecord:
    """One event applied to an instance: the state before and after."""

    saga_type: str
    correlation_id: str
    event: str
    from_state: str
    to_state: str
    message_id: str
    message_type: str
    at: datetime
    detail: dict[str, Any] | None = None
    id: int | None = None


@dataclass(slots=True)
class OutboxRow:
    """A committed outgoing message, waiting for (or done with) dispatch."""

    id: int
    message_id: str
    kind: str
    destination: str
    message_type: str
    correlation_id: str | None
    body: bytes
    deliver_at: datetime
    attempts: int = 0
    created_at: datetime | None = None
    dispatched_at: datetime | None = None
    last_error: str | None = None
    failed: bool = False


@dataclass(slots=True)
class ErrorRecord:
    """A message that could not be handled, with the reason and the original body."""

    endpoint: str
    error_type: str
    reason: str
    body: str
    at: datetime
    message_id: str | None = None
    message_type: str | None = None
    correlation_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    id: int | None = None


# -- what the operator's reads return ------------------------------------------------------

FINAL_STATE = "Final"
"""The built-in final state: final for every saga type (see ``InstanceQuery``)."""

InstanceOrder = Literal["idle", "recent", "newest", "oldest", "id"]
"""How :meth:`SagaStore.query_instances` sorts: ``idle`` the longest unchanged first,
``recent`` the latest changed first, ``newest`` / ``oldest`` by creation, ``id`` by
saga type and correlation id. Ties are broken by saga type and correlation id."""

INSTANCE_ORDERS: tuple[InstanceOrder, ...] = ("idle", "recent", "newest", "oldest", "id")
MAX_PAGE = 1000
"""The most instances one :class:`InstanceQuery` may ask for."""


@dataclass(frozen=True, slots=True)
class InstanceQuery:
    """Which saga instances to list, filtered, sorted and paged in the database.

    Every filter given must hold (AND). ``final`` and ``stuck`` need to know which
    states end a saga: pass them per saga type in `final_states` (a model's
    ``terminal_states``); the built-in ``Final`` state is final for every type, and
    any other state of a type not named there is not.
    """

    saga_type: str | None = None
    """Only instances of this saga type."""
    states: frozenset[str] = frozenset()
    """Only instances in one of these states (empty: any state)."""
    final_states: Mapping[str, Collection[str]] = field(default_factory=dict)
    """Per saga type, the states that end it."""
    final: bool | None = None
    """True: only instances in a final state; False: only those still running."""
    stuck_before: datetime | None = None
    """With `stuck`: the time before which a running instance's last change makes it
    stuck."""
    stuck: bool | None = None
    """True: only running instances unchanged since `stuck_before`; False: every other."""
    updated_before: datetime | None = None
    """Only instances whose last change is older than this (idle since)."""
    created_before: datetime | None = None
    created_after: datetime | None = None
    id_contains: str | None = None
    """Only correlation ids containing this text (case-insensitive)."""
    order: InstanceOrder = "idle"
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, not {self.limit}")
        if self.offset < 0:
            raise ValueError(f"offset must be 0 or more, not {self.offset}")
        if self.order not in INSTANCE_ORDERS:
            raise ValueError(f"order must be one of {', '.join(INSTANCE_ORDERS)}, "
                             f"not {self.order!r}")
        if self.stuck is not None and self.stuck_before is None:
            raise ValueError("stuck needs stuck_before (the time a stuck instance last "
                             "changed before)")
        if self.id_contains is not None and not self.id_contains:
            raise ValueError("id_contains must not be empty (None: any id)")

    def is_final(self, saga_type: str, state: str) -> bool:
        """Whether `state` ends a saga of `saga_type` (as the query counts it)."""
        return state == FINAL_STATE or state in self.final_states.get(saga_type, ())

    def final_pairs(self) -> list[tuple[str, str]]:
        """The (saga type, state) pairs that are final, besides ``Final`` (sorted)."""
        return sorted({(saga_type, state) for saga_type, states in self.final_states.items()
                       for state in states if state != FINAL_STATE
                       and (self.saga_type is None or saga_type == self.saga_type)})

    def matches(self, record: InstanceRecord) -> bool:
        """The filter, in Python (the in-memory store; the SQL stores say it in SQL)."""
        final = self.is_final(record.saga_type, record.state)
        return ((self.saga_type is None or record.saga_type == self.saga_type)
                and (not self.states or record.state in self.states)
                and (self.final is None or final == self.final)
                and (self.stuck is None or self.stuck_before is None
                     or (not final and record.updated_at < self.stuck_before) == self.stuck)
                and (self.updated_before is None or record.updated_at < self.updated_before)
                and (self.created_before is None or record.created_at < self.created_before)
                and (self.created_after is None or record.created_at >= self.created_after)
                and (self.id_contains is None
                     or self.id_contains.lower() in record.correlation_id.lower()))

    def sort(self, records: Sequence[InstanceRecord]) -> list[InstanceRecord]:
        """`records` in the query's order, in Python (the in-memory store)."""
        found = sorted(records, key=lambda r: (r.saga_type, r.correlation_id))
        if self.order == "idle":
            found.sort(key=lambda r: r.updated_at)
        elif self.order == "recent":
            found.sort(key=lambda r: r.updated_at, reverse=True)
        elif self.order == "newest":
            found.sort(key=lambda r: r.created_at, reverse=True)
        elif self.order == "oldest":
            found.sort(key=lambda r: r.created_at)
        return found


def like_pattern(text: str) -> str:
    """A LIKE pattern (escape character ``\\``) matching any text that contains
    `text`, lower-cased."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True, slots=True)
class InstancePage:
    """One page of :meth:`SagaStore.query_instances` and how many match in all."""

    instances: list[InstanceRecord]
    total: int


@dataclass(frozen=True, slots=True)
class StateCount:
    """How many instances of a saga type are in one state."""

    saga_type: str
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class InboxRecord:
    """A message a consumer has processed (an inbox entry)."""

    consumer: str
    message_id: str
    processed_at: datetime


class StoreTransaction(abc.ABC):
    """The operations of one consumed message, all in one database transaction.

    User code sees it as a :class:`core_saga.Transaction` (``ctx.transaction``): the
    statement methods at the top. The rest is the engine's.
    """

    # -- the user's statements (core_saga.Transaction) ---------------------------------
    @property
    @abc.abstractmethod
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"`` (``"memory"`` for MemoryStore)."""

    @abc.abstractmethod
    async def execute(self, statement: Executable, parameters: Parameters = None) -> Result:
        """Run a SQLAlchemy Core statement in this transaction."""

    async def scalar(self, statement: Executable, parameters: Parameters = None) -> Any:
        """The first column of the first row, or None."""
        return (await self.execute(statement, parameters)).scalar()

    async def scalars(self, statement: Executable, parameters: Parameters = None
                      ) -> ScalarResult:
        """The first column of every row."""
        return (await self.execute(statement, parameters)).scalars()

    @abc.abstractmethod
    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A block whose writes are undone if it raises."""

    async def claim_once(self, scope: str, key: str) -> bool:
        """Record `key` in `scope` (an inbox entry); False if it was there already."""
        return await self.inbox_claim(scope, key, datetime.now(UTC))

    # -- the engine's operations ---------------------------------------------------------

    async def limit_lock_wait(self, seconds: float) -> None:
        """Give up waiting for a row lock after `seconds` for the rest of this
        transaction (PostgreSQL ``SET LOCAL lock_timeout``; a no-op where the store has
        no row locks). A batched commit uses it: a batch that would queue behind
        another's locks is rolled back and its messages handled one by one instead."""
        return None

    @abc.abstractmethod
    async def inbox_claim(self, consumer: str, message_id: str, now: datetime) -> bool:
        """Record the message as processed by `consumer`; False if it already was."""

    @abc.abstractmethod
    async def load(self, saga_type: str, correlation_id: str, *, lock: bool) -> (
            InstanceRecord | None):
        """The instance, or None. `lock` holds a row lock until commit (PostgreSQL)."""

    async def claim_and_load(self, consumer: str, message_id: str, now: datetime,
                             saga_type: str, correlation_id: str, *, lock: bool
                             ) -> tuple[bool, InstanceRecord | None]:
        """:meth:`inbox_claim`, then :meth:`load` when the claim is new: (claimed,
        instance). A store may answer both with one statement (AsyncpgStore does); the
        instance is then read in the same snapshot as the claim."""
        if not await self.inbox_claim(consumer, message_id, now):
            return False, None
        return True, await self.load(saga_type, correlation_id, lock=lock)

    async def prefetch(self, consumer: str, message_ids: Sequence[str], now: datetime,
                       instances: Sequence[tuple[str, str]], *, lock: bool) -> None:
        """A batch's reads ahead of its messages: claim `message_ids` for `consumer`
        and read `instances` (saga type, correlation id; with row locks if `lock`), so
        that the batch's :meth:`inbox_claim` and :meth:`claim_and_load` calls for them
        answer without a round trip each, and their writes go together at the end. A
        hint: a store may do nothing (only AsyncpgStore acts on it); the answers are
        the same either way."""
        return None

    @abc.abstractmethod
    async def find(self, saga_type: str, name: str, value: str) -> list[str]:
        """Correlation ids of the instances whose indexed property `name` is `value`."""

    @abc.abstractmethod
    async def insert(self, record: InstanceRecord) -> None:
        """Insert a new instance; ConcurrencyError if another writer did first."""

    @abc.abstractmethod
    async def update(self, record: InstanceRecord, expected_version: int) -> None:
        """Write `record` if the stored version is `expected_version`, else ConcurrencyError."""

    async def save(self, record: InstanceRecord, expected_version: int | None) -> None:
        """:meth:`insert` (`expected_version` None) or :meth:`update`, for the engine's
        write at the end of a message. A store may hold the write back and send it with
        its next statement (AsyncpgStore sends it with the history and outbox rows, one
        round trip); the ConcurrencyError then comes from that statement or from the
        commit, and the transaction is rolled back as for one raised here."""
        if expected_version is None:
            await self.insert(record)
        else:
            await self.update(record, expected_version)

    @abc.abstractmethod
    async def delete(self, saga_type: str, correlation_id: str, expected_version: int) -> None:
        """Remove a completed instance, with the same version check as `update`."""

    @abc.abstractmethod
    async def set_index(self, saga_type: str, correlation_id: str,
                        values: dict[str, str]) -> None:
        """Replace the instance's indexed properties."""

    @abc.abstractmethod
    async def add_history(self, records: Sequence[HistoryRecord]) -> None:
        """Append to the instances' history."""

    @abc.abstractmethod
    async def add_outbox(self, items: Sequence[Outgoing], now: datetime,
                         lease_until: datetime | None) -> list[OutboxRow]:
        """Write outgoing messages. Rows due now are leased until `lease_until` so the
        process that committed them can send them at once without a poller racing it."""

    @abc.abstractmethod
    async def cancel_timers(self, tokens: Sequence[str]) -> None:
        """Delete the undispatched scheduled messages with these tokens, by the commit
        at the latest (a store may send the delete with the transaction's other
        writes); an outbox row added after this call with one of the tokens (a timer
        scheduled again) stays."""

    @abc.abstractmethod
    async def add_error(self, record: ErrorRecord) -> None:
        """Keep a message that could not be handled."""

    async def touch_probe(self, name: str, now: datetime) -> None:
        """Insert or refresh the probe row `name` (see :meth:`SagaStore.probe`)."""
        await self.execute(_PROBE_UPSERT, {"consumer": PROBE_CONSUMER, "message_id": name,
                                           "processed_at": now})

    async def count_failure(self, endpoint: str, message_id: str, reason: str,
                            now: datetime) -> int:
        """Count one more failure of the handler of `message_id` at `endpoint`; the
        failures counted so far, this one included."""
        result = await self.execute(_COUNT_FAILURE, {
            "endpoint": endpoint, "message_id": message_id, "reason": reason, "now": now})
        return int(result.scalar())

    async def forget_failures(self, endpoint: str, message_id: str) -> None:
        """Drop the message's failure count at `endpoint` (it is dead-lettered: sent
        back from the dead-letter queue, it starts again with all its deliveries)."""
        await self.execute(_FORGET_FAILURES, {"endpoint": endpoint, "message_id": message_id})


class SagaStore(abc.ABC):
    """A database that keeps saga instances, inbox, outbox, history and errors."""

    @abc.abstractmethod
    def transaction(self, *, readonly: bool = False
                    ) -> AbstractAsyncContextManager[StoreTransaction]:
        """One transaction; it commits when the block ends and rolls back on error.
        `readonly` promises that it only reads: on SQLite it then takes no write lock
        (a deferred ``BEGIN``), on PostgreSQL it is ``READ ONLY``."""

    def message_transaction(self) -> AbstractAsyncContextManager[StoreTransaction]:
        """The transaction an endpoint handles one message in: :meth:`transaction` here.

        :class:`~core_saga.persistence.AsyncpgStore` defers its ``BEGIN``: a saga message
        whose instance is read without a lock is read outside any transaction, and its
        inbox claim, instance write (with the version check), history and outbox rows
        go as one statement — atomic on its own, two round trips for the message. The
        transaction begins only if the handler runs any other statement (your own
        writes, a lookup, timers to cancel), and then holds all of it as usual. A
        delivery whose claim finds the message claimed meanwhile raises
        :class:`~core_saga.MessageClaimedError` from the block, with nothing written."""
        return self.transaction()

    @abc.abstractmethod
    async def create_schema(self) -> None:
        """Create the tables if missing (embedded use and tests; production runs Alembic)."""

    @abc.abstractmethod
    async def create_tables(self, metadata: MetaData) -> None:
        """Create the tables of your own `metadata` (a service's ``Table`` s) if missing,
        in this store's database and schema — for embedded use and tests; production
        runs migrations. A no-op on MemoryStore, which runs no SQL."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""

    async def probe(self, name: str) -> None:
        """Prove that the database takes a write now: commit one row (``name``'s, in the
        inbox table, refreshed each time). Raises what the database raises. The worker
        probes while it believes the store is down, and on a failure that may be one."""
        async with self.transaction() as tx:
            await tx.touch_probe(name, datetime.now(UTC))

    @abc.abstractmethod
    async def outbox_stats(self, now: datetime) -> dict[str, float]:
        """For the metrics: ``backlog`` (rows due and not sent, failed ones aside),
        ``oldest_age`` (seconds the oldest of them has waited since it came due; 0 when
        none) and ``timers_due`` (how many of them are timers)."""

    async def database_time(self) -> datetime | None:
        """The database server's clock (PostgreSQL ``clock_timestamp()``), or None when
        the store has no clock of its own (SQLite: the host's; memory)."""
        return None

    # -- outbox dispatch ------------------------------------------------------------
    @abc.abstractmethod
    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[OutboxRow]:
        """Lease up to `limit` due, undispatched rows nobody else holds."""

    @abc.abstractmethod
    async def mark_dispatched(self, ids: Sequence[int], now: datetime) -> None:
        """Mark rows as sent."""

    @abc.abstractmethod
    async def mark_attempt_failed(self, row_id: int, error: str, retry_at: datetime | None,
                                  now: datetime) -> None:
        """Count a failed send; `retry_at` None means it failed for good."""

    async def add_error(self, record: ErrorRecord) -> None:
        """Keep a message that could not be handled (in a transaction of its own)."""
        async with self.transaction() as tx:
            await tx.add_error(record)

    # -- reading (console, harness, tests) -------------------------------------------
    @abc.abstractmethod
    async def get_instance(self, saga_type: str, correlation_id: str) -> InstanceRecord | None:
        """An instance by id."""

    @abc.abstractmethod
    async def list_instances(self, saga_type: str, *, state: str | None = None,
                             updated_before: datetime | None = None,
                             limit: int = 100, offset: int = 0) -> list[InstanceRecord]:
        """Instances, newest first, optionally in one state or idle since a time."""

    @abc.abstractmethod
    async def count_instances(self, saga_type: str) -> dict[str, int]:
        """How many instances are in each state."""

    @abc.abstractmethod
    async def history(self, saga_type: str, correlation_id: str) -> list[HistoryRecord]:
        """An instance's history, oldest first."""

    @abc.abstractmethod
    async def outbox_for(self, correlation_id: str) -> list[OutboxRow]:
        """Every outbox row of a conversation, oldest first."""

    @abc.abstractmethod
    async def pending_outbox(self) -> list[OutboxRow]:
        """Rows not dispatched yet (timers included), oldest first."""

    @abc.abstractmethod
    async def list_errors(self, *, endpoint: str | None = None,
                          limit: int = 100) -> list[ErrorRecord]:
        """The error store, newest first."""

    @abc.abstractmethod
    async def purge(self, *, inbox_before: datetime, outbox_before: datetime) -> tuple[int, int]:
        """Drop inbox entries and dispatched outbox rows older than the given times (and
        failure counts last written before `inbox_before`): how many of each of the
        first two."""

    async def count_failure(self, endpoint: str, message_id: str, reason: str,
                            now: datetime) -> int:
        """:meth:`StoreTransaction.count_failure` in a transaction of its own. The
        worker dead-letters a failing message on this count, not on the broker's
        receive count, which a worker killed while holding the message also raises."""
        async with self.transaction() as tx:
            return await tx.count_failure(endpoint, message_id, reason, now)

    # -- the operator's reads (console, timeline) ------------------------------------
    @abc.abstractmethod
    async def query_instances(self, query: InstanceQuery) -> InstancePage:
        """Instances filtered, sorted and paged as `query` says, in the database, and
        how many match in all."""

    @abc.abstractmethod
    async def instances_of(self, correlation_id: str) -> list[InstanceRecord]:
        """The live instances with this correlation id, one per saga type (by type)."""

    @abc.abstractmethod
    async def history_of(self, correlation_id: str, *, saga_type: str | None = None
                         ) -> list[HistoryRecord]:
        """The history of the instances with this correlation id (of every saga type,
        or of `saga_type`), oldest first; it outlives a removed instance."""

    @abc.abstractmethod
    async def errors_for(self, correlation_id: str) -> list[ErrorRecord]:
        """The error store's entries with this correlation id, oldest first."""

    @abc.abstractmethod
    async def inbox_for(self, message_ids: Collection[str]) -> list[InboxRecord]:
        """The inbox entries of these message ids (which consumer processed each, and
        when), by message id then time."""

    @abc.abstractmethod
    async def state_counts(self, saga_type: str | None = None) -> list[StateCount]:
        """How many instances are in each state, per saga type (sorted)."""

    @abc.abstractmethod
    async def missing_tables(self) -> list[str]:
        """The engine's tables the database lacks (empty when it is ready): a database
        never migrated, or the wrong one."""

    async def stream_instances(self, saga_type: str, *, batch: int = 500
                               ) -> AsyncIterator[InstanceRecord]:
        """Every instance of a saga type, in pages."""
        offset = 0
        while True:
            page = await self.list_instances(saga_type, limit=batch, offset=offset)
            for record in page:
                yield record
            if len(page) < batch:
                return
            offset += batch
