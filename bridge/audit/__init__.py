"""The audit log: every decision a person takes in the console (and, later, every
operator action), with their name, the time, the reason and what came of it.

::

    audit = AuditLog.open(store)
    await audit.create_table()
    service = ReviewService(reviews, StepFunctions(), audit=audit)
    entries, total = await audit.entries(correlation_id="order-42")
"""

from ._log import AuditEntry, AuditLog, audit_log

__all__ = ["AuditEntry", "AuditLog", "audit_log"]
