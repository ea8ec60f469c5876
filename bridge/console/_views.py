"""What the pages and the API show, computed once for both: the order list, an order in
detail (timeline, why it is where it is, graphs), and the reviews with their expiry."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from bridge._handoffs import handoffs_of
from bridge.reviews import Review
from bridge.timeline import ExecutionLink, Timeline, build_timeline
from core_saga import SagaModel, to_mermaid
from core_saga.persistence import InstanceOrder, InstanceQuery

from ._diagrams import asl_diagram, saga_diagram
from ._layout import render_svg
from ._resources import Console, Resources


def now() -> datetime:
    return datetime.now(UTC)


def order_url(correlation_id: str) -> str:
    """The console page of an order; any id opens (every character encoded)."""
    return f"/orders/{quote(correlation_id, safe='')}"


# -- API models ---------------------------------------------------------------------------

class OrderSummary(BaseModel):
    saga_type: str = Field(serialization_alias="sagaType")
    correlation_id: str = Field(serialization_alias="correlationId")
    state: str
    created_at: datetime = Field(serialization_alias="createdAt")
    updated_at: datetime = Field(serialization_alias="updatedAt")
    in_state_seconds: float = Field(serialization_alias="inStateSeconds")
    stuck: bool
    final: bool
    summary: dict[str, str] = Field(description="The saga's own columns (Saga.summary)")
    url: str


class StateCount(BaseModel):
    saga_type: str = Field(serialization_alias="sagaType")
    state: str
    count: int
    final: bool


class OrderList(BaseModel):
    orders: list[OrderSummary]
    total: int = Field(description="How many orders match the filters in all")
    limit: int
    offset: int
    counts: list[StateCount]
    columns: list[str] = Field(description="The summary columns, in order")
    stuck_after_seconds: int = Field(serialization_alias="stuckAfterSeconds")


class Links(BaseModel):
    executions: list[dict[str, Any]]
    trace_ids: list[str] = Field(serialization_alias="traceIds")
    trace_urls: dict[str, str] = Field(serialization_alias="traceUrls",
                                       description="A link per trace id, when configured")


class OrderDetail(BaseModel):
    saga_type: str = Field(serialization_alias="sagaType")
    correlation_id: str = Field(serialization_alias="correlationId")
    state: str
    stuck: bool
    finished: bool
    final: bool
    summary: dict[str, str]
    status: str = Field(description="One line: what the order waits for or why it ended, "
                                    "and the action that fits")
    waiting_for: list[str] = Field(serialization_alias="waitingFor",
                                   description="Why the order is where it is")
    timeline: Timeline
    graph: str | None = Field(description="Mermaid stateDiagram-v2, current state "
                                          "highlighted; null when the saga class is unknown")
    links: Links


class ReviewList(BaseModel):
    reviews: list[dict[str, Any]]


class DecisionBody(BaseModel):
    comment: str | None = Field(default=None, max_length=2000)


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S",
                        description="Why the order is rejected (required)")
    comment: str | None = Field(default=None, max_length=2000)


class DecisionOut(BaseModel):
    result: Literal["approved", "rejected", "unchanged", "expired", "not_found"]
    changed: bool
    message: str
    review: dict[str, Any] | None


class OrderState(BaseModel):
    correlation_id: str = Field(serialization_alias="correlationId")
    state: str
    final: bool
    fingerprint: str = Field(description="Changes whenever the order's timeline does "
                                         "(pages poll it to refresh themselves)")


class AuditOut(BaseModel):
    entries: list[dict[str, Any]]
    total: int


# -- the order list -----------------------------------------------------------------------

class OrderFilters(BaseModel):
    """The list's filters, as the API and the page take them."""

    state: str | None = None
    saga_type: str | None = None
    older_than: int | None = None
    stuck: bool | None = None
    final: bool | None = None
    stuck_after: int | None = None
    q: str | None = None
    sort: InstanceOrder = "idle"
    limit: int = 50
    offset: int = 0


