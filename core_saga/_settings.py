"""Worker configuration, from the environment (STEPSAGA_*) or a settings object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._aws import AwsConfig
from ._event_loop import EventLoopChoice
from .persistence._factory import redact_url
from .transports import DEFAULT_MAX_MESSAGE_BYTES, SqsConfig

if TYPE_CHECKING:
    from .persistence import SagaStore


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
    """Prepended to every queue name (the stack's ``QueuePrefix``, e.g. ``stepsaga-prod-``)."""
    concurrency: int = Field(32, ge=1, le=1024)
    """Messages handled at once by this process."""
    endpoint_concurrency: int | None = Field(None, ge=1, le=1024)
    """Messages handled at once per queue, so that one slow queue (a stuck hot row, a
    slow partner) cannot take every slot. None (the default): half of `concurrency`
    (at least 1); a worker hosting one queue may set it to `concurrency`."""
    wait_time_seconds: int = Field(20, ge=0, le=20)
    """SQS long-poll wait."""
    visibility_timeout: int = Field(30, ge=1, le=43_200)
    """Seconds a received message stays hidden; extended while a slow handler runs."""
    max_deliveries: int = Field(5, ge=1)
    """Deliveries of a failing message before it is dead-lettered (the worker moves it to
    the DLQ, with its reason in the error store). Only the message's own failures count,
    and they are counted in the database: an outage of the database or of AWS, or a
    worker killed while holding the message, never spends a delivery."""
    dead_letter_margin: int = Field(5, ge=1)
    """How many receives above `max_deliveries` the queue's ``maxReceiveCount`` must
    allow (crashes and lost receipts also count receives), so that SQS never moves a
    message to the DLQ before the worker's own dead-letter path has run (checked at
    start: the worker refuses to run otherwise). A message that fails on the last
    receive the queue allows is dead-lettered by the worker then, with its reason."""
    redelivery_base_seconds: float = Field(1.0, ge=0)
    """First redelivery delay; it doubles on each failure."""
    outbox_poll_seconds: float = Field(1.0, gt=0)
    """How often due timers and left-over outbox rows are looked for."""
    batch_commits: bool = True
    """Commit the messages of one receive (up to 10) in one database transaction, and
    delete them with one call once it committed. Each message keeps its own inbox entry
    and outbox rows; when any of them fails, the whole batch is rolled back and each
    message is handled on its own transaction, so a failing message never takes its
    neighbours' effects with it. False: one transaction per message. On SQLite a batch
    holds the write lock from its first write to its commit."""
    batch_commit_size: int = Field(10, ge=2, le=10)
    """With `batch_commits`, the most messages of one receive committed together; a
    receive of more is split into groups that run side by side, each in its own
    transaction on its own connection. Smaller groups: lower latency (a group's
    messages run one after the other); larger: fewer commits."""
    receive_linger_seconds: float = Field(0.05, ge=0, le=5)
    """The longest a queue's next receive waits after one that took fewer than 10
    messages, so that it finds a fuller batch. The wait follows the queue's rate: none
    when fewer than one more message is expected in this time (a quiet queue is
    received from at once), else until ten are expected. Also the longest a queue
    waits for room for a whole batch when its own messages in hand leave room for only
    part of one (its `endpoint_concurrency`). It saves receives at load, at the price
    of at most this much latency per hop."""
    delete_linger_seconds: float = Field(0.5, ge=0, le=5)
    """The longest handled messages wait to be deleted in a batch of up to 10: until
    the batch is full or this time has passed, and not at all when the queue is so quiet
    that fewer than one more message is expected in this time. Deleting late is harmless
    (the message stays invisible; a redelivery is absorbed by the inbox); it saves SQS
    calls."""
    send_linger_seconds: float = Field(0.05, ge=0, le=5)
    """The longest committed outgoing messages wait to be sent in a batch of up to 10
    per destination; the wait follows the destination's rate as for
    `delete_linger_seconds`. It adds at most this much latency per hop and saves SQS
    calls at load."""
    inbox_retention_hours: float = Field(7 * 24, gt=0)
    """How long processed message ids are kept for dedupe (longer than any redelivery)."""
    outbox_retention_hours: float = Field(7 * 24, gt=0)
    """How long dispatched outbox rows are kept (the order timeline reads them)."""
    purge_interval_seconds: float = Field(3600, gt=0)
    """How often old inbox and outbox rows are purged."""
    max_message_bytes: int = Field(DEFAULT_MAX_MESSAGE_BYTES, ge=1024)
    database_clock: bool = True
    """Take due times and leases from the database server's clock (PostgreSQL), so that
    workers on hosts whose clocks disagree fire timers and end leases alike. SQLite is a
    file on one host: its clock is that host's."""
    database_lock_timeout_seconds: float = Field(10.0, gt=0)
    """PostgreSQL ``lock_timeout``: a message waiting longer for a row another
    transaction holds gives up and is tried again later (not counted as a failure).
    SQLite: how long a writer waits for the database lock (``busy_timeout``)."""
    database_statement_timeout_seconds: float = Field(60.0, gt=0)
    """PostgreSQL ``statement_timeout``: no statement runs longer."""
    database_idle_in_transaction_timeout_seconds: float = Field(60.0, gt=0)
    """PostgreSQL ``idle_in_transaction_session_timeout``: a transaction left open and idle
    (a frozen process, a handler stuck in a slow call) is ended, releasing its locks."""
    outage_backoff_max_seconds: float = Field(30.0, gt=0)
    """Longest wait between two attempts while the database or AWS is unavailable."""
    health_port: int | None = Field(None, ge=0, le=65535)
    """Port of the /health and /ready endpoint; None (the default) turns it off, 0 picks
    a free port."""
    health_host: str = "127.0.0.1"
    metrics_interval_seconds: float = Field(15.0, gt=0)
    """How often the gauges read from the database (outbox backlog, sagas per state) are
    refreshed, when metrics are on."""
    shutdown_grace_seconds: float = Field(30.0, gt=0)
    """How long SIGTERM waits for in-flight messages."""
    event_loop: EventLoopChoice = "auto"
    """The event loop ``stepsaga worker`` runs on: ``auto`` (the default) takes uvloop
    when it is installed (the ``cli`` extra installs it on Linux and macOS) and asyncio's
    own loop otherwise; ``uvloop`` insists on it; ``asyncio`` turns it off."""
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

    def store(self) -> SagaStore:
        """The store these settings describe: the database, its schema and timeouts."""
        from .persistence import store_from_url

        kwargs: dict[str, Any] = {
            "lock_timeout": self.database_lock_timeout_seconds,
            "statement_timeout": self.database_statement_timeout_seconds,
            "idle_in_transaction_timeout": self.database_idle_in_transaction_timeout_seconds,
        }
        if self.database_url.startswith("memory://"):
            kwargs = {}
        elif self.database_schema is not None:
            kwargs["schema"] = self.database_schema
        return store_from_url(self.database_url, **kwargs)

    def aws(self) -> AwsConfig:
        """Where these settings send AWS calls (region, endpoint)."""
        return AwsConfig(region=self.aws_region, endpoint_url=self.aws_endpoint_url)

    def sqs(self) -> SqsConfig:
        """The SQS client configuration these settings describe."""
        return SqsConfig(region=self.aws_region, endpoint_url=self.aws_endpoint_url,
                         queue_prefix=self.queue_prefix,
                         max_message_bytes=self.max_message_bytes)
