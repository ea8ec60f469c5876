"""The per-order timeline: "where is this order, and why?" in one list.

It merges, in time order, everything stepsaga knows about one saga instance, read
through the store's public queries (:class:`core_saga.persistence.SagaStore`):

- the saga's transitions (``history_of``), each naming the message it received;
- the messages it sent, published and scheduled (``outbox_for``), with their dispatch,
  retries and failures, and who handled them (``inbox_for``);
- the errors (``errors_for``);
- its supervision hand-offs (the :class:`bridge.HandoffRecord` list kept in the
  instance data), the reviews stored for it (``review_tasks``), and each supervisor
  execution's history (Step Functions ``GetExecutionHistory``; plumbing states folded).

Each item is a :class:`TimelineEntry` (``kind``, ``at``, ``summary``, ``details``);
``status`` says in one line what the order waits for (or why it ended) and the action
that fits; ``waiting_for`` says in plain words why the order is where it is. Task tokens never
appear in a timeline: keys named like a task token are masked and every known token is
replaced wherever it shows up. The ops console and ``stepsaga orders show`` both render
:func:`build_timeline`'s result::

    store = store_from_url("sqlite+aiosqlite:///stepsaga.db", must_exist=True)
    timeline = await build_timeline(store, "order-42", sfn=StepFunctions())
    for entry in timeline.entries:
        print(entry.at, entry.kind, entry.summary)
"""

from ._build import build_timeline
from ._entries import (
    compensation_types,
    error_entries,
    handoff_entries,
    history_entries,
    merge,
    outbox_entries,
    review_entries,
)
from ._executions import ExecutionPath, execution_entries, read_execution
from ._model import (
    ENTRY_KINDS,
    EntryKind,
    EntrySource,
    ExecutionLink,
    Timeline,
    TimelineEntry,
)
from ._redact import redact, tokens_in, trace_id_of
from ._status import status_line
from ._why import explain

__all__ = [
    "ENTRY_KINDS",
    "EntryKind",
    "EntrySource",
    "ExecutionLink",
    "ExecutionPath",
    "Timeline",
    "TimelineEntry",
    "build_timeline",
    "compensation_types",
    "error_entries",
    "execution_entries",
    "explain",
    "handoff_entries",
    "history_entries",
    "merge",
    "outbox_entries",
    "read_execution",
    "redact",
    "review_entries",
    "status_line",
    "tokens_in",
    "trace_id_of",
]
