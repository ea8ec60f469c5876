"""Alarms and a dashboard: what an operator watches of one stage.

Every alarm notifies one SNS topic (``stepsaga-<stage>-alarms``; an email address
subscribes by the ``alarmEmail`` setting). One alarm per:

- dead-letter queue (each work queue's, and the rules' DLQ): a message arrived there
  (depth over ``dlqDepthThreshold``, 0 by default);
- work queue: its oldest message is older than ``queueAgeAlarmSeconds`` (the workers
  are down, too few, or stuck);
- state machine: ``ExecutionsFailed``, ``ExecutionsTimedOut`` and
  ``ExecutionsAborted`` (each its own alarm);
- rule: ``FailedInvocations`` (EventBridge could not start the workflow);
- the workers' own metrics, when their OTLP collector publishes them to CloudWatch
  (namespace ``workerMetricsNamespace``): outbox rows older than
  ``outboxAgeAlarmSeconds``, and messages dead-lettered by the workers.

docs/observability.md says what each alarm means and what to do. The dashboard
(``stepsaga-<stage>``) shows the queues, the dead-letter queues, the state machines, the
rules and the workers' metrics, with the alarms' states on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from .queues import QueuePair, logical_name
from .settings import InfraSettings

EXECUTION_PROBLEMS: Final[tuple[str, ...]] = (
    "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")
"""The Step Functions metrics with an alarm per state machine."""

WORKER_METRICS: Final[tuple[tuple[str, str, str], ...]] = (
    ("stepsaga.messages.handled", "Sum", "handled"),
    ("stepsaga.messages.dead_lettered", "Sum", "dead-lettered"),
    ("stepsaga.outbox.backlog", "Maximum", "outbox backlog"),
    ("stepsaga.outbox.oldest_age", "Maximum", "oldest outbox row (s)"),
    ("stepsaga.timers.due", "Maximum", "timers due"),
    ("stepsaga.handoffs.started", "Sum", "hand-offs started"),
    ("stepsaga.handoffs.completed", "Sum", "hand-offs completed"),
    ("messaging.process.duration", "p99", "handling p99 (s)"),
)
"""The workers' metrics on the dashboard (as their collector names them in CloudWatch:
the OpenTelemetry names, no dimension — the collector's zero-dimension roll-up)."""


@dataclass(frozen=True)
class Watched:
    """What the alarms and the dashboard watch."""

    queues: Mapping[str, QueuePair]
    rule_dlq: sqs.IQueue
    state_machines: Mapping[str, sfn.IStateMachine]
    rules: Mapping[str, events.IRule]
    bus_name: str


