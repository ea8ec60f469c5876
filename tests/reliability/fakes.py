"""The payment gateway and the carrier as outside systems: their state lives in their own
tables, written on their own connection and committed at once, so it survives the
worker processes the harness kills, and a test can hold the services' books against it.

Both honour idempotency keys as real ones do. Faults come from the order's path (see
:mod:`.plan`) and from seeded chance: a transient gateway failure happens before the
work half of the time and after it the other half (the answer is lost, the charge is
not).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from examples.order_to_cash.messages import StockLine
from examples.order_to_cash.payment import ChargeResult, GatewayUnavailable, RefundResult
from examples.order_to_cash.shipping import CarrierUnavailable, Label
from examples.order_to_cash.storage import ExactDecimal

from .plan import DECLINED, OUTAGE_SECONDS, REFUSED_PATHS, SILENT_PATHS, path_of

log = logging.getLogger("reliability.fakes")
metadata = MetaData()

gateway_calls = Table(
    "chaos_gateway", metadata,
    Column("idempotency_key", String(200), primary_key=True),
    Column("order_id", String(64), nullable=False, index=True),
    Column("kind", String(10), nullable=False),  # charge | refund
    Column("amount", ExactDecimal(), nullable=False),
    Column("approved", Boolean, nullable=False),
    Column("reference", String(40), nullable=False),
)
carrier_labels = Table(
    "chaos_labels", metadata,
    Column("idempotency_key", String(200), primary_key=True),
    Column("order_id", String(64), nullable=False, index=True),
    Column("tracking_id", String(64), nullable=False, unique=True),
    Column("voided", Boolean, nullable=False),
)
lost_refund_answers = Table(
    "chaos_lost_refund_answer", metadata,
    Column("order_id", String(64), primary_key=True),
)
"""The orders whose first refund call lost its answer (after the gateway refunded)."""
first_calls = Table(
    "chaos_first_label_call", metadata,
    Column("order_id", String(64), primary_key=True),
    Column("at", Float, nullable=False),
)


def fakes_engine(url: str, schema: str | None = None) -> AsyncEngine:
    """An engine on the outside systems' database (``postgresql://`` or
    ``sqlite+aiosqlite://``)."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+asyncpg://" + url.partition("://")[2]
    if url.startswith("sqlite"):
        return create_async_engine(url, connect_args={"timeout": 60})
    engine = create_async_engine(url, pool_size=4, max_overflow=4, pool_pre_ping=True)
    if schema is not None:
        return engine.execution_options(schema_translate_map={None: schema})
    return engine


async def create_fake_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


async def _insert_once(engine: AsyncEngine, table: Table, values: dict[str, object]) -> bool:
    """Insert a row unless its key is there; whether it was inserted now."""
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(table).values(**values))
    except IntegrityError:
        return False  # done before: the key makes the call idempotent
    return True


class DurableGateway:
    """A payment gateway whose charges and refunds are rows in ``chaos_gateway``."""

    def __init__(self, engine: AsyncEngine, rng: random.Random, *,
                 transient_rate: float, refund_lost_answer: bool = False) -> None:
        self.engine = engine
        self.rng = rng
        self.transient_rate = transient_rate
        self.refund_lost_answer = refund_lost_answer
        """Lose the answer of every order's first refund call, after the refund: its
        retry must be the same refund (the idempotency key), deterministically."""

    def _maybe_fail(self, after: bool) -> None:
        if self.transient_rate and self.rng.random() < self.transient_rate / 2:
            log.warning("CHAOS gateway transient error: %s the work",
                        "after" if after else "before")
            raise GatewayUnavailable("gateway timed out" + (" after the work" if after else ""))

    async def _call(self, key: str, order_id: str, kind: str, amount: Decimal,
                    approved: bool) -> tuple[bool, str]:
        self._maybe_fail(after=False)
        await _insert_once(self.engine, gateway_calls, {
            "idempotency_key": key, "order_id": order_id, "kind": kind, "amount": amount,
            "approved": approved, "reference": f"{kind[:2]}_{key[-24:]}"})
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(gateway_calls.c.approved, gateway_calls.c.reference)
                                      .where(gateway_calls.c.idempotency_key == key))).one()
        self._maybe_fail(after=True)
        return bool(row.approved), str(row.reference)

    async def charge(self, *, order_id: str, amount: Decimal, currency: str,
                     idempotency_key: str) -> ChargeResult:
        approved, reference = await self._call(idempotency_key, order_id, "charge", amount,
                                               path_of(order_id) != DECLINED)
        return ChargeResult(approved, reference, None if approved else "insufficient_funds")

    async def refund(self, *, order_id: str, charge_reference: str, amount: Decimal,
                     currency: str, idempotency_key: str) -> RefundResult:
        _, reference = await self._call(idempotency_key, order_id, "refund", amount, True)
        if self.refund_lost_answer and await _insert_once(self.engine, lost_refund_answers,
                                                          {"order_id": order_id}):
            log.warning("CHAOS refund answer lost: %s", order_id)
            raise GatewayUnavailable("gateway timed out after the refund")
        return RefundResult(reference)


class DurableCarrier:
    """A carrier whose labels are rows in ``chaos_labels``. It refuses, or never answers,
    an order of a carrier path for that path's outage, counted from the order's first
    label call (kept in ``chaos_first_label_call``)."""

    name = "CHAOS"

    def __init__(self, engine: AsyncEngine, *, silence_seconds: float = 0.5) -> None:
        self.engine = engine
        self.silence_seconds = silence_seconds

    async def _outage_left(self, order_id: str) -> float:
        outage = OUTAGE_SECONDS.get(path_of(order_id))
        if outage is None:
            return 0.0
        await _insert_once(self.engine, first_calls, {"order_id": order_id, "at": time.time()})
        async with self.engine.connect() as conn:
            first = (await conn.execute(select(first_calls.c.at)
                                        .where(first_calls.c.order_id == order_id))).scalar_one()
        return float(first) + outage - time.time()

    async def create_label(self, *, order_id: str, lines: Sequence[StockLine],
                           idempotency_key: str) -> Label:
        if await self._outage_left(order_id) > 0:
            path = path_of(order_id)
            if path in REFUSED_PATHS:
                raise CarrierUnavailable(f"{self.name}: no service for {order_id} now")
            if path in SILENT_PATHS:
                await asyncio.sleep(self.silence_seconds)
                raise TimeoutError(f"{self.name}: the label call for {order_id} timed out")
        tracking = f"{self.name}-{idempotency_key}"
        await _insert_once(self.engine, carrier_labels, {
            "idempotency_key": idempotency_key, "order_id": order_id,
            "tracking_id": tracking, "voided": False})
        return Label(tracking, self.name)

    async def label_for(self, *, idempotency_key: str) -> Label | None:
        async with self.engine.connect() as conn:
            tracking = (await conn.execute(
                select(carrier_labels.c.tracking_id)
                .where(carrier_labels.c.idempotency_key == idempotency_key))).scalar()
        return None if tracking is None else Label(str(tracking), self.name)

    async def void_label(self, *, tracking_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(carrier_labels)
                               .where(carrier_labels.c.tracking_id == tracking_id)
                               .values(voided=True))
