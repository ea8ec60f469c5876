"""MassTransit's Catch and Retry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from core_saga import BehaviorContext, Envelope, Event, RetryPolicy, Saga, State, VirtualClock
from core_saga.extension import Endpoint, SagaHandler
from core_saga.persistence import SqlStore
from core_saga.testing import SagaTestHarness

from .dsl_support import Data, Noticed, Start, by_id

# -- catch / retry ------------------------------------------------------------------------

class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


class FlakyService:
    def __init__(self, failures: int, exc: type[Exception] = Flaky) -> None:
        self.failures = failures
        self.calls = 0
        self.exc = exc

    async def __call__(self, ctx: BehaviorContext[Data, Start]) -> None:
        self.calls += 1
        ctx.saga.attempts = self.calls
        ctx.publish(Noticed(id=ctx.saga.correlation_id, value=self.calls))
        if self.calls <= self.failures:
            raise self.exc(f"attempt {self.calls} failed")


def _record_error(ctx: BehaviorContext[Data, Start]) -> None:
    ctx.saga.error = f"{type(ctx.exception).__name__}: {ctx.exception}"


def retry_saga(service: FlakyService, policy: RetryPolicy) -> Saga[Data]:
    class RetrySaga(Saga[Data]):
        ok = State(terminal=True)
        caught = State(terminal=True)
        start = Event(Start, correlate_by=by_id)

        def define(self) -> None:
            self.initially(
                self.when(self.start)
                .retry(policy, lambda b: b.then_async(service))
                .transition_to(self.ok)
                .catch(Flaky, lambda b: b.then(_record_error).transition_to(self.caught))
            )
    return RetrySaga()


async def test_retry_succeeds_after_transient_failures_and_keeps_one_attempts_output() -> None:
    service = FlakyService(failures=2)
    async with SagaTestHarness() as h:
        saga = retry_saga(service, RetryPolicy.interval(3, timedelta(seconds=5)))
        h.add_saga(saga, queue="retry")
        before = h.clock.now()
        await h.publish(Start(id="r"))
        await h.assert_state(type(saga), "r", "Ok")
        assert service.calls == 3
        assert h.clock.now() - before == timedelta(seconds=10)  # two 5 s waits
        # Only the successful attempt's publish survives.
        assert [m.value for m in h.published(Noticed)] == [3]


async def test_retry_exhausted_goes_to_catch() -> None:
    service = FlakyService(failures=10)
    async with SagaTestHarness() as h:
        saga = retry_saga(service, RetryPolicy.immediate(2))
        h.add_saga(saga, queue="retry")
        await h.publish(Start(id="r"))
        await h.assert_state(type(saga), "r", "Caught")
        instance = await h.instance(type(saga), "r")
        assert instance is not None and instance.error == "Flaky: attempt 3 failed"
        assert service.calls == 3


async def test_retry_ignore_filter_and_unmatched_catch_fault_the_message() -> None:
    service = FlakyService(failures=10, exc=Fatal)
    async with SagaTestHarness() as h:
        saga = retry_saga(service, RetryPolicy.immediate(5, ignore=(Fatal,)))
        h.add_saga(saga, queue="retry")
        await h.publish(Start(id="r"))
        assert service.calls == 1  # Fatal is not retried
        assert await h.instance(type(saga), "r") is None  # rolled back, not created
        [(queue, reason)] = h.faults
        assert queue == "retry" and "Fatal: attempt 1 failed" in reason
        [error] = await h.store.list_errors()
        assert error.error_type == "Fatal" and '"id":"r"' in error.body


def test_retry_policy_schedules() -> None:
    assert list(RetryPolicy.immediate(2).schedule()) == [0.0, 0.0]
    assert list(RetryPolicy.interval(3, timedelta(seconds=2)).schedule()) == [2.0, 2.0, 2.0]
    assert list(RetryPolicy.incremental(3, timedelta(seconds=1), timedelta(seconds=2))
                .schedule()) == [1.0, 3.0, 5.0]
    exact = RetryPolicy.exponential(5, timedelta(seconds=1), timedelta(seconds=10), jitter=False)
    assert list(exact.schedule()) == [1.0, 2.0, 4.0, 8.0, 10.0]
    jittered = list(RetryPolicy.exponential(5, timedelta(seconds=1),
                                            timedelta(seconds=10)).schedule())
    assert all(0 <= d <= cap for d, cap in zip(jittered, [1, 2, 4, 8, 10], strict=True))
    only = RetryPolicy.immediate(1, handle=(Flaky,))
    assert only.should_retry(Flaky()) and not only.should_retry(Fatal())
    with pytest.raises(ValueError, match="limit"):
        RetryPolicy(-1)



# -- a retry that waits holds no transaction -------------------------------------------------

class GateClock(VirtualClock):
    """Virtual time whose sleep waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.gate = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self.gate.wait()
        self.advance(timedelta(seconds=seconds))


