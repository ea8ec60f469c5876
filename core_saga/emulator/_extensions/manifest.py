"""``GET /moto-api/stepsaga``: what this server is, so a client can refuse a plain moto.

Not a moto gap: a probe. A bare ``moto_server`` answers every AWS call the CDK CLI makes,
and then reports a deploy as done that created nothing (it fails inside with HTTP 500).
Callers that rely on the extensions (``stepsaga local deploy``, ``start_emulator`` with a
given endpoint) ask this route first: it answers ``{"moto": "5.2.5", "extensions":
[applied extension modules, in order], "executeStateMachine": true|false}``; a server
without it answers 404 there.
"""

from __future__ import annotations

import importlib
import json
from typing import Any, Final

ROUTE: Final = "/moto-api/stepsaga"
APPLIED: list[str] = []
"""The extension modules applied in this process, in order (filled by ``apply_all``)."""


def describe() -> dict[str, Any]:
    """The manifest this server answers with."""
    moto: Any = importlib.import_module("moto")
    config: Any = importlib.import_module("moto.core.config")
    execute = bool(config.default_user_config.get("stepfunctions", {}).get(
        "execute_state_machine", False))
    return {"moto": str(moto.__version__), "extensions": list(APPLIED),
            "executeStateMachine": execute}


def _respond(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(describe()).encode()


def apply() -> None:
    """Add the route to moto's ``/moto-api`` app (before the server makes it)."""
    urls: Any = importlib.import_module("moto.moto_api._internal.urls")
    urls.url_paths["{0}" + ROUTE + "$"] = _respond
