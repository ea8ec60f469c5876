"""The console's configuration: database, AWS, people and roles, sessions (``STEPSAGA_*``)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core_saga import AwsConfig

Role = Literal["viewer", "approver", "operator"]
"""What a person may do: ``viewer`` reads everything; ``approver`` also decides reviews;
``operator`` also acts on stuck work (redrive errors and dead letters, resume and cancel
orders, retry hand-offs, abort supervisor executions). Give both for a person who does both."""
ROLES: tuple[Role, ...] = ("viewer", "approver", "operator")
IMPLIES: dict[str, frozenset[str]] = {"approver": frozenset({"viewer"}),
                                      "operator": frozenset({"viewer"})}
"""The roles a role includes (an approver or an operator may view)."""

_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")


class TokenGrant(BaseModel):
    """Who a bearer token stands for (a person's or a service's name: it is what the
    audit log records) and what they may do."""

    name: str = Field(min_length=1, max_length=200)
    roles: frozenset[Role] = frozenset({"viewer"})

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not _NAME.match(value) or not value.strip():
            raise ValueError("a name must be printable text")
        return value.strip()

    def can(self, role: Role) -> bool:
        return role in self.roles or any(role in IMPLIES.get(r, ()) for r in self.roles)


def _short_form(grant: str) -> dict[str, Any]:
    name, sep, roles = grant.partition(":")
    if not sep or not name.strip():
        raise ValueError(
            "a token's grant needs the person's name, not only a role (decisions are "
            'audited by name): {"name": "ann", "roles": ["approver"]} or "ann:approver"')
    return {"name": name, "roles": [r.strip() for r in roles.split(",") if r.strip()]}


class ConsoleSettings(BaseSettings):
    """Every field can be set by ``STEPSAGA_<FIELD>``; e.g. ``STEPSAGA_CONSOLE_TOKENS``:

    ``{"s3cret-ops-token": {"name": "ops", "roles": ["viewer"]},
    "s3cret-ann-token": "ann:approver"}`` (the short form is ``name:role[,role]``).
    Tokens never appear in the settings' repr or in error messages.
    """

    model_config = SettingsConfigDict(env_prefix="STEPSAGA_", extra="ignore",
                                      hide_input_in_errors=True)

    database_url: str = "sqlite+aiosqlite:///stepsaga.db"
    """The workers' database. A SQLite file must exist (the console never creates one)."""
    database_schema: str | None = None
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    """Set for the local emulator: the console then shows DescribeExecution instead of
    linking to the AWS console."""
    queue_prefix: str = ""
    """The workers' queue prefix (``STEPSAGA_QUEUE_PREFIX``): a redriven error goes back to
    the queue prefix + its endpoint's name."""
    console_tokens: dict[str, TokenGrant] = Field(default_factory=dict, repr=False)
    console_stuck_after_seconds: int = Field(3600, ge=1)
    """An order in the same (not final) state for longer than this is stuck."""
    console_sagas: list[str] = Field(default_factory=list)
    """Saga classes (``package.module:Class``) whose graphs and columns the console shows."""
    console_saga_queues: dict[str, str] = Field(default_factory=dict)
    """Saga type → the queue its workers host it on (without the prefix): where an
    operator's cancel is sent."""
    console_title: str = "stepsaga ops console"
    console_session_secret: SecretStr | None = Field(default=None, repr=False)
    """Signs the session cookies (32+ characters). None: a random key per process, so
    sessions end when the console restarts — set one when running several replicas."""
    console_session_seconds: int = Field(12 * 3600, ge=60, le=30 * 86400)
    """How long a sign-in lasts (default 12 h)."""
    console_cookie_secure: bool | None = None
    """``Secure`` session cookies: None (default) when the request is https — behind a
    TLS proxy, list it in ``console_trusted_proxies``; True always; False never."""
    console_trusted_proxies: list[str] = Field(default_factory=list)
    """Proxies (IP addresses, networks, or ``*``) whose ``X-Forwarded-Proto`` and
    ``X-Forwarded-For`` the console honours. Empty (default): none."""
    console_login_attempts: int = Field(5, ge=1, le=1000)
    """Failed sign-ins allowed per client address in ``console_login_window_seconds``;
    more get 429 until the window has passed."""
    console_login_window_seconds: int = Field(300, ge=1, le=86400)
    console_trace_url: str | None = None
    """A link for trace ids: ``{trace_id}`` (W3C, 32 hex) or ``{xray_trace_id}``
    (``1-xxxxxxxx-…``) is filled in, e.g. ``http://jaeger:16686/trace/{trace_id}``."""
    console_refresh_seconds: int = Field(10, ge=0, le=3600)
    """An order page that is not final reloads itself this often (0: never)."""
    console_page_size: int = Field(50, ge=1, le=500)
    """Orders per page."""

    @field_validator("console_tokens", mode="before")
    @classmethod
    def _tokens(cls, value: Any) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for number, (token, grant) in enumerate(value.items(), 1):
                if not isinstance(token, str) or len(token) < 8:
                    # Never the token itself in the message: it would end up in logs.
                    raise ValueError(f"console token #{number} is shorter than 8 "
                                     "characters")
                out[token] = _short_form(grant) if isinstance(grant, str) else grant
            return out
        return value

    @field_validator("console_session_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("the session secret must be 32 characters or more")
        return value

    @field_validator("console_trace_url")
    @classmethod
    def _trace_template(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("the trace URL must start with https:// or http://")
        if "{trace_id}" not in value and "{xray_trace_id}" not in value:
            raise ValueError("the trace URL needs {trace_id} or {xray_trace_id}")
        try:
            value.format(trace_id="0", xray_trace_id="0")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"the trace URL is not a valid template: {exc}") from None
        return value

    def aws(self) -> AwsConfig:
        return AwsConfig(region=self.aws_region, endpoint_url=self.aws_endpoint_url)

    def trace_link(self, trace_id: str) -> str | None:
        """The link for a W3C trace id, when a template is set."""
        if self.console_trace_url is None:
            return None
        xray = f"1-{trace_id[:8]}-{trace_id[8:]}"
        return self.console_trace_url.format(trace_id=trace_id, xray_trace_id=xray)
