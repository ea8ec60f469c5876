"""Schemathesis against the console's OpenAPI spec, in process (ASGI): whatever it
generates, with and without a token, the console answers without a server error and as
its spec says."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bridge.console import ConsoleSettings, create_app
from bridge.contracts import ReviewTask
from bridge.reviews import ReviewStore
from core_saga.persistence import HistoryRecord, InstanceRecord, SqlStore
from tests.console.support import SAGA_TYPE, ReviewedOrderSaga

APPROVER = "approver-token-456"
DATABASE = Path(tempfile.mkdtemp(prefix="console-schemathesis-")) / "console.db"
URL = f"sqlite+aiosqlite:///{DATABASE}"


async def _seed() -> None:
    store = SqlStore.from_url(URL)
    await store.create_schema()
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        await tx.insert(InstanceRecord(SAGA_TYPE, "o-1", "AwaitingReview", 1, {"handoffs": []},
                                       now, now))
        await tx.add_history([HistoryRecord(SAGA_TYPE, "o-1", "OrderPlaced", "Initial",
                                            "AwaitingReview", "m-1", "urn:x:OrderPlaced:v1",
                                            now)])
    reviews = ReviewStore.open(store)
    await reviews.create_table()
    await reviews.record(ReviewTask(handoff_id="h", correlation_id="o-1", saga_type=SAGA_TYPE,
                                    reason="big", payload={}, escalated=False,
                                    execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:x",
                                    task_token="secret-token"), now)
    await store.close()


asyncio.run(_seed())
app = create_app(ConsoleSettings(database_url=URL, console_tokens={  # type: ignore[arg-type]
    APPROVER: "ann:approver"}), sagas=[ReviewedOrderSaga])
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_with_a_token(case: schemathesis.Case) -> None:
    response = case.call_and_validate(headers={"Authorization": f"Bearer {APPROVER}"},
                                      checks=CHECKS)
    assert "secret-token" not in response.text


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_without_a_token(case: schemathesis.Case) -> None:
    response = case.call_and_validate(checks=CHECKS)
    assert 400 <= response.status_code < 500  # 401, or bad input / method refused first
