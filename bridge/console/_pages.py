"""The console's HTML pages: sign in and out, the orders, an order, the reviews (each
with a confirmation step before a decision), and the audit log."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from core_saga.persistence import INSTANCE_ORDERS

from ._auth import COOKIE, CSRF_FIELD, Principal, client_of, lookup, same_origin
from ._deps import (
    FormAction,
    PageProblem,
    console_of,
    form_action,
    page_reader,
    principal_of,
    read_form,
)
from ._views import (
    OrderFilters,
    list_orders,
    now,
    order_detail,
    order_url,
    pending_reviews,
    settle_expired,
)

TEMPLATES = Path(__file__).with_name("templates")
STATE_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
UUID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                          r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_SECONDS = 10 * 365 * 86400

templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.globals["order_url"] = order_url
templates.env.globals["csrf_field"] = CSRF_FIELD

Viewer = Annotated[Principal, Depends(page_reader("viewer"))]
Approving = Annotated[FormAction, Depends(form_action("approver"))]
Operating = Annotated[FormAction, Depends(form_action("operator"))]
Acting = Annotated[FormAction, Depends(form_action("viewer"))]

router = APIRouter(include_in_schema=False)


def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    """A template rendered for the caller (``who``), with the flash message."""
    console = console_of(request)
    context.setdefault("who", None)
    context.setdefault("flash", request.query_params.get("msg"))
    context.setdefault("refresh", 0)
    context.setdefault("watch", None)
    context["title"] = console.settings.console_title
    return templates.TemplateResponse(request, name, context, status_code=status)


def problem_page(request: Request, problem: PageProblem) -> Response:
    """The page for a :class:`PageProblem`: the sign-in form, or the message."""
    if problem.status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return page(request, "login.html", 401, next=safe_next(target), error=None)
    return page(request, "error.html", problem.status, message=problem.message,
                who=problem.who)


def safe_next(target: str) -> str:
    """Only a local path: no open redirect."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def redirect(target: str, message: str | None = None) -> Response:
    if message:
        target += ("&" if "?" in target else "?") + f"msg={quote(message)}"
    return RedirectResponse(target, status_code=303)


def _number(value: str | None, name: str, minimum: int, maximum: int = MAX_SECONDS
            ) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise PageProblem(400, f"{name} must be a whole number, not {value[:40]!r}") from None
    if not minimum <= number <= maximum:
        raise PageProblem(400, f"{name} must be between {minimum} and {maximum}")
    return number


def _flag(value: str | None, name: str) -> bool | None:
    found = {"": None, None: None, "true": True, "false": False}.get(value, "bad")
    if found == "bad":
        raise PageProblem(400, f"{name} must be true or false")
    return found  # type: ignore[return-value]


# -- signing in and out ------------------------------------------------------------------------

