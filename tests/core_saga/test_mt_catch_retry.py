"""MassTransit's Catch and Retry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core_saga import (
    BehaviorContext,
    Event,
    RetryPolicy,
    Saga,
    State,
)
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

