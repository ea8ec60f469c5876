"""The callables a saga definition hands the engine: how they are called (sync or
async alike), what they are called in graphs, and what message type they build."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

T = TypeVar("T")

MaybeAwaitable: TypeAlias = T | Awaitable[T]
"""What a DSL callable may return: a value, or an awaitable of it (an ``async def``)."""


async def resolve(value: T | Awaitable[T]) -> T:
    """`value`, awaited when it is awaitable.

    Every callable a saga definition gives the engine goes through this: an ``async
    def`` (or a lambda returning a coroutine) works wherever a plain function does, and
    is never left un-awaited (an un-awaited coroutine is truthy and does nothing).
    """
    if inspect.isawaitable(value):
        return await value
    return value


def describe(fn: Callable[..., Any] | None, default: str = "") -> str:
    """A short name for `fn` in graphs and errors: its ``__name__`` without leading
    underscores, else the first line of its docstring, else `default` (lambdas)."""
    if fn is None:
        return default
    name = getattr(fn, "__name__", "") or ""
    if name and name != "<lambda>":
        return name.lstrip("_") or name
    doc = inspect.getdoc(fn) if name != "<lambda>" else None
    if doc:
        return doc.strip().splitlines()[0].rstrip(".")
    return default


def returned_type(fn: Callable[..., Any], base: type[T]) -> type[T] | None:
    """The subclass of `base` that `fn` is annotated to return (an ``async def``'s
    annotation is the awaited type), or None when it says nothing usable."""
    target = getattr(fn, "__func__", fn)
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = getattr(fn, "__call__", None)  # noqa: B004 - a callable object
        if target is None:
            return None
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        # Names imported only under TYPE_CHECKING, say: no inference, not an error.
        return None
    found = hints.get("return")
    origin = typing.get_origin(found)
    if origin is not None and origin.__name__ in ("Awaitable", "Coroutine"):
        args = typing.get_args(found)
        found = args[-1] if args else None
    if isinstance(found, type) and issubclass(found, base):
        return found
    return None

