"""The webhooks' pure rules: callback URLs (https only in production, the SSRF guard and its
allow-list), signing with one or two secrets, the filters, the back-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from services.gateway.webhooks.domain import (
    CallbackUrlRefused,
    Filters,
    check_callback_url,
    new_secret,
    next_attempt,
    sign,
    signing_secrets,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_production_mode_accepts_https_callbacks_only() -> None:
    url = "https://procurement.example.gov.cn/hooks"
    assert check(url, https_only=True) == url
    with pytest.raises(CallbackUrlRefused, match="https callbacks only"):
        check("http://procurement.example.gov.cn/hooks", https_only=True)
    assert check("http://procurement.example.gov.cn/hooks", https_only=False).startswith("http://")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://127.0.0.1:9000/h", "127.0.0.1"),
        ("http://192.168.1.10/h", "192.168.1.10"),
        ("http://[fd00::1]/h", "fd00::1"),
        ("http://100.64.0.1/h", "100.64.0.1"),
        ("http://0.0.0.0/h", "0.0.0.0"),
        ("http://receiver.internal/h", "receiver.internal"),
        ("http://printer.local/h", "printer.local"),
    ],
)
def test_private_and_local_hosts_are_refused_unless_allow_listed(url: str, host: str) -> None:
    with pytest.raises(CallbackUrlRefused, match="QC_GATEWAY_WEBHOOK_ALLOWED_HOSTS"):
        check(url, https_only=False)
    assert check(url, https_only=False, allowed={host}) == url


def check(url: str, *, https_only: bool, allowed: set[str] | None = None) -> str:
    return check_callback_url(url, https_only=https_only, allowed_hosts=allowed or set())


def test_two_secrets_sign_during_the_overlap_and_one_after() -> None:
    old, new = new_secret(), new_secret()
    until = NOW + timedelta(hours=1)
    assert signing_secrets(new, old, until, NOW) == [new, old]
    assert signing_secrets(new, old, until, until) == [new]
    assert signing_secrets(new, None, None, NOW) == [new]
    # Signed now: a Standard Webhooks receiver refuses a timestamp over five minutes off its clock.
    at = datetime.now(UTC)
    body = '{"id": "e1"}'
    headers = {"webhook-id": "e1", "webhook-timestamp": str(int(at.timestamp()))}
    both = {**headers, "webhook-signature": sign([new, old], "e1", at, body)}
    assert Webhook(old).verify(body, both) == {"id": "e1"} and Webhook(new).verify(body, both) == {"id": "e1"}
    alone = {**headers, "webhook-signature": sign([new], "e1", at, body)}
    assert Webhook(new).verify(body, alone) == {"id": "e1"}
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, alone)


RESULT = {"result": {"district_code": "370202", "uscc": "X"}}
HONOUR = {"honour": {"district_code": "370203", "type_code": "qingdao-quality-award"}}
WARNING = {"warning": {"district_code": None, "kind": "repeated_final_fails"}}
ENTRY = {"entry": {"uscc": "X"}}


def test_filters() -> None:
    assert Filters.of(None).empty and all(Filters.of(None).passes(d) for d in (RESULT, HONOUR, WARNING, ENTRY))
    districts = Filters.of({"districts": ["370202", "370203"]})
    assert [districts.passes(d) for d in (RESULT, HONOUR, WARNING, ENTRY)] == [True, True, False, False]
    honours = Filters.of({"honour_types": ["provincial-brand"]})
    assert [honours.passes(d) for d in (RESULT, HONOUR, WARNING, ENTRY)] == [True, False, True, True]
    assert Filters.of({"honour_types": ["qingdao-quality-award"]}).passes(HONOUR)
    kinds = Filters.of({"warning_kinds": ["fail_rate_above_baseline"]})
    assert [kinds.passes(d) for d in (RESULT, HONOUR, WARNING, ENTRY)] == [True, True, False, True]
    assert Filters.of({"warning_kinds": ["repeated_final_fails"]}).passes(WARNING)


def test_back_off_doubles_up_to_its_cap() -> None:
    waits = [(next_attempt(NOW, n, 10, 3600) - NOW).total_seconds() for n in range(1, 11)]
    assert waits == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]
