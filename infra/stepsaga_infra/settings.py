"""The typed settings of the CDK app, read from CDK context (``-c stepsaga:KEY=VALUE`` or
the ``context`` of ``cdk.json``) with defaults and validation.

Every key lives under the ``stepsaga:`` namespace, so a misspelt key fails the synth
instead of being ignored. Values given on the command line arrive as strings; they are
parsed to the field's type here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal

from supervisor_workflows import ManualReviewTimings, SlowShippingTimings

CONTEXT_PREFIX: Final = "stepsaga:"
"""Every context key this app reads starts with this."""

RETENTION_DAYS: Final[tuple[int, ...]] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653)
"""The retention periods CloudWatch Logs accepts (``RetentionInDays``)."""

RemovalChoice = Literal["retain", "destroy"]

_STAGE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


class SettingsError(ValueError):
    """A context value is missing its type, out of range, or unknown."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class InfraSettings:
    """What differs between deployments of the stack (one per stage).

    Each field is read from the context key ``stepsaga:<camelCaseName>``, e.g.
    ``stepsaga:logRetentionDays``. The workflow timings are checked by
    :class:`~supervisor_workflows.ManualReviewTimings` and
    :class:`~supervisor_workflows.SlowShippingTimings` too.
    """

    stage: str = "dev"
    """Names every resource (queue names start with ``<stage>-``, the workers'
    ``STEPSAGA_QUEUE_PREFIX``); lower-case letters, digits and hyphens, at most 20."""
    log_retention_days: int = 30
    """Retention of the state machines' log groups (a value CloudWatch Logs accepts)."""
    log_execution_data: bool = True
    """Whether execution logs include the states' input and output (the order data)."""
    removal_policy: RemovalChoice = "retain"
    """What ``cdk destroy`` does to the claim table and the log groups: ``retain`` (keep
    the data) or ``destroy`` (for throw-away stages and the emulator)."""
    review_timeout_seconds: int = 172_800
    """ManualReview: how long the first review waits (then it is escalated once)."""
    escalation_timeout_seconds: int = 86_400
    """ManualReview: how long the escalated review waits (then ``timed_out``)."""
    shipping_deadline_seconds: int = 3600
    """SlowShipping: the retries of the shipping request fit in this deadline."""
    shipping_interval_seconds: int = 30
    """SlowShipping: the first retry delay."""
    shipping_backoff_rate: float = 2.0
    """SlowShipping: each retry delay is the previous one times this."""
    shipping_max_delay_seconds: int = 600
    """SlowShipping: the longest retry delay."""
    shipping_attempt_timeout_seconds: int = 300
    """SlowShipping: how long one shipping request waits for the service's answer."""
    delivery_timeout_seconds: int = 3600
    """Both workflows: how long the saga has to acknowledge the outcome."""
    delivery_max_attempts: int = 5
    """Both workflows: re-deliveries of the outcome when it is not acknowledged."""
    max_receive_count: int = 5
    """SQS: receives of a message before it moves to its queue's DLQ (the workers'
    ``STEPSAGA_MAX_DELIVERIES``)."""
    visibility_timeout_seconds: int = 30
    """SQS: the queues' default visibility timeout (the workers'
    ``STEPSAGA_VISIBILITY_TIMEOUT``)."""
    message_retention_days: int = 4
    """SQS: how long a message waits on a work queue."""
    dlq_retention_days: int = 14
    """SQS: how long a message waits on a dead-letter queue (the most SQS allows)."""
    event_retry_attempts: int = 24
    """EventBridge: retries of a failed StartExecution before the event goes to the
    rule DLQ."""
    event_max_age_hours: int = 24
    """EventBridge: the age after which an undelivered event goes to the rule DLQ."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags on every resource (``stepsaga:tags`` as a JSON object in cdk.json)."""

    def __post_init__(self) -> None:
        if not isinstance(self.stage, str) or not _STAGE.match(self.stage):
            raise SettingsError(
                f"{CONTEXT_PREFIX}stage must be lower-case letters, digits and hyphens, "
                f"starting with a letter, at most 20 characters; got {self.stage!r}")
        if self.log_retention_days not in RETENTION_DAYS:
            raise SettingsError(
                f"{CONTEXT_PREFIX}logRetentionDays must be one of "
                f"{', '.join(map(str, RETENTION_DAYS))}; got {self.log_retention_days!r}")
        if self.removal_policy not in ("retain", "destroy"):
            raise SettingsError(f"{CONTEXT_PREFIX}removalPolicy must be 'retain' or "
                                f"'destroy'; got {self.removal_policy!r}")
        _check_range("maxReceiveCount", self.max_receive_count, 1, 1000)
        _check_range("visibilityTimeoutSeconds", self.visibility_timeout_seconds, 0, 43_200)
        _check_range("messageRetentionDays", self.message_retention_days, 1, 14)
        _check_range("dlqRetentionDays", self.dlq_retention_days, 1, 14)
        _check_range("eventRetryAttempts", self.event_retry_attempts, 0, 185)
        _check_range("eventMaxAgeHours", self.event_max_age_hours, 1, 24)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.tags.items()):
            raise SettingsError(f"{CONTEXT_PREFIX}tags must map strings to strings")
        try:  # the workflows check their own timings; name the context key on failure
            self.manual_review_timings()
            self.slow_shipping_timings()
        except ValueError as exc:
            raise SettingsError(f"workflow timings from {CONTEXT_PREFIX}* context: {exc}"
                                ) from exc

    @property
    def name_prefix(self) -> str:
        """``stepsaga-<stage>``: the start of the names of buses, tables and machines."""
        return f"stepsaga-{self.stage}"

    @property
    def queue_prefix(self) -> str:
        """``<stage>-``: the start of every queue name (the workers'
        ``STEPSAGA_QUEUE_PREFIX``)."""
        return f"{self.stage}-"

    def manual_review_timings(self) -> ManualReviewTimings:
        """The ManualReview workflow's timings."""
        return ManualReviewTimings(
            review_timeout_seconds=self.review_timeout_seconds,
            escalation_timeout_seconds=self.escalation_timeout_seconds,
            delivery_timeout_seconds=self.delivery_timeout_seconds,
            delivery_max_attempts=self.delivery_max_attempts)

    def slow_shipping_timings(self) -> SlowShippingTimings:
        """The SlowShipping workflow's timings."""
        return SlowShippingTimings(
            deadline_seconds=self.shipping_deadline_seconds,
            interval_seconds=self.shipping_interval_seconds,
            backoff_rate=self.shipping_backoff_rate,
            max_delay_seconds=self.shipping_max_delay_seconds,
            attempt_timeout_seconds=self.shipping_attempt_timeout_seconds,
            delivery_timeout_seconds=self.delivery_timeout_seconds,
            delivery_max_attempts=self.delivery_max_attempts)

    @classmethod
    def context_keys(cls) -> dict[str, str]:
        """Context key → field name, for every field."""
        return {CONTEXT_PREFIX + _camel(f.name): f.name for f in fields(cls)}

    @classmethod
    def from_context(cls, get: Callable[[str], Any], keys: list[str] | None = None
                     ) -> InfraSettings:
        """Settings from CDK context: `get` is ``node.try_get_context``; `keys` the context
        keys present (``node.get_all_context()``), to reject unknown ``stepsaga:*`` keys.
        """
        known = cls.context_keys()
        unknown = sorted(k for k in keys or [] if k.startswith(CONTEXT_PREFIX)
                         and k not in known)
        if unknown:
            raise SettingsError(f"unknown context key(s) {', '.join(unknown)}; known: "
                                f"{', '.join(sorted(known))}")
        types = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, name in known.items():
            raw = get(key)
            if raw is None:
                continue
            values[name] = _parse(key, raw, types[name].default, types[name].name)
        return cls(**values)

    def to_context(self) -> dict[str, Any]:
        """These settings as context (``{"stepsaga:stage": "dev", ...}``)."""
        out: dict[str, Any] = {}
        for key, name in self.context_keys().items():
            value = getattr(self, name)
            out[key] = dict(value) if name == "tags" else value
        return out

    def replace(self, **changes: Any) -> InfraSettings:
        """A copy with `changes` (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_range(key: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SettingsError(f"{CONTEXT_PREFIX}{key} must be an integer between {low} and "
                            f"{high}; got {value!r}")


def _parse(key: str, raw: Any, default: Any, name: str) -> Any:
    """`raw` (a JSON value from cdk.json or a string from ``-c``) as the type of
    `default`."""
    if name == "tags":
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise SettingsError(f"{key} must be a JSON object: {exc}") from exc
        if not isinstance(raw, dict):
            raise SettingsError(f"{key} must be a JSON object of strings")
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise SettingsError(f"{key} must be true or false; got {raw!r}")
    if isinstance(default, int):
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        try:
            return int(str(raw).strip())
        except ValueError:
            raise SettingsError(f"{key} must be an integer; got {raw!r}") from None
    if isinstance(default, float):
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{key} must be a number; got {raw!r}") from None
        if not math.isfinite(number):
            raise SettingsError(f"{key} must be a finite number; got {raw!r}")
        return number
    return str(raw)
