#!/usr/bin/env python3
"""The CDK app (``cdk synth`` / ``cdk deploy`` run it with the project's venv, see
cdk.json). Settings come from context: ``-c stepsaga:stage=prod`` etc.; see
stepsaga_infra/settings.py and docs/deploy.md."""

from stepsaga_infra import build_app

app, _ = build_app()
app.synth()
