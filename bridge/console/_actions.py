"""Operator actions on one order in the console: the JSON API (``POST
/api/orders/{id}/resume``) and the order page's forms. They need the operator role (and,
from a browser, the session's CSRF token) and a reason; each is audited with the order's
id."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from bridge.actions import (
    ActionResult,
    abort_execution,
    cancel_order,
    resume_order,
    retry_handoff,
)
from bridge.errorstore import TransportSender, queue_transport

from ._api import ERRORS
from ._auth import Principal
from ._deps import FormAction, PageProblem, api_action, console_of, form_action
from ._resources import Console

ID_MAX = 200
Operator = Annotated[Principal, Depends(api_action("operator"))]
Operating = Annotated[FormAction, Depends(form_action("operator"))]
OrderId = Annotated[str, PathParam(min_length=1, max_length=ID_MAX,
                                   description="The order's correlation id (URL-encoded)")]

api = APIRouter(prefix="/api", tags=["actions"], responses=ERRORS)
pages = APIRouter(include_in_schema=False)

STATUS = {"not_found": 404, "finished": 409, "unsupported": 409, "failed": 503}
ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON"},
    404: {"description": "No such order: nothing changed"},
    409: {"description": "The order has ended: nothing changed"},
    415: {"description": "The body is not JSON"}}


class ResumeBody(BaseModel):
    """Why (required, recorded in the audit log), and whether to fire the order's
    timers now rather than when due."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S")
    fire_timers: bool = Field(default=False, alias="fireTimers")


class CancelBody(BaseModel):
    """Why (required, recorded in the audit log and sent to the saga)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S")


class ActionOut(BaseModel):
    outcome: str
    changed: bool
    message: str
    detail: dict[str, Any]


def _terminal(console: Console) -> Collection[str]:
    return frozenset().union(*console.final_states().values())


async def resume(console: Console, order_id: str, actor: str, reason: str,
                 fire_timers: bool) -> ActionResult:
    """Resume `order_id` on the console's store, audited as `actor`."""
    res = await console.resources()
    return await resume_order(res.store, res.audit, order_id, actor=actor, reason=reason,
                              terminal_states=_terminal(console), fire_timers=fire_timers)


@api.post("/orders/{order_id:path}/resume", response_model=ActionOut,
          responses=ACTION_RESPONSES)
async def api_resume(request: Request, who: Operator, order_id: OrderId,
                     body: ResumeBody) -> JSONResponse:
    """Resume a stuck order: its unsent outbox rows (due, failed for good, or held by a
    lost dispatcher) are sent now with a fresh retry budget; its timers are re-armed, or
    fired now with ``fireTimers``. A second resume with nothing to send changes nothing
    (``changed: false``). Audited with your name and reason."""
    result = await resume(console_of(request), order_id, who.name, body.reason.strip(),
                          body.fire_timers)
    return JSONResponse(result.as_dict(), status_code=STATUS.get(result.outcome, 200))


async def cancel(console: Console, order_id: str, actor: str, reason: str) -> ActionResult:
    """Send `order_id`'s saga an operator cancel, audited as `actor`."""
    res = await console.resources()
    settings = console.settings
    async with queue_transport(settings.aws(), settings.queue_prefix) as transport:
        return await cancel_order(res.store, res.audit, TransportSender(transport).send,
                                  order_id, actor=actor, reason=reason,
                                  models=console.models,
                                  queues=settings.console_saga_queues)


@api.post("/orders/{order_id:path}/cancel", response_model=ActionOut, responses={
    **ACTION_RESPONSES,
    409: {"description": "The order has ended, or its saga does not handle an operator "
                         "cancel: nothing changed"},
    503: {"description": "The queue did not take the cancel: nothing changed"}})
async def api_cancel(request: Request, who: Operator, order_id: OrderId,
                     body: CancelBody) -> JSONResponse:
    """Cancel an order through its saga: an ``OperatorCancel`` on the saga's queue; the
    saga undoes what was done and ends canceled (``operator_canceled``). A second cancel
    while the first is under way sends nothing (``changed: false``). Audited."""
    result = await cancel(console_of(request), order_id, who.name, body.reason.strip())
    return JSONResponse(result.as_dict(), status_code=STATUS.get(result.outcome, 200))


