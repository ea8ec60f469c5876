"""The Order-to-Cash saga as a Restate workflow, for ``benchmarks/peer_restate.py`` (a
module of its own: the Restate SDK reads the handler's annotations, so ``restate`` must be
importable where they are evaluated)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import restate
from _saga_steps import CANCELED, COMPLETED, OrderSteps

from core_saga.persistence import AsyncpgStore


def build_app(saga: OrderSteps, store: AsyncpgStore) -> Any:
    """The Restate app: the ``OrderSaga`` workflow, its steps durable actions."""
    def action(body: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def run(*args: Any) -> Any:
            async with store.transaction() as tx:
                return await body(tx, *args)
        return run

    place_order, charge, reserve = (action(saga.place_order), action(saga.charge),
                                    action(saga.reserve))
    refund, ship, outcome = action(saga.refund), action(saga.ship), action(saga.outcome)
    done = restate.RunOptions(type_hint=type(None))
    verdict = restate.RunOptions(type_hint=bool)
    text = restate.RunOptions(type_hint=str)
    workflow = restate.Workflow("OrderSaga")

    @workflow.main()
    async def run(ctx: restate.WorkflowContext, i: int) -> str:
        """charge → reserve → ship; refund when the stock is missing."""
        order_id = ctx.key()
        await ctx.run_typed("place_order", place_order, done, order_id, i)
        if not await ctx.run_typed("charge", charge, verdict, order_id, i):
            await ctx.run_typed("outcome", outcome, done, order_id, CANCELED,
                                "payment_declined", "payment declined: insufficient_funds",
                                None)
            return CANCELED
        if not await ctx.run_typed("reserve", reserve, verdict, order_id, i):
            await ctx.run_typed("refund", refund, done, order_id)
            await ctx.run_typed("outcome", outcome, done, order_id, CANCELED,
                                "inventory_unavailable", "inventory unavailable", None)
            return CANCELED
        tracking_id = await ctx.run_typed("ship", ship, text, order_id, i)
        await ctx.run_typed("outcome", outcome, done, order_id, COMPLETED, None, None,
                            tracking_id)
        return COMPLETED

    return restate.app(services=[workflow])
