"""Webhook rules as pure functions: which callback URLs are accepted, the retry schedule, signing.

Deliveries follow the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`,
`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`), signed by the
`standardwebhooks` package; the body is the CloudEvent in its structured JSON form.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from shared.contracts.gateway import SOURCE
from shared.errors import ValidationFailed, field_error

SECRET_PREFIX = "whsec_"


class CallbackUrlRefused(ValidationFailed, slug="callback-url-refused", title="Callback URL refused"):
    """A callback the gateway must not call (scheme, credentials, a private or local host)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The callback URL is refused: {reason}", [field_error("url", "body", reason)])


def new_secret() -> str:
    """A signing secret as the specification writes it: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secrets_: Sequence[str], msg_id: str, at: datetime, body: str) -> str:
    """The `webhook-signature` header: one `v1,` signature per secret, space-separated (the spec's
    form for rotation: a receiver accepts the request when any signature verifies)."""
    return " ".join(Webhook(s).sign(msg_id, at, body) for s in secrets_)


def signing_secrets(secret: str, previous: str | None, previous_until: datetime | None, now: datetime) -> list[str]:
    """The secrets that sign a request now: the current one, and the replaced one while its overlap lasts."""
    if previous is not None and previous_until is not None and now < previous_until:
        return [secret, previous]
    return [secret]


@dataclass(frozen=True)
class Filters:
    """A subscription's filters beyond event types and subjects (None: not filtered on that).

    `districts` keeps the events whose district is listed (an event carrying no district, such as a
    credit decision, is not delivered); `honour_types` and `warning_kinds` narrow the honour and the
    warning events only, leaving the other types a subscription asked for untouched."""

    districts: frozenset[str] | None = None
    honour_types: frozenset[str] | None = None
    warning_kinds: frozenset[str] | None = None

    @classmethod
    def of(cls, stored: Mapping[str, Any] | None) -> Filters:
        def one(key: str) -> frozenset[str] | None:
            values = (stored or {}).get(key)
            return frozenset(values) if values is not None else None

        return cls(one("districts"), one("honour_types"), one("warning_kinds"))

    @property
    def empty(self) -> bool:
        return self.districts is None and self.honour_types is None and self.warning_kinds is None

    def passes(self, data: Mapping[str, Any]) -> bool:
        """Whether an event's data (a CloudEvent's `data`: `{"result": …}`, `{"honour": …}`…) passes."""
        snapshots = [v for v in data.values() if isinstance(v, Mapping)]
        if self.districts is not None:
            district = next((s["district_code"] for s in snapshots if s.get("district_code")), None)
            if district not in self.districts:
                return False
        honour = data.get("honour")
        if self.honour_types is not None and isinstance(honour, Mapping):
            if honour.get("type_code") not in self.honour_types:
                return False
        warning = data.get("warning")
        if self.warning_kinds is not None and isinstance(warning, Mapping):
            if warning.get("kind") not in self.warning_kinds:
                return False
        return True


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


#: The test ping's type: not a catalog event, so unversioned (receivers answer it 2xx and may ignore it).
PING_TYPE = "qualitycity.webhook.ping"


def ping_event(subscription_id: str, at: datetime) -> dict[str, Any]:
    """The CloudEvent a test ping carries, shaped like every delivery."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": SOURCE,
        "type": PING_TYPE,
        "subject": subscription_id,
        "time": at.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": {"subscription_id": subscription_id, "message": "A test ping: no event happened"},
    }
