"""The order service's HTTP API (FastAPI).

- ``POST /orders`` → ``202 {"orderId": …, "status": "Submitted"}``. An
  ``Idempotency-Key`` header makes retries safe: the same key and body again returns
  the first order (``replayed: true``) and creates nothing; the same key with another
  body is a ``409``.
- Bad input → ``422``; each problem names its field (``"field": "lines[0].quantity"``).
- ``GET /orders/{orderId}`` → the order, with ``status`` Submitted, Completed or
  Canceled and, when canceled, the ``reason``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from core_saga.tracing import instrument_asgi

from .models import OrderLineView, OrderRequest, OrderView, SubmitResponse
from .repository import OrderRecord
from .service import IdempotencyKeyReused, OrderService


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


def create_app(service: OrderService) -> FastAPI:
    """The order service's HTTP app over `service`."""
    app = FastAPI(title="Order-to-Cash: order service", version="1")
    # POST /orders is the root span of the order's trace (docs/observability.md)
    instrument_asgi(app)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": field_path(tuple(error.get("loc", ()))),
                     "message": error.get("msg", ""), "type": error.get("type", ""),
                     "loc": list(error.get("loc", ()))} for error in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": problems})

    @app.post("/orders", status_code=202, response_model=SubmitResponse,
              responses={409: {"description": "Idempotency-Key reused for another request"},
                         422: {"description": "Invalid order; each problem names its field"}})
    async def submit_order(
        order: OrderRequest, response: Response,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1,
                                                      max_length=200)] = None,
    ) -> SubmitResponse:
        """Accept an order: it is stored and handed to the saga; follow it with
        ``GET /orders/{orderId}``."""
        try:
            done = await service.submit(order, idempotency_key=idempotency_key)
        except IdempotencyKeyReused as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        response.headers["Location"] = f"/orders/{done.order_id}"
        return SubmitResponse(order_id=done.order_id, status="Submitted",
                              replayed=not done.created)

    @app.get("/orders/{order_id}", response_model=OrderView,
             responses={404: {"description": "No such order"}})
    async def get_order(order_id: str) -> OrderView:
        """The order and its outcome."""
        found = await service.get(order_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no order {order_id!r}")
        return _view(found)

    return app
