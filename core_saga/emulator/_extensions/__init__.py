"""Extensions to moto 5.2.5, applied inside the emulator's server process.

Each module fills one gap, says which in its docstring, and has a smoke test in
tests/emulator so a moto upgrade shows at once what broke. moto is pinned exactly.
"""

from __future__ import annotations

import importlib

EXTENSIONS: tuple[str, ...] = (
    "events_sfn_target",        # EventBridge rule -> state machine (moto: HTTP 500)
    "events_sqs_target_input",  # Input/InputPath/InputTransformer on SQS targets
    "events_replay",            # replays: the time window, the targets' input settings
    "events_disabled_rules",    # a DISABLED rule delivers nothing (moto: it still does)
    "sfn_task_failure_cause",   # SendTaskFailure keeps its cause
    "sfn_task_tokens",          # heartbeats while waiting; TaskTimedOut once ended
    "sfn_retry_task_token",     # each Retry attempt of a token task gets a new token
    "sfn_execution_name",       # StartExecution without a name gets a UUID
    "sfn_context_times",        # $$.Execution.StartTime / $$.State.EnteredTime as AWS
    "sfn_string_output",        # DescribeExecution: a string output as JSON
    "sfn_stop_execution",       # StopExecution ends ABORTED, even waiting on a task token
    "sfn_status_events",        # execution status changes on the default bus (aws.states)
    "asl_timestamps",           # Choice/Wait timestamps: fractions, offsets, UTC
    "intrinsic_format",         # States.Format: \{ \} escapes, lone braces
    "sqs_receive_cost",         # receives no longer scan the queue once per message
    "events_put_faults",        # test tool: make PutEvents entries fail on request
    # CloudFormation, as the CDK CLI drives it (docs/deploy.md, `stepsaga local deploy`)
    "cfn_event_bus_ref",        # Ref to an EventBus is its name (moto: HTTP 500)
    "cfn_event_archives",       # AWS::Events::Archive: pattern, updates, deletion
    "cfn_state_machines",       # machines from CFN run, with substitutions and logging
    "cfn_change_set_execution", # outputs after a change set; a failed one shows FAILED
    "cfn_missing_change_sets",  # Describe/DeleteChangeSet of a missing set, as AWS
    "cfn_ssm_previous_values",  # UsePreviousValue of BootstrapVersion on updates
    "cfn_updates_without_support",  # log groups update; other models are kept
    "cfn_sqs_queue_policy",     # AWS::SQS::QueuePolicy (moto: skipped)
    "cfn_template_url",         # TemplateURL on 127.0.0.1 read path-style
    "cfn_import_existing",      # ImportExistingResources adopts retained resources
    "cfn_event_schemas",        # EventSchemas registry and schemas (moto: none)
    "cfn_kms_key",              # a tagged KMS key (moto: KeyError 'TagKey')
    "cfn_iam_managed_policies", # roles attach them; they update and go with the stack
    "cfn_log_group_key",        # a log group's KmsKeyId (moto: dropped)
    "cfn_dynamodb_sse",         # a table's SSESpecification (moto: unencrypted)
    "cfn_cloudwatch",           # alarms and SNS topic policies (moto: skipped)
    "manifest",                 # GET /moto-api/stepsaga: what this server applied
)
"""Modules (relative to this package) applied at server start, in order."""


def apply_all() -> None:
    """Import and apply every extension (the manifest lists those applied)."""
    from . import manifest

    for name in EXTENSIONS:
        module = importlib.import_module(f"{__name__}.{name}")
        module.apply()
        manifest.APPLIED.append(name)
