"""Fixes to moto 5.2.5 that let the CDK CLI deploy stepsaga's stack to the emulator.

Test support only: the infra tests start an emulator of their own with
``start_emulator(extensions=("tests.support.moto_cdk_fixes",))`` (the emulator
launcher's hook for extra modules), so the server process imports this module — which
applies every fix — before it serves. Nothing in the product imports it; importing it
elsewhere patches that process's moto only (the smoke tests import it to list the
fixes; nothing there runs moto in-process).

moto is pinned exactly (``moto[server]==5.2.5``): every fix touches its internals, and
``tests/infra/test_moto_cdk_fixes.py`` has a smoke test per fix so an upgrade shows at
once which one broke (or became unnecessary).

Each fix is one function below, named for the gap, with the gap and the fix in its
docstring.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

LOG = logging.getLogger("stepsaga.moto_cdk_fixes")

APPLIED: list[str] = []
"""Names of the fixes applied in this process, in order (idempotence and diagnostics)."""
QUEUE_POLICY_MODEL: list[type] = []
"""The ``AWS::SQS::QueuePolicy`` model class, once :func:`sqs_queue_policies` made it."""

_SUBSTITUTION: Final = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def event_bus_ref() -> None:
    """``Ref`` to an ``AWS::Events::EventBus``.

    The gap: moto resolves ``{"Ref": logical id}`` to the resource's
    ``physical_resource_id``, and falls back to the model object itself when it has
    none — which ``EventBus`` lacks. A rule with ``EventBusName: {"Ref": bus}`` (what CDK
    writes) then hands an ``EventBus`` object to ``put_rule``, which fails with
    ``AttributeError: 'EventBus' object has no attribute 'split'`` (HTTP 500 while
    executing the change set — after the CLI already reported success).

    The fix: ``EventBus.physical_resource_id`` is the bus name, as ``Ref`` returns on AWS.
    """
    models: Any = importlib.import_module("moto.events.models")
    models.EventBus.physical_resource_id = property(lambda self: self.name)


def substitute_definition(definition: str, substitutions: Mapping[str, Any] | None) -> str:
    """`definition` with every ``${Name}`` that `substitutions` names replaced, as
    CloudFormation's ``DefinitionSubstitutions`` does (others are left alone)."""
    if not substitutions:
        return definition

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(substitutions[name]) if name in substitutions else match.group(0)

    return _SUBSTITUTION.sub(replace, definition)


def _definition_from_properties(properties: Mapping[str, Any]) -> str | None:
    """The state machine's ASL from CloudFormation properties (``DefinitionString`` or a
    ``Definition`` object), substitutions applied; None when neither is given."""
    if "Definition" in properties:
        text = json.dumps(properties["Definition"])
    elif "DefinitionString" in properties:
        text = str(properties["DefinitionString"])
    else:
        return None
    return substitute_definition(text, properties.get("DefinitionSubstitutions"))


