"""SQLAlchemy Core statements on raw asyncpg: compiled once, run prepared.

:class:`~core_saga.persistence.AsyncpgStore` hands user code the same
:class:`~core_saga.Transaction` as the SQLAlchemy store, without SQLAlchemy's engine on
the message path. A statement is compiled for the ``postgresql+asyncpg`` dialect the
first time its *shape* is seen — SQLAlchemy's own cache key, which leaves the literal
values out — and the SQL text, the order of its parameters and the type processors are
kept in a :class:`_Plan`. Later executions of the same shape (a new ``insert(t).values(
...)`` object each time, say) only extract the new values and run the text on the
message's connection, where asyncpg keeps it prepared. Values go through the column
types' bind and result processors (``TypeDecorator`` s included), as SQLAlchemy would.

Errors the server reports come back as SQLAlchemy's exception classes
(``IntegrityError``, ``DataError``, ``ProgrammingError``, ``OperationalError``), the
asyncpg error kept as ``orig``, so that user code catches the same errors on every store.
"""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import Compiled

from .._transaction import Result, StatementError
from ._schema import metadata

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]

_ENGINE_TABLES = re.compile(
    r"\b(?:" + "|".join(sorted(t.name for t in metadata.tables.values())) + r")\b")
"""A name of one of the engine's tables in SQL text (a user table of the same name
matches too, which only costs a round trip)."""

Processor = Callable[[Any], Any]


def _row_type(names: Sequence[str]) -> type[tuple[Any, ...]]:
    """A tuple class whose instances read like SQLAlchemy rows: ``row.name``,
    ``row[0]``, ``row._mapping``."""
    base = collections.namedtuple("Row", names, rename=True)  # type: ignore[misc]
    fields = tuple(names)

    class Row(base):
        __slots__ = ()

        @property
        def _mapping(self) -> dict[str, Any]:
            return dict(zip(fields, self, strict=True))

        def __repr__(self) -> str:
            return repr(tuple(self))

    return Row


