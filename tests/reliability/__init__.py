"""The fault-injection suite: many orders through the real stack while faults are
injected, then business invariants over everything that happened (docs/reliability.md).
``python -m tests.reliability --help`` runs it alone."""