async def list_orders(console: Console, filters: OrderFilters) -> OrderList:
    """Orders as `filters` say, filtered, sorted and paged in the database."""
    res = await console.resources()
    at = now()
    threshold = filters.stuck_after or console.settings.console_stuck_after_seconds
    query = InstanceQuery(
        saga_type=filters.saga_type,
        states=frozenset({filters.state}) if filters.state else frozenset(),
        final_states=console.final_states(), final=filters.final,
        stuck=filters.stuck, stuck_before=at - timedelta(seconds=threshold),
        created_before=at - timedelta(seconds=filters.older_than)
        if filters.older_than else None,
        id_contains=filters.q or None, order=filters.sort, limit=filters.limit,
        offset=filters.offset)
    page = await res.store.query_instances(query)
    orders = []
    for r in page.instances:
        idle = (at - r.updated_at).total_seconds()
        final = query.is_final(r.saga_type, r.state)
        model = console.models.get(r.saga_type)
        orders.append(OrderSummary(
            saga_type=r.saga_type, correlation_id=r.correlation_id, state=r.state,
            created_at=r.created_at, updated_at=r.updated_at,
            in_state_seconds=round(idle, 3), stuck=not final and idle > threshold,
            final=final, summary=model.summary(r.data) if model else {},
            url=order_url(r.correlation_id)))
    counts = [StateCount(saga_type=c.saga_type, state=c.state, count=c.count,
                         final=query.is_final(c.saga_type, c.state))
              for c in await res.store.state_counts()]
    columns: list[str] = []
    for name, model in console.models.items():
        if filters.saga_type in (None, name):
            columns += [c for c in model.summary_columns if c not in columns]
    return OrderList(orders=orders, total=page.total, limit=filters.limit,
                     offset=filters.offset, counts=counts, columns=columns,
                     stuck_after_seconds=threshold)


# -- reviews --------------------------------------------------------------------------------

async def settle_expired(console: Console, res: Resources, reviews: list[Review], *,
                         ask_aws: bool) -> list[Review]:
    """Mark pending reviews whose workflow no longer waits ``expired`` (and return the
    list as it now is): past the deadline; the saga got the workflow's outcome or no
    longer exists; or (with `ask_aws`) the execution is not running."""
    at = now()
    changed = False
    for review in reviews:
        if review.status != "pending":
            continue
        why = None
        if review.deadline is not None and review.deadline < at:
            why = "the workflow stopped waiting at its deadline"
        else:
            why = await _ended(res, review, ask_aws)
        if why is not None and await res.reviews.expire(review.id, at, why):
            changed = True
    if not changed:
        return reviews
    found = [await res.reviews.get(r.id) for r in reviews]
    return [r for r in found if r is not None]


async def _ended(res: Resources, review: Review, ask_aws: bool) -> str | None:
    instances = await res.store.instances_of(review.correlation_id)
    mine = [i for i in instances if i.saga_type == review.saga_type]
    if mine:
        for handoff in handoffs_of(mine[0].data):
            if handoff.handoff_id == review.handoff_id and handoff.outcome is not None:
                return f"the workflow ended: its outcome ({handoff.outcome}) reached the saga"
    elif await res.store.history_of(review.correlation_id, saga_type=review.saga_type):
        return "the order's saga has ended"
    if ask_aws:
        try:
            described = await res.sfn.describe_execution(review.execution_arn)
        except Exception:
            return None  # unknown: it stays pending; the page says AWS did not answer
        status = described.get("status")
        if status is not None and status != "RUNNING":
            return f"its execution ended {status}"
    return None


async def pending_reviews(console: Console, limit: int = 200) -> list[Review]:
    """The reviews waiting for a person, oldest first (those that expired are marked
    and left out)."""
    res = await console.resources()
    await res.reviews.expire_overdue(now())
    found = await res.reviews.list_reviews(status="pending", limit=limit)
    return [r for r in await settle_expired(console, res, found, ask_aws=False)
            if r.pending]


# -- an order ---------------------------------------------------------------------------------

async def order_state(console: Console, order_id: str) -> OrderState | None:
    """An order's state and a fingerprint of everything its timeline is read from
    (cheap: no Step Functions call), or None when nothing is known about it."""
    res = await console.resources()
    instances = await res.store.instances_of(order_id)
    history = await res.store.history_of(order_id)
    if not instances and not history:
        return None
    rows = await res.store.outbox_for(order_id)
    errors = await res.store.errors_for(order_id)
    reviews = await res.reviews.list_reviews(status=None, correlation_id=order_id)
    latest, audited = await res.audit.entries(correlation_id=order_id, limit=1)
    parts = [*(f"{i.saga_type}:{i.state}:{i.version}" for i in instances), str(len(history)),
             *(f"{r.id}:{r.attempts}:{r.dispatched_at is not None}:{r.failed}" for r in rows),
             str(len(errors)), *(f"{r.id}:{r.status}" for r in reviews),
             f"{audited}:{latest[0].id if latest else 0}"]
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]
    if instances:
        saga_type, state = instances[0].saga_type, instances[0].state
    else:
        saga_type, state = history[-1].saga_type, history[-1].to_state
    model = console.models.get(saga_type)
    final = not instances or (model is not None and state in model.terminal_states)
    return OrderState(correlation_id=order_id, state=state, final=final, fingerprint=digest)


