"""MassTransit's composite events: fire when all of several events have arrived."""

from __future__ import annotations

import itertools

import pytest

from core_saga import (
    BehaviorContext,
    CompositeEvent,
    Event,
    Message,
    Saga,
    SagaDefinitionError,
    SagaState,
    State,
    to_mermaid,
)
from core_saga.testing import SagaTestHarness


class TripBooked(Message):
    message_namespace = "t.comp"
    trip: str


class FlightReserved(Message):
    message_namespace = "t.comp"
    trip: str
    flight: str


class HotelReserved(Message):
    message_namespace = "t.comp"
    trip: str
    hotel: str


class CarReserved(Message):
    message_namespace = "t.comp"
    trip: str


class TripConfirmed(Message):
    message_namespace = "t.comp"
    trip: str
    flight: str
    hotel: str


class Trip(SagaState):
    flight: str = ""
    hotel: str = ""
    reserved: list[str] = []
    confirmations: int = 0


def _trip(m: TripBooked | FlightReserved | HotelReserved | CarReserved) -> str:
    return m.trip


def _confirmed(ctx: BehaviorContext[Trip, Message]) -> TripConfirmed:
    ctx.saga.confirmations += 1
    return TripConfirmed(trip=ctx.saga.correlation_id, flight=ctx.saga.flight,
                         hotel=ctx.saga.hotel)


class TripSaga(Saga[Trip]):
    reserving = State()
    confirmed = State(terminal=True)
    booked = Event(TripBooked, correlate_by=_trip)
    flight_reserved = Event(FlightReserved, correlate_by=_trip)
    hotel_reserved = Event(HotelReserved, correlate_by=_trip)
    both_reserved = CompositeEvent(flight_reserved, hotel_reserved, status_field="reserved")

    def define(self) -> None:
        self.initially(self.when(self.booked).transition_to(self.reserving))
        self.during(
            self.reserving,
            self.when(self.flight_reserved)
            .then(lambda ctx: setattr(ctx.saga, "flight", ctx.message.flight)),
            self.when(self.hotel_reserved)
            .then(lambda ctx: setattr(ctx.saga, "hotel", ctx.message.hotel)),
            self.when(self.both_reserved).publish(_confirmed).transition_to(self.confirmed))
        self.during(self.confirmed, self.ignore_others())


@pytest.mark.parametrize("first", ["flight", "hotel"])
async def test_the_composite_fires_once_both_arrived_in_any_order(first: str) -> None:
    flight = FlightReserved(trip="t", flight="LH 400")
    hotel = HotelReserved(trip="t", hotel="Adlon")
    async with SagaTestHarness() as h:
        h.add_saga(TripSaga())
        await h.publish(TripBooked(trip="t"))
        one, two = (flight, hotel) if first == "flight" else (hotel, flight)
        await h.publish(one)
        await h.publish(one)  # a repeat with a new message id does not count twice
        await h.assert_state(TripSaga, "t", "Reserving")
        assert h.published(TripConfirmed) == []
        await h.publish(two)
        await h.assert_state(TripSaga, "t", "Confirmed")
        assert h.published(TripConfirmed) == [TripConfirmed(trip="t", flight="LH 400",
                                                            hotel="Adlon")]
        trip = await h.instance(TripSaga, "t")
        assert trip is not None and sorted(trip.reserved) == ["FlightReserved", "HotelReserved"]
        history = [(r.from_state, r.event, r.to_state) for r in await h.history(TripSaga, "t")]
        assert history[-2:] == [("Reserving", type(two).__name__, "Reserving"),
                                ("Reserving", "BothReserved", "Confirmed")]
        await h.publish(two)  # late: ignored in the end state
        assert len(h.published(TripConfirmed)) == 1 and h.faults == []


def test_the_composite_is_drawn_where_it_is_handled() -> None:
    assert "Reserving --> Confirmed: BothReserved" in to_mermaid(TripSaga.model)
    assert TripSaga.model.composites == {"BothReserved": ("FlightReserved", "HotelReserved")}


class Tally(SagaState):
    arrived: list[str] = []
    raised: int = 0


def _count(ctx: BehaviorContext[Tally, Message]) -> None:
    ctx.saga.raised += 1


class CountingSaga(Saga[Tally]):
    """Three components, counted in a state that has no behavior of its own for them;
    the composite re-raises when a component comes again (no raise_once)."""

    open = State()
    closed = State(terminal=True)
    booked = Event(TripBooked, correlate_by=_trip)
    flight = Event(FlightReserved, correlate_by=_trip)
    hotel = Event(HotelReserved, correlate_by=_trip)
    car = Event(CarReserved, correlate_by=_trip)
    all_in = CompositeEvent(flight, hotel, car, status_field="arrived")

    def define(self) -> None:
        self.initially(self.when(self.booked).transition_to(self.open))
        self.during(self.open, self.when(self.all_in).then(_count),
                    self.when(self.booked).transition_to(self.closed))
        self.during(self.closed, self.ignore_others())



