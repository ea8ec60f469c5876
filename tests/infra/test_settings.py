"""InfraSettings: defaults, context parsing and validation (no synth needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from stepsaga_infra.settings import (
    CONTEXT_PREFIX,
    RETENTION_DAYS,
    InfraSettings,
    SettingsError,
)

from supervisor_workflows import ManualReviewTimings, SlowShippingTimings

from .conftest import INFRA


def from_context(values: dict[str, Any]) -> InfraSettings:
    return InfraSettings.from_context(values.get, list(values))


def test_defaults_match_the_workflows_defaults() -> None:
    settings = InfraSettings()
    assert settings.stage == "dev"
    assert settings.manual_review_timings() == ManualReviewTimings()
    assert settings.slow_shipping_timings() == SlowShippingTimings()
    assert settings.queue_prefix == "dev-"
    assert settings.name_prefix == "stepsaga-dev"


def test_every_field_has_a_context_key_and_round_trips() -> None:
    settings = InfraSettings(stage="prod", log_retention_days=90, review_timeout_seconds=7200,
                             shipping_deadline_seconds=7200, removal_policy="destroy",
                             log_execution_data=False, tags={"team": "payments"})
    context = settings.to_context()
    assert set(context) == set(InfraSettings.context_keys())
    assert all(key.startswith(CONTEXT_PREFIX) for key in context)
    assert from_context(context) == settings


def test_command_line_strings_are_parsed() -> None:
    """``cdk deploy -c stepsaga:logRetentionDays=90`` gives strings."""
    settings = from_context({
        "stepsaga:stage": "qa", "stepsaga:logRetentionDays": "90",
        "stepsaga:shippingBackoffRate": "1.5", "stepsaga:logExecutionData": "false",
        "stepsaga:tags": json.dumps({"owner": "ops"}), "unrelated": "ignored"})
    assert settings.stage == "qa"
    assert settings.log_retention_days == 90
    assert settings.shipping_backoff_rate == 1.5
    assert settings.log_execution_data is False
    assert dict(settings.tags) == {"owner": "ops"}


def test_cdk_json_context_is_valid() -> None:
    context = json.loads((INFRA / "cdk.json").read_text())["context"]
    assert context["cli-telemetry"] is False
    settings = from_context(context)
    assert settings.stage == "dev"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("stepsaga:stage", "Prod", "stage"),
    ("stepsaga:stage", "a" * 21, "stage"),
    ("stepsaga:logRetentionDays", "45", "logRetentionDays"),
    ("stepsaga:logRetentionDays", "many", "integer"),
    ("stepsaga:removalPolicy", "snapshot", "removalPolicy"),
    ("stepsaga:maxReceiveCount", "0", "maxReceiveCount"),
    ("stepsaga:visibilityTimeoutSeconds", "50000", "visibilityTimeoutSeconds"),
    ("stepsaga:eventRetryAttempts", "186", "eventRetryAttempts"),
    ("stepsaga:reviewTimeoutSeconds", "0", "review_timeout_seconds"),
    ("stepsaga:shippingBackoffRate", "nan", "shippingBackoffRate"),
    ("stepsaga:shippingBackoffRate", "0.5", "backoff_rate"),
    ("stepsaga:logExecutionData", "maybe", "true or false"),
    ("stepsaga:tags", "[1]", "JSON object"),
    ("stepsaga:reviewTimeout", "60", "unknown context key"),
])
def test_bad_values_fail_by_name(key: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_context({key: value})


def test_retention_days_are_cloudwatch_values() -> None:
    for days in RETENTION_DAYS:
        assert InfraSettings(log_retention_days=days).log_retention_days == days


def test_a_deadline_with_too_many_retries_is_refused() -> None:
    with pytest.raises(SettingsError, match="retries"):
        InfraSettings(shipping_deadline_seconds=365 * 86400, shipping_interval_seconds=1,
                      shipping_max_delay_seconds=1)
