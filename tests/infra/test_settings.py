"""InfraSettings: one committed file per stage, typed and validated; ``-c`` can pick a
stage (or a file) and nothing else (no synth needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stepsaga_infra.settings import (
    RETENTION_DAYS,
    SETTINGS_FILE_KEY,
    STAGE_KEY,
    STAGES_DIR,
    InfraSettings,
    SettingsError,
)

from supervisor_workflows import ManualReviewTimings, SlowShippingTimings

from .conftest import INFRA


def from_context(values: dict[str, Any], stages: Path = STAGES_DIR) -> InfraSettings:
    return InfraSettings.from_context(values.get, list(values), stages_dir=stages)


def test_defaults_match_the_workflows_defaults() -> None:
    settings = InfraSettings()
    assert settings.stage == "dev"
    assert settings.manual_review_timings() == ManualReviewTimings()
    assert settings.slow_shipping_timings() == SlowShippingTimings()
    assert settings.queue_prefix == "stepsaga-dev-"  # project-prefixed, per stage
    assert settings.name_prefix == "stepsaga-dev"
    assert settings.log_execution_data is False  # order data stays out of logs
    assert settings.removal_policy == "retain"
    assert settings.encryption_key == "aws-managed" and not settings.customer_managed_key


@pytest.mark.parametrize("path", sorted(STAGES_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_every_committed_stage_file_is_valid_and_named_for_its_stage(path: Path) -> None:
    settings = from_context({STAGE_KEY: path.stem})
    assert settings.stage == path.stem
    assert InfraSettings.from_mapping(settings.to_mapping()) == settings


def test_the_committed_stages() -> None:
    assert {p.stem for p in STAGES_DIR.glob("*.json")} >= {"dev", "prod", "local"}
    prod = from_context({STAGE_KEY: "prod"})
    assert prod.log_execution_data is False  # prod: no order data in the logs
    assert prod.creates_key and prod.removal_policy == "retain"
    assert from_context({}) == from_context({STAGE_KEY: "dev"})  # dev by default


def test_cdk_json_names_no_setting_but_the_stage() -> None:
    context = json.loads((INFRA / "cdk.json").read_text())["context"]
    assert context["cli-telemetry"] is False
    assert [k for k in context if k.startswith("stepsaga:")] == [STAGE_KEY]
    assert from_context(context).stage == "dev"


def test_a_setting_given_with_c_is_refused_because_it_would_not_last() -> None:
    with pytest.raises(SettingsError, match=r"stepsaga:logRetentionDays.*put them there"):
        from_context({STAGE_KEY: "dev", "stepsaga:logRetentionDays": "90"})


def test_a_stage_without_a_file_is_refused_by_path(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"no settings file .*qa\.json"):
        from_context({STAGE_KEY: "qa"}, tmp_path)


def test_a_settings_file_can_be_named(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.json"
    path.write_text(json.dumps({"stage": "qa", "logRetentionDays": 90,
                                "tags": {"team": "payments"}}))
    settings = from_context({SETTINGS_FILE_KEY: str(path)})
    assert (settings.stage, settings.log_retention_days) == ("qa", 90)
    assert dict(settings.tags) == {"team": "payments"}
    with pytest.raises(SettingsError, match="is for stage 'qa', not 'prod'"):
        from_context({SETTINGS_FILE_KEY: str(path), STAGE_KEY: "prod"})


@pytest.mark.parametrize(("values", "message"), [
    ({"stage": "Prod"}, "stage"),
    ({"stage": "a" * 21}, "stage"),
    ({"logRetentionDays": 45}, "logRetentionDays"),
    ({"logRetentionDays": "90"}, "logRetentionDays must be an integer"),
    ({"removalPolicy": "snapshot"}, "removalPolicy"),
    ({"encryptionKey": "mine"}, "encryptionKey"),
    ({"workerRole": "ec2"}, "workerRole"),
    ({"maxReceiveCount": 0}, "maxReceiveCount"),
    ({"visibilityTimeoutSeconds": 50000}, "visibilityTimeoutSeconds"),
    ({"eventRetryAttempts": 186}, "eventRetryAttempts"),
    ({"eventMaxAgeSeconds": 59}, "eventMaxAgeSeconds must be an integer between 60"),
    ({"eventMaxAgeSeconds": 86_401}, "eventMaxAgeSeconds"),
    ({"eventArchiveRetentionDays": -1}, "eventArchiveRetentionDays"),
    ({"reviewTimeoutSeconds": 0}, "review_timeout_seconds"),
    ({"shippingBackoffRate": 0.5}, "backoff_rate"),
    ({"shippingBackoffRate": "2"}, "shippingBackoffRate must be a number"),
    ({"logExecutionData": "false"}, "true or false"),
    ({"tags": [1]}, "JSON object"),
    ({"reviewTimeout": 60}, "unknown key"),
])
def test_bad_values_fail_by_name(values: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        InfraSettings.from_mapping(values)


def test_a_key_arn_is_a_customer_managed_key() -> None:
    arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    settings = InfraSettings(encryption_key=arn)
    assert settings.customer_managed_key and not settings.creates_key


def test_retention_days_are_cloudwatch_values() -> None:
    for days in RETENTION_DAYS:
        assert InfraSettings(log_retention_days=days).log_retention_days == days


def test_a_deadline_with_too_many_retries_is_refused() -> None:
    with pytest.raises(SettingsError, match="retries"):
        InfraSettings(shipping_deadline_seconds=365 * 86400, shipping_interval_seconds=1,
                      shipping_max_delay_seconds=1)
