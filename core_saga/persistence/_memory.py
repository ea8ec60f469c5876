"""An in-memory SagaStore for unit tests: the same contract, no database."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.sql.base import Executable

from .._context import Outgoing
from .._errors import ConcurrencyError
from .._transaction import Parameters, Result, StatementError, check_statement
from ._store import (
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
)


class _Tables:
    def __init__(self) -> None:
        self.instances: dict[tuple[str, str], InstanceRecord] = {}
        self.index: dict[tuple[str, str], dict[str, str]] = {}
        self.inbox: dict[tuple[str, str], datetime] = {}
        self.outbox: dict[int, OutboxRow] = {}
        self.outbox_extra: dict[int, dict[str, Any]] = {}
        self.history: list[HistoryRecord] = []
        self.errors: list[ErrorRecord] = []
        self.failures: dict[tuple[str, str], tuple[int, datetime]] = {}
        """(endpoint, message id): the handler's failures and when it last failed."""
        self.next_id = 1


_MISSING = object()


class MemoryTransaction(StoreTransaction):
    """Writes to the tables directly and keeps an undo log; the store replays it
    backwards when the transaction fails."""

    def __init__(self, tables: _Tables) -> None:
        self.t = tables
        self.undo: list[Callable[[], None]] = []

    @property
    def dialect(self) -> str:
        return "memory"

    async def execute(self, statement: Executable, parameters: Parameters = None) -> Result:
        check_statement(statement)
        raise StatementError(
            "MemoryStore keeps only the engine's own data and runs no SQL: a consumer or "
            "saga that writes its own tables needs a SQL store — in tests, "
            "SqlStore.from_url('sqlite+aiosqlite:///<a temporary file>') (or "
            "SagaTestHarness(store=...)); in production PostgreSQL")

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        mark = len(self.undo)
        try:
            yield
        except BaseException:
            while len(self.undo) > mark:
                self.undo.pop()()
            raise

    def _remember(self, table: dict[Any, Any], key: Any) -> None:
        old = table.get(key, _MISSING)
        if old is _MISSING:
            self.undo.append(lambda: table.pop(key, None))
        else:
            self.undo.append(lambda: table.__setitem__(key, old))

    async def inbox_claim(self, consumer: str, message_id: str, now: datetime) -> bool:
        key = (consumer, message_id)
        if key in self.t.inbox:
            return False
        self._remember(self.t.inbox, key)
        self.t.inbox[key] = now
        return True

    async def load(self, saga_type: str, correlation_id: str, *, lock: bool
                   ) -> InstanceRecord | None:
        found = self.t.instances.get((saga_type, correlation_id))
        return None if found is None else replace(found, data=copy.deepcopy(found.data))

    async def find(self, saga_type: str, name: str, value: str) -> list[str]:
        return [cid for (st, cid), values in self.t.index.items()
                if st == saga_type and values.get(name) == value]

    async def insert(self, record: InstanceRecord) -> None:
        key = (record.saga_type, record.correlation_id)
        if key in self.t.instances:
            raise ConcurrencyError(f"{key} was created concurrently")
        self._remember(self.t.instances, key)
        self.t.instances[key] = record

    async def update(self, record: InstanceRecord, expected_version: int) -> None:
        key = (record.saga_type, record.correlation_id)
        current = self.t.instances.get(key)
        if current is None or current.version != expected_version:
            raise ConcurrencyError(f"{key} changed since version {expected_version}")
        self._remember(self.t.instances, key)
        self.t.instances[key] = record

    async def delete(self, saga_type: str, correlation_id: str, expected_version: int) -> None:
        key = (saga_type, correlation_id)
        current = self.t.instances.get(key)
        if current is None or current.version != expected_version:
            raise ConcurrencyError(f"{key} changed before removal")
        self._remember(self.t.instances, key)
        self._remember(self.t.index, key)
        del self.t.instances[key]
        self.t.index.pop(key, None)

    async def set_index(self, saga_type: str, correlation_id: str,
                        values: dict[str, str]) -> None:
        self._remember(self.t.index, (saga_type, correlation_id))
        self.t.index[(saga_type, correlation_id)] = dict(values)

    async def add_history(self, records: Sequence[HistoryRecord]) -> None:
        mark = len(self.t.history)
        self.undo.append(lambda: self.t.history.__delitem__(slice(mark, None)))
        for record in records:
            record.id = len(self.t.history) + 1
            self.t.history.append(record)

    async def add_outbox(self, items: Sequence[Outgoing], now: datetime,
                         lease_until: datetime | None) -> list[OutboxRow]:
        rows = []
        for item in items:
            row = OutboxRow(id=self.t.next_id, message_id=item.message_id, kind=item.kind,
                            destination=item.destination, message_type=item.message_type,
                            correlation_id=item.correlation_id, body=item.body,
                            deliver_at=item.deliver_at or now, created_at=now)
            self.t.next_id += 1
            self._remember(self.t.outbox, row.id)
            self._remember(self.t.outbox_extra, row.id)
            self.t.outbox[row.id] = replace(row)
            self.t.outbox_extra[row.id] = {
                "token": item.schedule_token,
                "locked_until": lease_until if row.deliver_at <= now else None,
            }
            rows.append(row)
        return rows

    async def cancel_timers(self, tokens: Sequence[str]) -> None:
        wanted = set(tokens)
        gone = [i for i, extra in self.t.outbox_extra.items()
                if extra["token"] in wanted and self.t.outbox[i].dispatched_at is None]
        for i in gone:
            self._remember(self.t.outbox, i)
            self._remember(self.t.outbox_extra, i)
            del self.t.outbox[i]
            del self.t.outbox_extra[i]

    async def touch_probe(self, name: str, now: datetime) -> None:
        return None

    async def count_failure(self, endpoint: str, message_id: str, reason: str,
                            now: datetime) -> int:
        key = (endpoint, message_id)
        self._keep_failures(key)
        failures = self.t.failures.get(key, (0, now))[0] + 1
        self.t.failures[key] = (failures, now)
        return failures

    async def forget_failures(self, endpoint: str, message_id: str) -> None:
        key = (endpoint, message_id)
        self._keep_failures(key)
        self.t.failures.pop(key, None)

    def _keep_failures(self, key: tuple[str, str]) -> None:
        """Undo: put the count of `key` back as it is now."""
        before = self.t.failures.get(key)

        def restore() -> None:
            if before is None:
                self.t.failures.pop(key, None)
            else:
                self.t.failures[key] = before
        self.undo.append(restore)

    async def add_error(self, record: ErrorRecord) -> None:
        mark = len(self.t.errors)
        self.undo.append(lambda: self.t.errors.__delitem__(slice(mark, None)))
        record.id = len(self.t.errors) + 1
        self.t.errors.append(record)