@dataclass
class OrderPage:
    """Everything the order page shows (the API's :class:`OrderDetail` and the SVGs)."""

    detail: OrderDetail
    saga_svg: str | None
    execution_svgs: list[tuple[ExecutionLink, str]]
    footnotes: list[str]
    pending: list[Review]
    refresh: int
    fingerprint: str


async def order_detail(console: Console, order_id: str, saga_type: str | None, *,
                       draw: bool = False) -> OrderPage | None:
    """An order in detail, or None when nothing is known about it."""
    res = await console.resources()
    await res.reviews.expire_overdue(now())
    await settle_expired(console, res, await res.reviews.list_reviews(
        status="pending", correlation_id=order_id), ask_aws=True)
    # The fingerprint first: a change while the page is built makes it refresh again.
    state = await order_state(console, order_id)
    model = console.models.get(saga_type) if saga_type else None
    if model is None and saga_type is None:
        kinds = [i.saga_type for i in await res.store.instances_of(order_id)]
        model = next((console.models[k] for k in kinds if k in console.models), None)
    timeline = await build_timeline(res.store, order_id, saga_type=saga_type, sfn=res.sfn,
                                    reviews=res.reviews, audit=res.audit, model=model,
                                    aws=console.settings.aws())
    if timeline is None:
        return None
    if model is None or model.name != timeline.saga_type:
        model = console.models.get(timeline.saga_type)
    idle = (now() - timeline.updated_at).total_seconds() if timeline.updated_at else 0
    final = timeline.finished or (model is not None and timeline.state in
                                  model.terminal_states)
    stuck = not final and idle > console.settings.console_stuck_after_seconds
    settings = console.settings
    links = Links(executions=[e.model_dump(mode="json") for e in timeline.executions],
                  trace_ids=timeline.trace_ids,
                  trace_urls={t: u for t in timeline.trace_ids
                              if (u := settings.trace_link(t)) is not None})
    detail = OrderDetail(
        saga_type=timeline.saga_type, correlation_id=order_id, state=timeline.state,
        stuck=stuck, finished=timeline.finished, final=final,
        summary=model.summary(timeline.data) if model else {},
        status=timeline.status, waiting_for=timeline.waiting_for, timeline=timeline,
        graph=to_mermaid(model, highlight=timeline.state) if model is not None else None,
        links=links)
    pending = await res.reviews.list_reviews(status="pending", correlation_id=order_id)
    saga_svg: str | None = None
    footnotes: list[str] = []
    executions: list[tuple[ExecutionLink, str]] = []
    if draw:
        saga_svg, footnotes = _saga_svg(model, timeline)
        executions = await _execution_svgs(console, res, timeline)
    return OrderPage(detail=detail, saga_svg=saga_svg, execution_svgs=executions,
                     footnotes=footnotes, pending=pending,
                     refresh=0 if final else settings.console_refresh_seconds,
                     fingerprint=state.fingerprint if state else "")


def _saga_svg(model: SagaModel | None, timeline: Timeline) -> tuple[str | None, list[str]]:
    if model is None:
        return None, []
    diagram = saga_diagram(model, current=timeline.state, path=timeline.path)
    return render_svg(diagram, element_id="saga-graph"), diagram.footnotes


async def _execution_svgs(console: Console, res: Resources, timeline: Timeline
                          ) -> list[tuple[ExecutionLink, str]]:
    async def one(number: int, link: ExecutionLink) -> tuple[ExecutionLink, str]:
        if link.error is not None:
            return link, ""
        try:
            definition = await console.definition(res.sfn, link.execution_arn)
        except Exception as exc:
            link = link.model_copy(update={"error": f"{type(exc).__name__}: {exc}"})
            return link, ""
        name = link.execution_arn.rsplit(":", 1)[-1]
        diagram = asl_diagram(definition, entered=link.states_entered,
                              current=link.current_state, status=link.status,
                              title=f"{link.workflow or 'execution'} {name}")
        return link, render_svg(diagram, element_id=f"execution-graph-{number}")

    return list(await asyncio.gather(*(one(n, link) for n, link in
                                       enumerate(timeline.executions, 1))))
