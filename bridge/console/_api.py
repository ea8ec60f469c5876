"""The console's JSON API (``/api``): orders, an order in detail, reviews, decisions,
the audit log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from bridge.reviews import DecisionResult

from ._auth import Principal
from ._deps import api_action, api_reader, console_of
from ._views import (
    AuditOut,
    DecisionBody,
    DecisionOut,
    OrderDetail,
    OrderFilters,
    OrderList,
    OrderState,
    RejectBody,
    ReviewList,
    list_orders,
    order_detail,
    order_state,
    pending_reviews,
    settle_expired,
)

ID_MAX = 200
STATE_PATTERN = r"^[A-Za-z0-9_.:-]{1,200}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
SECONDS = 10 * 365 * 86400

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or unknown bearer token"},
    403: {"description": "The caller lacks the role, or a browser session's request is "
                         "cross-site or without its CSRF token"},
    422: {"description": "Invalid input"},
    429: {"description": "Too many failed sign-ins from this address"},
    503: {"description": "The database or Step Functions cannot be reached; the detail "
                         "says what to do"},
}

Viewer = Annotated[Principal, Depends(api_reader("viewer"))]
Approver = Annotated[Principal, Depends(api_action("approver"))]
Operator = Annotated[Principal, Depends(api_action("operator"))]
"""An operator's state change (redrive, resume, cancel, retry, abort): CSRF-checked."""
ReviewId = Annotated[str, PathParam(pattern=UUID_PATTERN, description="A review id")]

router = APIRouter(prefix="/api", responses=ERRORS)


@router.get("/orders", response_model=OrderList, response_model_by_alias=True,
            tags=["orders"])
async def api_orders(
    request: Request, _: Viewer,
    state: Annotated[str | None, Query(pattern=STATE_PATTERN,
                                       description="Only orders in this state")] = None,
    saga_type: Annotated[str | None, Query(alias="sagaType", pattern=STATE_PATTERN)] = None,
    older_than: Annotated[int | None, Query(
        alias="olderThan", ge=0, le=SECONDS,
        description="Only orders created more than this many seconds ago")] = None,
    stuck: Annotated[bool | None, Query(
        description="true: only orders in a state that is not final for longer than "
                    "stuckAfter; false: only the others")] = None,
    final: Annotated[bool | None, Query(
        description="true: only orders that have ended; false: only running ones")] = None,
    stuck_after: Annotated[int | None, Query(
        alias="stuckAfter", ge=1, le=SECONDS,
        description="Seconds in one state after which an order is stuck")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=ID_MAX,
                                   description="Only order ids containing this "
                                               "(case-insensitive)")] = None,
    sort: Annotated[Literal["idle", "recent", "newest", "oldest", "id"], Query(
        description="idle: the longest unchanged first (default); recent, newest, "
                    "oldest, id")] = "idle",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> OrderList:
    """Orders, filtered, sorted and paged in the database, with the total and the
    counts per state."""
    return await list_orders(console_of(request), OrderFilters(
        state=state, saga_type=saga_type, older_than=older_than, stuck=stuck, final=final,
        stuck_after=stuck_after, q=q, sort=sort, limit=limit, offset=offset))


@router.get("/order-state/{order_id:path}", response_model=OrderState,
            response_model_by_alias=True, tags=["orders"],
            responses={404: {"description": "No such order"}})
async def api_order_state(
    request: Request, _: Viewer,
    order_id: Annotated[str, PathParam(min_length=1, max_length=ID_MAX)],
) -> OrderState:
    """An order's state and a fingerprint that changes whenever its timeline does: cheap
    to poll (no Step Functions call); the order page polls it to refresh itself."""
    found = await order_state(console_of(request), order_id)
    if found is None:
        raise HTTPException(404, f"no order {order_id!r}")
    return found


@router.get("/orders/{order_id:path}", response_model=OrderDetail,
            response_model_by_alias=True, tags=["orders"],
            responses={404: {"description": "No such order"}})
async def api_order(
    request: Request, _: Viewer,
    order_id: Annotated[str, PathParam(min_length=1, max_length=ID_MAX,
                                       description="The order's correlation id (any "
                                                   "characters, URL-encoded)")],
    saga_type: Annotated[str | None, Query(alias="sagaType", pattern=STATE_PATTERN)] = None,
) -> OrderDetail:
    """One order: its state, why it is there, its timeline, graph and links."""
    page = await order_detail(console_of(request), order_id, saga_type)
    if page is None:
        raise HTTPException(404, f"no order {order_id!r}")
    return page.detail


@router.get("/reviews", response_model=ReviewList, tags=["reviews"])
async def api_reviews(
    request: Request, _: Viewer,
    status: Annotated[Literal["pending", "approved", "rejected", "expired", "superseded",
                              "all"], Query()] = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ReviewList:
    """Manual reviews (pending by default), oldest first. A review whose workflow no
    longer waits for it is ``expired``. Task tokens are never part of the answer."""
    console = console_of(request)
    if status == "pending":
        found = await pending_reviews(console, limit)
    else:
        res = await console.resources()
        listed = await res.reviews.list_reviews(status=None if status == "all" else status,
                                                limit=limit)
        found = await settle_expired(console, res, listed, ask_aws=False)
    return ReviewList(reviews=[r.as_dict() for r in found])


DECISION_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON"},
    404: {"description": "No such review"},
    409: {"description": "The review expired: the workflow no longer waits for it",
          "model": DecisionOut},
    415: {"description": "The body is not JSON"}}


def _answer(result: DecisionResult) -> JSONResponse:
    code = {"not_found": 404, "expired": 409}.get(result.result, 200)
    return JSONResponse(result.as_dict(), status_code=code)


@router.post("/reviews/{review_id}/approve", response_model=DecisionOut,
             responses=DECISION_RESPONSES, tags=["reviews"])
async def api_approve(request: Request, who: Approver, review_id: ReviewId,
                      body: DecisionBody | None = None) -> JSONResponse:
    """Approve: SendTaskSuccess with the stored token. A second click changes
    nothing (``changed: false``, and the message says why). Audited with your name."""
    res = await console_of(request).resources()
    return _answer(await res.service.approve(
        review_id.lower(), reviewer=who.name, comment=body.comment if body else None))


@router.post("/reviews/{review_id}/reject", response_model=DecisionOut,
             responses=DECISION_RESPONSES, tags=["reviews"])
async def api_reject(request: Request, who: Approver, review_id: ReviewId,
                     body: RejectBody) -> JSONResponse:
    """Reject with a reason (required) and an optional comment: SendTaskFailure
    (ReviewRejected, "rejected by NAME: REASON"); idempotent; audited with your name."""
    res = await console_of(request).resources()
    return _answer(await res.service.reject(review_id.lower(), reviewer=who.name,
                                            reason=body.reason, comment=body.comment))


@router.get("/audit", response_model=AuditOut, tags=["audit"])
async def api_audit(
    request: Request, _: Viewer,
    order_id: Annotated[str | None, Query(alias="orderId", min_length=1,
                                          max_length=ID_MAX)] = None,
    actor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AuditOut:
    """The audit log, the newest first: who decided what, when, why, and the result."""
    res = await console_of(request).resources()
    entries, total = await res.audit.entries(correlation_id=order_id, actor=actor,
                                             limit=limit, offset=offset)
    return AuditOut(entries=[e.as_dict() for e in entries], total=total)
