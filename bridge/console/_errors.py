"""The error store in the console: its JSON API (``/api/errors``, ``/api/dlq``) and its
pages (``/errors``). Reading needs the viewer role; redriving needs the operator role
(and, from a browser, the session's CSRF token), and every redrive is audited."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from bridge.errorstore import (
    DlqProblem,
    ErrorFilters,
    ErrorRedriver,
    ErrorStatus,
    RedriveResult,
    TransportSender,
    audit_dlq_redrive,
    get_error,
    list_errors,
    queue_transport,
    redrive_dead_letters,
    sqs_client,
)

from ._api import ERRORS
from ._auth import Principal
from ._deps import FormAction, PageProblem, api_action, api_reader, console_of, form_action
from ._deps import page_reader as _page_reader
from ._resources import Console
from ._views import now

SECONDS = 10 * 365 * 86400
ID_MAX = 200
QUEUE_PATTERN = r"^(https?://[^\s]{1,900}|[A-Za-z0-9_-]{1,80}(\.fifo)?)$"
_QUEUE = re.compile(QUEUE_PATTERN)

Viewer = Annotated[Principal, Depends(api_reader("viewer"))]
Operator = Annotated[Principal, Depends(api_action("operator"))]
PageViewer = Annotated[Principal, Depends(_page_reader("viewer"))]
Operating = Annotated[FormAction, Depends(form_action("operator"))]

api = APIRouter(prefix="/api", tags=["errors"], responses=ERRORS)
pages = APIRouter(include_in_schema=False)


# -- shared ----------------------------------------------------------------------------------

@asynccontextmanager
async def redriver(console: Console) -> AsyncIterator[ErrorRedriver]:
    """An :class:`ErrorRedriver` on the console's store and audit log, sending to the
    workers' queues."""
    res = await console.resources()
    settings = console.settings
    async with queue_transport(settings.aws(), settings.queue_prefix) as transport:
        yield ErrorRedriver(res.store, res.audit, TransportSender(transport))


BODY: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON, or the input is wrong (the detail says)"},
    415: {"description": "The body is not JSON"}}


