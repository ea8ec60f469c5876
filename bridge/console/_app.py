"""The ops console: a FastAPI app of two routers (the JSON API and the HTML pages), the
security headers, and the answers for outages (pages and 503s, never a bare 500)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from bridge.reviews import StepFunctions
from core_saga import Saga

from . import _actions, _api, _errors, _pages
from ._deps import PageProblem
from ._limits import BodySizeLimit
from ._resources import Console, ConsoleUnavailable
from ._settings import ConsoleSettings

log = logging.getLogger("bridge.console")

STATIC = Path(__file__).with_name("static")
MAX_BODY = 64_000
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
"""No inline script or style anywhere: the pages load /static/console.css and
/static/console.js, and the graphs are SVG styled by classes."""
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def _api_path(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig  # never the statement and its parameters
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _unavailable(request: Request, message: str) -> Response:
    log.warning("console: %s", message)
    if _api_path(request):
        return JSONResponse({"detail": message}, status_code=503,
                            headers={"Retry-After": "10"})
    return _pages.page(request, "error.html", 503, message=message)


def _install_handlers(app: FastAPI, console: Console) -> None:
    @app.exception_handler(PageProblem)
    async def page_problem(request: Request, exc: PageProblem) -> Response:
        if exc.status != 401 and exc.who is None:
            exc.who = await _pages.whoever(request)
        return _pages.problem_page(request, exc)

    @app.exception_handler(ConsoleUnavailable)
    async def unavailable(request: Request, exc: ConsoleUnavailable) -> Response:
        return _unavailable(request, exc.message)

    @app.exception_handler(BotoCoreError)
    async def aws_unreachable(request: Request, exc: BotoCoreError) -> Response:
        return _unavailable(request, f"Step Functions cannot be reached ({_first_line(exc)})"
                                     ": nothing was decided and the review is still "
                                     "pending; try again when AWS answers")

    @app.exception_handler(ClientError)
    async def aws_refused(request: Request, exc: ClientError) -> Response:
        code = exc.response.get("Error", {}).get("Code", "?")
        return _unavailable(request, f"Step Functions refused the call ({code}: "
                                     f"{_first_line(exc)}); nothing was decided and the "
                                     "review is still pending")

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, exc: SQLAlchemyError) -> Response:
        text = _first_line(exc)
        if "no such table" in text or "does not exist" in text:
            return _unavailable(request, f"the database {console.database} lacks a table "
                                         f"({text}): run `stepsaga migrate`")
        return _unavailable(request, f"the database {console.database} did not answer: "
                                     f"{text}")

    @app.exception_handler(OSError)
    async def connection_error(request: Request, exc: OSError) -> Response:
        return _unavailable(request, f"a service did not answer: {type(exc).__name__}: "
                                     f"{_first_line(exc)}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _api_path(request) or (exc.status_code in (401,) and not request.cookies):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                headers=exc.headers)
        return _pages.problem_page(request, PageProblem(exc.status_code, str(exc.detail)))


def create_app(settings: ConsoleSettings | None = None, *,
               sagas: list[type[Saga[Any]]] | None = None,
               sfn: StepFunctions | None = None) -> Any:
    """The console app (ASGI). `sagas` add graphs and summary columns (with
    ``STEPSAGA_CONSOLE_SAGAS``); `sfn` replaces the Step Functions client made from the
    settings. With ``console_trusted_proxies`` set, the app honours those proxies'
    forwarded headers (scheme and client address)."""
    settings = settings or ConsoleSettings()
    console = Console(settings, sagas=sagas, sfn=sfn)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await console.close()

    app = FastAPI(
        title=settings.console_title, version="2", lifespan=lifespan,
        # No /docs or /redoc: they load their scripts from a CDN. The spec is at
        # /openapi.json for any OpenAPI viewer.
        docs_url=None, redoc_url=None,
        description="Where is this order, and why? Orders, their timelines, and the "
                    "pending manual reviews. Every call needs `Authorization: Bearer "
                    "<token>`; approving and rejecting need the approver role.")
    app.state.console = console
    app.include_router(_api.router)
    app.include_router(_errors.api)
    app.include_router(_pages.router)
    app.include_router(_errors.pages)
    app.include_router(_actions.api)
    app.include_router(_actions.pages)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    _install_handlers(app, console)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.middleware("http")
    async def security_headers(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]
                               ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers["cache-control"] = "no-store"
        if request.url.scheme == "https":
            response.headers.setdefault("strict-transport-security",
                                        "max-age=31536000; includeSubDomains")
        return response

    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY)
    if settings.console_trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware,
                           trusted_hosts=settings.console_trusted_proxies)
    return app
