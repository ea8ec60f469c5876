"""Testing helpers: the in-process harness, the static-check assertions, and a trace
printed as a waterfall (from an in-memory span exporter)."""

from .._checks import assert_saga_valid, check_saga
from ._harness import SagaTestHarness, queue_name_for
from ._waterfall import trace_tree, waterfall

__all__ = ["SagaTestHarness", "assert_saga_valid", "check_saga", "queue_name_for", "trace_tree",
           "waterfall"]
