"""The order service's HTTP API (httpx over ASGI), with the whole app in the harness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from core_saga.persistence import SagaStore
from examples.order_to_cash import OrderSaga
from examples.order_to_cash.messages import OrderSubmitted
from examples.order_to_cash.orders import create_app, field_path

from .support import OrderToCash, start_order_to_cash

GOOD: dict[str, Any] = {
    "customerId": "c-1", "currency": "EUR", "amount": "33.00",
    "lines": [{"sku": "BOOK-1", "quantity": 2, "unitPrice": "12.50"},
              {"sku": "MUG-1", "quantity": 1, "unitPrice": "8.00"}],
}


@asynccontextmanager
async def client_for(store: SagaStore) -> AsyncIterator[tuple[httpx.AsyncClient, OrderToCash]]:
    app = await start_order_to_cash(store)
    transport = httpx.ASGITransport(app=create_app(app.orders))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        yield client, app


def submitted_count(app: OrderToCash) -> int:
    return sum(1 for e in app.h.consumed if isinstance(e.message, OrderSubmitted))


async def test_post_accepts_the_order_and_get_follows_it_to_completed(store: SagaStore) -> None:
    async with client_for(store) as (client, app):
        response = await client.post("/orders", json=GOOD)
        assert response.status_code == 202
        body = response.json()
        order_id = body["orderId"]
        assert body == {"orderId": order_id, "status": "Submitted", "replayed": False}
        assert response.headers["location"] == f"/orders/{order_id}"
        assert (await client.get(f"/orders/{order_id}")).json()["status"] == "Submitted"
        await app.h.drain()
        view = (await client.get(f"/orders/{order_id}")).json()
        assert view["status"] == "Completed" and view["reason"] is None
        assert view["trackingId"].startswith("FAKEX-")
        assert view["amount"] == "33.00" and view["currency"] == "EUR"
        assert [line["sku"] for line in view["lines"]] == ["BOOK-1", "MUG-1"]
        await app.assert_books_balance(order_id)


async def test_a_canceled_order_shows_the_reason(store: SagaStore) -> None:
    async with client_for(store) as (client, app):
        response = await client.post("/orders", json={
            **GOOD, "amount": "120.00",
            "lines": [{"sku": "LAMP-1", "quantity": 3, "unitPrice": "40.00"}]})
        order_id = response.json()["orderId"]
        await app.h.drain()
        view = (await client.get(f"/orders/{order_id}")).json()
        assert (view["status"], view["cancelCode"], view["reason"]) == (
            "Canceled", "inventory_unavailable",
            "inventory unavailable: not enough stock of LAMP-1")
        await app.assert_books_balance(order_id)


@pytest.mark.parametrize(("change", "field"), [
    ({"lines": [{"sku": "BOOK-1", "quantity": 0, "unitPrice": "12.50"}]}, "lines[0].quantity"),
    ({"lines": [{"sku": "BOOK-1", "quantity": 1, "unitPrice": "-1"}]}, "lines[0].unitPrice"),
    ({"lines": [{"sku": "", "quantity": 1, "unitPrice": "1"}]}, "lines[0].sku"),
    ({"lines": []}, "lines"),
    ({"lines": [{"sku": "BOOK-1", "quantity": 1, "unitPrice": "1.005"}]}, "lines"),
    ({"amount": "33.01"}, "amount"),
    ({"currency": "eur"}, "currency"),
    ({"currency": "XYZ"}, "currency"),
    ({"customerId": None}, "customerId"),
    ({"riskFlags": "yes"}, "riskFlags"),
    ({"discount": "5"}, "discount"),
], ids=lambda v: v if isinstance(v, str) else "")
async def test_bad_input_gets_a_422_that_names_the_field(
        store: SagaStore, change: dict[str, Any], field: str) -> None:
    async with client_for(store) as (client, app):
        body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
        response = await client.post("/orders", json=body)
        assert response.status_code == 422, response.text
        problems = response.json()["detail"]
        assert field in [p["field"] for p in problems], problems
        assert all(p["message"] for p in problems)
        assert submitted_count(app) == 0


async def test_a_body_that_is_not_json_is_a_422_too(store: SagaStore) -> None:
    async with client_for(store) as (client, _):
        response = await client.post("/orders", content=b"{not json",
                                     headers={"content-type": "application/json"})
        assert response.status_code == 422


async def test_the_same_idempotency_key_twice_creates_one_order(store: SagaStore) -> None:
    async with client_for(store) as (client, app):
        headers = {"Idempotency-Key": "cart-7f3a"}
        first = await client.post("/orders", json=GOOD, headers=headers)
        await app.h.drain()
        again = await client.post("/orders", json=GOOD, headers=headers)
        assert (first.status_code, again.status_code) == (202, 202)
        assert again.json() == {**first.json(), "replayed": True}
        other = await client.post("/orders", json=GOOD)  # no key: a new order
        assert other.json()["orderId"] != first.json()["orderId"]
        await app.h.drain()
        assert submitted_count(app) == 2
        assert sum((await store.count_instances(OrderSaga.model.name)).values()) == 2


async def test_an_idempotency_key_reused_for_another_order_is_a_409(store: SagaStore) -> None:
    async with client_for(store) as (client, _):
        headers = {"Idempotency-Key": "cart-1"}
        assert (await client.post("/orders", json=GOOD, headers=headers)).status_code == 202
        response = await client.post("/orders", json={**GOOD, "customerId": "c-2"},
                                     headers=headers)
        assert response.status_code == 409 and "cart-1" in response.json()["detail"]


async def test_concurrent_requests_with_one_key_create_one_order(store: SagaStore) -> None:
    async with client_for(store) as (client, app):
        headers = {"Idempotency-Key": "double-click"}
        responses = await asyncio.gather(*(client.post("/orders", json=GOOD, headers=headers)
                                           for _ in range(5)))
        assert {r.status_code for r in responses} == {202}
        assert len({r.json()["orderId"] for r in responses}) == 1
        assert sorted(r.json()["replayed"] for r in responses) == [False] + [True] * 4
        await app.h.drain()
        assert submitted_count(app) == 1


async def test_an_unknown_order_is_a_404(store: SagaStore) -> None:
    async with client_for(store) as (client, _):
        assert (await client.get("/orders/nope")).status_code == 404


def test_field_paths_read_like_the_json() -> None:
    assert field_path(("body", "lines", 0, "unitPrice")) == "lines[0].unitPrice"
    assert field_path(("body",)) == "body"
    assert field_path(("header", "Idempotency-Key")) == "Idempotency-Key"
