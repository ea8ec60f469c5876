"""The transaction user code writes through: SQLAlchemy Core statements on the user's own
tables, in the same commit as the message's inbox entry, saga instance and outbox.

A consumer or a saga behavior gets it as ``ctx.transaction``; code outside a handler
gets it from :meth:`core_saga.Outbox.transaction`. It is the same on every SQL store::

    from sqlalchemy import insert, select

    await ctx.transaction.execute(insert(ledger).values(order_id=oid, amount=amount))
    total = await ctx.transaction.scalar(select(func.sum(ledger.c.amount)))
    rows = (await ctx.transaction.execute(select(ledger).where(...))).all()

:class:`~core_saga.persistence.SqlStore` runs the statement through SQLAlchemy;
:class:`~core_saga.persistence.AsyncpgStore` compiles it once for PostgreSQL and runs it
prepared on the message's connection. Errors are SQLAlchemy's on both
(``sqlalchemy.exc.IntegrityError`` for a unique violation, and so on).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeAlias

from sqlalchemy.sql.base import Executable

from ._errors import StepsagaError

Parameters: TypeAlias = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
"""Values for the statement's bound parameters: a mapping, or a list of mappings to
run the statement once per mapping (an "executemany")."""


class Row(Protocol):
    """One result row: by column name (``row.amount``), by position (``row[0]``), or as a
    mapping (``row._mapping["amount"]``), as a SQLAlchemy ``Row``."""

    def __getattr__(self, name: str) -> Any: ...

    def __getitem__(self, index: int) -> Any: ...

    def __len__(self) -> int: ...

    @property
    def _mapping(self) -> Mapping[str, Any]: ...


class StatementError(StepsagaError, TypeError):
    """A statement the transaction cannot run: not a SQLAlchemy statement, a statement
    the database's dialect cannot compile, or SQL on a store that has none."""


class ScalarResult:
    """The first column of every row (:meth:`Transaction.scalars`)."""

    __slots__ = ("_values",)

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    def all(self) -> list[Any]:
        """Every value."""
        return list(self._values)

    def first(self) -> Any:
        """The first value, or None when there is no row."""
        return self._values[0] if self._values else None

    def one(self) -> Any:
        """The only value; LookupError when there are none or several."""
        if len(self._values) != 1:
            raise LookupError(f"expected exactly one row, got {len(self._values)}")
        return self._values[0]

    def one_or_none(self) -> Any:
        """The only value, or None; LookupError when there are several."""
        if len(self._values) > 1:
            raise LookupError(f"expected at most one row, got {len(self._values)}")
        return self._values[0] if self._values else None

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"ScalarResult({self._values!r})"


class Result:
    """The rows a statement returned (all fetched), and the rows it changed.

    The methods read like SQLAlchemy's ``Result``; unlike it, a Result can be read
    more than once (it is a buffered list)."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: Sequence[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount
        """Rows inserted, updated or deleted (for a SELECT: what the driver reports;
        -1 when it reports nothing, as for a statement run with many parameter sets)."""

    def all(self) -> list[Row]:
        """Every row."""
        return list(self._rows)

    def first(self) -> Row | None:
        """The first row, or None."""
        return self._rows[0] if self._rows else None

    def one(self) -> Row:
        """The only row; LookupError when there are none or several."""
        if len(self._rows) != 1:
            raise LookupError(f"expected exactly one row, got {len(self._rows)}")
        row: Row = self._rows[0]
        return row

    def one_or_none(self) -> Row | None:
        """The only row, or None; LookupError when there are several."""
        if len(self._rows) > 1:
            raise LookupError(f"expected at most one row, got {len(self._rows)}")
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        """The first column of the only row; LookupError otherwise."""
        return self.one()[0]

    def scalars(self) -> ScalarResult:
        """The first column of every row."""
        return ScalarResult([row[0] for row in self._rows])

    def mappings(self) -> list[Mapping[str, Any]]:
        """Every row as a mapping of column name to value."""
        return [row._mapping for row in self._rows]

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"Result({len(self._rows)} rows, rowcount={self.rowcount})"


class Transaction(Protocol):
    """The database transaction a message is handled in (``ctx.transaction``), or one
    opened with :meth:`core_saga.Outbox.transaction`.

    Run SQLAlchemy Core statements (``select``, ``insert``, ``update``, ``delete``,
    ``text``) on your own tables; they commit with the engine's writes or roll back
    with them. Do not commit or roll back yourself; use :meth:`savepoint` to undo part
    of the work. Keep calls to the outside world (a payment gateway, a carrier) out of
    the transaction where you can: on SQLite the database is locked while a writing
    transaction is open.
    """

    @property
    def dialect(self) -> str:
        """The database: ``"sqlite"`` or ``"postgresql"`` (for the rare statement that
        must differ)."""
        ...

    async def execute(self, statement: Executable, parameters: Parameters = None) -> Result:
        """Run `statement` and fetch what it returns."""
        ...

    async def scalar(self, statement: Executable, parameters: Parameters = None) -> Any:
        """The first column of the first row `statement` returns, or None."""
        ...

    async def scalars(self, statement: Executable, parameters: Parameters = None
                      ) -> ScalarResult:
        """The first column of every row `statement` returns."""
        ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """``async with tx.savepoint():`` — if the block raises, what it wrote is
        undone (the exception propagates) and the transaction goes on."""
        ...

    async def claim_once(self, scope: str, key: str) -> bool:
        """Record `key` as done within `scope`, with this transaction; False when it
        was recorded before. For doing something once per business key (one refund per
        order, one outcome per hand-off) across redeliveries and duplicates: the record
        lives in the inbox table and is purged with it (``inbox_retention_hours``)."""
        ...


def check_statement(statement: object) -> Executable:
    """`statement` if it is something SQLAlchemy can run, else a StatementError that
    says what to pass instead."""
    if isinstance(statement, Executable):
        return statement
    if isinstance(statement, str):
        raise StatementError(
            f"execute() takes a SQLAlchemy statement, not the string {statement[:80]!r}: "
            "wrap raw SQL in sqlalchemy.text(), with :name parameters")
    raise StatementError(f"execute() takes a SQLAlchemy statement (select, insert, update, "
                         f"delete, text), not a {type(statement).__name__}")
