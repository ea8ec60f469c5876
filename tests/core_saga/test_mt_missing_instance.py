"""Missing instances (MassTransit's OnMissingInstance) and how a new instance gets its id
(correlation by id or by query, and select_id)."""

from __future__ import annotations

import pytest

from core_saga import (
    Event,
    Message,
    MissingInstance,
    Query,
    Saga,
    SagaDefinitionError,
    SagaState,
    State,
)
from core_saga.testing import SagaTestHarness

from .dsl_support import Data, Poke, Start, Tick, by_id


class LenientByDefault(Saga[Data]):
    """Discards events for missing instances, as MassTransit does, except one."""

    missing_instance = MissingInstance.DISCARD
    running = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    poke = Event(Poke, correlate_by=by_id)
    tick = Event(Tick, correlate_by=lambda m: m.id, on_missing=MissingInstance.FAULT)

    def define(self) -> None:
        self.initially(self.when(self.start).transition_to(self.running))
        self.during(self.running, self.ignore(self.poke), self.ignore(self.tick))


async def test_the_class_policy_discards_and_an_events_own_policy_wins() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(LenientByDefault())
        await h.publish(Poke(id="ghost"))  # the class says discard
        assert h.faults == []
        await h.publish(Tick(id="ghost"))  # the event says fault
        [(_, reason)] = h.faults
        assert reason.startswith("SagaNotFoundError: saga 'LenientByDefault', instance "
                                 "'ghost', event 'Tick'")
    assert LenientByDefault.model.missing_instance is MissingInstance.DISCARD


async def test_the_default_policy_is_to_fault() -> None:
    class Strict(Saga[Data]):
        running = State(terminal=True)
        start = Event(Start, correlate_by=by_id)
        poke = Event(Poke, correlate_by=by_id)

        def define(self) -> None:
            self.initially(self.when(self.start).transition_to(self.running))
            self.during(self.running, self.ignore(self.poke))

    assert Strict.missing_instance is MissingInstance.FAULT
    async with SagaTestHarness() as h:
        h.add_saga(Strict())
        await h.publish(Poke(id="ghost"))
        [(_, reason)] = h.faults
        assert "SagaNotFoundError" in reason and "does not start one" in reason


# -- select_id: the id of an instance created by an event correlated by query ---------------

class Registered(Message):
    message_namespace = "t.missing"
    email: str
    account: str


class Verified(Message):
    message_namespace = "t.missing"
    account: str


class Account(SagaState):
    email: str = ""


class SignupSaga(Saga[Account]):
    """Registered is correlated by email (a query) and creates the instance under the
    account id, so Verified, correlated by id, finds it."""

    indexed = ("email",)
    pending = State()
    active = State(terminal=True)
    registered = Event(Registered, query=Query("email", lambda m: m.email),
                       select_id=lambda m: m.account)
    verified = Event(Verified, correlate_by=lambda m: m.account)

    def define(self) -> None:
        self.initially(self.when(self.registered)
                       .then(lambda ctx: setattr(ctx.saga, "email", ctx.message.email))
                       .transition_to(self.pending))
        self.during(self.pending, self.when(self.verified).transition_to(self.active),
                    self.ignore(self.registered))
        self.during(self.active, self.ignore_others())


async def test_select_id_names_the_instance_a_query_correlated_event_creates() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(SignupSaga())
        await h.publish(Registered(email="ada@example.com", account="acct-1"))
        await h.assert_state(SignupSaga, "acct-1", "Pending")
        # Found by the query now (the email is indexed), and by id.
        await h.publish(Registered(email="ada@example.com", account="acct-1"))
        await h.publish(Verified(account="acct-1"))
        await h.assert_state(SignupSaga, "acct-1", "Active")
        assert [r.event for r in await h.history(SignupSaga, "acct-1")] == [
            "Registered", "Verified"]
        assert h.faults == []


def test_select_id_is_refused_where_it_cannot_apply() -> None:
    with pytest.raises(ValueError, match="select_id is for an event correlated by query="):
        Event(Verified, correlate_by=lambda m: m.account, select_id=lambda m: m.account)
    with pytest.raises(SagaDefinitionError, match=r"saga 'NotInitial', event 'Registered': "
                       r"select_id= gives the id of the instance an initial event creates"):
        class NotInitial(Saga[Account]):
            indexed = ("email",)
            active = State(terminal=True)
            verified = Event(Verified, correlate_by=lambda m: m.account)
            registered = Event(Registered, query=Query("email", lambda m: m.email),
                               select_id=lambda m: m.account)

            def define(self) -> None:
                self.initially(self.when(self.verified).transition_to(self.active))
                self.during(self.active, self.ignore(self.registered))
