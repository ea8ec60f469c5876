"""The ops console: FastAPI, server-rendered HTML (Jinja2) and a JSON API."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from bridge.reviews import ReviewService, ReviewStore, StepFunctions
from bridge.timeline import SagaDatabase, Timeline, build_timeline, trace_id_of
from core_saga import Saga, SagaModel, to_mermaid

from ._auth import COOKIE, Principal, forbidden, lookup, token_of, unauthenticated
from ._settings import ConsoleSettings, Role

log = logging.getLogger("bridge.console")

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,199}$"
"""What a correlation id may look like in a URL (anything else is a 422, not a lookup)."""
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
STATE_PATTERN = r"^[A-Za-z0-9_.:-]{1,200}$"
TEMPLATES = Path(__file__).with_name("templates")

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or unknown bearer token"},
    403: {"description": "The token lacks the role"},
    422: {"description": "Invalid input"},
}


# -- API models ---------------------------------------------------------------------------

class OrderSummary(BaseModel):
    saga_type: str = Field(serialization_alias="sagaType")
    correlation_id: str = Field(serialization_alias="correlationId")
    state: str
    created_at: datetime = Field(serialization_alias="createdAt")
    updated_at: datetime = Field(serialization_alias="updatedAt")
    in_state_seconds: float = Field(serialization_alias="inStateSeconds")
    stuck: bool
    url: str


class StateCount(BaseModel):
    saga_type: str = Field(serialization_alias="sagaType")
    state: str
    count: int


class OrderList(BaseModel):
    orders: list[OrderSummary]
    counts: list[StateCount]
    stuck_after_seconds: int = Field(serialization_alias="stuckAfterSeconds")


class Links(BaseModel):
    executions: list[dict[str, Any]]
    trace_ids: list[str] = Field(serialization_alias="traceIds")


class OrderDetail(BaseModel):
    saga_type: str = Field(serialization_alias="sagaType")
    correlation_id: str = Field(serialization_alias="correlationId")
    state: str
    stuck: bool
    finished: bool
    timeline: Timeline
    graph: str | None = Field(description="Mermaid stateDiagram-v2, current state "
                                          "highlighted; null when the saga class is unknown")
    links: Links


class ReviewList(BaseModel):
    reviews: list[dict[str, Any]]


class DecisionBody(BaseModel):
    comment: str | None = Field(default=None, max_length=2000)


class DecisionOut(BaseModel):
    result: Literal["approved", "rejected", "unchanged", "expired", "not_found"]
    changed: bool
    message: str
    review: dict[str, Any] | None


# -- resources ------------------------------------------------------------------------------

@dataclass
class Resources:
    db: SagaDatabase
    reviews: ReviewStore
    service: ReviewService
    sfn: StepFunctions


class Console:
    """The console's state: settings, saga models, and lazily opened resources (opened
    on the serving event loop, so one app works under uvicorn and test clients alike)."""

    def __init__(self, settings: ConsoleSettings, *, sagas: list[type[Saga[Any]]] | None,
                 sfn: StepFunctions | None) -> None:
        self.settings = settings
        self.models: dict[str, SagaModel] = {}
        for cls in [*(sagas or ()), *(_load_saga(p) for p in settings.console_sagas)]:
            model: SagaModel = cls.model
            self.models[model.name] = model
        self._sfn = sfn
        self._resources: Resources | None = None
        self._lock: asyncio.Lock | None = None

    async def resources(self) -> Resources:
        if self._resources is not None:
            return self._resources
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._resources is None:
                settings = self.settings
                db = SagaDatabase.open(settings.database_url, schema=settings.database_schema)
                reviews = ReviewStore.open(settings.database_url,
                                           schema=settings.database_schema)
                await reviews.create_table()
                sfn = self._sfn or StepFunctions(settings.aws())
                self._resources = Resources(db, reviews, ReviewService(reviews, sfn), sfn)
        return self._resources

    async def close(self) -> None:
        if self._resources is not None:
            await self._resources.db.close()
            await self._resources.reviews.close()
            self._resources = None
        self._lock = None


def _require(request: Request, role: Role) -> Principal:
    console: Console = request.app.state.console
    who = lookup(console.settings.console_tokens, token_of(request))
    if who is None:
        raise unauthenticated()
    if not who.can(role):
        raise forbidden(role)
    return who


def _viewer(request: Request) -> Principal:
    return _require(request, "viewer")


def _approver(request: Request) -> Principal:
    return _require(request, "approver")


Viewer = Annotated[Principal, Depends(_viewer)]
Approver = Annotated[Principal, Depends(_approver)]
OrderId = Annotated[str, PathParam(pattern=ID_PATTERN, max_length=200,
                                   description="The order's correlation id")]
ReviewId = Annotated[str, PathParam(pattern=UUID_PATTERN, description="A review id")]


def _load_saga(path: str) -> type[Saga[Any]]:
    module, _, name = path.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, Saga)):
        raise ValueError(f"{path!r} is not a saga class")
    return cls


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: ConsoleSettings | None = None, *,
               sagas: list[type[Saga[Any]]] | None = None,
               sfn: StepFunctions | None = None) -> FastAPI:
    """The console app. `sagas` add graphs (with ``STEPSAGA_CONSOLE_SAGAS``); `sfn`
    replaces the Step Functions client made from the settings."""
    settings = settings or ConsoleSettings()
    console = Console(settings, sagas=sagas, sfn=sfn)
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.globals["title"] = settings.console_title

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await console.close()

    app = FastAPI(title=settings.console_title, version="1",
                  description="Where is this order, and why? Orders, their timelines, and "
                              "the pending manual reviews. Every call needs "
                              "`Authorization: Bearer <token>`; approving and rejecting "
                              "need the approver role.",
                  lifespan=lifespan)
    app.state.console = console

    def principal(request: Request) -> Principal | None:
        return lookup(settings.console_tokens, token_of(request))

    # -- shared logic -------------------------------------------------------------------
    async def list_orders(state: str | None, saga_type: str | None, older_than: int | None,
                          stuck: bool | None, stuck_after: int | None, limit: int,
                          offset: int) -> OrderList:
        res = await console.resources()
        now = _now()
        threshold = stuck_after or settings.console_stuck_after_seconds
        updated_before = now - timedelta(seconds=threshold) if stuck else None
        created_before = now - timedelta(seconds=older_than) if older_than else None
        records = await res.db.list_instances(
            saga_type=saga_type, state=state, updated_before=updated_before,
            created_before=created_before, limit=limit, offset=offset)
        orders = []
        for r in records:
            idle = (now - r.updated_at).total_seconds()
            terminal = r.state in console.models.get(r.saga_type, _NO_MODEL).terminal_states
            is_stuck = idle > threshold and not terminal
            if stuck is not None and stuck != is_stuck:
                continue
            orders.append(OrderSummary(
                saga_type=r.saga_type, correlation_id=r.correlation_id, state=r.state,
                created_at=r.created_at, updated_at=r.updated_at,
                in_state_seconds=round(idle, 3), stuck=is_stuck,
                url=f"/orders/{quote(r.correlation_id, safe='')}"))
        counts = [StateCount(saga_type=t, state=s, count=n)
                  for t, s, n in await res.db.state_counts()]
        return OrderList(orders=orders, counts=counts, stuck_after_seconds=threshold)

    async def order_detail(order_id: str, saga_type: str | None) -> OrderDetail:
        res = await console.resources()
        timeline = await build_timeline(
            res.db, order_id, saga_type=saga_type, sfn=res.sfn, reviews=res.reviews,
            model=console.models.get(saga_type) if saga_type else None,
            aws=settings.aws())
        if timeline is None:
            raise HTTPException(404, f"no order {order_id!r}")
        model = console.models.get(timeline.saga_type)
        if model is not None and saga_type is None:  # now the compensations are known
            timeline = await build_timeline(
                res.db, order_id, saga_type=timeline.saga_type, sfn=res.sfn,
                reviews=res.reviews, model=model, aws=settings.aws()) or timeline
        graph = to_mermaid(model, highlight=timeline.state) if model is not None else None
        idle = (_now() - timeline.updated_at).total_seconds() if timeline.updated_at else 0
        terminal = model is not None and timeline.state in model.terminal_states
        stuck = (not timeline.finished and not terminal
                 and idle > settings.console_stuck_after_seconds)
        links = Links(executions=[e.model_dump(mode="json") for e in timeline.executions],
                      trace_ids=timeline.trace_ids)
        return OrderDetail(saga_type=timeline.saga_type, correlation_id=order_id,
                           state=timeline.state, stuck=stuck, finished=timeline.finished,
                           timeline=timeline, graph=graph, links=links)

    # -- the JSON API ---------------------------------------------------------------------
    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/orders", response_model=OrderList, response_model_by_alias=True,
             responses=ERRORS, tags=["orders"])
    async def api_orders(
        _: Viewer,
        state: Annotated[str | None, Query(pattern=STATE_PATTERN,
                                           description="Only orders in this state")] = None,
        saga_type: Annotated[str | None, Query(alias="sagaType", pattern=STATE_PATTERN)
                             ] = None,
        older_than: Annotated[int | None, Query(
            alias="olderThan", ge=0, le=10 * 365 * 86400,
            description="Only orders created more than this many seconds ago")] = None,
        stuck: Annotated[bool | None, Query(
            description="true: only orders in their state longer than stuckAfter; "
                        "false: only the others")] = None,
        stuck_after: Annotated[int | None, Query(
            alias="stuckAfter", ge=1, le=10 * 365 * 86400,
            description="Seconds in one state after which an order is stuck")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> OrderList:
        """Orders, the longest idle first."""
        return await list_orders(state, saga_type, older_than, stuck, stuck_after, limit,
                                 offset)

    @app.get("/api/orders/{order_id}", response_model=OrderDetail,
             response_model_by_alias=True, tags=["orders"],
             responses={**ERRORS, 404: {"description": "No such order"}})
    async def api_order(
        _: Viewer, order_id: OrderId,
        saga_type: Annotated[str | None, Query(alias="sagaType", pattern=STATE_PATTERN)
                             ] = None,
    ) -> OrderDetail:
        """One order: its state, timeline, graph and links."""
        return await order_detail(order_id, saga_type)

    @app.get("/api/reviews", response_model=ReviewList, responses=ERRORS, tags=["reviews"])
    async def api_reviews(
        _: Viewer,
        status: Annotated[Literal["pending", "approved", "rejected", "expired",
                                  "superseded", "all"], Query()] = "pending",
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> ReviewList:
        """Manual reviews (pending by default), oldest first. Task tokens are never
        part of the answer."""
        res = await console.resources()
        found = await res.reviews.list_reviews(status=None if status == "all" else status,
                                               limit=limit)
        return ReviewList(reviews=[r.as_dict() for r in found])

    decision_responses: dict[int | str, dict[str, Any]] = {
        **ERRORS, 400: {"description": "The body is not JSON"},
        404: {"description": "No such review"},
        409: {"description": "The review expired: the workflow no longer waits for it",
              "model": DecisionOut}}

    def decision_response(result: Any) -> JSONResponse:
        code = {"not_found": 404, "expired": 409}.get(result.result, 200)
        return JSONResponse(result.as_dict(), status_code=code)

    @app.post("/api/reviews/{review_id}/approve", response_model=DecisionOut,
              responses=decision_responses, tags=["reviews"])
    async def api_approve(who: Approver, review_id: ReviewId,
                          body: DecisionBody | None = None) -> JSONResponse:
        """Approve: SendTaskSuccess with the stored token. A second click changes
        nothing (``changed: false``, and the message says why)."""
        res = await console.resources()
        return decision_response(await res.service.approve(
            review_id.lower(), reviewer=who.name, comment=body.comment if body else None))

    @app.post("/api/reviews/{review_id}/reject", response_model=DecisionOut,
              responses=decision_responses, tags=["reviews"])
    async def api_reject(who: Approver, review_id: ReviewId,
                         body: DecisionBody | None = None) -> JSONResponse:
        """Reject: SendTaskFailure(ReviewRejected) with the stored token; idempotent."""
        res = await console.resources()
        return decision_response(await res.service.reject(
            review_id.lower(), reviewer=who.name, comment=body.comment if body else None))

    # -- the HTML pages -----------------------------------------------------------------
    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("who", principal(request))
        context.setdefault("flash", request.query_params.get("msg"))
        return templates.TemplateResponse(request, name, context, status_code=status)

    def html_user(request: Request, role: Role) -> Principal | Response:
        who = principal(request)
        if who is None:
            return page(request, "login.html", 401, next=request.url.path, who=None,
                        error=None)
        if not who.can(role):
            return page(request, "error.html", 403, who=who,
                        message=f"Your token lacks the {role} role.")
        return who

    def bad_request(request: Request, message: str) -> Response:
        return page(request, "error.html", 400, message=message)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_form(request: Request, next: str = "/") -> Response:
        return page(request, "login.html", next=_safe_next(next), error=None)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await _form(request)
        target = _safe_next(form.get("next", "/"))
        who = lookup(settings.console_tokens, form.get("token"))
        if who is None:
            return page(request, "login.html", 401, next=target, who=None,
                        error="Unknown token.")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, form["token"], httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", max_age=12 * 3600)
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def orders_page(request: Request) -> Response:
        who = html_user(request, "viewer")
        if isinstance(who, Response):
            return who
        q = request.query_params
        try:
            state = _param(q.get("state"), STATE_PATTERN, "state")
            older_than = _int(q.get("olderThan"), "olderThan", 0)
            stuck_after = _int(q.get("stuckAfter"), "stuckAfter", 1)
            stuck = {"": None, None: None, "true": True, "false": False}[q.get("stuck")]
        except (KeyError, ValueError) as exc:
            return bad_request(request, f"bad filter: {exc}")
        listed = await list_orders(state, None, older_than, stuck, stuck_after, 200, 0)
        res = await console.resources()
        pending = await res.reviews.list_reviews(status="pending", limit=50)
        return page(request, "orders.html", listed=listed, filters=dict(q), who=who,
                    pending=pending)

    @app.get("/orders/{order_id:path}", response_class=HTMLResponse, include_in_schema=False)
    async def order_page(request: Request, order_id: str) -> Response:
        who = html_user(request, "viewer")
        if isinstance(who, Response):
            return who
        try:
            _param(order_id, ID_PATTERN, "order id")
        except ValueError as exc:
            return bad_request(request, str(exc))
        try:
            detail = await order_detail(order_id, None)
        except HTTPException as exc:
            return page(request, "error.html", exc.status_code, message=exc.detail)
        pending = [r for r in detail.timeline.reviews if r["status"] == "pending"]
        return page(request, "order.html", order=detail, who=who, pending=pending,
                    aws_local=settings.aws().local, trace_id_of=trace_id_of)

    @app.get("/reviews", response_class=HTMLResponse, include_in_schema=False)
    async def reviews_page(request: Request) -> Response:
        who = html_user(request, "viewer")
        if isinstance(who, Response):
            return who
        res = await console.resources()
        pending = await res.reviews.list_reviews(status="pending", limit=500)
        return page(request, "reviews.html", pending=pending, who=who)

    @app.post("/reviews/{review_id}/{action}", include_in_schema=False)
    async def decide_form(request: Request, review_id: str, action: str) -> Response:
        who = html_user(request, "approver")
        if isinstance(who, Response):
            return who
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.url.netloc:
            return page(request, "error.html", 403, message="cross-site form refused")
        try:
            _param(review_id, UUID_PATTERN, "review id")
            if action not in ("approve", "reject"):
                raise ValueError(f"unknown action {action!r}: approve or reject")
        except ValueError as exc:
            return bad_request(request, str(exc))
        form = await _form(request)
        comment = (form.get("comment") or "").strip()[:2000] or None
        res = await console.resources()
        decide = res.service.approve if action == "approve" else res.service.reject
        result = await decide(review_id.lower(), reviewer=who.name, comment=comment)
        target = _safe_next(form.get("next", "/reviews"))
        sep = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{sep}msg={quote(result.message)}", status_code=303)

    return app


class _NoModel:
    terminal_states: frozenset[str] = frozenset()


_NO_MODEL: Any = _NoModel()


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (small; no multipart)."""
    body = await request.body()
    if len(body) > 64_000:
        raise HTTPException(413, "form too large")
    parsed = parse_qs(body.decode(errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def _safe_next(target: str) -> str:
    """Only a local path: no open redirect."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _param(value: str | None, pattern: str, name: str) -> str | None:
    import re

    if value is None or value == "":
        return None
    if not re.match(pattern, value):
        raise ValueError(f"{name} {value[:80]!r} is not valid")
    return value


def _int(value: str | None, name: str, minimum: int) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of seconds, not {value[:40]!r}"
                         ) from None
    if number < minimum or number > 10 * 365 * 86400:
        raise ValueError(f"{name} must be between {minimum} and {10 * 365 * 86400}")
    return number
