from __future__ import annotations

import pytest

from shared.auth import TokenService
from shared.errors import Unauthenticated


def test_token_round_trip_carries_scopes_and_agency() -> None:
    svc = TokenService("s" * 32, "qualitycity", "qualitycity")
    p = svc.verify(svc.mint("alice", ["read", "sampling:write"], agency="QD-1"))
    assert p.subject == "alice" and p.agency == "QD-1"
    assert p.has("sampling:write") and not p.has("credit:review")


def test_token_signed_with_another_key_is_refused() -> None:
    token = TokenService("a" * 32, "qualitycity", "qualitycity").mint("alice", ["read"])
    with pytest.raises(Unauthenticated) as info:
        TokenService("b" * 32, "qualitycity", "qualitycity").verify(token)
    assert info.value.status == 401


def test_expired_token_is_refused() -> None:
    svc = TokenService("s" * 32, "qualitycity", "qualitycity")
    with pytest.raises(Unauthenticated, match="expired"):
        svc.verify(svc.mint("alice", ["read"], ttl_s=-10))


def test_unknown_scope_cannot_be_minted() -> None:
    with pytest.raises(ValueError):
        TokenService("s" * 32, "q", "q").mint("alice", ["root"])
