"""``AWS::CloudWatch::Alarm`` and ``AWS::SNS::TopicPolicy`` (the alarms of a stage and
their topic's SSL-only policy).

The gap: moto has no CloudFormation model for either, so it skips them ("not supported
by moto's CloudFormation implementation"); a ``Fn::GetAtt`` to an alarm (a dashboard's
alarm widget names alarms by ARN) then fails the whole stack with "references undefined
resource", and a deployed stage has no alarm to look at and a topic without its policy.

The fix: a model that puts the alarm (``PutMetricAlarm``, with its actions, dimensions
and threshold) in moto's CloudWatch backend, replaces it on update and deletes it with
the stack (``Fn::GetAtt Alarm.Arn`` is its ARN, ``Ref`` its name, as on AWS; moto
evaluates no alarm), and one that sets a topic policy's document on its topics (moto
enforces none; GetTopicAttributes shows it, as on AWS). Dashboards moto makes itself.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

_MODELS: list[type] = []
"""The model classes made by :func:`apply` (kept referenced)."""


def _backend(account_id: str, region_name: str) -> Any:
    models: Any = importlib.import_module("moto.cloudwatch.models")
    return models.cloudwatch_backends[account_id][region_name]


def _put_alarm(name: str, properties: Mapping[str, Any], account_id: str,
               region_name: str) -> Any:
    def optional_int(key: str) -> int | None:
        value = properties.get(key)
        return None if value is None else int(value)

    return _backend(account_id, region_name).put_metric_alarm(
        name=name, namespace=properties.get("Namespace", ""),
        metric_name=properties.get("MetricName", ""),
        comparison_operator=properties.get("ComparisonOperator", ""),
        evaluation_periods=int(properties.get("EvaluationPeriods", 1)),
        period=int(properties.get("Period", 60)),
        threshold=float(properties.get("Threshold", 0)),
        statistic=properties.get("Statistic", ""),
        description=properties.get("AlarmDescription", ""),
        dimensions=[{"Name": d["Name"], "Value": str(d["Value"])}
                    for d in properties.get("Dimensions", [])],
        alarm_actions=list(properties.get("AlarmActions", [])),
        ok_actions=list(properties.get("OKActions", [])),
        insufficient_data_actions=list(properties.get("InsufficientDataActions", [])),
        datapoints_to_alarm=optional_int("DatapointsToAlarm"),
        extended_statistic=properties.get("ExtendedStatistic"),
        unit=properties.get("Unit"),
        actions_enabled=bool(properties.get("ActionsEnabled", True)),
        treat_missing_data=properties.get("TreatMissingData"))


def apply() -> None:
    """Apply the fix (the module docstring says what and why)."""
    common: Any = importlib.import_module("moto.core.common_models")
    parsing: Any = importlib.import_module("moto.cloudformation.parsing")
    sns_models: Any = importlib.import_module("moto.sns.models")

    class Alarm(common.CloudFormationModel):  # type: ignore[misc]
        """A metric alarm made by a stack."""

        def __init__(self, name: str, alarm: Any, account_id: str, region_name: str) -> None:
            self.name = name
            self.alarm = alarm
            self.account_id = account_id
            self.region_name = region_name

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @staticmethod
        def cloudformation_name_type() -> str:
            return "AlarmName"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudWatch::Alarm"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return str(self.alarm.alarm_arn)

        @classmethod
        def create_from_cloudformation_json(
                cls, resource_name: str, cloudformation_json: Any, account_id: str,
                region_name: str, **kwargs: Any) -> Alarm:
            properties = cloudformation_json.get("Properties", {})
            name = properties.get("AlarmName") or resource_name
            return cls(name, _put_alarm(name, properties, account_id, region_name),
                       account_id, region_name)

        @classmethod
        def update_from_cloudformation_json(
                cls, original_resource: Any, new_resource_name: str,
                cloudformation_json: Any, account_id: str, region_name: str) -> Alarm:
            original_resource.delete(account_id, region_name)
            return cls.create_from_cloudformation_json(
                new_resource_name, cloudformation_json, account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(
                cls, resource_name: str, cloudformation_json: Any, account_id: str,
                region_name: str) -> None:
            name = cloudformation_json.get("Properties", {}).get("AlarmName") or resource_name
            _backend(account_id, region_name).delete_alarms([name])

        def delete(self, account_id: str, region_name: str) -> None:
            _backend(account_id, region_name).delete_alarms([self.name])

    class TopicPolicy(common.CloudFormationModel):  # type: ignore[misc]
        """The access policy of a set of SNS topics (the alarm topic's SSL-only one)."""

        def __init__(self, physical_id: str, properties: Mapping[str, Any],
                     account_id: str, region_name: str) -> None:
            self.id = physical_id
            self.properties = dict(properties)
            self.account_id = account_id
            self.region_name = region_name

        @property
        def physical_resource_id(self) -> str:
            return self.id

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SNS::TopicPolicy"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Id"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return self.id

        def _topics(self) -> list[Any]:
            backend = sns_models.sns_backends[self.account_id][self.region_name]
            return [backend.topics[arn] for arn in self.properties.get("Topics", [])
                    if arn in backend.topics]

        def attach(self) -> None:
            document = self.properties.get("PolicyDocument", {})
            text = document if isinstance(document, str) else json.dumps(document)
            for topic in self._topics():
                topic.policy = text

        @classmethod
        def create_from_cloudformation_json(
                cls, resource_name: str, cloudformation_json: Any, account_id: str,
                region_name: str, **kwargs: Any) -> TopicPolicy:
            policy = cls(resource_name, cloudformation_json.get("Properties", {}),
                         account_id, region_name)
            policy.attach()
            return policy

        @classmethod
        def update_from_cloudformation_json(
                cls, original_resource: Any, new_resource_name: str,
                cloudformation_json: Any, account_id: str, region_name: str
                ) -> TopicPolicy:
            original_resource.properties = dict(cloudformation_json.get("Properties", {}))
            original_resource.attach()
            return original_resource  # type: ignore[no-any-return]

        @classmethod
        def delete_from_cloudformation_json(
                cls, resource_name: str, cloudformation_json: Any, account_id: str,
                region_name: str) -> None:
            return None  # the topics go with the stack; a kept topic keeps its policy

        def delete(self, account_id: str, region_name: str) -> None:
            return None

    for cached in (parsing.get_model_list, parsing.get_model_map,
                   parsing.get_name_type_map):
        cached.cache_clear()
    _MODELS.extend([Alarm, TopicPolicy])  # moto finds models as CloudFormationModel subclasses
