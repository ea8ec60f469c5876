"""The engine's metrics (OpenTelemetry metrics API; see docs/observability.md).

:data:`INSTRUMENTS` lists every instrument made, with its unit, description and
attributes. Extensions make theirs with :func:`counter`, :func:`histogram` and
:func:`gauge` so that they are listed too (the bridge's hand-off and task-answer
counters); :data:`aws_calls` counts AWS API calls by ``rpc.service`` and
``rpc.method``. Turn collection on with :func:`core_saga.telemetry.configure`.
"""

from ._metrics import INSTRUMENTS, Instrument, aws_calls, counter, gauge, histogram


def prometheus_name(instrument: Instrument) -> str:
    """The name Prometheus shows: dots as underscores, the unit (seconds) and, for a
    counter, ``_total`` added."""
    name = instrument.name.replace(".", "_")
    if instrument.unit == "s":
        name += "_seconds"
    return name + ("_total" if instrument.kind == "counter" else "")


def markdown_table() -> str:
    """:data:`INSTRUMENTS` as the Markdown table of docs/observability.md (import
    ``bridge`` first to list its instruments too)."""
    lines = ["| metric (Prometheus name) | kind | unit | attributes | what it counts |",
             "|---|---|---|---|---|"]
    for item in INSTRUMENTS:
        attributes = ", ".join(f"`{a}`" for a in item.attributes) or "—"
        lines.append(f"| `{item.name}` (`{prometheus_name(item)}`) | {item.kind} | "
                     f"`{item.unit}` | {attributes} | {item.description} |")
    return "\n".join(lines) + "\n"


__all__ = ["INSTRUMENTS", "Instrument", "aws_calls", "counter", "gauge", "histogram",
           "markdown_table", "prometheus_name"]