async def test_components_are_counted_in_every_state_and_raise_again_unless_raise_once() -> None:
    messages = [FlightReserved(trip="c", flight="f"), HotelReserved(trip="c", hotel="h"),
                CarReserved(trip="c")]
    for order in itertools.permutations(messages):
        async with SagaTestHarness() as h:
            h.add_saga(CountingSaga())
            await h.publish(TripBooked(trip="c"))
            for message in order:
                await h.publish(message)
            await h.publish(order[0])  # again: raised again (MassTransit's default)
            tally = await h.instance(CountingSaga, "c")
            assert tally is not None and tally.raised == 2 and h.faults == []

    class OnceSaga(CountingSaga):
        all_in = CompositeEvent(CountingSaga.flight, CountingSaga.hotel, CountingSaga.car,
                                status_field="arrived", raise_once=True)

    async with SagaTestHarness() as h:
        h.add_saga(OnceSaga())
        await h.publish(TripBooked(trip="o"))
        for message in [*messages, *messages]:
            await h.publish(message.model_copy(update={"trip": "o"}))
        once = await h.instance(OnceSaga, "o")
        assert once is not None and once.raised == 1


class NoHandlerSaga(Saga[Tally]):
    """The hotel moves the instance to Half before the composite is raised there."""

    open = State()
    half = State()
    closed = State(terminal=True)
    booked = Event(TripBooked, correlate_by=_trip)
    flight = Event(FlightReserved, correlate_by=_trip)
    hotel = Event(HotelReserved, correlate_by=_trip)
    car = Event(CarReserved, correlate_by=_trip)
    both = CompositeEvent(flight, hotel, status_field="arrived")

    def define(self) -> None:
        self.initially(self.when(self.booked).transition_to(self.open))
        self.during(self.open, self.when(self.hotel).transition_to(self.half),
                    self.when(self.both).transition_to(self.closed))
        self.during(self.half, self.when(self.car).transition_to(self.closed))


async def test_a_composite_completed_in_a_state_without_behavior_for_it_is_unhandled() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(NoHandlerSaga())
        await h.publish(TripBooked(trip="n"))
        await h.publish(FlightReserved(trip="n", flight="f"))
        await h.publish(HotelReserved(trip="n", hotel="h"))  # completes it in Open
        [(_, reason)] = h.faults
        assert reason.startswith("UnhandledEventError: saga 'NoHandlerSaga', instance 'n', "
                                 "state 'Half', event 'Both'")
        assert reason.endswith("composite event raised in a state with no behavior for it")
        await h.assert_state(NoHandlerSaga, "n", "Open")  # the whole message rolled back


def test_composite_definition_mistakes_are_caught_when_the_class_is_built() -> None:
    with pytest.raises(SagaDefinitionError, match=r"saga 'NoField', event 'Both': composite "
                       r"event keeps the events that arrived in field 'missing': declare it"):
        class NoField(Saga[Tally]):
            done = State(terminal=True)
            flight = Event(FlightReserved, correlate_by=_trip)
            hotel = Event(HotelReserved, correlate_by=_trip)
            both = CompositeEvent(flight, hotel, status_field="missing")

            def define(self) -> None:
                self.initially(self.when(self.flight).transition_to(self.done))
    with pytest.raises(SagaDefinitionError, match="a composite event cannot start an instance"):
        class Starts(Saga[Tally]):
            done = State(terminal=True)
            flight = Event(FlightReserved, correlate_by=_trip)
            hotel = Event(HotelReserved, correlate_by=_trip)
            both = CompositeEvent(flight, hotel, status_field="arrived")

            def define(self) -> None:
                self.initially(self.when(self.both).transition_to(self.done))
    with pytest.raises(SagaDefinitionError, match=r"composite event of \['Flight', 'Hotel'\] is "
                       r"handled in no state: add self.when\(self.both\) to a during\(\)"):
        class Unused(Saga[Tally]):
            done = State(terminal=True)
            flight = Event(FlightReserved, correlate_by=_trip)
            hotel = Event(HotelReserved, correlate_by=_trip)
            both = CompositeEvent(flight, hotel, status_field="arrived")

            def define(self) -> None:
                self.initially(self.when(self.flight).transition_to(self.done))
    with pytest.raises(ValueError, match="at least one event"):
        CompositeEvent(status_field="arrived")


class VisitSaga(Saga[Tally]):
    """MassTransit's patron example: either component starts the instance."""

    tracking = State()
    done = State(terminal=True)
    flight = Event(FlightReserved, correlate_by=_trip)
    hotel = Event(HotelReserved, correlate_by=_trip)
    both = CompositeEvent(flight, hotel, status_field="arrived")

    def define(self) -> None:
        self.initially(self.when(self.flight).transition_to(self.tracking),
                       self.when(self.hotel).transition_to(self.tracking))
        self.during_any(self.when(self.both).transition_to(self.done))


class EarlyVisitSaga(VisitSaga):
    both = CompositeEvent(VisitSaga.flight, VisitSaga.hotel, status_field="arrived",
                          include_initial=True)


async def test_include_initial_counts_the_component_that_created_the_instance() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(EarlyVisitSaga()).add_saga(VisitSaga(), queue="visit-late")
        await h.publish(HotelReserved(trip="e", hotel="h"))
        await h.publish(FlightReserved(trip="e", flight="f"))
        await h.assert_state(EarlyVisitSaga, "e", "Done")
        # Without include_initial the first arrival, in Initial, is not counted: the
        # composite waits for a second hotel.
        await h.assert_state(VisitSaga, "e", "Tracking")
        assert h.faults == []
