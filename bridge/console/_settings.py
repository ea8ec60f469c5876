"""The console's configuration: database, AWS, tokens and roles (``STEPSAGA_*``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core_saga import AwsConfig

Role = Literal["viewer", "approver"]
ROLES: tuple[Role, ...] = ("viewer", "approver")


class TokenGrant(BaseModel):
    """Who a bearer token stands for and what it may do. ``approver`` may also view."""

    name: str = Field(min_length=1, max_length=200)
    roles: frozenset[Role] = frozenset({"viewer"})

    def can(self, role: Role) -> bool:
        return role in self.roles or (role == "viewer" and "approver" in self.roles)


class ConsoleSettings(BaseSettings):
    """Every field can be set by ``STEPSAGA_<FIELD>``; e.g. ``STEPSAGA_CONSOLE_TOKENS``:

    ``{"s3cret-ops": {"name": "ops", "roles": ["viewer"]},
    "s3cret-ann": {"name": "ann", "roles": ["approver"]}}`` — or the short form
    ``{"s3cret-ops": "viewer", "s3cret-ann": "approver"}`` (the role is the name).
    """

    model_config = SettingsConfigDict(env_prefix="STEPSAGA_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///stepsaga.db"
    database_schema: str | None = None
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    """Set for the local emulator: the console then shows DescribeExecution instead of
    linking to the AWS console."""
    console_tokens: dict[str, TokenGrant] = Field(default_factory=dict)
    console_stuck_after_seconds: int = Field(3600, ge=1)
    """An order in the same state for longer than this is stuck."""
    console_sagas: list[str] = Field(default_factory=list)
    """Saga classes (``package.module:Class``) whose graphs the order page draws."""
    console_title: str = "stepsaga ops console"

    @field_validator("console_tokens", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for token, grant in value.items():
                if not isinstance(token, str) or len(token) < 8:
                    raise ValueError("every console token must be a string of 8+ characters")
                out[token] = ({"name": grant, "roles": [grant]} if isinstance(grant, str)
                              else grant)
            return out
        return value

    def aws(self) -> AwsConfig:
        return AwsConfig(region=self.aws_region, endpoint_url=self.aws_endpoint_url)
