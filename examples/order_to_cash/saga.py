"""The Order-to-Cash saga: charge payment → reserve inventory → create shipment, with
compensation when a later step fails and hand-offs to supervision for the slow cases.

Paths (docs/order_to_cash.md walks through each one):

- **Happy**: OrderSubmitted → PaymentPending → InventoryPending → ShippingPending →
  Completed; ``OrderCompleted`` is published.
- **Payment declined**: PaymentPending → Canceled. Inventory and shipping are never asked.
- **Inventory missing after payment**: InventoryPending → CompensatingPayment
  (RefundPayment) → Canceled once the refund is confirmed.
- **Shipping provider down**: each ``ShipmentFailed`` schedules ``RetryShipment`` with
  exponential backoff; a second timer, ``ShipmentDeadlineExpired`` (one hour by default),
  stops it: CancelShipment + ReleaseInventory + RefundPayment → Compensating → Canceled
  once all three are confirmed (the composite event ``AllCompensated``).
- **Manual review** (amount over the threshold, or a risk flag): ``hand_off`` to the
  ManualReview workflow → AwaitingReview until ``SupervisionCompleted`` says approved
  (→ PaymentPending), rejected or timed_out (→ Canceled).
- **Shipping supervision** (the in-saga retry budget is spent): ``hand_off`` to the
  SlowShipping workflow → AwaitingShippingSupervision until ``SupervisionCompleted``
  says shipped (→ Completed) or failed (→ Compensating → Canceled). A late
  ShipmentCreated from the saga's own last attempt completes the order too.
- **Supervision lost**: a hand-off whose workflow never reports ``SupervisionStarted``
  (after the deadline and every re-publish), or whose execution ends FAILED, TIMED_OUT
  or ABORTED before its outcome, reaches the saga as ``SupervisionLost``: from
  AwaitingReview the order is canceled (nothing was charged yet), from
  AwaitingShippingSupervision it is compensated (CancelShipment + ReleaseInventory +
  RefundPayment) and canceled; either way with code ``supervision_lost`` and a reason
  naming what happened.

Every order ends Completed or Canceled, and ``OrderCanceled`` carries the reason. Each
compensation is sent once per order (the saga sends it from exactly one transition) and
the services apply it idempotently, so it takes effect exactly once. Duplicates with the
same message id are absorbed by the inbox; late or repeated events with new ids are
ignored where they are harmless (``ignore(...)``, and ``ignore_others()`` once the order
is being undone or is over), and replies to an old shipment attempt are told from the
current one by their ``attempt``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from bridge import (
    hand_off,
    outcome_is,
    supervision_completed_event,
    supervision_deadline_schedule,
    supervision_execution_event,
    supervision_lost_event,
    supervision_started_event,
    track_supervision,
)
from bridge.contracts import (
    WORKFLOW_MANUAL_REVIEW,
    WORKFLOW_SLOW_SHIPPING,
    SupervisionCompleted,
    SupervisionLost,
)
from core_saga import (
    BehaviorContext,
    CompositeEvent,
    Event,
    EventActivityBinder,
    Message,
    Saga,
    Schedule,
    State,
    operator_cancel_event,
)

from .messages import (
    CancelCode,
    CancelShipment,
    ChargePayment,
    CreateShipment,
    InventoryReleased,
    InventoryReserved,
    InventoryUnavailable,
    OrderCanceled,
    OrderCompleted,
    OrderMessage,
    OrderSubmitted,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    RefundPayment,
    ReleaseInventory,
    ReserveInventory,
    RetryShipment,
    ShipmentCanceled,
    ShipmentCreated,
    ShipmentDeadlineExpired,
    ShipmentFailed,
    StockLine,
)
from .queues import INVENTORY_QUEUE, PAYMENT_QUEUE, SHIPPING_QUEUE
from .settings import OrderSagaSettings
from .state import OrderState
from .supervision import (
    handoff_config,
    review_payload,
    review_reason,
    shipping_payload,
    shipping_reason,
)

M = TypeVar("M", bound=Message)
Ctx = BehaviorContext[OrderState, Any]

REFUND = "refund"
RELEASE = "release"
CANCEL_SHIPMENT = "cancel_shipment"


def _by_order(message: OrderMessage) -> str:
    return message.order_id


def settings_of(ctx: Ctx) -> OrderSagaSettings:
    """The settings the saga was created with."""
    settings = ctx.machine.settings
    if not isinstance(settings, OrderSagaSettings):
        raise TypeError(f"OrderSaga needs OrderSagaSettings, got {type(settings).__name__}")
    return settings


# -- submission and review ------------------------------------------------------------------

def _remember_order(ctx: BehaviorContext[OrderState, OrderSubmitted]) -> None:
    order, message = ctx.saga, ctx.message
    order.customer_id = message.customer_id
    order.amount = message.amount
    order.currency = message.currency
    quantities: dict[str, int] = {}
    for line in message.lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    order.lines = [StockLine(sku=sku, quantity=q) for sku, q in sorted(quantities.items())]
    threshold = settings_of(ctx).review_threshold
    reasons = []
    if threshold is not None and message.amount > threshold:
        reasons.append(f"amount {message.amount} {message.currency} is over the review "
                       f"threshold {threshold}")
    reasons.extend(f"risk flag: {flag}" for flag in message.risk_flags)
    order.review_reasons = reasons


def _needs_review(ctx: Ctx) -> bool:
    return bool(ctx.saga.review_reasons)


def _charge(ctx: Ctx) -> ChargePayment:
    return ChargePayment(order_id=ctx.saga.correlation_id, amount=ctx.saga.amount,
                         currency=ctx.saga.currency)


# -- payment and inventory -------------------------------------------------------------------

def _remember_payment(ctx: BehaviorContext[OrderState, PaymentCharged]) -> None:
    ctx.saga.payment_reference = ctx.message.payment_reference


def _reserve(ctx: Ctx) -> ReserveInventory:
    return ReserveInventory(order_id=ctx.saga.correlation_id, lines=tuple(ctx.saga.lines))


# -- shipping --------------------------------------------------------------------------------

def _next_shipment_attempt(ctx: Ctx) -> None:
    ctx.saga.shipment_attempt += 1


def _create_shipment(ctx: Ctx) -> CreateShipment:
    return CreateShipment(order_id=ctx.saga.correlation_id, attempt=ctx.saga.shipment_attempt,
                          lines=tuple(ctx.saga.lines))


def _shipping_deadline(ctx: Ctx) -> timedelta:
    return settings_of(ctx).shipping_deadline


def _deadline_message(ctx: Ctx) -> ShipmentDeadlineExpired:
    return ShipmentDeadlineExpired(order_id=ctx.saga.correlation_id)


def _retry_delay(ctx: Ctx) -> timedelta:
    return settings_of(ctx).retry_delay(ctx.saga.shipment_attempt)


def _retry_message(ctx: Ctx) -> RetryShipment:
    return RetryShipment(order_id=ctx.saga.correlation_id,
                         attempt=ctx.saga.shipment_attempt + 1)


def _budget_spent(ctx: Ctx) -> bool:
    budget = settings_of(ctx).shipping_retry_budget
    return budget is not None and ctx.saga.shipment_attempt >= budget


def _current_failure_with_budget_left(ctx: BehaviorContext[OrderState, ShipmentFailed]) -> bool:
    return ctx.message.attempt == ctx.saga.shipment_attempt and not _budget_spent(ctx)


def _current_failure_with_budget_spent(ctx: BehaviorContext[OrderState, ShipmentFailed]
                                       ) -> bool:
    return ctx.message.attempt == ctx.saga.shipment_attempt and _budget_spent(ctx)


def _remember_shipping_error(ctx: BehaviorContext[OrderState, ShipmentFailed]) -> None:
    ctx.saga.last_shipping_error = ctx.message.reason


def _remember_tracking(ctx: BehaviorContext[OrderState, ShipmentCreated]) -> None:
    ctx.saga.tracking_id = ctx.message.tracking_id


def _remember_supervised_tracking(ctx: BehaviorContext[OrderState, SupervisionCompleted]
                                  ) -> None:
    ctx.saga.tracking_id = str(ctx.message.result.get("trackingId") or "")


def _supervision_cause(ctx: BehaviorContext[OrderState, SupervisionCompleted]) -> str:
    """What the workflow said went wrong (the task failure's cause or error)."""
    result = ctx.message.result
    return str(result.get("cause") or result.get("error") or ctx.message.outcome)


def _lost_reason(ctx: BehaviorContext[OrderState, SupervisionLost]) -> str:
    """Why the order is canceled after a lost supervision: which workflow, what
    happened (``not_started``, ``execution_aborted``…) and the details."""
    lost = ctx.message
    return f"supervision lost: {lost.workflow} {lost.cause}: {lost.detail}"


def _order_completed(ctx: Ctx) -> OrderCompleted:
    return OrderCompleted(order_id=ctx.saga.correlation_id, tracking_id=ctx.saga.tracking_id or "")


# -- cancellation and compensation ------------------------------------------------------------

def _cancel_because(code: CancelCode, reason: Callable[[Any], str]) -> Callable[[Ctx], None]:
    """An activity that records why the order is being canceled."""
    def cancel(ctx: Ctx) -> None:
        ctx.saga.cancel_code = code
        ctx.saga.cancel_reason = reason(ctx)
    cancel.__name__ = f"cancel_{code}"
    return cancel


def _operator_reason(ctx: Ctx) -> str:
    return f"canceled by {ctx.message.actor}: {ctx.message.reason}"


def _deadline_reason(ctx: Ctx) -> str:
    deadline = settings_of(ctx).shipping_deadline
    return (f"shipping failed for {deadline} after {ctx.saga.shipment_attempt} attempt(s): "
            f"{ctx.saga.last_shipping_error or 'no answer from shipping'}")


_operator_canceled = _cancel_because("operator_canceled", _operator_reason)


def _refund(ctx: Ctx) -> RefundPayment:
    return RefundPayment(order_id=ctx.saga.correlation_id, amount=ctx.saga.amount,
                         currency=ctx.saga.currency, reason=ctx.saga.cancel_reason or "")


def _release(ctx: Ctx) -> ReleaseInventory:
    return ReleaseInventory(order_id=ctx.saga.correlation_id)


def _cancel_shipment(ctx: Ctx) -> CancelShipment:
    return CancelShipment(order_id=ctx.saga.correlation_id)


def _noted(name: str, note: Callable[[Any], str]) -> Callable[[Ctx], None]:
    """An activity that keeps what compensation `name` reported (a repeat adds nothing:
    the composite event's field lists the confirmations already in)."""
    def noted(ctx: Ctx) -> None:
        if ctx.event_name not in ctx.saga.compensations_confirmed:
            ctx.saga.compensation_notes = [*ctx.saga.compensation_notes,
                                           f"{name}: {note(ctx.message)}"]
    noted.__name__ = f"note_{name}"
    return noted


def _refund_note(message: PaymentRefunded) -> str:
    if message.refunded:
        return f"refunded {message.amount} {message.currency}"
    return message.note


def _order_canceled(ctx: Ctx) -> OrderCanceled:
    code: CancelCode = ctx.saga.cancel_code or "payment_declined"  # type: ignore[assignment]
    return OrderCanceled(order_id=ctx.saga.correlation_id, code=code,
                         reason=ctx.saga.cancel_reason or code)


class OrderSaga(Saga[OrderState]):
    """Orchestrates one order from submission to Completed or Canceled.

    Host it on the ``order-saga`` queue with its settings::

        worker.add_saga(OrderSaga(OrderSagaSettings(shipping_deadline=timedelta(hours=2))),
                        queue="order-saga")
    """

    awaiting_review = State()
    payment_pending = State()
    inventory_pending = State()
    shipping_pending = State()
    awaiting_shipping_supervision = State()
    compensating_payment = State()
    compensating = State()
    completed = State(terminal=True)
    canceled = State(terminal=True)

    order_submitted = Event(OrderSubmitted, correlate_by=_by_order)
    payment_charged = Event(PaymentCharged, correlate_by=_by_order)
    payment_declined = Event(PaymentDeclined, correlate_by=_by_order)
    inventory_reserved = Event(InventoryReserved, correlate_by=_by_order)
    inventory_unavailable = Event(InventoryUnavailable, correlate_by=_by_order)
    shipment_created = Event(ShipmentCreated, correlate_by=_by_order)
    shipment_failed = Event(ShipmentFailed, correlate_by=_by_order)
    supervision_started = supervision_started_event()
    supervision_completed = supervision_completed_event()
    supervision_execution = supervision_execution_event()
    supervision_lost = supervision_lost_event()
    payment_refunded = Event(PaymentRefunded, correlate_by=_by_order)
    inventory_released = Event(InventoryReleased, correlate_by=_by_order)
    shipment_canceled = Event(ShipmentCanceled, correlate_by=_by_order)
    all_compensated = CompositeEvent(payment_refunded, inventory_released, shipment_canceled,
                                     status_field="compensations_confirmed")

    # The console's and `stepsaga orders cancel`'s operator cancel, in every state that
    # is not final: what was done is undone, and the order ends Canceled.
    operator_cancel = operator_cancel_event()

    shipping_deadline = Schedule(ShipmentDeadlineExpired, token_field="shipping_deadline_token",
                                 delay=_shipping_deadline)
    shipment_retry = Schedule(RetryShipment, token_field="shipment_retry_token",
                              delay=_retry_delay)
    supervision_deadline = supervision_deadline_schedule()

    summary_columns = ("Amount", "Customer", "Why")

    def __init__(self, settings: OrderSagaSettings | None = None) -> None:
        super().__init__(settings or OrderSagaSettings())

    @classmethod
    def summary(cls, state: OrderState) -> dict[str, str]:
        """The ops console's columns: the amount, the customer, and why the order was
        canceled or went to review."""
        why = state.cancel_code or "; ".join(state.review_reasons)
        return {"Amount": f"{state.amount:.2f} {state.currency}".strip(),
                "Customer": state.customer_id, "Why": why}

    # -- reusable behavior tails ------------------------------------------------------------
    def _charge_payment(self, b: EventActivityBinder[OrderState, M]
                        ) -> EventActivityBinder[OrderState, M]:
        return (b.send(PAYMENT_QUEUE, _charge, compensable=True, compensation=RefundPayment)
                .transition_to(self.payment_pending))

    def _send_shipment(self, b: EventActivityBinder[OrderState, M]
                       ) -> EventActivityBinder[OrderState, M]:
        return (b.then(_next_shipment_attempt)
                .send(SHIPPING_QUEUE, _create_shipment, compensable=True,
                      compensation=CancelShipment))

    def _cancel_now(self, b: EventActivityBinder[OrderState, M]
                    ) -> EventActivityBinder[OrderState, M]:
        return b.publish(_order_canceled).transition_to(self.canceled)

    def _complete_now(self, b: EventActivityBinder[OrderState, M]
                      ) -> EventActivityBinder[OrderState, M]:
        return b.publish(_order_completed).transition_to(self.completed)

    def _compensate_everything(self, b: EventActivityBinder[OrderState, M]
                               ) -> EventActivityBinder[OrderState, M]:
        """Undo shipping, inventory and payment, then wait for the confirmations."""
        return (b.send(SHIPPING_QUEUE, _cancel_shipment)
                .send(INVENTORY_QUEUE, _release)
                .send(PAYMENT_QUEUE, _refund)
                .transition_to(self.compensating))

    def define(self) -> None:
        self.initially(
            self.when(self.order_submitted)
            .then(_remember_order)
            .if_else(_needs_review,
                     lambda b: b.activity(hand_off(
                         WORKFLOW_MANUAL_REVIEW, reason=review_reason, payload=review_payload,
                         config=handoff_config, then=self.awaiting_review)),
                     self._charge_payment),
        )
        self.during(
            self.awaiting_review,
            self._charge_payment(self.when(self.supervision_completed,
                                           filter=outcome_is("approved"))),
            self._cancel_now(self.when(self.supervision_completed, filter=outcome_is("rejected"))
                             .then(_cancel_because("review_rejected", lambda ctx:
                                   f"rejected in review: {_supervision_cause(ctx)}"))),
            self._cancel_now(self.when(self.supervision_completed,
                                       filter=outcome_is("timed_out"))
                             .then(_cancel_because("review_timed_out",
                                   lambda ctx: "nobody reviewed the order in time"))),
            self._cancel_now(self.when(self.supervision_lost)
                             .then(_cancel_because("supervision_lost", _lost_reason))),
            # Nothing charged yet; the review's late answer is ignored once Canceled.
            self._cancel_now(self.when(self.operator_cancel)
                             .unschedule(self.supervision_deadline).then(_operator_canceled)),
        )
        self.during(
            self.payment_pending,
            self.when(self.payment_charged)
            .then(_remember_payment)
            .send(INVENTORY_QUEUE, _reserve, compensable=True, compensation=ReleaseInventory)
            .transition_to(self.inventory_pending),
            self._cancel_now(self.when(self.payment_declined).then(_cancel_because(
                "payment_declined", lambda ctx: f"payment declined: {ctx.message.reason}"))),
            # A lost supervision the saga no longer waits for (it moved on) changes nothing.
            self.ignore(self.supervision_lost),
            # The charge may be on its way: refunded (a refund first closes the order).
            self.when(self.operator_cancel).then(_operator_canceled)
            .send(PAYMENT_QUEUE, _refund).transition_to(self.compensating_payment),
        )
        self.during(
            self.inventory_pending,
            self._send_shipment(self.when(self.inventory_reserved))
            .schedule(self.shipping_deadline, _deadline_message)
            .transition_to(self.shipping_pending),
            self.when(self.inventory_unavailable)
            .then(_cancel_because("inventory_unavailable",
                                  lambda ctx: f"inventory unavailable: {ctx.message.reason}"))
            .send(PAYMENT_QUEUE, _refund)
            .transition_to(self.compensating_payment),
            self._compensate_everything(self.when(self.operator_cancel).then(_operator_canceled)),
            self.ignore(self.payment_charged),
            self.ignore(self.supervision_lost),
        )
        self.during(
            self.shipping_pending,
            self._complete_now(self.when(self.shipment_created)
                               .unschedule(self.shipping_deadline)
                               .unschedule(self.shipment_retry)
                               .then(_remember_tracking)),
            self.when(self.shipment_failed, filter=_current_failure_with_budget_left)
            .then(_remember_shipping_error)
            .schedule(self.shipment_retry, _retry_message),
            self.when(self.shipment_failed, filter=_current_failure_with_budget_spent)
            .then(_remember_shipping_error)
            .unschedule(self.shipping_deadline)
            .unschedule(self.shipment_retry)
            .activity(hand_off(WORKFLOW_SLOW_SHIPPING, reason=shipping_reason,
                               payload=shipping_payload, config=handoff_config,
                               then=self.awaiting_shipping_supervision)),
            self.ignore(self.shipment_failed),  # a reply to an older attempt
            self._send_shipment(self.when(self.shipment_retry.received)),
            self._compensate_everything(
                self.when(self.shipping_deadline.received)
                .unschedule(self.shipment_retry)
                .then(_cancel_because("shipping_deadline", _deadline_reason))),
            self._compensate_everything(
                self.when(self.operator_cancel)
                .unschedule(self.shipping_deadline)
                .unschedule(self.shipment_retry)
                .then(_operator_canceled)),
            self.ignore(self.payment_charged),
            self.ignore(self.inventory_reserved),
            self.ignore(self.supervision_lost),
        )
        self.during(
            self.awaiting_shipping_supervision,
            self._complete_now(self.when(self.supervision_completed, filter=outcome_is("shipped"))
                               .then(_remember_supervised_tracking)),
            # The saga's own last attempt got through after all.
            self._complete_now(self.when(self.shipment_created).then(_remember_tracking)),
            self._compensate_everything(
                self.when(self.supervision_completed, filter=outcome_is("failed"))
                .then(_cancel_because("shipping_abandoned", lambda ctx:
                      f"shipping abandoned in supervision: {_supervision_cause(ctx)}"))),
            self._compensate_everything(
                self.when(self.supervision_lost)
                .then(_cancel_because("supervision_lost", _lost_reason))),
            self._compensate_everything(self.when(self.operator_cancel)
                                        .unschedule(self.supervision_deadline)
                                        .then(_operator_canceled)),
            self.ignore(self.shipment_failed),
            self.ignore(self.payment_charged),
            self.ignore(self.inventory_reserved),
        )
        self.during(
            self.compensating_payment,
            self._cancel_now(self.when(self.payment_refunded).then(_noted(REFUND, _refund_note))),
            self.ignore_others(),  # late news of work being undone: the refund covers it
        )
        self.during(
            self.compensating,
            self.when(self.payment_refunded).then(_noted(REFUND, _refund_note)),
            self.when(self.inventory_released).then(_noted(RELEASE, lambda m: m.note)),
            self.when(self.shipment_canceled).then(_noted(CANCEL_SHIPMENT, lambda m: m.note)),
            self._cancel_now(self.when(self.all_compensated)),
            self.ignore_others(),  # late news of work being undone: the compensations cover it
        )
        self.during(self.completed, self.canceled, self.ignore_others())
        # A resubmitted order (same id, new message id) changes nothing once started.
        self.during_any(self.ignore(self.order_submitted))
        # Hand-off records: the execution ARN when a workflow starts, the outcome when it
        # ends (also in states that do not act on it: it is recorded, not applied); the
        # deadline for SupervisionStarted (re-publish, then lost) and Step Functions'
        # report of an execution that ended without an outcome.
        self.during_any(*track_supervision(self.supervision_started,
                                           self.supervision_completed,
                                           deadline=self.supervision_deadline,
                                           execution=self.supervision_execution))
