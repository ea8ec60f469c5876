"""A trace as text: spans in tree order with a bar on one time axis, the way a
collector's UI draws a trace (docs/observability.md shows one)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any


def trace_tree(spans: Iterable[Any]) -> list[tuple[int, Any]]:
    """`spans` (SDK ``ReadableSpan``) in depth-first order with their depth, children by
    start time; spans whose parent is not among them are roots."""
    spans = sorted(spans, key=lambda s: (s.start_time or 0, s.name))
    ids = {s.context.span_id for s in spans}
    children: dict[int | None, list[Any]] = defaultdict(list)
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children[parent if parent in ids else None].append(span)
    ordered: list[tuple[int, Any]] = []

    def walk(span: Any, depth: int) -> None:
        ordered.append((depth, span))
        for child in children.get(span.context.span_id, []):
            walk(child, depth + 1)

    for root in children[None]:
        walk(root, 0)
    return ordered


def _duration(ns: int) -> str:
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.2f} s"
    return f"{ns / 1e6:.1f} ms"


def waterfall(spans: Iterable[Any], *, width: int = 40, name_width: int | None = None,
              strip: str = "") -> str:
    """The spans as a waterfall: one line per span, indented by depth, its duration and
    a bar placed on the trace's time axis. `strip` is removed from span names (a test's
    queue prefix)."""
    ordered = trace_tree(spans)
    if not ordered:
        return "(no spans)\n"
    start = min(s.start_time for _, s in ordered)
    end = max(s.end_time or s.start_time for _, s in ordered)
    total = max(1, end - start)
    if name_width is None:
        name_width = min(100, max(len("  " * d + s.name.replace(strip, "") if strip
                                      else "  " * d + s.name) for d, s in ordered))
    lines = [f"{'span':<{name_width}} {'duration':>9}  0{'':<{width - 6}}{_duration(total)}"]
    for depth, span in ordered:
        name = ("  " * depth + span.name.replace(strip, "") if strip
                else "  " * depth + span.name)
        if len(name) > name_width:
            name = name[:name_width - 1] + "…"
        begin = span.start_time - start
        length = (span.end_time or span.start_time) - span.start_time
        left = int(begin * width / total)
        size = max(1, round(length * width / total))
        bar = " " * left + "█" * min(size, width - left if left < width else 1)
        lines.append(f"{name:<{name_width}} {_duration(length):>9}  {bar}")
    return "\n".join(lines) + "\n"
