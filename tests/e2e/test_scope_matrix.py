"""The scope matrix: every operation of every service's OpenAPI and of the gateway's, with no token, a
token holding every scope but the ones it needs, and a token holding only one it needs — and the same
answer through the gateway and from the service directly (embedded mode: the gateway at `/`, the
services mounted at `/services/<name>/`).

The scope a route needs is read from the route itself (its `require(...)`/`require_any(...)`
dependency, found on the route the request reached), never from a table here, so a new route is
covered as soon as it exists. A route without a scope dependency must be in `PUBLIC`, with a reason.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from qcity.embedded import create_embedded_app
from services.gateway.forwarding import FORWARDS
from shared.auth import SCOPES
from shared.settings import PlatformSettings
from tests.conftest import VALID_USCC
from tests.helpers import running

Auth = Callable[..., dict[str, str]]
SERVICES = ("sampling", "credit", "awards")

#: Operations anyone may call, by OpenAPI path (the same path in every app that has it).
PUBLIC: dict[str, str] = {
    "/healthz": "liveness probe of the orchestrator",
    "/readyz": "readiness probe of the orchestrator",
    "/v1/regions": "reference data: division codes with their validity dates",
    "/v1/awards/regions": "reference data: the awards service's division codes",
    "/v1/rules": "the sampling rules in force are published",
    "/v1/rating-rules": "the credit rule set is published so ratings can be checked",
    "/v1/blacklist": "the published blacklist (公示), per-client rate limited",
    "/v1/honour-types": "the honour catalogue is public",
    "/v1/honour-types/{code}": "the honour catalogue is public",
    "/v1/public/honour-types/{code}/honours": "the public list (公示) of a type, per-client rate limited",
    "/v1/plans": "the plans and their indicators are public documents",
    "/v1/plans/{plan_id}": "the plans and their indicators are public documents",
    "/v1/attainment": "plan attainment is published: aggregates, no enterprise data",
    "/v1/attainment/{code}": "plan attainment is published: aggregates, no enterprise data",
    "/v1/pass-rates": "pass rates per sector: aggregates (the legacy public figure)",
    "/v1/assessments": "district assessment (考核) is the government's published account: districts' aggregates",
    "/v1/assessments:export": "the same district assessment as XLSX or CSV",
    "/v1/assessments:report": "the same district assessment as the annual printable report (PDF or HTML)",
    "/v1/assessments/{district}": "one district's published assessment over the years",
    "/v1/public/nonconforming-products": "the published non-conforming products (公示), per-client rate limited",
    "/v1/public/nonconforming-products:export": "the same public list as CSV, per-client rate limited",
    "/v1/open-data/datapackage.zip": "the public lists and the attainment as open data, per-client rate limited",
    "/v1/warning-rules": "the early-warning rules and their method are published (docs/warnings.md)",
}
#: …of which these answer for GET only (the same path takes a token to write).
PUBLIC_GET_ONLY: dict[str, str] = {
    "/v1/indicator-reports": "reported indicator values are published; reporting one takes indicators:write",
}

#: Service operations the gateway does not forward (reached on the service only), with the reason.
DIRECT_ONLY: dict[tuple[str, str, str], str] = {
    **{(s, "GET", p): "each app has its own probes" for s in SERVICES for p in ("/healthz", "/readyz")},
}

#: Values for path parameters: well-formed, naming nothing that exists.
PARAMS = {"uscc": VALID_USCC, "code": "NOPE"}


class LastRoute:
    """Remembers the route the last request reached (the innermost app's, through the mounts)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.route = None
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.route = scope.get("route")


@dataclass
class Suite:
    client: httpx.AsyncClient
    last: LastRoute
    specs: dict[str, dict[str, Any]]  # app name -> OpenAPI document


@pytest.fixture
async def suite(tmp_path: Path, platform: PlatformSettings) -> AsyncIterator[Suite]:
    app = create_embedded_app(tmp_path / "data", platform)
    async with running(app) as manager:
        last = LastRoute(manager.app)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=last), base_url="http://suite") as client:
            specs = {"gateway": app.openapi()}
            for name in SERVICES:
                r = await client.get(f"/services/{name}/openapi.json")
                assert r.status_code == 200
                specs[name] = r.json()
            yield Suite(client, last, specs)


def _scope_dependencies(dependant: Dependant) -> list[str]:
    """The names of the `require*` dependencies anywhere under a route (shared/auth.py names them
    `require_<scope>_or_<scope>`, ':' spelled '_')."""
    found = []
    for sub in dependant.dependencies:
        name = getattr(sub.call, "__name__", "")
        if name.startswith("require_"):
            found.append(name)
        found += _scope_dependencies(sub)
    return found


