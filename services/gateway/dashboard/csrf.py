"""CSRF protection of the dashboard's two forms, and the security headers of its pages.

Sign-in: a double-submit token. The sign-in page sets a random token in an HttpOnly, SameSite=Strict
cookie and in the form; the POST is accepted only when both match, so another site cannot sign a
visitor in with the attacker's token (login CSRF). Sign-out: the form carries a digest of the
session cookie itself, which another site cannot read, so it cannot sign a visitor out. Both are
stateless: any gateway replica checks them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "qc_csrf"

#: The pages load only their own stylesheet and draw charts as inline SVG: no script, no inline
#: style, no frame, no form to another site.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def set_csrf_cookie(response: Response, value: str, *, secure: bool) -> None:
    response.set_cookie(
        CSRF_COOKIE, value, httponly=True, samesite="strict", secure=secure, path="/dashboard", max_age=3600
    )


def login_csrf_ok(cookie: str | None, submitted: str) -> bool:
    return bool(cookie) and bool(submitted) and hmac.compare_digest(cookie or "", submitted)


def logout_csrf(session_token: str | None) -> str | None:
    """The sign-out form's token for this session (None when not signed in)."""
    if not session_token:
        return None
    return hashlib.sha256(b"qualitycity-dashboard-logout\0" + session_token.encode()).hexdigest()


class DashboardHeadersMiddleware:
    """Adds `SECURITY_HEADERS` to every answer under /dashboard (pages, redirects, the stylesheet)."""

    def __init__(self, app: ASGIApp, prefix: str = "/dashboard") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
