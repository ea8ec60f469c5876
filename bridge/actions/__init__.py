"""Operator actions on one order, each refused on an unknown or finished order, idempotent,
and written to the audit log (who, when, what, why) with the order's id as correlation id.

- :func:`resume_order` re-sends the order's outbox rows that are due, failed or held by a
  lost dispatcher lease, and re-arms its timers (``fire_timers=True`` fires them now)::

      result = await resume_order(store, audit, "order-42", actor="ana",
                                  reason="SQS was down", terminal_states={"Canceled"})
      print(result.outcome, result.message)

- :func:`cancel_order` sends the order's saga an :class:`~core_saga.OperatorCancel`
  (the saga opts in with :func:`~core_saga.operator_cancel_event`); a saga that does not
  handle it is refused with a message saying so.

- :func:`retry_handoff` puts a hand-off whose workflow never started on the bus again,
  with the same hand-off id;
- :func:`abort_execution` stops the order's running supervisor executions
  (StopExecution, error ``OperatorAborted``, the reason as cause).

The console (``POST /api/orders/{id}/resume``, ``/cancel``, ``/retry-handoff``, ``/abort``)
and ``stepsaga orders resume`` / ``cancel`` / ``retry-handoff`` / ``abort`` call them.
"""

from ._abort import ABORT_ERROR, Executions, abort_execution
from ._cancel import Send, cancel_order
from ._result import ActionResult, Outcome
from ._resume import resume_order
from ._retry import republish, retry_handoff

__all__ = ["ABORT_ERROR", "ActionResult", "Executions", "Outcome", "Send", "abort_execution",
           "cancel_order", "republish", "resume_order", "retry_handoff"]
