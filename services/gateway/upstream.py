"""Forwarding to the owning service over HTTP (httpx): streamed, with problems instead of hangs."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import orjson
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from shared.errors import BadGateway, BadRequest, GatewayTimeout, field_error
from shared.problems import PROBLEM_JSON
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


class UpstreamTimeout(GatewayTimeout, slug="upstream-timeout", title="Upstream timeout"): ...


class UpstreamUnreachable(BadGateway, slug="upstream-unreachable", title="Upstream unreachable"): ...


async def _problem_here(upstream: httpx.Response, request: Request, headers: dict[str, str]) -> Response:
    """A service's problem with the gateway's path as `instance`: the client asked the gateway, and the
    service's own path (`/v1/jobs/x:run` for `/v1/credit/jobs/x:run`) names nothing it can call. A
    problem is small, so it is read whole rather than streamed."""
    try:
        body = await upstream.aread()
    finally:
        await upstream.aclose()
    try:
        problem = orjson.loads(body)
    except orjson.JSONDecodeError:
        problem = None
    if isinstance(problem, dict) and "instance" in problem:
        problem["instance"] = request.url.path
        body = orjson.dumps(problem)
    headers.pop("content-length", None)
    return Response(body, status_code=upstream.status_code, headers=headers)


class InvalidHeader(BadRequest, slug="invalid-header", title="Invalid header value"): ...


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
    """httpx clients per owning service, one per replica (`base_urls` values are comma-separated lists);
    in embedded mode their transport is the app itself.

    Replicas take requests in turn; a replica that refuses the connection (the request never left)
    passes it to the next. Hand-rolled because it is a dozen lines: a load balancer in front of the
    replicas does the same in production, and the gateway then gets one URL per service.
    """

    def __init__(
        self,
        base_urls: Mapping[str, str],
        timeout_s: float,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        transports = transports or {}
        self.replicas = {
            name: [
                httpx.AsyncClient(
                    base_url=url.strip(), timeout=httpx.Timeout(timeout_s, connect=5.0), transport=transports.get(name)
                )
                for url in urls.split(",")
                if url.strip()
            ]
            for name, urls in base_urls.items()
        }
        # The first replica of each service: what asks once (the OpenAPI documents).
        self.clients = {name: replicas[0] for name, replicas in self.replicas.items()}
        self._turn = dict.fromkeys(self.replicas, 0)

    async def aclose(self) -> None:
        for replicas in self.replicas.values():
            for client in replicas:
                await client.aclose()

    def _in_turn(self, service: str) -> list[httpx.AsyncClient]:
        """The service's replicas, starting with the one whose turn it is."""
        replicas, turn = self.replicas[service], self._turn[service]
        self._turn[service] = (turn + 1) % len(replicas)
        return replicas[turn:] + replicas[:turn]

    async def forward(self, service: str, request: Request, path: str | None = None) -> Response:
        headers = _forwarded_headers(request)
        headers["x-request-id"] = request_id(request)
        # The client, as this app resolved it (the peer, or what a trusted proxy forwarded): one address,
        # never the caller's own X-Forwarded-For. Services believe it because the gateway is in their
        # QC_TRUSTED_PROXIES; their per-client rate limits depend on it.
        if request.client is not None:
            headers["x-forwarded-for"] = request.client.host
        body = await request.body()
        replicas = self._in_turn(service)
        for attempt, client in enumerate(replicas, start=1):
            upstream_request = client.build_request(
                request.method,
                path or request.url.path,
                # The query string as sent: every value of every parameter (`group_by=sector&group_by=year`);
                # passing the parsed mapping kept only the last value of each.
                params=request.url.query,
                content=body,
                headers=headers,
            )
            try:
                upstream = await client.send(upstream_request, stream=True)
                break
            except httpx.ConnectError as exc:  # never sent: the next replica may take it
                if attempt == len(replicas):
                    raise UpstreamUnreachable(
                        f"The {service} service could not be reached: {type(exc).__name__}", service=service
                    ) from None
            except httpx.TimeoutException:
                raise UpstreamTimeout(f"The {service} service did not answer in time", service=service) from None
            except httpx.TransportError as exc:
                raise UpstreamUnreachable(
                    f"The {service} service could not be reached: {type(exc).__name__}", service=service
                ) from None
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() in _FORWARDED_RESPONSE_HEADERS}
        if upstream.headers.get("content-type", "").startswith(PROBLEM_JSON):
            return await _problem_here(upstream, request, out_headers)
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=out_headers,
            background=BackgroundTask(upstream.aclose),
        )