class MemoryStore(SagaStore):
    """A SagaStore kept in process memory. Transactions run one at a time; a failed
    one leaves nothing behind."""

    def __init__(self) -> None:
        self._tables = _Tables()
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False
                          ) -> AsyncIterator[MemoryTransaction]:
        async with self._lock:
            tx = MemoryTransaction(self._tables)
            try:
                yield tx
            except BaseException:
                for undo in reversed(tx.undo):
                    undo()
                raise

    async def outbox_stats(self, now: datetime) -> dict[str, float]:
        due = [(row, self._tables.outbox_extra[i]) for i, row in self._tables.outbox.items()
               if row.dispatched_at is None and not row.failed and row.deliver_at <= now]
        oldest = min((row.deliver_at for row, _ in due), default=now)
        return {"backlog": float(len(due)),
                "oldest_age": max(0.0, (now - oldest).total_seconds()),
                "timers_due": float(sum(1 for _, extra in due if extra["token"]))}

    async def create_tables(self, metadata: MetaData) -> None:
        return None

    async def create_schema(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int
                        ) -> list[OutboxRow]:
        async with self._lock:
            rows = []
            for row_id in sorted(self._tables.outbox):
                row = self._tables.outbox[row_id]
                extra = self._tables.outbox_extra[row_id]
                locked = extra["locked_until"]
                if (row.dispatched_at is None and not row.failed and row.deliver_at <= now
                        and (locked is None or locked < now)):
                    extra["locked_until"] = lease_until
                    rows.append(replace(row))
                    if len(rows) >= limit:
                        break
            return rows

    async def mark_dispatched(self, ids: Sequence[int], now: datetime) -> None:
        async with self._lock:
            for row_id in ids:
                if row_id in self._tables.outbox:
                    self._tables.outbox[row_id].dispatched_at = now
                    self._tables.outbox_extra[row_id]["locked_until"] = None

    async def mark_attempt_failed(self, row_id: int, error: str, retry_at: datetime | None,
                                  now: datetime) -> None:
        async with self._lock:
            row = self._tables.outbox[row_id]
            row.attempts += 1
            row.last_error = error
            row.failed = retry_at is None
            self._tables.outbox_extra[row_id]["locked_until"] = retry_at

    async def get_instance(self, saga_type: str, correlation_id: str) -> InstanceRecord | None:
        return self._tables.instances.get((saga_type, correlation_id))

    async def list_instances(self, saga_type: str, *, state: str | None = None,
                             updated_before: datetime | None = None,
                             limit: int = 100, offset: int = 0) -> list[InstanceRecord]:
        found = [r for (st, _), r in self._tables.instances.items() if st == saga_type
                 and (state is None or r.state == state)
                 and (updated_before is None or r.updated_at < updated_before)]
        found.sort(key=lambda r: (r.updated_at, r.correlation_id), reverse=True)
        return found[offset:offset + limit]

    async def count_instances(self, saga_type: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (st, _), r in self._tables.instances.items():
            if st == saga_type:
                counts[r.state] = counts.get(r.state, 0) + 1
        return counts

    async def history(self, saga_type: str, correlation_id: str) -> list[HistoryRecord]:
        return [h for h in self._tables.history
                if h.saga_type == saga_type and h.correlation_id == correlation_id]

    async def outbox_for(self, correlation_id: str) -> list[OutboxRow]:
        return [r for _, r in sorted(self._tables.outbox.items())
                if r.correlation_id == correlation_id]

    async def pending_outbox(self) -> list[OutboxRow]:
        return [r for _, r in sorted(self._tables.outbox.items()) if r.dispatched_at is None]

    async def list_errors(self, *, endpoint: str | None = None,
                          limit: int = 100) -> list[ErrorRecord]:
        found = [e for e in reversed(self._tables.errors)
                 if endpoint is None or e.endpoint == endpoint]
        return found[:limit]

    async def purge(self, *, inbox_before: datetime, outbox_before: datetime
                    ) -> tuple[int, int]:
        async with self._lock:
            t = self._tables
            old_inbox = [k for k, at in t.inbox.items() if at < inbox_before]
            for k in old_inbox:
                del t.inbox[k]
            old_out = [i for i, r in t.outbox.items()
                       if r.dispatched_at is not None and r.dispatched_at < outbox_before]
            for i in old_out:
                del t.outbox[i]
                del t.outbox_extra[i]
            for key in [k for k, (_, at) in t.failures.items() if at < inbox_before]:
                del t.failures[key]
            return len(old_inbox), len(old_out)

    # -- the operator's reads (console, timeline) ------------------------------------
    async def query_instances(self, query: InstanceQuery) -> InstancePage:
        found = query.sort([r for r in self._tables.instances.values() if query.matches(r)])
        return InstancePage(found[query.offset:query.offset + query.limit], len(found))

    async def instances_of(self, correlation_id: str) -> list[InstanceRecord]:
        return sorted((r for (_, cid), r in self._tables.instances.items()
                       if cid == correlation_id), key=lambda r: r.saga_type)

    async def history_of(self, correlation_id: str, *, saga_type: str | None = None
                         ) -> list[HistoryRecord]:
        return [h for h in self._tables.history if h.correlation_id == correlation_id
                and (saga_type is None or h.saga_type == saga_type)]

    async def errors_for(self, correlation_id: str) -> list[ErrorRecord]:
        return [e for e in self._tables.errors if e.correlation_id == correlation_id]

    async def inbox_for(self, message_ids: Collection[str]) -> list[InboxRecord]:
        wanted = set(message_ids)
        return sorted((InboxRecord(consumer, message_id, at)
                       for (consumer, message_id), at in self._tables.inbox.items()
                       if message_id in wanted),
                      key=lambda r: (r.message_id, r.processed_at, r.consumer))

    async def state_counts(self, saga_type: str | None = None) -> list[StateCount]:
        counts: dict[tuple[str, str], int] = {}
        for (st, _), r in self._tables.instances.items():
            if saga_type is None or st == saga_type:
                counts[(st, r.state)] = counts.get((st, r.state), 0) + 1
        return [StateCount(st, state, n) for (st, state), n in sorted(counts.items())]

    async def missing_tables(self) -> list[str]:
        return []
