"""The order service's HTTP API (FastAPI).

- ``POST /orders`` → ``202 {"orderId": …, "status": "Submitted"}``. An
  ``Idempotency-Key`` header makes retries safe: the same key and body again returns
  the first order (``replayed: true``) and creates nothing; the same key with another
  body is a ``409``. Keys belong to the caller: with API keys configured, one client's
  key never finds another client's order.
- Bad input → ``422``; each problem names its field (``"field": "lines[0].quantity"``),
  control characters included (a NUL is refused at the door, not stored).
- A body over ``max_body_bytes`` (64 KiB) → ``413``.
- ``GET /orders/{orderId}`` → the order, with ``status`` Submitted, Completed or
  Canceled and, when canceled, the ``reason``; another client's order is a ``404``.
- API keys (optional): ``create_app(service, api_keys={"key": "client-name"})`` or
  ``STEPSAGA_ORDERS_API_KEYS='{"key": "client-name"}'``; then every call needs
  ``X-API-Key``, else ``401``.
"""

from __future__ import annotations

import hmac
import json
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from bridge.console import BodySizeLimit
from core_saga.tracing import instrument_asgi

from .models import OrderLineView, OrderRequest, OrderView, SubmitResponse, plain_text
from .repository import OrderRecord
from .service import IdempotencyKeyReused, OrderService

MAX_BODY_BYTES = 64 * 1024
"""The largest order body taken (an order of 100 lines is under 10 KiB)."""
API_KEY_HEADER = "X-API-Key"
_KEY = re.compile(r"^[\x21-\x7e]{16,200}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x20-\x7e]{1,200}$")


def api_keys_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The API keys of ``STEPSAGA_ORDERS_API_KEYS`` (JSON: key → client name), checked;
    ValueError naming the problem (never a key). Empty when unset."""
    raw = (environ if environ is not None else os.environ).get("STEPSAGA_ORDERS_API_KEYS")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"STEPSAGA_ORDERS_API_KEYS is not JSON ({exc.msg})") from None
    if not isinstance(parsed, dict):
        raise ValueError('STEPSAGA_ORDERS_API_KEYS must be {"key": "client name", ...}')
    return check_api_keys(parsed)


def check_api_keys(keys: Mapping[Any, Any]) -> dict[str, str]:
    """`keys` (key → client name) if every key is 16-200 visible ASCII characters and
    every name plain text; ValueError naming the entry by number otherwise."""
    for number, (key, client) in enumerate(keys.items(), 1):
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"API key #{number} must be 16 to 200 visible ASCII characters")
        if not isinstance(client, str):
            raise ValueError(f"API key #{number}: the client name must be a string")
        try:
            plain_text(client)
        except ValueError as exc:
            raise ValueError(f"API key #{number}: the client name {exc}") from None
    return dict(keys)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "lines", 0, "quantity")`` → ``lines[0].quantity``."""
    path = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def _view(order: OrderRecord) -> OrderView:
    return OrderView(
        order_id=order.order_id, customer_id=order.customer_id,
        status=order.status,
        amount=order.amount, currency=order.currency,
        lines=[OrderLineView(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
               for line in order.lines],
        risk_flags=list(order.risk_flags), cancel_code=order.cancel_code, reason=order.reason,
        tracking_id=order.tracking_id, created_at=order.created_at, updated_at=order.updated_at)


def create_app(service: OrderService, *, api_keys: Mapping[str, str] | None = None,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The order service's HTTP app over `service`. With `api_keys` (key → client
    name), every call needs ``X-API-Key``, and idempotency keys and orders belong to
    the client that made them."""
    keys = check_api_keys(api_keys or {})
    app = FastAPI(title="Order-to-Cash: order service", version="1")
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)

    def caller(api_key: Annotated[str | None, Header(
            alias=API_KEY_HEADER,
            description="Your API key (when the service has API keys)")] = None) -> str:
        """The calling client's name ("" when the service has no API keys)."""
        if not keys:
            return ""
        found = ""
        given = (api_key or "").encode()
        for key, client in keys.items():
            if hmac.compare_digest(key.encode(), given):
                found = client
        if not found:
            raise HTTPException(401, f"a known {API_KEY_HEADER} header is required",
                                headers={"WWW-Authenticate": API_KEY_HEADER})
        return found
    # POST /orders is the root span of the order's trace (docs/observability.md)
    instrument_asgi(app)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": field_path(tuple(error.get("loc", ()))),
                     "message": error.get("msg", ""), "type": error.get("type", ""),
                     "loc": list(error.get("loc", ()))} for error in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": problems})

    @app.post("/orders", status_code=202, response_model=SubmitResponse,
              responses={401: {"description": "No or unknown X-API-Key (when required)"},
                         409: {"description": "Idempotency-Key reused for another request"},
                         413: {"description": "The body is too large"},
                         422: {"description": "Invalid order; each problem names its field"}})
    async def submit_order(
        order: OrderRequest, response: Response,
        idempotency_key: Annotated[str | None, Header(
            alias="Idempotency-Key", min_length=1, max_length=200,
            pattern=_IDEMPOTENCY_KEY.pattern,
            description="Printable ASCII, not blank; yours alone")] = None,
        client: str = Depends(caller),
    ) -> SubmitResponse:
        """Accept an order: it is stored and handed to the saga; follow it with
        ``GET /orders/{orderId}``."""
        if idempotency_key is not None and not idempotency_key.strip():
            raise RequestValidationError([{
                "loc": ("header", "Idempotency-Key"), "msg": "must not be blank",
                "type": "value_error"}])
        try:
            done = await service.submit(order, idempotency_key=idempotency_key,
                                        client=client)
        except IdempotencyKeyReused as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        response.headers["Location"] = f"/orders/{done.order_id}"
        return SubmitResponse(order_id=done.order_id, status="Submitted",
                              replayed=not done.created)

    @app.get("/orders/{order_id}", response_model=OrderView,
             responses={401: {"description": "No or unknown X-API-Key (when required)"},
                        404: {"description": "No such order (or another client's)"},
                        422: {"description": "Not an order id"}})
    async def get_order(
        order_id: Annotated[str, PathParam(min_length=1, max_length=64,
                                           pattern=r"^[^\x00-\x1f\x7f]+$")],
        client: str = Depends(caller),
    ) -> OrderView:
        """The order and its outcome."""
        found = await service.get(order_id, client=client)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no order {order_id!r}")
        return _view(found)

    return app
