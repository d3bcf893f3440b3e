"""Webhook rules as pure functions: which callback URLs are accepted, the retry schedule, signing.

Deliveries follow the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`,
`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`), signed by the
`standardwebhooks` package; the body is the CloudEvent in its structured JSON form.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from collections.abc import Collection
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from shared.errors import ValidationFailed, field_error

SECRET_PREFIX = "whsec_"


class CallbackUrlRefused(ValidationFailed, slug="callback-url-refused", title="Callback URL refused"):
    """A callback the gateway must not call (scheme, credentials, a private or local host)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The callback URL is refused: {reason}", [field_error("url", "body", reason)])


def new_secret() -> str:
    """A signing secret as the specification writes it: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, at: datetime, body: str) -> str:
    return Webhook(secret).sign(msg_id, at, body)


def _private(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_global
    except ValueError:
        return False


def address_refused(address: str) -> bool:
    """A resolved address a delivery must not reach: loopback, private, link-local, reserved."""
    return _private(address)


def check_callback_url(url: str, *, https_only: bool, allowed_hosts: Collection[str]) -> str:
    """The URL as given, or CallbackUrlRefused saying why (server-side request forgery guard).

    Hosts in `allowed_hosts` pass whatever they resolve to. Others must be http(s) (https only in
    production), carry no credentials, and not name a private, loopback or link-local address or a
    local name. A host name is resolved again at each delivery (`address_refused`), so a public
    name later pointed at a private address is refused there too."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise CallbackUrlRefused(f"not a URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackUrlRefused("only http and https callbacks are delivered")
    if https_only and parts.scheme != "https":
        raise CallbackUrlRefused("production mode delivers to https callbacks only")
    if not host:
        raise CallbackUrlRefused("the URL names no host")
    if parts.username or parts.password:
        raise CallbackUrlRefused("credentials in the URL are not accepted; authenticate with the signature")
    if host in allowed_hosts:
        return url
    if _private(host) or host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise CallbackUrlRefused(
            f"{host} is a loopback, private or local address; an operator may allow it "
            "(QC_GATEWAY_WEBHOOK_ALLOWED_HOSTS)"
        )
    return url


def next_attempt(now: datetime, attempts: int, base_s: float, max_s: float) -> datetime:
    """Exponential back-off after the `attempts`-th failed attempt: base, 2×base, 4×base… capped."""
    return now + timedelta(seconds=min(max_s, base_s * 2 ** max(0, attempts - 1)))
