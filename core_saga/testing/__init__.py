"""Testing helpers: the in-process harness and the static-check assertions."""

from .._checks import assert_saga_valid, check_saga
from ._harness import SagaTestHarness, queue_name_for

__all__ = ["SagaTestHarness", "assert_saga_valid", "check_saga", "queue_name_for"]
