"""docs/observability.md stays true to the code: its metrics table is the instruments'
own (names, units, attributes), and the Prometheus names it shows are those /metrics
serves."""

from __future__ import annotations

import re
from pathlib import Path

import bridge
from core_saga import _metrics
from core_saga.metrics import INSTRUMENTS, markdown_table, prometheus_name
from core_saga.telemetry import configure, prometheus_text

DOC = Path(__file__).resolve().parents[1] / "docs" / "observability.md"


def _section(text: str, name: str) -> str:
    found = re.search(rf"<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert found, f"docs/observability.md lost its {name} markers"
    return found.group(1)


def test_the_metrics_table_is_the_code_s() -> None:
    assert _section(DOC.read_text(), "metrics") == markdown_table(), (
        "docs/observability.md's metrics table is stale; regenerate it with\n"
        "  .venv/bin/python -c 'import bridge; from core_saga.metrics import "
        "markdown_table; print(markdown_table(), end=\"\")'")


def test_the_prometheus_names_are_what_metrics_serves() -> None:
    assert configure(service_name="docs-check").metrics
    names = {i.name for i in INSTRUMENTS}
    assert len(names) == len(INSTRUMENTS), "an instrument is declared twice"
    marker = {"stepsaga.docs": "check"}
    for name, value in vars(_metrics).items():
        if hasattr(value, "add") and not name.startswith("_"):
            value.add(0, marker)
        elif hasattr(value, "record") and not name.startswith("_"):
            value.record(0, marker)
    for value in vars(bridge._telemetry).values():
        if hasattr(value, "add"):
            value.add(0, marker)
    _metrics.gauges.set_outbox({"backlog": 0, "oldest_age": 0, "timers_due": 0})
    _metrics.gauges.set_sagas({("DocsSaga", "Done"): 1})
    _metrics.gauges.set_database_up("docs", True)
    text = (prometheus_text() or b"").decode()
    for instrument in INSTRUMENTS:
        wanted = prometheus_name(instrument)
        if instrument.kind == "histogram":
            wanted += "_count"
        assert re.search(rf"^{wanted}\{{", text, re.M), f"{wanted} is not on /metrics"