class Monitoring(Construct):
    """The alarm topic, the alarms and the dashboard of one stage."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings,
                 watched: Watched, key: kms.IKey | None) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        period = Duration.seconds(settings.alarm_period_seconds)
        self.period = period
        self.topic = sns.Topic(
            self, "AlarmTopic", topic_name=f"{settings.name_prefix}-alarms",
            display_name=f"stepsaga {settings.stage} alarms", enforce_ssl=True,
            master_key=key)
        if key is None:
            reason = ("CloudWatch alarms cannot publish to a topic encrypted with the "
                      "AWS-managed SNS key; the notifications carry alarm names and states "
                      "only, no order data. With encryptionKey 'create' or a key ARN the "
                      "topic uses the stack's key.")
            NagSuppressions.add_resource_suppressions(self.topic, [
                NagPackSuppression(id="NIST.800.53.R5-SNSEncryptedKMS", reason=reason)])
        elif isinstance(key, kms.Key):  # a key the stack creates: let CloudWatch use it
            key.add_to_resource_policy(iam.PolicyStatement(
                sid="CloudWatchAlarmsToTheTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}))
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        self.action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cw.Alarm] = []
        self.dlq_alarms: dict[str, cw.Alarm] = {}
        self.age_alarms: dict[str, cw.Alarm] = {}
        self.execution_alarms: dict[tuple[str, str], cw.Alarm] = {}
        self.rule_alarms: dict[str, cw.Alarm] = {}
        self._queue_alarms(watched)
        self._workflow_alarms(watched)
        self._worker_alarms()
        self.dashboard = self._dashboard(watched)

    # -- alarms ---------------------------------------------------------------------
    def _alarm(self, ident: str, metric: cw.IMetric, *, threshold: float, description: str,
               name: str) -> cw.Alarm:
        alarm = cw.Alarm(
            self, ident, alarm_name=f"{self.settings.name_prefix}-{name}",
            alarm_description=description, metric=metric, threshold=threshold,
            evaluation_periods=self.settings.alarm_evaluation_periods,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING)
        alarm.add_alarm_action(self.action)
        alarm.add_ok_action(self.action)
        self.alarms.append(alarm)
        return alarm

    def _queue_alarms(self, watched: Watched) -> None:
        settings, period = self.settings, self.period
        dlqs: list[tuple[str, sqs.IQueue]] = [
            (name, pair.dlq) for name, pair in watched.queues.items()]
        dlqs.append(("supervision-events", watched.rule_dlq))
        for name, dlq in dlqs:
            self.dlq_alarms[name] = self._alarm(
                f"{logical_name(name)}DlqDepth",
                dlq.metric_approximate_number_of_messages_visible(
                    period=period, statistic="Maximum"),
                threshold=settings.dlq_depth_threshold, name=f"{name}-dlq-depth",
                description=f"Messages wait on the {name} dead-letter queue. See "
                            "docs/observability.md, 'A dead-letter queue has messages'.")
        for name, pair in watched.queues.items():
            self.age_alarms[name] = self._alarm(
                f"{logical_name(name)}OldestMessage",
                pair.queue.metric_approximate_age_of_oldest_message(
                    period=period, statistic="Maximum"),
                threshold=settings.queue_age_alarm_seconds, name=f"{name}-oldest-message",
                description=f"The oldest message on {name} waits longer than "
                            f"{settings.queue_age_alarm_seconds} s. See "
                            "docs/observability.md, 'A queue is not drained'.")

    def _workflow_alarms(self, watched: Watched) -> None:
        for workflow, machine in watched.state_machines.items():
            for metric_name in EXECUTION_PROBLEMS:
                self.execution_alarms[(workflow, metric_name)] = self._alarm(
                    f"{workflow}{metric_name}",
                    machine.metric(metric_name, period=self.period, statistic="Sum"),
                    threshold=self.settings.execution_problems_threshold,
                    name=f"{workflow}-{metric_name}",
                    description=f"{workflow}: {metric_name}. See docs/observability.md, "
                                "'A workflow execution failed, timed out or was aborted'.")
        for workflow, rule in watched.rules.items():
            self.rule_alarms[workflow] = self._alarm(
                f"{workflow}RuleFailedInvocations",
                cw.Metric(namespace="AWS/Events", metric_name="FailedInvocations",
                          dimensions_map={"EventBusName": watched.bus_name,
                                          "RuleName": rule.rule_name},
                          period=self.period, statistic="Sum"),
                threshold=0, name=f"{workflow}-rule-failed-invocations",
                description=f"EventBridge could not start {workflow} for a hand-off. See "
                            "docs/observability.md, 'A rule failed to start a workflow'.")

    def _worker_metric(self, name: str, statistic: str) -> cw.Metric:
        return cw.Metric(namespace=self.settings.worker_metrics_namespace, metric_name=name,
                         period=self.period, statistic=statistic)

    def _worker_alarms(self) -> None:
        settings = self.settings
        self.outbox_alarm = self._alarm(
            "WorkersOutboxAge", self._worker_metric("stepsaga.outbox.oldest_age", "Maximum"),
            threshold=settings.outbox_age_alarm_seconds, name="workers-outbox-age",
            description="The workers' oldest unsent outbox row is older than "
                        f"{settings.outbox_age_alarm_seconds} s. See docs/observability.md, "
                        "'The outbox is not sent'.")
        self.dead_letter_alarm = self._alarm(
            "WorkersDeadLettered",
            self._worker_metric("stepsaga.messages.dead_lettered", "Sum"),
            threshold=0, name="workers-dead-lettered",
            description="A worker dead-lettered a message (its reason is in the error store). "
                        "See docs/observability.md, 'A dead-letter queue has messages'.")

    # -- the dashboard --------------------------------------------------------------
    def _dashboard(self, watched: Watched) -> cw.Dashboard:
        period = self.period
        dashboard = cw.Dashboard(self, "Dashboard",
                                 dashboard_name=f"{self.settings.name_prefix}",
                                 default_interval=Duration.hours(3))
        dashboard.add_widgets(cw.AlarmStatusWidget(
            title="Alarms", alarms=list(self.alarms), width=24, height=4))
        queues = watched.queues
        dashboard.add_widgets(
            cw.GraphWidget(title="Messages waiting", width=8, left=[
                pair.queue.metric_approximate_number_of_messages_visible(
                    period=period, statistic="Maximum", label=name)
                for name, pair in queues.items()]),
            cw.GraphWidget(title="Age of the oldest message (s)", width=8, left=[
                pair.queue.metric_approximate_age_of_oldest_message(
                    period=period, statistic="Maximum", label=name)
                for name, pair in queues.items()]),
            cw.GraphWidget(title="Dead-letter queues", width=8, left=[
                *(pair.dlq.metric_approximate_number_of_messages_visible(
                    period=period, statistic="Maximum", label=f"{name} DLQ")
                  for name, pair in queues.items()),
                watched.rule_dlq.metric_approximate_number_of_messages_visible(
                    period=period, statistic="Maximum", label="rules' DLQ")]))
        machines = watched.state_machines
        dashboard.add_widgets(*(
            cw.GraphWidget(title=f"{workflow} executions", width=8, left=[
                machine.metric(name, period=period, statistic="Sum",
                               label=name.removeprefix("Executions"))
                for name in ("ExecutionsStarted", "ExecutionsSucceeded", *EXECUTION_PROBLEMS)])
            for workflow, machine in machines.items()),
            cw.GraphWidget(title="Hand-off rules", width=8, left=[
                cw.Metric(namespace="AWS/Events", metric_name=name,
                          dimensions_map={"EventBusName": watched.bus_name,
                                          "RuleName": rule.rule_name},
                          period=period, statistic="Sum", label=f"{workflow} {name}")
                for workflow, rule in watched.rules.items()
                for name in ("Invocations", "FailedInvocations")]))
        dashboard.add_widgets(*(
            cw.GraphWidget(title=f"Workers: {label}", width=6,
                           left=[self._worker_metric(name, statistic)])
            for name, statistic, label in WORKER_METRICS))
        return dashboard

