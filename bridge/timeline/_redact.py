"""Task tokens out of everything a timeline shows, and trace ids out of traceparents."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from bridge.contracts import REDACTED

_TOKEN_KEY = re.compile(r"^(task_?token|TaskToken)$", re.IGNORECASE)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def parse_json(text: str | bytes | None) -> Any:
    """`text` parsed as JSON, or the text itself when it is not JSON."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text.decode(errors="replace") if isinstance(text, bytes) else text


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header (None if it is not one)."""
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip())
    return match.group(1) if match and match.group(1) != "0" * 32 else None


def redact(value: Any, tokens: Iterable[str] = ()) -> Any:
    """`value` (JSON-like) with every task token masked: the values of keys named like a
    task token, and any of `tokens` inside any string (JSON text included)."""
    known = sorted({t for t in tokens if t}, key=len, reverse=True)

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: (REDACTED if isinstance(k, str) and _TOKEN_KEY.match(k) and v
                        else walk(v)) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        if isinstance(item, str):
            for token in known:
                if token in item:
                    item = item.replace(token, REDACTED)
            if item[:1] in "{[" and "oken" in item:
                parsed = parse_json(item)
                if isinstance(parsed, dict | list):
                    return orjson.dumps(walk(parsed)).decode()
            return item
        return item

    return walk(value)


def tokens_in(value: Any) -> set[str]:
    """The task tokens found under token-named keys anywhere in `value` (JSON-like;
    JSON text is looked into)."""
    found: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _TOKEN_KEY.match(key) and isinstance(child, str):
                    found.add(child)
                else:
                    walk(child)
        elif isinstance(item, list | tuple):
            for child in item:
                walk(child)
        elif isinstance(item, str) and item[:1] in "{[" and "oken" in item:
            parsed = parse_json(item)
            if isinstance(parsed, dict | list):
                walk(parsed)

    walk(value)
    return found
