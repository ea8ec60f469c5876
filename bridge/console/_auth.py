"""Bearer tokens (header, or the cookie the login form sets) and roles."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import HTTPException, Request

from ._settings import Role, TokenGrant

COOKIE = "stepsaga_console"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a name and roles (never the token)."""

    name: str
    grant: TokenGrant

    def can(self, role: Role) -> bool:
        return self.grant.can(role)


def token_of(request: Request) -> str | None:
    """The bearer token of the request: ``Authorization: Bearer …`` or the cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return ""  # present but not a bearer token: unauthenticated
    return request.cookies.get(COOKIE) or None


def lookup(tokens: dict[str, TokenGrant], presented: str | None) -> Principal | None:
    """The principal of `presented`, comparing against every token in constant time."""
    if not presented:
        return None
    found: Principal | None = None
    given = presented.encode()
    for token, grant in tokens.items():
        if hmac.compare_digest(token.encode(), given):
            found = Principal(grant.name, grant)
    return found


def unauthenticated() -> HTTPException:
    return HTTPException(401, "authentication required: send Authorization: Bearer <token>",
                         headers={"WWW-Authenticate": 'Bearer realm="stepsaga"'})


def forbidden(role: Role) -> HTTPException:
    return HTTPException(403, f"this token lacks the {role} role")
