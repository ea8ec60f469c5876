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

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping
from typing import Any, Final

_SUBSTITUTION: Final = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


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


def apply() -> None:
    """Apply the fix (the module docstring says what and why)."""
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
