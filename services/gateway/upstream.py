"""Forwarding to the owning service over HTTP (httpx): streamed, with problems instead of hangs."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from shared.errors import BadGateway, BadRequest, GatewayTimeout, field_error
from shared.service_app import request_id

_FORWARDED_REQUEST_HEADERS = (
    "authorization",
    "content-type",
    "accept",
    "idempotency-key",
    "if-match",
    "if-none-match",
)
_FORWARDED_RESPONSE_HEADERS = (
    "content-type",
    "content-disposition",
    "location",
    "etag",
    "retry-after",
    "www-authenticate",
)


class UpstreamTimeout(GatewayTimeout):
    slug = "upstream-timeout"
    title = "Upstream timeout"


class UpstreamUnreachable(BadGateway):
    slug = "upstream-unreachable"
    title = "Upstream unreachable"


class InvalidHeader(BadRequest):
    slug = "invalid-header"
    title = "Invalid header value"


def _forwarded_headers(request: Request) -> dict[str, str]:
    """The caller's headers the service needs, each printable ASCII (RFC 9110 field values; httpx
    refuses anything else, and no header of this API needs more): otherwise a 400 naming it."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        name = name.lower()
        if name not in _FORWARDED_REQUEST_HEADERS:
            continue
        if not all(" " <= ch <= "~" or ch == "\t" for ch in value):
            raise InvalidHeader(
                f"The {name} header holds characters other than printable ASCII",
                errors=[field_error(name, "header", "only printable ASCII characters are accepted")],
            )
        headers[name] = value
    return headers


class Upstreams:
    """One httpx client per owning service; in embedded mode their transport is the app itself."""

    def __init__(
        self,
        base_urls: Mapping[str, str],
        timeout_s: float,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        transports = transports or {}
        self.clients = {
            name: httpx.AsyncClient(
                base_url=url, timeout=httpx.Timeout(timeout_s, connect=5.0), transport=transports.get(name)
            )
            for name, url in base_urls.items()
        }

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def forward(self, service: str, request: Request, path: str | None = None) -> StreamingResponse:
        client = self.clients[service]
        headers = _forwarded_headers(request)
        headers["x-request-id"] = request_id(request)
        # The client, as this app resolved it (the peer, or what a trusted proxy forwarded): one address,
        # never the caller's own X-Forwarded-For. Services believe it because the gateway is in their
        # QC_TRUSTED_PROXIES; their per-client rate limits depend on it.
        if request.client is not None:
            headers["x-forwarded-for"] = request.client.host
        upstream_request = client.build_request(
            request.method,
            path or request.url.path,
            params=request.query_params,
            content=await request.body(),
            headers=headers,
        )
        try:
            upstream = await client.send(upstream_request, stream=True)
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"The {service} service did not answer in time", service=service) from None
        except httpx.TransportError as exc:
            raise UpstreamUnreachable(
                f"The {service} service could not be reached: {type(exc).__name__}", service=service
            ) from None
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() in _FORWARDED_RESPONSE_HEADERS}
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=out_headers,
            background=BackgroundTask(upstream.aclose),
        )
