from __future__ import annotations

import pytest

from shared.auth import TokenService
from shared.errors import Unauthenticated
from shared.settings import PlatformSettings


def _tokens(secret: str, issuer: str = "qualitycity", audience: str = "qualitycity") -> TokenService:
    return TokenService(PlatformSettings(jwt_secret=secret, jwt_issuer=issuer, jwt_audience=audience))


def test_token_round_trip_carries_scopes_and_agency() -> None:
    svc = _tokens("s" * 32)
    p = svc.verify(svc.mint("alice", ["read", "sampling:write"], agency="QD-1"))
    assert p.subject == "alice" and p.agency == "QD-1"
    assert p.has("sampling:write") and not p.has("credit:review")


def test_token_signed_with_another_key_is_refused() -> None:
    token = _tokens("a" * 32).mint("alice", ["read"])
    with pytest.raises(Unauthenticated) as info:
        _tokens("b" * 32).verify(token)
    assert info.value.status == 401


def test_expired_token_is_refused() -> None:
    svc = _tokens("s" * 32)
    with pytest.raises(Unauthenticated, match="expired"):
        svc.verify(svc.mint("alice", ["read"], ttl_s=-10))


def test_unknown_scope_cannot_be_minted() -> None:
    with pytest.raises(ValueError):
        _tokens("s" * 32, "q", "q").mint("alice", ["root"])


def test_a_token_living_longer_than_the_settings_accept_is_refused() -> None:
    svc = TokenService(PlatformSettings(jwt_secret="s" * 32, jwt_max_ttl_s=600))
    assert svc.verify(svc.mint("alice", ["read"], ttl_s=600)).subject == "alice"
    with pytest.raises(Unauthenticated, match="lifetime"):
        svc.verify(svc.mint("alice", ["read"], ttl_s=601))


def test_the_agency_travels_in_the_claim_the_settings_name() -> None:
    svc = TokenService(PlatformSettings(jwt_secret="s" * 32, jwt_agency_claim="org_code"))
    token = svc.mint("inspector", ["read"], agency="QD-CIQ")
    assert svc.verify(token).agency == "QD-CIQ"
    assert _tokens("s" * 32).verify(token).agency is None  # another deployment reads `agency`
