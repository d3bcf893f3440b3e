"""OAuth2 bearer tokens (JWT, PyJWT) with scopes, checked in every service and at the gateway.

An inspection agency's token carries its agency code (the `agency` claim, or the one
`QC_JWT_AGENCY_CLAIM` names): the sampling service takes the agency from the token, never from the
request body. docs/security.md says which scope may do what.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jwt
import structlog
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt import PyJWKClient, PyJWKSet
from starlette.concurrency import run_in_threadpool

from shared.errors import InsufficientScope, Unauthenticated
from shared.settings import PlatformSettings

SCOPES: dict[str, str] = {
    "read": "Read non-public data",
    "sampling:write": "Push, correct and retract sampling-inspection results (agencies)",
    "sampling:publish": "Publish and correct notices (公告) of final fails (an agency its own, the bureau any)",
    "credit:write": "Propose blacklist entries and record credit facts",
    "credit:records": "Send, correct and withdraw an authority's credit records (one token per authority system)",
    "credit:review": "Approve or reject blacklist proposals and repairs (a different person)",
    "awards:write": "Grant, revoke and import honours",
    "indicators:write": "Report values of reported plan indicators",
    "admin": "Operate the suite (rebuild read models)",
    "archive:import": "Import a bureau's archives with their recorded dates (results, listings, honours)",
    "subscriptions:write": "Subscribe callbacks to events (webhooks) and manage one's own subscriptions",
    "warnings:write": "Acknowledge and close early warnings (docs/warnings.md)",
}

log = structlog.get_logger("auth")

_bearer = HTTPBearer(auto_error=False, description="A JWT bearer token with the scopes the route names")


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    scopes: frozenset[str]
    agency: str | None
    token: str

    def has(self, scope: str) -> bool:
        return scope in self.scopes


#: PyJWT's errors mapped to fixed details: the library's own messages say too much about the check.
_DETAILS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired"),
    (jwt.ImmatureSignatureError, "The token is not valid yet"),
    (jwt.InvalidAudienceError, "The token is meant for another audience"),
    (jwt.InvalidIssuerError, "The token comes from another issuer"),
    (jwt.MissingRequiredClaimError, "The token lacks a required claim"),
    (jwt.InvalidAlgorithmError, "The token's algorithm is not accepted"),
    (jwt.InvalidSignatureError, "The token's signature does not verify"),
    (jwt.PyJWKClientError, "The token's signing key is not known"),
    (jwt.InvalidKeyError, "The token's signing key is not known"),
)
_INVALID = "The token is not valid"


def _detail(exc: Exception) -> str:
    return next((text for kind, text in _DETAILS if isinstance(exc, kind)), _INVALID)


class _KeySet:
    """Public keys from a JWKS document, chosen by the token's `kid` (or the only key when it has none)."""

    def __init__(self, jwks: PyJWKSet) -> None:
        self.keys = {k.key_id: k for k in jwks.keys}

    def key(self, kid: str | None) -> Any:
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values())).key
        if kid not in self.keys:
            raise jwt.InvalidKeyError("unknown kid")
        return self.keys[kid].key


class TokenService:
    """Verifies bearer tokens: HS256 with a shared secret (development, tests), or RS256/ES256 with an
    identity provider's public keys (a JWKS URL through PyJWT's caching `PyJWKClient`, a JWKS file, or
    one PEM key). Mints HS256 tokens for development."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        # The settings refused `none`, unknown algorithms and HS* next to public keys (algorithm confusion).
        self.algorithms = settings.accepted_algorithms
        self._client: PyJWKClient | None = None
        self._keyset: _KeySet | None = None
        self._public_key: Any = None
        if settings.jwt_jwks_url:
            self._client = PyJWKClient(
                settings.jwt_jwks_url, cache_keys=True, lifespan=settings.jwt_jwks_cache_s, timeout=5
            )
        elif settings.jwt_jwks_file:
            self._keyset = _KeySet(PyJWKSet.from_json(Path(settings.jwt_jwks_file).read_text(encoding="utf-8")))
        elif settings.jwt_public_key_file:
            self._public_key = load_pem_public_key(Path(settings.jwt_public_key_file).read_bytes())
        #: Verification may fetch the JWKS over the network: run it off the event loop.
        self.remote = self._client is not None

    def mint(self, subject: str, scopes: list[str], *, agency: str | None = None, ttl_s: int = 3600) -> str:
        """An HS256 token signed with the secret (development and tests; production takes its tokens
        from the identity provider)."""
        if self.settings.jwt_key_sources:
            raise ValueError("tokens come from the identity provider: this deployment holds only public keys")
        unknown = set(scopes) - set(SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes: {sorted(unknown)}")
        now = int(time.time())
        claims: dict[str, object] = {
            "sub": subject,
            "scope": " ".join(sorted(scopes)),
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "iat": now,
            "exp": now + ttl_s,
            "jti": str(uuid.uuid4()),
        }
        if agency:
            claims[self.settings.jwt_agency_claim] = agency
        return jwt.encode(claims, self.settings.jwt_secret, algorithm="HS256")

    def _key(self, token: str, header: dict[str, Any]) -> Any:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        if self._keyset is not None:
            kid = header.get("kid")
            return self._keyset.key(str(kid) if kid is not None else None)
        if self._public_key is not None:
            return self._public_key
        return self.settings.jwt_secret

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self.algorithms:
                raise jwt.InvalidAlgorithmError(str(header.get("alg")))
            claims = jwt.decode(
                token,
                self._key(token, header),
                algorithms=self.algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["sub", "exp", "iat", "iss", "aud"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            log.info("token refused", reason=type(exc).__name__, message=str(exc)[:200])
            raise Unauthenticated(_detail(exc)) from None
        if int(claims["exp"]) - int(claims["iat"]) > self.settings.jwt_max_ttl_s:
            raise Unauthenticated("The token's lifetime exceeds the accepted maximum")
        scope = claims.get("scope", "")
        scopes = frozenset(scope.split() if isinstance(scope, str) else map(str, scope))
        agency = claims.get(self.settings.jwt_agency_claim)
        return Principal(str(claims["sub"]), scopes, str(agency) if agency else None, token)


def _tokens(request: Request) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(MISSING_TOKEN)
    principal = await verify(_tokens(request), credentials.credentials)
    request.state.principal = principal  # who acts, for the audit record (shared/audit.py)
    return principal


MISSING_TOKEN = "Send 'Authorization: Bearer <token>'"


async def verify(tokens: TokenService, token: str) -> Principal:
    """The token's principal, or `Unauthenticated` (also used before a write's body is read)."""
    if tokens.remote:
        # A JWKS cache miss fetches the keys with urllib: not on the event loop.
        return await run_in_threadpool(tokens.verify, token)
    return tokens.verify(token)


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
