"""Task tokens out of the AWS SDK's (and the SQLite driver's) DEBUG logs.

At DEBUG, botocore logs every request's parameters (``botocore.endpoint``: a
``SendTaskSuccess`` body, a ``SendMessage`` body with a ``SupervisionCompleted``) and
every response body (``botocore.parsers``: a ``ReceiveMessage`` answer). Task tokens
ride in all of these. :class:`TaskTokenFilter` masks the value after any key named
like a task token — quoted, JSON-escaped at any depth, or URL-encoded — and
:func:`redact_task_tokens_in_logs` puts it on those loggers; ``import bridge`` does so.

aiosqlite, at DEBUG, logs every statement with its parameters (a review's task token
among them, with no key to find it by): :class:`SqlParameterFilter` drops the
parameters from those lines. (SQLAlchemy's own logging is told to hide parameters by
the stores: ``hide_parameters=True``.)
"""

from __future__ import annotations

import logging
import re

from bridge.contracts import REDACTED

TOKEN_VALUE = re.compile(
    r"(?i)(task_?token(?:\\*[\"']|%22)?\s*(?:[:=]|%3A)\s*(?:\\*[\"']|%22)?)"
    r"((?:(?!%22)[^\"'\\\s,}&])+)")
"""A key named like a task token, its separator and opening quote (group 1), and the
value (group 2)."""

SDK_LOGGERS = ("botocore.endpoint", "botocore.parsers", "aiobotocore.endpoint",
               "aiobotocore.parsers", "botocore.hooks", "botocore.httpsession")
"""The SDK loggers that write request parameters or response bodies."""


def redact_tokens(text: str) -> str:
    """`text` with the value of every task-token key masked."""
    return TOKEN_VALUE.sub(lambda m: m.group(1) + REDACTED, text)


class TaskTokenFilter(logging.Filter):
    """Rewrites a record whose message holds a task token, masking it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's business
            return True
        if "oken" in message:
            masked = redact_tokens(message)
            if masked != message:
                record.msg, record.args = masked, None
        return True


_STATEMENT = re.compile(r"(, '(?:[^'\\]|\\.)*'),\s*[\(\[].*", re.DOTALL)


class SqlParameterFilter(logging.Filter):
    """Drops the parameters from aiosqlite's "executing …" lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        if "execute" in message:
            masked = _STATEMENT.sub(r"\1, <parameters hidden>)", message)
            if masked != message:
                record.msg, record.args = masked, None
        return True


_FILTER = TaskTokenFilter()
_SQL_FILTER = SqlParameterFilter()


def redact_task_tokens_in_logs() -> None:
    """Mask task tokens in the AWS SDK loggers' records, and statement parameters in
    aiosqlite's (idempotent)."""
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    driver = logging.getLogger("aiosqlite")
    if _SQL_FILTER not in driver.filters:
        driver.addFilter(_SQL_FILTER)
