"""The console's state: settings, saga models, and the resources it opens on first use
(the store, reviews, the audit log, sessions, Step Functions) — on the serving event
loop, so one app works under uvicorn and test clients alike. Opening checks the database
first, so that a wrong URL or a database never migrated is a clear page, not a 500 or
an empty file."""

from __future__ import annotations

import asyncio
import importlib
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from bridge.audit import AuditLog
from bridge.reviews import ReviewService, ReviewStore, StepFunctions
from core_saga import Saga, SagaModel
from core_saga.persistence import SagaStore, redact_url, store_from_url

from ._auth import Sessions, SignInLimiter
from ._settings import ConsoleSettings


class ConsoleUnavailable(Exception):
    """Something the console needs is not there or does not answer; the message says
    what and what to do. Pages and the API answer 503 with it."""

    def __init__(self, message: str, *, what: str = "database") -> None:
        super().__init__(message)
        self.message = message
        self.what = what


@dataclass
class Resources:
    store: SagaStore
    reviews: ReviewStore
    audit: AuditLog
    sessions: Sessions
    service: ReviewService
    sfn: StepFunctions


def load_saga(path: str) -> type[Saga[Any]]:
    """A saga class from ``package.module:Class``; ValueError naming what is wrong."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"{path!r} is not of the form package.module:Class")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load the saga class {path!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Saga)):
        raise ValueError(f"{path!r} is not a saga class")
    return cls


class Console:
    """Settings, saga models, the sign-in limiter, and lazily opened resources."""

    def __init__(self, settings: ConsoleSettings, *, sagas: list[type[Saga[Any]]] | None,
                 sfn: StepFunctions | None) -> None:
        self.settings = settings
        self.models: dict[str, SagaModel] = {}
        for cls in [*(sagas or ()), *(load_saga(p) for p in settings.console_sagas)]:
            model: SagaModel = cls.model
            self.models[model.name] = model
        secret = settings.console_session_secret
        self.session_key = (secret.get_secret_value().encode() if secret is not None
                            else secrets.token_bytes(32))
        self.limiter = SignInLimiter(settings.console_login_attempts,
                                     settings.console_login_window_seconds)
        self.definitions: OrderedDict[str, dict[str, Any]] = OrderedDict()
        """State machine definitions by execution ARN (they never change)."""
        self._sfn = sfn
        self._resources: Resources | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def database(self) -> str:
        """The database URL, password masked (for messages)."""
        return redact_url(self.settings.database_url)

    def final_states(self) -> dict[str, frozenset[str]]:
        return {name: model.terminal_states for name, model in self.models.items()}

    async def resources(self) -> Resources:
        if self._resources is not None:
            return self._resources
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._resources is None:
                self._resources = await self._open()
        return self._resources

    async def _open(self) -> Resources:
        settings = self.settings
        try:
            store = store_from_url(settings.database_url, must_exist=True,
                                   schema=settings.database_schema, pool_size=5)
        except FileNotFoundError as exc:
            raise ConsoleUnavailable(f"{exc}. Point STEPSAGA_DATABASE_URL at the workers' "
                                     "database.") from None
        except (ValueError, TypeError) as exc:
            raise ConsoleUnavailable(f"the database URL {self.database} is not usable: "
                                     f"{exc}") from None
        try:
            missing = await store.missing_tables()
        except Exception as exc:
            await store.close()
            raise ConsoleUnavailable(
                f"the database {self.database} does not answer: {type(exc).__name__}: "
                f"{_first_line(exc)}") from None
        if missing:
            await store.close()
            raise ConsoleUnavailable(
                f"the database {self.database} has no stepsaga tables ({', '.join(missing)} "
                "missing): it is not the workers' database, or it was never migrated — run "
                "`stepsaga migrate --database-url …` or start a worker on it")
        reviews = ReviewStore.open(store)
        audit = AuditLog.open(store)
        sessions = Sessions(store, settings, self.session_key)
        try:
            await reviews.create_table()
            await audit.create_table()
            await sessions.create_table()
        except Exception:
            await reviews.close()
            await audit.close()
            await store.close()
            raise
        sfn = self._sfn or StepFunctions(settings.aws())
        return Resources(store, reviews, audit, sessions,
                         ReviewService(reviews, sfn, audit=audit), sfn)

    async def definition(self, sfn: StepFunctions, execution_arn: str) -> dict[str, Any]:
        """The definition of the state machine an execution runs (cached)."""
        found = self.definitions.get(execution_arn)
        if found is None:
            found = await sfn.definition_for_execution(execution_arn)
            self.definitions[execution_arn] = found
            while len(self.definitions) > 256:
                self.definitions.popitem(last=False)
        return found

    async def close(self) -> None:
        if self._resources is not None:
            res, self._resources = self._resources, None
            await res.reviews.close()
            await res.audit.close()
            await res.store.close()
        self._lock = None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]
