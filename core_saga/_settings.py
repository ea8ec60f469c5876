"""Worker configuration, from the environment (STEPSAGA_*) or a settings object."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .persistence._factory import redact_url
from .transports import DEFAULT_MAX_MESSAGE_BYTES, SqsConfig


class WorkerSettings(BaseSettings):
    """Everything a worker process reads at start. Each field can be set by the
    environment variable ``STEPSAGA_<FIELD>``; bad values fail at start, by name."""

    # Input values stay out of validation errors: a database URL carries its password.
    model_config = SettingsConfigDict(env_prefix="STEPSAGA_", extra="ignore",
                                      hide_input_in_errors=True)

    database_url: str = "sqlite+aiosqlite:///stepsaga.db"
    """Where saga state, inbox and outbox live. Default: an embedded SQLite file."""
    database_schema: str | None = None
    """PostgreSQL schema for the tables (None: the connection's default)."""
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    """An AWS endpoint to use instead of the real one (the local emulator)."""
    queue_prefix: str = ""
    """Prepended to every queue name (a stage, e.g. ``prod-``)."""
    concurrency: int = Field(32, ge=1, le=1024)
    """Messages handled at once by this process."""
    wait_time_seconds: int = Field(20, ge=0, le=20)
    """SQS long-poll wait."""
    visibility_timeout: int = Field(30, ge=1, le=43_200)
    """Seconds a received message stays hidden; extended while a slow handler runs."""
    max_deliveries: int = Field(5, ge=1)
    """Deliveries of a failing message before it is dead-lettered."""
    redelivery_base_seconds: float = Field(1.0, ge=0)
    """First redelivery delay; it doubles on each failure."""
    outbox_poll_seconds: float = Field(1.0, gt=0)
    """How often due timers and left-over outbox rows are looked for."""
    delete_linger_seconds: float = Field(0.2, ge=0, le=5)
    """How long handled messages wait to be deleted in a batch of up to 10. Deleting
    late is harmless (the message stays invisible); it saves SQS calls."""
    send_linger_seconds: float = Field(0.05, ge=0, le=5)
    """How long committed outgoing messages wait to be sent in a batch of up to 10.
    It adds at most this much latency per hop and saves SQS calls at load."""
    inbox_retention_hours: float = Field(7 * 24, gt=0)
    """How long processed message ids are kept for dedupe (longer than any redelivery)."""
    outbox_retention_hours: float = Field(7 * 24, gt=0)
    """How long dispatched outbox rows are kept (the order timeline reads them)."""
    purge_interval_seconds: float = Field(3600, gt=0)
    """How often old inbox and outbox rows are purged."""
    max_message_bytes: int = Field(DEFAULT_MAX_MESSAGE_BYTES, ge=1024)
    health_port: int | None = Field(None, ge=0, le=65535)
    """Port of the /health and /ready endpoint; None (the default) turns it off, 0 picks
    a free port."""
    health_host: str = "127.0.0.1"
    shutdown_grace_seconds: float = Field(30.0, gt=0)
    """How long SIGTERM waits for in-flight messages."""
    otlp_endpoint: str | None = None
    """Export OpenTelemetry spans over OTLP/HTTP to this URL (e.g.
    ``http://127.0.0.1:4318``); None: ``OTEL_EXPORTER_OTLP_ENDPOINT`` if set, else off."""

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"otlp_endpoint {value!r} must be an http(s) URL, "
                             "e.g. http://127.0.0.1:4318")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "memory://")):
            raise ValueError(f"database_url {redact_url(value)!r} must be "
                             "sqlite+aiosqlite://…, postgresql://… or memory://")
        return value

    def sqs(self) -> SqsConfig:
        """The SQS client configuration these settings describe."""
        return SqsConfig(region=self.aws_region, endpoint_url=self.aws_endpoint_url,
                         queue_prefix=self.queue_prefix,
                         max_message_bytes=self.max_message_bytes)
