"""The typed settings of the CDK app: one committed JSON file per stage.

``cdk deploy -c stepsaga:stage=prod`` reads ``infra/stages/prod.json``; every key of
that file is a field of :class:`InfraSettings` in camelCase (``logRetentionDays``), and
anything missing takes its default. ``-c stepsaga:settingsFile=PATH`` names another
file. No other ``stepsaga:*`` context key is accepted: a value given once with ``-c``
would silently revert on the next ``cdk diff`` or ``cdk deploy`` that lacks it, so the
file is the only place a stage's settings live.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal

from supervisor_workflows import ManualReviewTimings, SlowShippingTimings

CONTEXT_PREFIX: Final = "stepsaga:"
"""Every context key this app reads starts with this."""
STAGE_KEY: Final = "stepsaga:stage"
"""The context key that picks the stage (and so ``stages/<stage>.json``)."""
SETTINGS_FILE_KEY: Final = "stepsaga:settingsFile"
"""The context key that names a settings file instead of ``stages/<stage>.json``."""
STAGES_DIR: Final = Path(__file__).resolve().parents[1] / "stages"
"""``infra/stages``: the committed settings of every stage."""
DEFAULT_STAGE: Final = "dev"

RETENTION_DAYS: Final[tuple[int, ...]] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653)
"""The retention periods CloudWatch Logs accepts (``RetentionInDays``)."""

RemovalChoice = Literal["retain", "destroy"]
WorkerRoleChoice = Literal["none", "ecs", "lambda"]
AWS_MANAGED: Final = "aws-managed"
CREATE_KEY: Final = "create"

_STAGE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9.\-_/#:]{1,255}$")
_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")


class SettingsError(ValueError):
    """A context value is missing its type, out of range, or unknown."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class InfraSettings:
    """What differs between deployments of the stack (one per stage).

    Each field is the key ``<camelCaseName>`` of the stage's settings file, e.g.
    ``logRetentionDays``; a missing key takes the default below. The workflow timings
    are checked by
    :class:`~supervisor_workflows.ManualReviewTimings` and
    :class:`~supervisor_workflows.SlowShippingTimings` too.
    """

    stage: str = DEFAULT_STAGE
    """Names every resource: ``stepsaga-<stage>`` starts every name (queue names too, the
    workers' ``STEPSAGA_QUEUE_PREFIX`` is ``stepsaga-<stage>-``); lower-case letters,
    digits and hyphens, at most 20. Must match the file's name."""
    log_retention_days: int = 30
    """Retention of the state machines' log groups (a value CloudWatch Logs accepts)."""
    log_execution_data: bool = False
    """Whether execution logs include the states' input and output (the order data:
    personal data in the logs). Off by default; dev and local stages turn it on."""
    removal_policy: RemovalChoice = "retain"
    """What ``cdk destroy`` does to every stateful resource (queues and their DLQs, the
    claim table, the log groups, a created key): ``retain`` (keep them and their data;
    the next deploy of the stage adopts them) or ``destroy`` (throw-away stages)."""
    encryption_key: str = AWS_MANAGED
    """``aws-managed`` (SQS-managed SSE, the ``aws/dynamodb`` key, CloudWatch Logs'
    default encryption), ``create`` (the stack creates a customer-managed KMS key with
    rotation for the queues, the table and the log groups) or the ARN of an existing key
    (its policy must let this account's principals, CloudWatch Logs and EventBridge use
    it; see docs/deploy.md)."""
    worker_role: WorkerRoleChoice = "none"
    """``none``: the stack makes the workers' managed policy only (attach it to your own
    role); ``ecs`` or ``lambda``: also a role that ECS tasks or Lambda functions assume,
    with that policy attached."""
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
    max_receive_count: int = 10
    """SQS: receives of a message before SQS itself moves it to its queue's DLQ. The
    workers dead-letter a failing message themselves (with its reason in the error
    store) after ``STEPSAGA_MAX_DELIVERIES`` (5) and refuse to start on a queue whose
    maxReceiveCount is below that plus their ``STEPSAGA_DEAD_LETTER_MARGIN`` (5)."""
    visibility_timeout_seconds: int = 30
    """SQS: the queues' default visibility timeout (the workers'
    ``STEPSAGA_VISIBILITY_TIMEOUT``)."""
    message_retention_days: int = 4
    """SQS: how long a message waits on a work queue."""
    dlq_retention_days: int = 14
    """SQS: how long a message waits on a dead-letter queue (the most SQS allows)."""
    event_retry_attempts: int = 24
    """EventBridge: retries of a failed delivery (StartExecution of a hand-off, or a
    status event to the saga's queue) before the event goes to the rule DLQ."""
    event_max_age_seconds: int = 3600
    """EventBridge: the age after which an undelivered event goes to the rule DLQ (the
    rule targets' retry window: an hour by default, 60 s to 24 h). The saga's own
    deadline for ``SupervisionStarted`` re-publishes a hand-off long before that."""
    event_archive_retention_days: int = 30
    """EventBridge: how long the archives keep the bus's events (and the supervisor
    executions' status events) for replay; 0 keeps them for ever."""
    alarm_email: str = ""
    """An address subscribed to the alarm topic (AWS mails it a confirmation link);
    empty: none (subscribe what you like to the topic yourself)."""
    alarm_period_seconds: int = 60
    """The period of every alarm's statistic: a multiple of 60 up to a day."""
    alarm_evaluation_periods: int = 1
    """Periods over the threshold before an alarm fires."""
    dlq_depth_threshold: int = 0
    """A dead-letter queue's alarm fires above this many messages."""
    queue_age_alarm_seconds: int = 900
    """A work queue's alarm fires when its oldest message is older than this."""
    execution_problems_threshold: int = 0
    """A workflow's alarms fire above this many failed, timed-out or aborted executions
    in a period."""
    outbox_age_alarm_seconds: int = 300
    """The workers' outbox alarm fires when their oldest unsent row is older than this
    (needs their metrics in CloudWatch: see ``workerMetricsNamespace``)."""
    worker_metrics_namespace: str = "stepsaga"
    """The CloudWatch namespace the workers' OpenTelemetry collector publishes their
    metrics in (the dashboard's worker widgets and the workers' alarms read it)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags on every resource (``stepsaga:tags`` as a JSON object in cdk.json)."""

    def __post_init__(self) -> None:
        if not isinstance(self.stage, str) or not _STAGE.match(self.stage):
            raise SettingsError(
                f"stage must be lower-case letters, digits and hyphens, "
                f"starting with a letter, at most 20 characters; got {self.stage!r}")
        if self.log_retention_days not in RETENTION_DAYS:
            raise SettingsError(
                f"logRetentionDays must be one of "
                f"{', '.join(map(str, RETENTION_DAYS))}; got {self.log_retention_days!r}")
        if self.removal_policy not in ("retain", "destroy"):
            raise SettingsError(f"removalPolicy must be 'retain' or 'destroy'; got "
                                f"{self.removal_policy!r}")
        if self.encryption_key not in (AWS_MANAGED, CREATE_KEY) and not _KEY_ARN.match(
                str(self.encryption_key)):
            raise SettingsError(f"encryptionKey must be {AWS_MANAGED!r}, {CREATE_KEY!r} or "
                                f"a KMS key ARN; got {self.encryption_key!r}")
        if self.worker_role not in ("none", "ecs", "lambda"):
            raise SettingsError(f"workerRole must be 'none', 'ecs' or 'lambda'; got "
                                f"{self.worker_role!r}")
        _check_range("maxReceiveCount", self.max_receive_count, 1, 1000)
        _check_range("visibilityTimeoutSeconds", self.visibility_timeout_seconds, 0, 43_200)
        _check_range("messageRetentionDays", self.message_retention_days, 1, 14)
        _check_range("dlqRetentionDays", self.dlq_retention_days, 1, 14)
        _check_range("eventRetryAttempts", self.event_retry_attempts, 0, 185)
        _check_range("eventMaxAgeSeconds", self.event_max_age_seconds, 60, 86_400)
        _check_range("eventArchiveRetentionDays", self.event_archive_retention_days, 0,
                     36_500)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.tags.items()):
            raise SettingsError("tags must map strings to strings")
        self._check_alarms()
        try:  # the workflows check their own timings; name the context key on failure
            self.manual_review_timings()
            self.slow_shipping_timings()
        except ValueError as exc:
            raise SettingsError(f"workflow timings: {exc}") from exc

    def _check_alarms(self) -> None:
        if self.alarm_email and not _EMAIL.match(self.alarm_email):
            raise SettingsError(f"alarmEmail must be an email address (or empty); got "
                                f"{self.alarm_email!r}")
        if (not isinstance(self.alarm_period_seconds, int)
                or self.alarm_period_seconds % 60 or not 60 <= self.alarm_period_seconds
                <= 86_400):
            raise SettingsError(f"alarmPeriodSeconds must be a multiple of 60 from 60 to "
                                f"86400; got {self.alarm_period_seconds!r}")
        _check_range("alarmEvaluationPeriods", self.alarm_evaluation_periods, 1, 100)
        if self.alarm_period_seconds * self.alarm_evaluation_periods > 86_400:
            raise SettingsError("alarmPeriodSeconds × alarmEvaluationPeriods must be at most "
                                "a day (86400), CloudWatch's limit")
        _check_range("dlqDepthThreshold", self.dlq_depth_threshold, 0, 1_000_000)
        _check_range("queueAgeAlarmSeconds", self.queue_age_alarm_seconds, 60, 1_209_600)
        _check_range("executionProblemsThreshold", self.execution_problems_threshold, 0,
                     1_000_000)
        _check_range("outboxAgeAlarmSeconds", self.outbox_age_alarm_seconds, 1, 1_209_600)
        namespace = self.worker_metrics_namespace
        if (not isinstance(namespace, str) or not _NAMESPACE.match(namespace)
                or namespace.startswith("AWS/")):
            raise SettingsError(f"workerMetricsNamespace must be 1 to 255 letters, digits "
                                f"or . - _ / # : (not starting with AWS/); got {namespace!r}")

    @property
    def name_prefix(self) -> str:
        """``stepsaga-<stage>``: the start of every name (bus, rules, machines, table, log
        groups, policies, roles, registry)."""
        return f"stepsaga-{self.stage}"

    @property
    def queue_prefix(self) -> str:
        """``stepsaga-<stage>-``: the start of every queue name (the workers'
        ``STEPSAGA_QUEUE_PREFIX``)."""
        return f"{self.name_prefix}-"

    @property
    def creates_key(self) -> bool:
        """True when the stack creates its own KMS key."""
        return self.encryption_key == CREATE_KEY

    @property
    def customer_managed_key(self) -> bool:
        """True when queues, table and log groups use a customer-managed KMS key."""
        return self.encryption_key != AWS_MANAGED

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
    def file_keys(cls) -> dict[str, str]:
        """Settings-file key → field name, for every field (``logRetentionDays`` →
        ``log_retention_days``)."""
        return {_camel(f.name): f.name for f in fields(cls)}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "settings"
                     ) -> InfraSettings:
        """Settings from a settings file's object (camelCase keys); SettingsError naming
        `source` and the key for an unknown key or a bad value."""
        known = cls.file_keys()
        unknown = sorted(k for k in values if k not in known)
        if unknown:
            raise SettingsError(f"{source}: unknown key(s) {', '.join(unknown)}; known: "
                                f"{', '.join(sorted(known))}")
        types = {f.name: f for f in fields(cls)}
        parsed: dict[str, Any] = {}
        for key, raw in values.items():
            name = known[key]
            parsed[name] = _parse(key, raw, types[name].default, name)
        try:
            return cls(**parsed)
        except SettingsError as exc:
            raise SettingsError(f"{source}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path, *, stage: str | None = None) -> InfraSettings:
        """Settings from the JSON file at `path`; with `stage`, the file's ``stage`` (if
        given) must be that stage."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(
                f"no settings file {path}: each stage has one (copy {STAGES_DIR / 'dev.json'}"
                " and commit it)") from None
        except ValueError as exc:
            raise SettingsError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SettingsError(f"{path} must hold a JSON object of settings")
        if stage is not None:
            data.setdefault("stage", stage)
            if data["stage"] != stage:
                raise SettingsError(f"{path} is for stage {data['stage']!r}, not {stage!r}")
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_context(cls, get: Callable[[str], Any], keys: list[str] | None = None, *,
                     stages_dir: Path = STAGES_DIR) -> InfraSettings:
        """Settings for the stage CDK context names: `get` is ``node.try_get_context``;
        `keys` the context keys present. ``stepsaga:stage`` (default ``dev``) picks
        ``<stages_dir>/<stage>.json``; ``stepsaga:settingsFile`` names a file instead.
        Any other ``stepsaga:*`` key is refused (it would not outlive one command)."""
        others = sorted(k for k in keys or [] if k.startswith(CONTEXT_PREFIX)
                        and k not in (STAGE_KEY, SETTINGS_FILE_KEY))
        if others:
            raise SettingsError(
                f"context key(s) {', '.join(others)} are not read: a stage's settings live "
                f"in its file ({stages_dir}/<stage>.json), so that every `cdk diff` and "
                "`cdk deploy` of the stage sees the same values; put them there")
        stage = get(STAGE_KEY)
        given = get(SETTINGS_FILE_KEY)
        if given:
            return cls.from_file(Path(str(given)), stage=None if stage is None else str(stage))
        stage = str(stage or DEFAULT_STAGE)
        if not _STAGE.match(stage):
            raise SettingsError(f"{STAGE_KEY} must be lower-case letters, digits and hyphens, "
                                f"starting with a letter, at most 20 characters; got {stage!r}")
        return cls.from_file(stages_dir / f"{stage}.json", stage=stage)

    def to_mapping(self) -> dict[str, Any]:
        """These settings as a settings file's object (camelCase keys)."""
        out: dict[str, Any] = {}
        for key, name in self.file_keys().items():
            value = getattr(self, name)
            out[key] = dict(value) if name == "tags" else value
        return out

    def replace(self, **changes: Any) -> InfraSettings:
        """A copy with `changes` (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_range(key: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SettingsError(f"{key} must be an integer between {low} and {high}; got "
                            f"{value!r}")


def _parse(key: str, raw: Any, default: Any, name: str) -> Any:
    """`raw` (a JSON value of the settings file) checked against the type of `default`:
    the file is typed, so ``"90"`` for an integer is an error, not a conversion."""
    if name == "tags":
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise SettingsError(f"{key} must be a JSON object of strings; got {raw!r}")
        return dict(raw)
    if isinstance(default, bool):
        if not isinstance(raw, bool):
            raise SettingsError(f"{key} must be true or false; got {raw!r}")
        return raw
    if isinstance(default, int):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise SettingsError(f"{key} must be an integer; got {raw!r}")
        return raw
    if isinstance(default, float):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise SettingsError(f"{key} must be a number; got {raw!r}")
        if not math.isfinite(raw):
            raise SettingsError(f"{key} must be a finite number; got {raw!r}")
        return float(raw)
    if not isinstance(raw, str):
        raise SettingsError(f"{key} must be a string; got {raw!r}")
    return raw
