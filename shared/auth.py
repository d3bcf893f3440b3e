"""OAuth2 bearer tokens (JWT, PyJWT) with scopes, checked in every service and at the gateway.

An inspection agency's token carries its agency code (`agency` claim): the sampling service takes
the agency from the token, never from the request body.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import InsufficientScope, Unauthenticated
from shared.settings import PlatformSettings

SCOPES: dict[str, str] = {
    "read": "Read non-public data",
    "sampling:write": "Push, correct and retract sampling-inspection results (agencies)",
    "credit:write": "Propose blacklist entries and record credit facts",
    "credit:review": "Approve or reject blacklist proposals and repairs (a different person)",
    "awards:write": "Grant, revoke and import honours",
    "indicators:write": "Report values of reported plan indicators",
    "admin": "Operate the suite (rebuild read models)",
}

_bearer = HTTPBearer(auto_error=False, description="A JWT bearer token with the scopes the route names")


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    scopes: frozenset[str]
    agency: str | None
    token: str

    def has(self, scope: str) -> bool:
        return scope in self.scopes


class TokenService:
    """Mints and verifies tokens with one shared HS256 key (development and single-issuer setups)."""

    def __init__(self, secret: str, issuer: str, audience: str) -> None:
        self.secret = secret
        self.issuer = issuer
        self.audience = audience

    @classmethod
    def from_settings(cls, s: PlatformSettings) -> TokenService:
        return cls(s.jwt_secret, s.jwt_issuer, s.jwt_audience)

    def mint(self, subject: str, scopes: list[str], *, agency: str | None = None, ttl_s: int = 3600) -> str:
        unknown = set(scopes) - set(SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes: {sorted(unknown)}")
        now = int(time.time())
        claims: dict[str, object] = {
            "sub": subject,
            "scope": " ".join(sorted(scopes)),
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl_s,
            "jti": str(uuid.uuid4()),
        }
        if agency:
            claims["agency"] = agency
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["sub", "exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"The token is not valid: {exc}") from None
        scopes = frozenset(str(claims.get("scope", "")).split())
        agency = claims.get("agency")
        return Principal(str(claims["sub"]), scopes, str(agency) if agency else None, token)


def _tokens(request: Request) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("Send 'Authorization: Bearer <token>'")
    return _tokens(request).verify(credentials.credentials)


def require(scope: str) -> Any:
    """A dependency that admits a principal holding `scope` (and answers 401/403 problems otherwise)."""
    return require_any(scope)


def require_any(*scopes: str) -> Any:
    """A dependency that admits a principal holding any one of `scopes` (401/403 problems otherwise)."""
    if not scopes:
        raise ValueError("require_any needs at least one scope")

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not any(principal.has(s) for s in scopes):
            raise InsufficientScope(*scopes)
        return principal

    dependency.__name__ = "require_" + "_or_".join(s.replace(":", "_") for s in scopes)
    return Depends(dependency)