def required_scopes(route: Any) -> frozenset[str] | None:
    """The scopes of which the route wants any one; None when it has no scope dependency."""
    assert isinstance(route, APIRoute), f"the request reached {route!r}, not an API route"
    names = _scope_dependencies(route.dependant)
    if not names:
        return None
    assert len(names) == 1, f"{route.path}: several scope dependencies {names}"
    spelled = {s.replace(":", "_"): s for s in SCOPES}
    parts = names[0].removeprefix("require_").split("_or_")
    assert all(p in spelled for p in parts), f"{route.path}: unknown scope in {names[0]}"
    return frozenset(spelled[p] for p in parts)


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PARAMS.get(m.group(1), "x"), path)


@dataclass(frozen=True)
class Answer:
    status: int
    problem: str | None

    @classmethod
    def of(cls, r: httpx.Response) -> Answer:
        problem = r.json().get("type") if r.headers.get("content-type", "").startswith("application/problem") else None
        return cls(r.status_code, problem)


async def call(suite: Suite, method: str, path: str, headers: dict[str, str]) -> tuple[Answer, Any]:
    body = {"json": {}} if method in ("POST", "PATCH", "PUT") else {}
    r = await suite.client.request(method, path, headers=headers, **body)
    return Answer.of(r), suite.last.route


def operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, ops in spec["paths"].items() for method in ops]


async def matrix(suite: Suite, auth: Auth, method: str, url: str, label: str) -> dict[str, Answer]:
    """The answers of one operation: no token, every other scope, and each scope it needs alone."""
    answers: dict[str, Answer] = {}
    answers["none"], route = await call(suite, method, url, {})
    needed = required_scopes(route)
    public = set(PUBLIC) | ({*PUBLIC_GET_ONLY} if method == "GET" else set())
    if needed is None:
        assert any(label.endswith(f" {p}") for p in public), f"{label}: no scope dependency, and not in PUBLIC"
        assert answers["none"].status not in (401, 403), f"{label}: public route refused {answers['none']}"
        return answers
    assert not any(label.endswith(f" {p}") for p in public), f"{label} is in PUBLIC but needs {sorted(needed)}"
    assert answers["none"].status == 401, f"{label}: no token answered {answers['none']}"
    answers["other scopes"], _ = await call(suite, method, url, auth(*(set(SCOPES) - needed)))
    assert answers["other scopes"].status == 403, f"{label}: wrong scope answered {answers['other scopes']}"
    for scope in sorted(needed):
        answers[scope], _ = await call(suite, method, url, auth(scope))
        assert answers[scope].status not in (401, 403), f"{label} with {scope}: {answers[scope]}"
    return answers


@pytest.mark.parametrize("name", ["gateway", *SERVICES])
async def test_every_operation_answers_401_403_or_passes_by_its_own_scope(suite: Suite, auth: Auth, name: str) -> None:
    prefix = "" if name == "gateway" else f"/services/{name}"
    ops = operations(suite.specs[name])
    assert len(ops) >= 10
    for method, path in ops:
        await matrix(suite, auth, method, prefix + concrete(path), f"{name} {method} {path}")


async def test_the_gateway_and_the_service_answer_the_same(suite: Suite, auth: Auth) -> None:
    forwarded = {(f.service, f.method, f.target) for f in FORWARDS}
    for service in SERVICES:
        own = set(operations(suite.specs[service]))
        missing = {(service, m, p) for m, p in own} - forwarded - set(DIRECT_ONLY)
        assert not missing, f"service operations the gateway does not forward (add them, or to DIRECT_ONLY): {missing}"
    gateway_ops = set(operations(suite.specs["gateway"]))
    for fwd in FORWARDS:
        assert (fwd.method, fwd.path) in gateway_ops, f"{fwd.path} is forwarded but not in the gateway's OpenAPI"
        via_gateway = await matrix(suite, auth, fwd.method, concrete(fwd.path), f"gateway {fwd.method} {fwd.path}")
        _, gateway_route = await call(suite, fwd.method, concrete(fwd.path), {})
        direct_url = f"/services/{fwd.service}{concrete(fwd.target)}"
        directly = await matrix(suite, auth, fwd.method, direct_url, f"{fwd.service} {fwd.method} {fwd.target}")
        _, service_route = await call(suite, fwd.method, direct_url, {})
        assert required_scopes(gateway_route) == required_scopes(service_route), (
            f"{fwd.path}: the gateway wants {required_scopes(gateway_route)}, "
            f"{fwd.service} wants {required_scopes(service_route)}"
        )
        assert via_gateway == directly, f"{fwd.method} {fwd.path}: gateway {via_gateway} != {fwd.service} {directly}"
