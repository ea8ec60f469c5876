"""The role and cross-site machinery as FastAPI dependencies, so that a new action is
one route: ``who: Annotated[Principal, Depends(api_action("operator"))]`` for the API,
``acting: Annotated[FormAction, Depends(form_action("operator"))]`` for a page's form.

- ``api_reader(role)``: a bearer token or a session with `role` (401 / 403 as JSON).
- ``api_action(role)``: the same, and a session must also send its CSRF token in
  ``X-CSRF-Token`` from a same-origin page; a body must be JSON (415 otherwise).
- ``page_reader(role)``: a session (or a bearer token) with `role`; otherwise the
  sign-in page (401) or a 403 page.
- ``form_action(role)``: a page reader posting a form from the console's own origin
  with the session's CSRF token; gives the parsed form.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi import HTTPException, Request

from ._auth import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    Principal,
    bearer_of,
    client_of,
    csrf_ok,
    lookup,
    same_origin,
)
from ._resources import Console
from ._settings import Role
from ._views import now

MAX_FORM = 64_000


class PageProblem(Exception):
    """A page cannot be shown to this caller: the sign-in form (401) or a message."""

    def __init__(self, status: int, message: str, *, who: Principal | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.who = who


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def too_many(console: Console) -> HTTPException:
    return HTTPException(429, "too many failed sign-ins from this address; wait and try "
                              "again", headers={"Retry-After": str(console.limiter.window_seconds)})


async def principal_of(request: Request) -> Principal | None:
    """The caller by bearer token (the API) or session cookie (pages), or None. A bearer
    token that matches nothing counts as a failed sign-in."""
    console = console_of(request)
    bearer = bearer_of(request)
    if bearer is not None:
        client = client_of(request)
        if console.limiter.blocked(client):
            raise too_many(console)
        found = lookup(console.settings.console_tokens, bearer)
        if found is None:
            console.limiter.failed(client)
            return None
        return Principal(found[1].name, found[1])
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    res = await console.resources()
    return await res.sessions.principal(cookie, now())


def _unauthenticated() -> HTTPException:
    return HTTPException(401, "authentication required: send Authorization: Bearer <token>",
                         headers={"WWW-Authenticate": 'Bearer realm="stepsaga"'})


def api_reader(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller, who must have `role`."""
    async def dependency(request: Request) -> Principal:
        who = await principal_of(request)
        if who is None:
            raise _unauthenticated()
        if not who.can(role):
            raise HTTPException(403, f"{who.name} lacks the {role} role")
        return who
    return dependency


def api_action(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency for a state change through the API: the caller with `role`; on a
    session (a browser), also the CSRF token and a same-origin request; a body must be
    JSON."""
    read = api_reader(role)

    async def dependency(request: Request) -> Principal:
        who = await read(request)
        if who.csrf_token is not None:
            problem = same_origin(request)
            if problem is not None:
                raise HTTPException(403, problem)
            if not csrf_ok(who, request.headers.get(CSRF_HEADER)):
                raise HTTPException(403, f"a session needs its CSRF token in {CSRF_HEADER}")
        length = request.headers.get("content-length")
        has_body = (length is not None and length != "0") or \
            "transfer-encoding" in request.headers
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if has_body and kind != "application/json":
            raise HTTPException(415, "the body must be JSON (Content-Type: application/json)")
        return who
    return dependency


def page_reader(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency for a page: the caller with `role` (a session, or a bearer token —
    ``curl`` — which a browser never sends on its own)."""
    async def dependency(request: Request) -> Principal:
        who = await principal_of(request)
        if who is None:
            raise PageProblem(401, "sign in")
        if not who.can(role):
            raise PageProblem(403, f"{who.name} lacks the {role} role.", who=who)
        return who
    return dependency


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body (small; no multipart), first value of each field."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise PageProblem(415, "the form must be sent as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise PageProblem(413, "the form is too large")
    parsed = parse_qs(body.decode(errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


@dataclass(frozen=True)
class FormAction:
    """Who posted a form, and its fields."""

    who: Principal
    form: dict[str, Any]


def form_action(role: Role) -> Callable[[Request], Awaitable[FormAction]]:
    """A dependency for a form post that changes something: a same-origin request from
    a session with `role` and the session's CSRF token in the form."""
    read = page_reader(role)

    async def dependency(request: Request) -> FormAction:
        problem = same_origin(request)
        if problem is not None:
            raise PageProblem(403, problem)
        who = await read(request)
        form = await read_form(request)
        if not csrf_ok(who, form.get(CSRF_FIELD)):
            raise PageProblem(403, "the form is stale or not from this console (CSRF "
                                   "token); reload the page and try again", who=who)
        return FormAction(who, form)
    return dependency