def state_machines_from_cloudformation() -> None:
    """``AWS::StepFunctions::StateMachine`` created, updated and deleted by CloudFormation.

    The gaps:

    - moto's CloudFormation model puts the machine in ``stepfunctions_backends``, but with
      ``execute_state_machine`` on, the Step Functions API (StartExecution, the
      EventBridge extension, DescribeStateMachine) reads the ASL interpreter's backend,
      ``stepfunctions_parser_backends``: a deployed machine is invisible there, and
      deleting or updating it misses it too.
    - ``DefinitionSubstitutions`` are ignored: the machine keeps ``${ClaimTableName}``
      placeholders instead of the table name and queue URLs. ``Definition`` (an object)
      is ignored as well.
    - ``LoggingConfiguration`` / ``TracingConfiguration`` / ``StateMachineType`` are
      dropped, so DescribeStateMachine cannot show them.

    The fix: create, update and delete through the backend the API uses
    (``moto.stepfunctions.responses.get_backend``), with substitutions applied and the
    logging, tracing and type passed on.
    """
    models: Any = importlib.import_module("moto.stepfunctions.models")
    responses: Any = importlib.import_module("moto.stepfunctions.responses")
    utils: Any = importlib.import_module("moto.stepfunctions.utils")
    state_machine = models.StateMachine

    def configurations(properties: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        logging_config = properties.get("LoggingConfiguration")
        if logging_config:
            out["loggingConfiguration"] = {
                "level": logging_config.get("Level", "OFF"),
                "includeExecutionData": bool(logging_config.get("IncludeExecutionData")),
                "destinations": [
                    {"cloudWatchLogsLogGroup": {"logGroupArn": d.get(
                        "CloudWatchLogsLogGroup", {}).get("LogGroupArn")}}
                    for d in logging_config.get("Destinations", [])],
            }
        tracing = properties.get("TracingConfiguration")
        if tracing:
            out["tracingConfiguration"] = {"enabled": bool(tracing.get("Enabled"))}
        return out

    def create(cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str,
               region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        backend = responses.get_backend(account_id, region_name)
        return backend.create_state_machine(
            name=properties.get("StateMachineName", resource_name),
            definition=_definition_from_properties(properties) or "",
            roleArn=properties.get("RoleArn", ""),
            tags=utils.cfn_to_api_tags(properties.get("Tags", [])),
            sm_type=properties.get("StateMachineType", "STANDARD"),
            **configurations(properties))

    def delete(cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str,
               region_name: str) -> None:
        # resource_name is the physical id: the ARN
        responses.get_backend(account_id, region_name).delete_state_machine(resource_name)

    def update(cls: Any, /, original_resource: Any, new_resource_name: str,
               cloudformation_json: Any, account_id: str, region_name: str) -> Any:
        properties = cloudformation_json.get("Properties", {})
        name = properties.get("StateMachineName", original_resource.name)
        backend = responses.get_backend(account_id, region_name)
        if name != original_resource.name:  # a new name replaces the machine
            created = create(cls, name, cloudformation_json, account_id, region_name)
            backend.delete_state_machine(original_resource.arn)
            return created
        config = configurations(properties)
        updated = backend.update_state_machine(
            original_resource.arn,
            definition=_definition_from_properties(properties),
            role_arn=properties.get("RoleArn"),
            logging_configuration=config.get("loggingConfiguration"),
            tracing_configuration=config.get("tracingConfiguration"))
        tags = utils.cfn_to_api_tags(properties.get("Tags", []))
        if tags:
            backend.tagger.tag_resource(updated.arn, tags)
        return updated

    state_machine.create_from_cloudformation_json = classmethod(create)
    state_machine.delete_from_cloudformation_json = classmethod(delete)
    state_machine.update_from_cloudformation_json = classmethod(update)


def change_set_execution() -> None:
    """ExecuteChangeSet: outputs after success, a failed status after failure.

    The gaps:

    - After a change set is executed the stack keeps the output map (and description)
      of the template it had before — for a stack created by a change set (how the CDK
      CLI deploys) that is the empty template: DescribeStacks shows no ``Outputs``.
    - When a resource fails to create or update, ExecuteChangeSet answers HTTP 500 and
      the stack stays ``*_COMPLETE``: the CLI retries, then reports success for a stack
      that is missing resources.

    The fix: on success the stack takes the change set's template, parameters,
    description and a fresh output map; on failure the stack ends
    ``CREATE_FAILED`` / ``UPDATE_FAILED`` with the error as its status reason and a stack
    event saying so (which the CLI reports), and the call still answers 200, as AWS does
    (a failed execution shows in the stack, not in the API call).
    """
    models: Any = importlib.import_module("moto.cloudformation.models")
    backend_class = models.CloudFormationBackend
    original: Callable[..., None] = backend_class.execute_change_set

    def find(backend: Any, change_set_name: str) -> Any:
        if change_set_name in backend.change_sets:
            return backend.change_sets[change_set_name]
        for change_set in backend.change_sets.values():
            if change_set.change_set_name == change_set_name:
                return change_set
        return None

    @functools.wraps(original)
    def execute_change_set(self: Any, change_set_name: str,
                           stack_name: str | None = None) -> None:
        change_set = find(self, change_set_name)
        try:
            original(self, change_set_name, stack_name)
        except Exception as exc:
            if change_set is None:
                raise
            stack = self.stacks[change_set.stack_id]
            failed = f"{change_set.change_set_type}_FAILED"
            reason = f"{type(exc).__name__}: {exc}"
            stack.status = failed
            stack.status_reason = reason
            stack._add_stack_event(failed, resource_status_reason=reason)
            LOG.exception("change set %s of %s failed", change_set_name, stack.name)
            change_set.execution_status = "EXECUTE_FAILED"
            return
        if change_set is None:
            return
        stack = self.stacks[change_set.stack_id]
        stack.template = change_set.template
        stack._parse_template()
        stack.description = stack.template_dict.get("Description")
        stack.parameters = change_set.parameters
        stack.output_map = stack._create_output_map()

    backend_class.execute_change_set = execute_change_set


def missing_change_sets() -> None:
    """DescribeChangeSet and DeleteChangeSet of a change set that does not exist.

    The gap: before every update the CDK CLI deletes any leftover change set named
    ``cdk-deploy-change-set`` (DeleteChangeSet, which AWS answers with success when
    there is none), and it reads ``ChangeSetNotFoundException`` from DescribeChangeSet
    as "no such change set". moto's DeleteChangeSet of a missing set fails with an
    ``UnboundLocalError`` (HTTP 500: the CLI retries for 40 s, then gives up), and its
    DescribeChangeSet answers ``ValidationError: Stack with id ... does not exist``,
    which the CLI reports as a failed deploy. So every ``cdk deploy`` after the first
    failed.

    The fix: DeleteChangeSet of a missing set does nothing; DescribeChangeSet of one
    raises ``ChangeSetNotFoundException`` (code ``ChangeSetNotFound``, HTTP 404), as on
    AWS.
    """
    models: Any = importlib.import_module("moto.cloudformation.models")
    exceptions: Any = importlib.import_module("moto.cloudformation.exceptions")
    backend_class = models.CloudFormationBackend

    class ChangeSetNotFound(exceptions.CloudFormationError):  # type: ignore[misc]
        code = "ChangeSetNotFoundException"  # the model's shape: serialized as AWS does

        def __init__(self, name: str) -> None:
            super().__init__(f"ChangeSet [{name}] does not exist")

    def exists(backend: Any, change_set_name: str) -> bool:
        return change_set_name in backend.change_sets or any(
            cs.change_set_name == change_set_name for cs in backend.change_sets.values())

    original_delete: Callable[..., None] = backend_class.delete_change_set
    original_describe: Callable[..., Any] = backend_class.describe_change_set

    @functools.wraps(original_delete)
    def delete_change_set(self: Any, change_set_name: str) -> None:
        if exists(self, change_set_name):
            original_delete(self, change_set_name)

    @functools.wraps(original_describe)
    def describe_change_set(self: Any, change_set_name: str) -> Any:
        if not exists(self, change_set_name):
            raise ChangeSetNotFound(change_set_name)
        return original_describe(self, change_set_name)

    backend_class.delete_change_set = delete_change_set
    backend_class.describe_change_set = describe_change_set


_SSM_TYPE: Final = "AWS::SSM::Parameter::"


def previous_ssm_parameter_values() -> None:
    """``UsePreviousValue`` for an SSM-typed parameter (CDK's ``BootstrapVersion``).

    The gap: every CDK template has the parameter ``BootstrapVersion`` of type
    ``AWS::SSM::Parameter::Value<String>`` with default ``/cdk-bootstrap/hnb659fds/version``.
    On an update the CLI passes it with ``UsePreviousValue: true``. On AWS the previous
    value is the parameter *name*, resolved again; moto takes the previously *resolved*
    value (the bootstrap version, e.g. ``"30"``) and then looks that up as a parameter
    name, finds nothing and fails the change set with ``AttributeError: 'NoneType'
    object has no attribute 'value'``. So every update of a CDK stack failed.

    The fix: each resource map remembers the SSM parameter names its SSM-typed
    parameters were resolved from; on the next load, an input equal to the value
    resolved before is taken as "the previous value" and replaced by that name, which is
    then resolved again, as on AWS.
    """
    parsing: Any = importlib.import_module("moto.cloudformation.parsing")
    resource_map = parsing.ResourceMap
    original: Callable[..., None] = resource_map.load_parameters

    @functools.wraps(original)
    def load_parameters(self: Any) -> None:
        slots: dict[str, Any] = self._template.get("Parameters", {}) or {}
        names: dict[str, Any] = getattr(self, "_stepsaga_ssm_names", {})
        resolved_before = dict(self.resolved_parameters)
        for key, value in list(self.input_parameters.items()):
            slot_type = str(slots.get(key, {}).get("Type", ""))
            if (slot_type.startswith(_SSM_TYPE) and key in names
                    and key in resolved_before and value == resolved_before[key]):
                self.input_parameters[key] = names[key]
        original(self)
        self._stepsaga_ssm_names = {
            key: self.input_parameters.get(key, slot.get("Default"))
            for key, slot in slots.items()
            if str(slot.get("Type", "")).startswith(_SSM_TYPE)}

    resource_map.load_parameters = load_parameters


def updates_without_support() -> None:
    """Updating a resource whose moto model has no CloudFormation update.

    The gap: when a change set modifies a resource whose model does not implement
    ``update_from_cloudformation_json`` (``AWS::Logs::LogGroup``,
    ``AWS::DynamoDB::Table``), moto replaces the resource in the stack's map with
    ``None``. Anything that refers to it — a state machine's ``LoggingConfiguration``
    with ``Fn::GetAtt`` of the log group's ``Arn`` — then fails with ``Template error:
    instance of Fn::GetAtt references undefined resource``. Changing the log retention
    (a context value) broke the update.

    The fix: log groups update in place (``RetentionInDays`` put or removed, tags added;
    a new ``LogGroupName`` replaces the group, as on AWS); any other model without an
    update keeps its existing resource, unchanged, with a warning in the server log,
    instead of losing it.
    """
    parsing: Any = importlib.import_module("moto.cloudformation.parsing")
    logs_models: Any = importlib.import_module("moto.logs.models")
    log_group_class = logs_models.LogGroup

    def update_log_group(cls: Any, /, original_resource: Any, new_resource_name: str,
                         cloudformation_json: Any, account_id: str,
                         region_name: str) -> Any:
        properties = cloudformation_json.get("Properties", {})
        backend = logs_models.logs_backends[account_id][region_name]
        name = properties.get("LogGroupName", original_resource.name)
        if name != original_resource.name:
            created = cls.create_from_cloudformation_json(
                name, cloudformation_json, account_id, region_name)
            backend.delete_log_group(original_resource.name)
            return created
        retention = properties.get("RetentionInDays")
        if retention is None:
            backend.delete_retention_policy(original_resource.name)
        else:
            backend.put_retention_policy(original_resource.name, int(retention))
        tags = {tag["Key"]: tag["Value"] for tag in properties.get("Tags", [])}
        if tags:
            backend.tag_log_group(original_resource.name, tags)
        return original_resource

    log_group_class.update_from_cloudformation_json = classmethod(update_log_group)

    original: Callable[..., Any] = parsing.parse_and_update_resource

    @functools.wraps(original)
    def parse_and_update_resource(logical_id: str, resource_json: dict[str, Any],
                                  resources_map: Any, account_id: str,
                                  region_name: str) -> Any:
        updated = original(logical_id, resource_json, resources_map, account_id,
                           region_name)
        if updated is None:
            kept = resources_map._parsed_resources.get(logical_id)
            if kept is not None:
                LOG.warning("moto cannot update %s (%s): kept unchanged", logical_id,
                            resource_json.get("Type"))
                return kept
        return updated

    parsing.parse_and_update_resource = parse_and_update_resource


def sqs_queue_policies() -> None:
    """``AWS::SQS::QueuePolicy``.

    The gap: moto has no CloudFormation model for it, so it skips the resource ("No
    Moto CloudFormation support") and the queues get no policy: the SSL-only policy
    (``enforceSSL``) and the EventBridge rule's permission on its DLQ cannot be checked.

    The fix: a model that sets the policy document as the ``Policy`` attribute of each
    queue in ``Queues`` (by URL), moves it on update, and removes it on delete (queues
    already gone are skipped). moto does not enforce queue policies; this makes them
    visible to GetQueueAttributes, as on AWS.
    """
    common: Any = importlib.import_module("moto.core.common_models")
    parsing: Any = importlib.import_module("moto.cloudformation.parsing")
    sqs_models: Any = importlib.import_module("moto.sqs.models")

    def queues_of(properties: Mapping[str, Any], account_id: str, region_name: str
                  ) -> list[Any]:
        backend = sqs_models.sqs_backends[account_id][region_name]
        found = []
        for url in properties.get("Queues", []):
            queue = backend.queues.get(str(url).rstrip("/").rsplit("/", 1)[-1])
            if queue is not None:
                found.append(queue)
        return found

    class QueuePolicy(common.CloudFormationModel):  # type: ignore[misc]
        """The policy of a set of queues."""

        def __init__(self, physical_id: str, properties: Mapping[str, Any],
                     account_id: str, region_name: str) -> None:
            self.id = physical_id  # moto generates "<stack>-<logical id>-<suffix>"
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
            return "AWS::SQS::QueuePolicy"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Id"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return self.id

        def attach(self) -> None:
            document = self.properties.get("PolicyDocument", {})
            text = document if isinstance(document, str) else json.dumps(document)
            for queue in queues_of(self.properties, self.account_id, self.region_name):
                queue.policy = text

        def detach(self) -> None:
            for queue in queues_of(self.properties, self.account_id, self.region_name):
                queue.policy = None

        @classmethod
        def create_from_cloudformation_json(
                cls, resource_name: str, cloudformation_json: Any, account_id: str,
                region_name: str, **kwargs: Any) -> QueuePolicy:
            policy = cls(resource_name, cloudformation_json.get("Properties", {}),
                         account_id, region_name)
            policy.attach()
            return policy

        @classmethod
        def update_from_cloudformation_json(
                cls, original_resource: Any, new_resource_name: str,
                cloudformation_json: Any, account_id: str, region_name: str
                ) -> QueuePolicy:
            original_resource.detach()
            original_resource.properties = dict(cloudformation_json.get("Properties", {}))
            original_resource.attach()
            return original_resource  # type: ignore[no-any-return]

        @classmethod
        def delete_from_cloudformation_json(
                cls, resource_name: str, cloudformation_json: Any, account_id: str,
                region_name: str) -> None:
            cls(resource_name, cloudformation_json.get("Properties", {}), account_id,
                region_name).detach()

        def delete(self, account_id: str, region_name: str) -> None:
            self.detach()

    for cached in (parsing.get_model_list, parsing.get_model_map,
                   parsing.get_name_type_map):
        cached.cache_clear()
    QUEUE_POLICY_MODEL.append(QueuePolicy)


FIXES: Final[tuple[Callable[[], None], ...]] = (
    event_bus_ref,
    state_machines_from_cloudformation,
    change_set_execution,
    missing_change_sets,
    previous_ssm_parameter_values,
    updates_without_support,
    sqs_queue_policies,
)
"""Every fix, in the order applied."""


def apply() -> None:
    """Apply every fix once (importing this module calls it)."""
    for fix in FIXES:
        if fix.__name__ not in APPLIED:
            fix()
            APPLIED.append(fix.__name__)


apply()