class _Plan:
    """What one compiled statement shape needs at run time."""

    __slots__ = ("compiled", "engine_tables", "expanding", "names", "processors", "result",
                 "returns_rows", "row_type", "sql")

    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled
        self.sql: str = compiled.string
        # Whether it names an engine table: writes held back must go before it.
        self.engine_tables = _ENGINE_TABLES.search(self.sql) is not None
        self.names: tuple[str, ...] = tuple(getattr(compiled, "positiontup", None) or ())
        binds: Mapping[str, Any] = getattr(compiled, "binds", {})
        processors: dict[str, Processor] = {}
        for name, bind in binds.items():
            processor = bind.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
            if processor is not None:
                processors[name] = processor
        self.processors = processors
        # IN (...) with a list, and literal_execute parameters: the SQL text depends on
        # the values, so it is rendered per execution (asyncpg prepares each text once).
        self.expanding = bool(getattr(compiled, "post_compile_params", None)
                              or getattr(compiled, "literal_execute_params", None))
        # Learnt from the server on the first run (see AsyncpgTransaction.execute).
        self.returns_rows: bool | None = None
        self.result: list[Processor | None] = []
        self.row_type: type[tuple[Any, ...]] | None = None

    def arguments(self, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL text and positional arguments for one set of bound values."""
        if not self.expanding:
            processors = self.processors
            return self.sql, [
                processors[name](values[name]) if name in processors else values[name]
                for name in self.names
            ]
        state = self.compiled.construct_expanded_state(values)  # type: ignore[attr-defined]
        extra: Mapping[str, Processor] = state.processors or {}
        args = []
        for name in state.positiontup or ():
            value = state.parameters[name]
            processor = extra.get(name) or self.processors.get(name)
            args.append(processor(value) if processor is not None else value)
        return state.statement, args

    def learn(self, attributes: Sequence[Any], statement: Executable) -> None:
        """Record from the prepared statement's columns whether it returns rows, their
        names and how to convert their values."""
        self.returns_rows = bool(attributes)
        if not attributes:
            return
        names = [a.name for a in attributes]
        self.row_type = _row_type(names)
        columns = list(getattr(statement, "exported_columns", ()))
        if len(columns) != len(attributes):
            self.result = [None] * len(attributes)
            return
        self.result = [
            column.type.dialect_impl(_DIALECT).result_processor(_DIALECT, attr.type.oid)
            for column, attr in zip(columns, attributes, strict=True)
        ]

    def rows(self, records: Sequence[Any]) -> list[Any]:
        row_type = self.row_type
        assert row_type is not None
        result = self.result
        if not any(result):
            return [row_type(*r) for r in records]
        return [row_type(*[value if p is None else p(value) for p, value in zip(result, r,
                                                                               strict=True)])
                for r in records]


class StatementCache:
    """Compiled plans by statement shape (bounded, least recently used goes first)."""

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._plans: collections.OrderedDict[Any, _Plan] = collections.OrderedDict()
        self.compiled = 0
        """How many compilations happened (a test checks that shapes are reused)."""

    def plan(self, statement: Executable, keys: tuple[str, ...], many: bool
             ) -> tuple[_Plan, Any]:
        """The plan for `statement` run with parameters named `keys`, and the values to
        bind taken from the statement itself (its cache key's parameters)."""
        cache_key = statement._generate_cache_key()  # type: ignore[attr-defined]
        if cache_key is None:
            # Not cacheable by shape (some dialect constructs): by identity, holding the
            # statement so that its id is not reused — a module-level statement is
            # compiled once, one built per call each time.
            key: Any = ("id", id(statement), keys, many)
            extracted = None
        else:
            key = (cache_key.key, keys, many)
            extracted = cache_key.bindparams
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            if cache_key is None and plan.compiled.statement is not statement:  # type: ignore[comparison-overlap]
                plan = None
        if plan is None:
            plan = _Plan(self._compile(statement, keys, many, cache_key))
            self.compiled += 1
            self._plans[key] = plan
            if len(self._plans) > self.size:
                self._plans.popitem(last=False)
        return plan, extracted

    @staticmethod
    def _compile(statement: Executable, keys: tuple[str, ...], many: bool, cache_key: Any
                 ) -> Compiled:
        try:
            # With its cache key, the compiled form maps the literals of later statements
            # of the same shape to its own bind names (construct_params).
            return statement.compile(  # type: ignore[attr-defined,no-any-return]
                dialect=_DIALECT, column_keys=list(keys) or None, for_executemany=many,
                cache_key=cache_key)
        except sa_exc.SQLAlchemyError as exc:
            raise StatementError(
                f"cannot compile this statement for PostgreSQL (asyncpg): {exc}; "
                f"the statement: {_describe(statement)}") from exc


def _describe(statement: Executable) -> str:
    try:
        text = " ".join(str(statement).split())
    except Exception:
        text = type(statement).__name__
    return text if len(text) <= 300 else text[:297] + "..."


_TRANSLATED: tuple[tuple[type[BaseException], type[sa_exc.DBAPIError]], ...] = (
    (asyncpg.IntegrityConstraintViolationError, sa_exc.IntegrityError),
    (asyncpg.DataError, sa_exc.DataError),
    (asyncpg.SyntaxOrAccessError, sa_exc.ProgrammingError),
    (asyncpg.FeatureNotSupportedError, sa_exc.NotSupportedError),
    (asyncpg.PostgresError, sa_exc.OperationalError),
)


def translate(error: BaseException, sql: str, args: Sequence[Any] | None
              ) -> BaseException:
    """The SQLAlchemy exception for an error the server reported (``orig`` keeps the
    asyncpg one); other errors (a lost connection) are returned unchanged."""
    for source, target in _TRANSLATED:
        if isinstance(error, source):
            return target(sql, args, error)
    return error


async def run(conn: Any, cache: StatementCache, statement: Executable,
              parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
              before: Callable[[], Awaitable[None]] | None = None) -> Result:
    """Run a SQLAlchemy statement on the asyncpg connection `conn`; `before` first when
    the statement names one of the engine's tables."""
    many = isinstance(parameters, Sequence) and not isinstance(parameters, Mapping)
    if many:
        param_sets: list[Mapping[str, Any]] = list(parameters or ())  # type: ignore[arg-type]
        if not param_sets:
            return Result([], 0)
        keys = tuple(param_sets[0])
    else:
        param_sets = [parameters or {}]  # type: ignore[list-item]
        keys = tuple(param_sets[0])
    plan, extracted = cache.plan(statement, keys, many)
    if before is not None and plan.engine_tables:
        await before()
    compiled = plan.compiled
    sql = plan.sql
    args: list[Any] | None = None
    try:
        if plan.returns_rows is None:
            sql, args = plan.arguments(_bind(compiled, param_sets[0], extracted))
            prepared = await conn.prepare(sql)
            plan.learn(prepared.get_attributes(), statement)
        if many and not plan.returns_rows and not plan.expanding:
            batches = []
            for values in param_sets:
                sql, args = plan.arguments(_bind(compiled, values, extracted))
                batches.append(args)
            await conn.executemany(sql, batches)
            return Result([], -1)
        rows: list[Any] = []
        count = 0
        for values in param_sets:
            sql, args = plan.arguments(_bind(compiled, values, extracted))
            if plan.returns_rows:
                records = await conn.fetch(sql, *args)
                rows.extend(plan.rows(records))
                count += len(records)
            else:
                count += _count(await conn.execute(sql, *args))
        return Result(rows, count)
    except asyncpg.PostgresError as error:
        raise translate(error, sql, args) from error


async def prepare_connection(conn: Any) -> None:
    """Give a new asyncpg connection the codecs SQLAlchemy's asyncpg dialect installs, so
    that values come back as they would through SQLAlchemy: ``json`` and ``jsonb`` as
    Python objects, ``inet`` and ``cidr`` as strings."""
    def json_decoder(value: bytes) -> Any:
        return json.loads(value.decode())

    def jsonb_encoder(value: str) -> bytes:
        return b"\x01" + value.encode()  # jsonb's binary format starts with its version

    def jsonb_decoder(value: bytes) -> Any:
        return json.loads(value[1:].decode())

    await conn.set_type_codec("json", encoder=str.encode, decoder=json_decoder,
                              schema="pg_catalog", format="binary")
    await conn.set_type_codec("jsonb", encoder=jsonb_encoder, decoder=jsonb_decoder,
                              schema="pg_catalog", format="binary")
    for name in ("inet", "cidr"):
        await conn.set_type_codec(name, encoder=_same, decoder=_same, schema="pg_catalog",
                                  format="text")


def _same(value: Any) -> Any:
    return value


def _bind(compiled: Compiled, values: Mapping[str, Any], extracted: Any) -> Mapping[str, Any]:
    """Every bound value of one execution, by bind name: the statement's own literals
    (from its cache key) overridden by the execution's parameters."""
    bound = compiled.construct_params(values, extracted_parameters=extracted)
    return bound if bound is not None else {}


def _count(status: str) -> int:
    """The row count of a command tag (``UPDATE 3``, ``INSERT 0 1``); 0 if none."""
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0