@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/") -> Response:
    return page(request, "login.html", next=safe_next(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    console = console_of(request)
    problem = same_origin(request)
    if problem is not None:
        return page(request, "error.html", 403, message=problem)
    client = client_of(request)
    form = await read_form(request)
    target = safe_next(form.get("next", "/"))
    if console.limiter.blocked(client):
        return page(request, "login.html", 429, next=target,
                    error="Too many failed sign-ins from this address: wait a few minutes.")
    found = lookup(console.settings.console_tokens, form.get("token"))
    if found is None:
        console.limiter.failed(client)
        return page(request, "login.html", 401, next=target, error="Unknown token.")
    res = await console.resources()
    cookie, _ = await res.sessions.open(found[0], found[1], now())
    response = RedirectResponse(target, status_code=303)
    secure = console.settings.console_cookie_secure
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https" if secure is None else secure,
                        max_age=console.settings.console_session_seconds)
    return response


@router.post("/logout")
async def logout(request: Request, acting: Acting) -> Response:
    res = await console_of(request).resources()
    await res.sessions.revoke(acting.who, now())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# -- the orders --------------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
async def orders_page(request: Request, who: Viewer) -> Response:
    console = console_of(request)
    q = request.query_params
    state = q.get("state") or None
    if state is not None and not STATE_PATTERN.match(state):
        raise PageProblem(400, f"state {state[:80]!r} is not a state name")
    sort = q.get("sort") or "idle"
    if sort not in INSTANCE_ORDERS:
        raise PageProblem(400, f"sort must be one of {', '.join(INSTANCE_ORDERS)}")
    search = (q.get("q") or "").strip()[:200] or None
    size = console.settings.console_page_size
    page_number = _number(q.get("page"), "page", 1, 100_000) or 1
    filters = OrderFilters(
        state=state, stuck=_flag(q.get("stuck"), "stuck"), final=_flag(q.get("final"), "final"),
        older_than=_number(q.get("olderThan"), "olderThan", 0),
        stuck_after=_number(q.get("stuckAfter"), "stuckAfter", 1), q=search,
        sort=sort, limit=size, offset=(page_number - 1) * size)
    listed = await list_orders(console, filters)
    pending = await pending_reviews(console, 50)
    pages = max(1, -(-listed.total // size))
    kept = {k: v for k, v in q.items() if k != "page" and v}

    def page_link(number: int) -> str:
        query = "&".join(f"{quote(k)}={quote(v)}" for k, v in {**kept, "page": str(number)
                                                               }.items())
        return f"/?{query}"

    return page(request, "orders.html", listed=listed, filters=dict(q), who=who,
                pending=pending, page_number=page_number, pages=pages, page_link=page_link,
                sorts=INSTANCE_ORDERS)


@router.get("/orders/{order_id:path}", response_class=HTMLResponse)
async def order_page(request: Request, order_id: str, who: Viewer) -> Response:
    if not order_id or len(order_id) > 200:
        raise PageProblem(400, "an order id has 1 to 200 characters")
    console = console_of(request)
    found = await order_detail(console, order_id, None, draw=True)
    if found is None:
        raise PageProblem(404, f"no order {order_id!r}")
    return page(request, "order.html", order=found.detail, view=found, who=who,
                aws_local=console.settings.aws().local, refresh=found.refresh,
                watch=f"/api/order-state/{quote(order_id, safe='')}",
                fingerprint=found.fingerprint)


# -- reviews ----------------------------------------------------------------------------------

@router.get("/reviews", response_class=HTMLResponse)
async def reviews_page(request: Request, who: Viewer) -> Response:
    pending = await pending_reviews(console_of(request), 500)
    return page(request, "reviews.html", pending=pending, who=who)


async def _review_view(request: Request, review_id: str) -> dict[str, Any]:
    """What a reviewer sees of a review: the review, the order's summary and state."""
    if not UUID_PATTERN.match(review_id):
        raise PageProblem(400, "a review id is a UUID")
    console = console_of(request)
    res = await console.resources()
    review = await res.reviews.get(review_id.lower())
    if review is None:
        raise PageProblem(404, f"no review {review_id}")
    [review] = await settle_expired(console, res, [review], ask_aws=True) or [review]
    instances = [i for i in await res.store.instances_of(review.correlation_id)
                 if i.saga_type == review.saga_type]
    model = console.models.get(review.saga_type)
    summary = model.summary(instances[0].data) if model and instances else {}
    return {"review": review, "summary": summary,
            "state": instances[0].state if instances else None}


@router.get("/reviews/{review_id}", response_class=HTMLResponse)
async def review_page(request: Request, review_id: str, who: Viewer) -> Response:
    return page(request, "review.html", who=who, **await _review_view(request, review_id))


@router.post("/reviews/{review_id}/{action}")
async def decide(request: Request, review_id: str, action: str,
                 acting: Approving) -> Response:
    """Approve or reject from a form: the first post shows what is about to be decided
    and asks to confirm; the confirmed post decides."""
    if action not in ("approve", "reject"):
        raise PageProblem(400, f"unknown action {action[:40]!r}: approve or reject")
    form = acting.form
    comment = (form.get("comment") or "").strip()[:2000] or None
    reason = (form.get("reason") or "").strip()[:2000] or None
    view = await _review_view(request, review_id)
    target = safe_next(form.get("next") or order_url(view["review"].correlation_id))
    if action == "reject" and reason is None:
        return page(request, "review.html", 400, who=acting.who, next=target,
                    error="A rejection needs a reason.", comment=comment, **view)
    if form.get("confirm") != "yes":
        return page(request, "confirm.html", who=acting.who, action=action, next=target,
                    comment=comment, reason=reason, **view)
    res = await console_of(request).resources()
    if action == "approve":
        result = await res.service.approve(review_id.lower(), reviewer=acting.who.name,
                                           comment=comment)
    else:
        assert reason is not None
        result = await res.service.reject(review_id.lower(), reviewer=acting.who.name,
                                          reason=reason, comment=comment)
    return redirect(target, result.message)


# -- the audit log ---------------------------------------------------------------------------

@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, who: Viewer) -> Response:
    q = request.query_params
    order = (q.get("orderId") or "").strip()[:200] or None
    page_number = _number(q.get("page"), "page", 1, 100_000) or 1
    res = await console_of(request).resources()
    entries, total = await res.audit.entries(correlation_id=order, limit=100,
                                             offset=(page_number - 1) * 100)
    return page(request, "audit.html", who=who, entries=entries, total=total,
                order_id=order, page_number=page_number, pages=max(1, -(-total // 100)))


async def whoever(request: Request) -> Principal | None:
    """The caller of a page that anyone may see (errors), if signed in."""
    try:
        return await principal_of(request)
    except Exception:
        return None