def _seconds(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _redrive_status(result: RedriveResult) -> int:
    return {"not_found": 404, "not_redrivable": 409, "failed": 503}.get(result.outcome, 200)


# -- the JSON API ----------------------------------------------------------------------------

class ErrorList(BaseModel):
    errors: list[dict[str, Any]]
    total: int


class RedriveBody(BaseModel):
    """Why (recorded in the audit log)."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=2000)


class RedriveMatching(RedriveBody):
    """Which open errors to send back (every filter given must hold; at least one)."""

    endpoint: str | None = Field(default=None, min_length=1, max_length=200)
    message_type: str | None = Field(default=None, alias="messageType", min_length=1,
                                     max_length=300)
    older_than: int | None = Field(default=None, alias="olderThan", ge=0, le=SECONDS)
    newer_than: int | None = Field(default=None, alias="newerThan", ge=1, le=SECONDS)
    order_id: str | None = Field(default=None, alias="orderId", min_length=1,
                                 max_length=ID_MAX)
    no_order: bool = Field(default=False, alias="noOrder")

    def filters(self) -> ErrorFilters:
        return ErrorFilters(endpoint=self.endpoint, message_type=self.message_type,
                            older_than=_seconds(self.older_than),
                            newer_than=_seconds(self.newer_than),
                            correlation_id=self.order_id, without_order=self.no_order,
                            status="open")


class DlqBody(RedriveBody):
    """The dead-letter queue (name or URL) and, unless it is the dead-letter queue of
    exactly one queue, where its messages go."""

    queue: str = Field(pattern=QUEUE_PATTERN, max_length=1000)
    to: str | None = Field(default=None, pattern=QUEUE_PATTERN, max_length=1000)
    limit: int | None = Field(default=None, ge=1, le=100_000)


@api.get("/errors", response_model=ErrorList)
async def api_errors(
    request: Request, _: Viewer,
    endpoint: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    message_type: Annotated[str | None, Query(
        alias="messageType", min_length=1, max_length=300,
        description="Part of the message type, case-insensitive")] = None,
    older_than: Annotated[int | None, Query(
        alias="olderThan", ge=0, le=SECONDS,
        description="Only errors recorded more than this many seconds ago")] = None,
    newer_than: Annotated[int | None, Query(
        alias="newerThan", ge=1, le=SECONDS,
        description="Only errors recorded within this many seconds")] = None,
    order_id: Annotated[str | None, Query(alias="orderId", min_length=1,
                                          max_length=ID_MAX)] = None,
    no_order: Annotated[bool, Query(alias="noOrder",
                                    description="Only errors with no order id")] = False,
    status: Annotated[ErrorStatus, Query(description="open: not redriven yet")] = "all",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ErrorList:
    """The error store, the newest first: messages an endpoint could not handle
    (dead-lettered, malformed, without a consumer) and outbox deliveries refused for
    good, each with whether it was redriven."""
    res = await console_of(request).resources()
    filters = ErrorFilters(endpoint=endpoint, message_type=message_type,
                           older_than=_seconds(older_than), newer_than=_seconds(newer_than),
                           correlation_id=order_id, without_order=no_order, status=status)
    items, total = await list_errors(res.store, filters, now=now(), limit=limit,
                                     offset=offset)
    return ErrorList(errors=[i.as_dict() for i in items], total=total)


@api.get("/errors/{error_id}", responses={404: {"description": "No such error"}})
async def api_error(request: Request, _: Viewer,
                    error_id: Annotated[int, PathParam(ge=1, le=2**62)]) -> dict[str, Any]:
    """One error with its message's body and headers."""
    res = await console_of(request).resources()
    item = await get_error(res.store, error_id)
    if item is None:
        raise HTTPException(404, f"no error {error_id}")
    return item.as_dict(body=True)


@api.post("/errors/{error_id}/redrive", responses={
    **BODY,
    404: {"description": "No such error"},
    409: {"description": "Not a queue's message (an outbox delivery)"},
    503: {"description": "The queue did not take it: nothing changed"}})
async def api_redrive(request: Request, who: Operator,
                      error_id: Annotated[int, PathParam(ge=1, le=2**62)],
                      body: RedriveBody | None = None) -> JSONResponse:
    """Send the error's message back to its endpoint's queue, keeping its message id
    (a duplicate is absorbed by the inbox). A second redrive changes nothing
    (``changed: false``). Audited with your name."""
    async with redriver(console_of(request)) as acting:
        result = await acting.redrive(error_id, actor=who.name,
                                      reason=body.reason if body else None)
    return JSONResponse(result.as_dict(), status_code=_redrive_status(result))


@api.post("/errors/redrive", responses={
    **BODY,
    400: {"description": "No filter given, or the body is not JSON"},
    503: {"description": "A send failed: the errors not sent yet are unchanged"}})
async def api_redrive_matching(request: Request, who: Operator,
                               body: RedriveMatching) -> JSONResponse:
    """Redrive every open error matching the filters (at least one), oldest first,
    each audited; it stops at the first failed send."""
    if body.filters() == ErrorFilters(status="open"):
        raise HTTPException(400, "name at least one filter (endpoint, messageType, "
                                 "olderThan, newerThan, orderId, noOrder)")
    async with redriver(console_of(request)) as acting:
        batch = await acting.redrive_matching(body.filters(), actor=who.name,
                                              reason=body.reason)
    return JSONResponse(batch.as_dict(), status_code=503 if batch.stopped else 200)


@api.post("/dlq/redrive", responses={
    **BODY,
    400: {"description": "The queues are wrong (no such queue, no single source), or the "
                         "body is not JSON"},
    503: {"description": "SQS failed during the move: the rest stay where they were"}})
async def api_dlq_redrive(request: Request, who: Operator, body: DlqBody) -> JSONResponse:
    """Move an SQS dead-letter queue's messages back to its source queue (or ``to``);
    each keeps its message id, so a duplicate is absorbed by the inbox. Audited."""
    code, answer = await _dlq(console_of(request), who.name, body.queue, body.to,
                              body.limit, body.reason)
    return JSONResponse(answer, status_code=code)


async def _dlq(console: Console, actor: str, queue: str, to: str | None, limit: int | None,
               reason: str | None) -> tuple[int, dict[str, Any]]:
    res = await console.resources()
    try:
        async with sqs_client(console.settings.aws()) as client:
            result = await redrive_dead_letters(client, queue, to=to, limit=limit)
    except DlqProblem as exc:
        return 400, {"detail": str(exc), "moved": 0}
    except (BotoCoreError, ClientError) as exc:
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return 503, {"detail": f"SQS did not answer ({type(exc).__name__}: {line}): nothing "
                               "moved; try again when AWS answers", "moved": 0}
    await audit_dlq_redrive(res.audit, result, actor=actor, reason=reason, at=now())
    return (503 if result.problem else 200), result.as_dict()


# -- the pages -------------------------------------------------------------------------------

def _page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    from ._pages import page

    return page(request, name, status, **context)


def _int(value: str | None, name: str, minimum: int) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise PageProblem(400, f"{name} must be a whole number, not {value[:40]!r}") from None
    if not minimum <= number <= SECONDS:
        raise PageProblem(400, f"{name} must be between {minimum} and {SECONDS}")
    return number


FILTER_FIELDS = ("endpoint", "messageType", "olderThan", "newerThan", "orderId", "noOrder",
                 "status")


def page_filters(fields: Mapping[str, str]) -> tuple[ErrorFilters, dict[str, str]]:
    """The filters of the errors page (query or form fields), and those given."""
    given = {k: fields[k].strip() for k in FILTER_FIELDS if (fields.get(k) or "").strip()}
    for key in ("endpoint", "orderId"):
        if len(given.get(key, "")) > 200:
            raise PageProblem(400, f"{key} has at most 200 characters")
    if len(given.get("messageType", "")) > 300:
        raise PageProblem(400, "messageType has at most 300 characters")
    status = given.get("status", "all")
    if status not in ("open", "redriven", "all"):
        raise PageProblem(400, "status is open, redriven or all")
    if given.get("noOrder", "false") not in ("true", "false"):
        raise PageProblem(400, "noOrder is true or false")
    filters = ErrorFilters(
        endpoint=given.get("endpoint"), message_type=given.get("messageType"),
        older_than=_seconds(_int(given.get("olderThan"), "olderThan", 0)),
        newer_than=_seconds(_int(given.get("newerThan"), "newerThan", 1)),
        correlation_id=given.get("orderId"), without_order=given.get("noOrder") == "true",
        status=status)  # type: ignore[arg-type]
    return filters, given


def error_url(error_id: int) -> str:
    return f"/errors/{error_id}"


@pages.get("/errors", response_class=HTMLResponse)
async def errors_page(request: Request, who: PageViewer) -> Response:
    q = request.query_params
    filters, given = page_filters(q)
    page_number = _int(q.get("page"), "page", 1) or 1
    res = await console_of(request).resources()
    items, total = await list_errors(res.store, filters, now=now(), limit=100,
                                     offset=(page_number - 1) * 100)
    return _page(request, "errors.html", who=who, items=items, total=total,
                 filters=given, page_number=page_number, pages=max(1, -(-total // 100)),
                 query=urlencode(given))


@pages.get("/errors/{error_id}", response_class=HTMLResponse)
async def error_page(request: Request, error_id: str, who: PageViewer) -> Response:
    item = await _item(request, error_id)
    return _page(request, "error_entry.html", who=who, item=item)


async def _item(request: Request, error_id: str) -> Any:
    if not error_id.isdigit() or len(error_id) > 18:
        raise PageProblem(400, "an error id is a number")
    res = await console_of(request).resources()
    item = await get_error(res.store, int(error_id))
    if item is None:
        raise PageProblem(404, f"no error {error_id}")
    return item


def _back(target: str, message: str) -> Response:
    from ._pages import redirect

    return redirect(target, message)


@pages.post("/errors/{error_id}/redrive")
async def redrive_page(request: Request, error_id: str, acting: Operating) -> Response:
    """Redrive one error: the first post asks to confirm, the confirmed post sends."""
    item = await _item(request, error_id)
    reason = (acting.form.get("reason") or "").strip()[:2000] or None
    if acting.form.get("confirm") != "yes":
        return _page(request, "redrive_confirm.html", who=acting.who, item=item,
                     reason=reason, action=f"/errors/{item.id}/redrive", count=1,
                     fields={}, back=error_url(item.id))
    async with redriver(console_of(request)) as redriving:
        result = await redriving.redrive(item.id, actor=acting.who.name, reason=reason)
    if result.outcome == "failed":
        raise PageProblem(503, result.message, who=acting.who)
    return _back(error_url(item.id), result.message)


@pages.post("/errors/redrive")
async def redrive_matching_page(request: Request, acting: Operating) -> Response:
    """Redrive every open error matching the list's filters, after a confirmation."""
    filters, given = page_filters(acting.form)
    filters = ErrorFilters(**{**{f: getattr(filters, f) for f in
                                 filters.__dataclass_fields__}, "status": "open"})
    back = "/errors" + (f"?{urlencode(given)}" if given else "")
    if filters == ErrorFilters(status="open"):
        raise PageProblem(400, "filter the list first: redriving everything at once needs "
                               "at least one filter", who=acting.who)
    reason = (acting.form.get("reason") or "").strip()[:2000] or None
    if acting.form.get("confirm") != "yes":
        res = await console_of(request).resources()
        _, count = await list_errors(res.store, filters, now=now(), limit=1)
        return _page(request, "redrive_confirm.html", who=acting.who, item=None,
                     reason=reason, action="/errors/redrive", count=count, fields=given,
                     back=back)
    async with redriver(console_of(request)) as redriving:
        batch = await redriving.redrive_matching(filters, actor=acting.who.name,
                                                 reason=reason)
    if batch.stopped:
        raise PageProblem(503, batch.message, who=acting.who)
    return _back(back, batch.message)


@pages.post("/dlq/redrive")
async def dlq_page(request: Request, acting: Operating) -> Response:
    """Move a dead-letter queue back, after a confirmation."""
    queue = (acting.form.get("queue") or "").strip()
    to = (acting.form.get("to") or "").strip() or None
    for name, value in (("queue", queue), ("to", to)):
        if value is not None and not _QUEUE.match(value):
            raise PageProblem(400, f"{name} must be a queue name or URL", who=acting.who)
    reason = (acting.form.get("reason") or "").strip()[:2000] or None
    if acting.form.get("confirm") != "yes":
        return _page(request, "dlq_confirm.html", who=acting.who, queue=queue, to=to,
                     reason=reason)
    code, answer = await _dlq(console_of(request), acting.who.name, queue, to, None, reason)
    if code != 200:
        raise PageProblem(code, answer.get("message") or answer["detail"], who=acting.who)
    return _back("/errors", answer["message"])
