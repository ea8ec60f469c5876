"""Who is calling: bearer tokens (the API), signed sessions (the pages), roles, the
cross-site request checks, and the limit on failed sign-ins.

- **API**: ``Authorization: Bearer <token>``. A browser never sends that header on its
  own, so a bearer request cannot be forged cross-site.
- **Pages**: signing in with a token opens a session: a random id, signed
  (itsdangerous) into the cookie with its time, and kept in ``console_sessions`` with
  its expiry, the person's name, a MAC of the token it was opened with, and a CSRF
  token. The cookie is not the bearer token. Logging out revokes the session; removing
  the token from the settings ends every session opened with it.
- **State changes on a session** (every POST but the sign-in form's first step) need the
  session's CSRF token (a form field, or the ``X-CSRF-Token`` header) and a same-origin
  ``Origin`` (or ``Referer``); ``Origin: null`` and no origin at all are refused.
- **Failed sign-ins** (the form, and unknown bearer tokens) are limited per client
  address (the ``limits`` package, a moving window).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Column, MetaData, String, Table, select, update
from starlette.requests import Request

from core_saga.persistence import SagaStore, UTCDateTime

from ._settings import ConsoleSettings, Role, TokenGrant

COOKIE = "stepsaga_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"

metadata = MetaData()

console_sessions = Table(
    "console_sessions",
    metadata,
    # sha256 of the session id: the id itself is only in the (signed) cookie.
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("token_mac", String(64), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a name and roles (never the token). `csrf_token` is set for a
    session (pages), None for a bearer token (the API)."""

    name: str
    grant: TokenGrant
    csrf_token: str | None = None
    session_id: str | None = None

    def can(self, role: Role) -> bool:
        return self.grant.can(role)


def bearer_of(request: Request) -> str | None:
    """The bearer token of ``Authorization``, "" when the header is there but is not a
    bearer token, None when there is no header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else ""


def lookup(tokens: dict[str, TokenGrant], presented: str | None) -> tuple[str, TokenGrant] | None:
    """The token and grant matching `presented`, comparing against every token in
    constant time."""
    if not presented:
        return None
    found: tuple[str, TokenGrant] | None = None
    given = presented.encode()
    for token, grant in tokens.items():
        if hmac.compare_digest(token.encode(), given):
            found = (token, grant)
    return found


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Sessions:
    """Opens, reads and revokes sessions in ``console_sessions``."""

    def __init__(self, store: SagaStore, settings: ConsoleSettings, key: bytes) -> None:
        self.store = store
        self.settings = settings
        self._key = key
        self._signer = URLSafeTimedSerializer(key, salt="stepsaga-console-session")

    async def create_table(self) -> None:
        await self.store.create_tables(metadata)

    def _mac(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    async def open(self, token: str, grant: TokenGrant, now: datetime) -> tuple[str, Principal]:
        """A new session for `grant`: the cookie value and the principal."""
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        async with self.store.transaction() as tx:
            await tx.execute(console_sessions.insert().values(
                id=_digest(session_id), name=grant.name, token_mac=self._mac(token),
                csrf_token=csrf, created_at=now,
                expires_at=now + timedelta(seconds=self.settings.console_session_seconds)))
        cookie = self._signer.dumps(session_id)
        return cookie, Principal(grant.name, grant, csrf, _digest(session_id))

    async def principal(self, cookie: str | None, now: datetime) -> Principal | None:
        """The principal of a session cookie: None when it is missing, forged, expired,
        revoked, or its token is no longer configured."""
        if not cookie:
            return None
        try:
            session_id = self._signer.loads(cookie,
                                            max_age=self.settings.console_session_seconds)
        except BadSignature:
            return None
        if not isinstance(session_id, str):
            return None
        async with self.store.transaction(readonly=True) as tx:
            row = (await tx.execute(select(console_sessions).where(
                console_sessions.c.id == _digest(session_id)))).first()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        for token, grant in self.settings.console_tokens.items():
            if hmac.compare_digest(self._mac(token), row.token_mac):
                return Principal(grant.name, grant, row.csrf_token, row.id)
        return None

    async def revoke(self, principal: Principal, now: datetime) -> None:
        """End the session of `principal` (logging out)."""
        if principal.session_id is None:
            return
        async with self.store.transaction() as tx:
            await tx.execute(update(console_sessions)
                               .where(console_sessions.c.id == principal.session_id)
                               .values(revoked_at=now))


class SignInLimiter:
    """Counts failed sign-ins per client address in a moving window."""

    def __init__(self, attempts: int, window_seconds: int) -> None:
        self._item = RateLimitItemPerSecond(attempts, window_seconds)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.window_seconds = window_seconds

    def blocked(self, client: str) -> bool:
        """True when `client` has used up its failed attempts."""
        return not self._limiter.test(self._item, client)

    def failed(self, client: str) -> None:
        self._limiter.hit(self._item, client)


def client_of(request: Request) -> str:
    """The caller's address (the proxy's ``X-Forwarded-For`` when it is trusted)."""
    return request.client.host if request.client else "unknown"


def own_origin(request: Request) -> str:
    """The console's origin as the browser sees it (scheme and host)."""
    return f"{request.url.scheme}://{request.url.netloc}"


def same_origin(request: Request) -> str | None:
    """None when the request comes from the console's own pages, else why not: the
    ``Origin`` header must be the console's origin; without one, the ``Referer`` must
    be a page of the console; ``Origin: null`` and neither header are refused."""
    origin = request.headers.get("origin")
    mine = own_origin(request)
    if origin is not None:
        if origin == "null":
            return "Origin: null is refused"
        if origin.rstrip("/") != mine:
            return f"cross-site request refused (Origin {origin[:100]!r})"
        return None
    referer = request.headers.get("referer")
    if referer is None:
        return "a request without Origin or Referer is refused"
    parts = urlsplit(referer)
    if f"{parts.scheme}://{parts.netloc}" != mine:
        return "cross-site request refused (Referer from another site)"
    return None


def csrf_ok(principal: Principal, presented: str | None) -> bool:
    """Whether `presented` is the session's CSRF token (constant time)."""
    return (principal.csrf_token is not None and presented is not None
            and hmac.compare_digest(principal.csrf_token.encode(), presented.encode()))