async def retry(console: Console, order_id: str, actor: str, reason: str) -> ActionResult:
    """Re-publish `order_id`'s hand-offs that never started, audited as `actor`."""
    res = await console.resources()
    return await retry_handoff(res.store, res.audit, order_id, actor=actor, reason=reason,
                               terminal_states=_terminal(console))


@api.post("/orders/{order_id:path}/retry-handoff", response_model=ActionOut,
          responses=ACTION_RESPONSES)
async def api_retry_handoff(request: Request, who: Operator, order_id: OrderId,
                            body: CancelBody) -> JSONResponse:
    """Put the order's hand-offs whose workflow never started on the bus again, with the
    same hand-off ids (through the outbox: the workers send it). None such:
    ``changed: false``. Audited."""
    result = await retry(console_of(request), order_id, who.name, body.reason.strip())
    return JSONResponse(result.as_dict(), status_code=STATUS.get(result.outcome, 200))


async def abort(console: Console, order_id: str, actor: str, reason: str) -> ActionResult:
    """Stop `order_id`'s running supervisor executions, audited as `actor`."""
    res = await console.resources()
    return await abort_execution(res.store, res.audit, res.sfn, order_id, actor=actor,
                                 reason=reason, terminal_states=_terminal(console))


@api.post("/orders/{order_id:path}/abort", response_model=ActionOut, responses={
    **ACTION_RESPONSES,
    503: {"description": "Step Functions did not answer: the executions not stopped are "
                         "as they were"}})
async def api_abort(request: Request, who: Operator, order_id: OrderId,
                    body: CancelBody) -> JSONResponse:
    """Abort the order's running supervisor executions: StopExecution with error
    ``OperatorAborted`` and "NAME: REASON" as cause. None running: ``changed: false``.
    Audited."""
    result = await abort(console_of(request), order_id, who.name, body.reason.strip())
    return JSONResponse(result.as_dict(), status_code=STATUS.get(result.outcome, 200))


def _order_url(order_id: str) -> str:
    return f"/orders/{quote(order_id, safe='')}"


def _form_reason(order_id: str, acting: FormAction) -> str:
    """The order id checked and the form's reason (required), for every action form."""
    if not order_id or len(order_id) > ID_MAX:
        raise PageProblem(400, "an order id has 1 to 200 characters", who=acting.who)
    reason = str(acting.form.get("reason") or "").strip()[:2000]
    if not reason:
        raise PageProblem(400, "say why (a reason is required)", who=acting.who)
    return reason


@pages.post("/orders/{order_id:path}/resume")
async def resume_page(request: Request, order_id: str, acting: Operating) -> Response:
    """The order page's resume form: back to the order with what came of it."""
    from ._pages import redirect

    reason = _form_reason(order_id, acting)
    result = await resume(console_of(request), order_id, acting.who.name, reason,
                          acting.form.get("fireTimers") == "yes")
    if result.outcome == "not_found":
        raise PageProblem(404, result.message, who=acting.who)
    return redirect(_order_url(order_id), result.message)


@pages.post("/orders/{order_id:path}/cancel")
async def cancel_page(request: Request, order_id: str, acting: Operating) -> Response:
    """The order page's cancel form: back to the order with what came of it."""
    from ._pages import redirect

    reason = _form_reason(order_id, acting)
    result = await cancel(console_of(request), order_id, acting.who.name, reason)
    if result.outcome in ("not_found", "failed"):
        raise PageProblem(STATUS[result.outcome], result.message, who=acting.who)
    return redirect(_order_url(order_id), result.message)


@pages.post("/orders/{order_id:path}/abort")
async def abort_page(request: Request, order_id: str, acting: Operating) -> Response:
    """The order page's abort form: back to the order with what came of it."""
    from ._pages import redirect

    reason = _form_reason(order_id, acting)
    result = await abort(console_of(request), order_id, acting.who.name, reason)
    if result.outcome in ("not_found", "failed"):
        raise PageProblem(STATUS[result.outcome], result.message, who=acting.who)
    return redirect(_order_url(order_id), result.message)


@pages.post("/orders/{order_id:path}/retry-handoff")
async def retry_page(request: Request, order_id: str, acting: Operating) -> Response:
    """The order page's retry form: back to the order with what came of it."""
    from ._pages import redirect

    reason = _form_reason(order_id, acting)
    result = await retry(console_of(request), order_id, acting.who.name, reason)
    if result.outcome == "not_found":
        raise PageProblem(404, result.message, who=acting.who)
    return redirect(_order_url(order_id), result.message)
