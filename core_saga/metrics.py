"""The engine's metrics (OpenTelemetry metrics API; see docs/observability.md).

:data:`INSTRUMENTS` lists every instrument made, with its unit, description and
attributes. Extensions make theirs with :func:`counter`, :func:`histogram` and
:func:`gauge` so that they are listed too (the bridge's hand-off and task-answer
counters); :data:`aws_calls` counts AWS API calls by ``rpc.service`` and
``rpc.method``. Turn collection on with :func:`core_saga.telemetry.configure`.
"""

from ._metrics import INSTRUMENTS, Instrument, aws_calls, counter, gauge, histogram

__all__ = ["INSTRUMENTS", "Instrument", "aws_calls", "counter", "gauge", "histogram"]
