"""Where AWS calls go: one configuration for every client stepsaga opens (SQS, and the
bridge's EventBridge and Step Functions)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

_FAKE_KEY = "testing"


@dataclass(frozen=True, slots=True)
class AwsConfig:
    """How to reach AWS. Leave `endpoint_url` None on AWS (credentials come from the
    usual chain: environment, profile, instance role); set it for the local emulator."""

    region: str = "us-east-1"
    """The region (default ``us-east-1``)."""
    endpoint_url: str | None = None
    """An endpoint instead of AWS's (the local emulator); None on AWS."""
    aws_access_key_id: str | None = None
    """Explicit credentials; None (the default) uses the usual chain."""
    aws_secret_access_key: str | None = None

    @classmethod
    def from_env(cls) -> AwsConfig:
        """From ``STEPSAGA_AWS_REGION`` (or ``AWS_REGION`` / ``AWS_DEFAULT_REGION``) and
        ``STEPSAGA_AWS_ENDPOINT_URL``."""
        region = (os.environ.get("STEPSAGA_AWS_REGION") or os.environ.get("AWS_REGION")
                  or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
        return cls(region=region, endpoint_url=os.environ.get("STEPSAGA_AWS_ENDPOINT_URL")
                   or None)

    @property
    def local(self) -> bool:
        """True on the emulator (no AWS console to link to)."""
        return self.endpoint_url is not None

    def client_kwargs(self, *, max_attempts: int | None = None) -> dict[str, Any]:
        """Keyword arguments for aiobotocore's ``create_client``. `max_attempts` caps
        botocore's own retries (1: none — for callers that retry themselves)."""
        kwargs: dict[str, Any] = {"region_name": self.region}
        if max_attempts is not None:
            from botocore.config import Config

            kwargs["config"] = Config(retries={"max_attempts": max_attempts,
                                               "mode": "standard"},
                                      connect_timeout=5, read_timeout=30)
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.aws_access_key_id:
            kwargs["aws_access_key_id"] = self.aws_access_key_id
            kwargs["aws_secret_access_key"] = self.aws_secret_access_key
        elif self.endpoint_url and _is_loopback(self.endpoint_url):
            # The emulator takes any keys; do not depend on the caller's environment.
            kwargs["aws_access_key_id"] = os.environ.get("AWS_ACCESS_KEY_ID", _FAKE_KEY)
            kwargs["aws_secret_access_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY",
                                                             _FAKE_KEY)
        return kwargs


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
