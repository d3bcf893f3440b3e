"""Forwarding to the owning service over HTTP (httpx): streamed, with problems instead of hangs."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from shared.errors import BadGateway, GatewayTimeout
from shared.service_app import request_id

_FORWARDED_REQUEST_HEADERS = (
    "authorization",
    "content-type",
    "accept",
    "idempotency-key",
    "if-match",
    "if-none-match",
    "x-source-file",  # an archive import names its file (docs/archive-import.md)
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
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED_REQUEST_HEADERS}
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