class FailsOnceFor:
    """Fails the first call for one instance; every other call succeeds."""

    def __init__(self, victim: str) -> None:
        self.victim = victim
        self.calls: dict[str, int] = {}

    async def __call__(self, ctx: BehaviorContext[Data, Start]) -> None:
        cid = ctx.saga.correlation_id
        self.calls[cid] = self.calls.get(cid, 0) + 1
        ctx.saga.attempts = self.calls[cid]
        if cid == self.victim and self.calls[cid] == 1:
            raise Flaky(f"{cid}: first call fails")


def waiting_retry_saga(service: FailsOnceFor) -> Saga[Data]:
    class WaitingRetrySaga(Saga[Data]):
        ok = State(terminal=True)
        caught = State(terminal=True)
        start = Event(Start, correlate_by=by_id)

        def define(self) -> None:
            self.initially(
                self.when(self.start)
                .publish(lambda ctx: Noticed(id=ctx.saga.correlation_id, value=0))
                .retry(RetryPolicy.interval(2, timedelta(minutes=5)),
                       lambda b: b.then(service))
                .transition_to(self.ok)
                .catch(Exception, lambda b: b.then(_record_error).transition_to(self.caught)))
    return WaitingRetrySaga()


async def _until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


async def test_a_waiting_retry_does_not_block_other_instances_on_sqlite(tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'retry.db'}")
    await store.create_schema()
    service = FailsOnceFor("a")
    saga = waiting_retry_saga(service)
    name = type(saga).model.name
    clock = GateClock()
    endpoint = Endpoint("retry", [SagaHandler(saga)], store=store, clock=clock,
                        routes=lambda _urn: ())
    envelope_a = Envelope(Start(id="a"))
    try:
        first = asyncio.create_task(endpoint.process(envelope_a))
        await _until(lambda: clock.waits, "instance a's retry to start waiting")
        # While a waits (five virtual minutes, for as long as the gate stays shut), b's
        # message takes SQLite's write lock and commits: a holds no transaction.
        done = await asyncio.wait_for(endpoint.process(Envelope(Start(id="b"))), timeout=60)
        assert not done.duplicate
        b = await store.get_instance(name, "b")
        assert b is not None and b.state == "Ok"
        assert await store.get_instance(name, "a") is None  # nothing of a committed yet
        assert await store.outbox_for("a") == []
        clock.gate.set()
        processed = await asyncio.wait_for(first, timeout=60)
        assert not processed.duplicate and clock.waits == [300.0]
        a = await store.get_instance(name, "a")
        assert a is not None and a.state == "Ok" and a.data["attempts"] == 2
        # Exactly once in effect: one history row, one publish, one inbox claim.
        assert [h.event for h in await store.history(name, "a")] == ["Start"]
        assert [r.message_type for r in await store.outbox_for("a")] == [
            Noticed.message_urn]
        assert (await endpoint.process(envelope_a)).duplicate
    finally:
        await store.close()


async def test_catch_all_does_not_swallow_a_waiting_retry() -> None:
    service = FailsOnceFor("c")
    async with SagaTestHarness() as h:
        saga = waiting_retry_saga(service)
        h.add_saga(saga, queue="retry")
        before = h.clock.now()
        await h.publish(Start(id="c"))
        await h.assert_state(type(saga), "c", "Ok")
        assert service.calls == {"c": 2}
        assert h.clock.now() - before == timedelta(minutes=5)
        # The publish before the retry block ran on both runs; one survived.
        assert h.published(Noticed) == [Noticed(id="c", value=0)]
