"""`/openapi.json` at the gateway covers every route of the suite (OpenAPI 3.1).

The gateway's own document, with each forwarded operation replaced by the owning service's own
(parameters, bodies, examples, responses) and its schemas copied, prefixed `<Service>` when two
documents define one name differently: every schema has one name and title. Each service's
document is fetched through the same client the forwarding uses (in-process in embedded mode,
HTTP in distributed mode) and cached; a service that cannot answer yet is asked again at the next
request, meanwhile its routes keep the gateway's short description.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.gateway.forwarding import Forward
from services.gateway.upstream import Upstreams
from shared.asyncapi import asyncapi_document
from shared.openapi import own_document

log = structlog.get_logger("gateway.openapi")


def _renamed(node: Any, names: dict[str, str]) -> Any:
    """A copy of `node` with every local schema reference renamed by `names`."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith(_REF):
                name = v.removeprefix(_REF)
                out[k] = _REF + names.get(name, name)
            else:
                out[k] = _renamed(v, names)
        return out
    if isinstance(node, list):
        return [_renamed(v, names) for v in node]
    return node


_REF = "#/components/schemas/"


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].removeprefix(_REF)} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _names(
    own: dict[str, Any], service_docs: dict[str, dict[str, Any]], used: Sequence[str]
) -> dict[str, dict[str, str]]:
    """Each service schema's name in the merged document: its own when no other document defines
    that name differently (`Problem`, `ResultOut`), else `<Service><Name>` (`SamplingRowOutcome`,
    `AwardsRowOutcome`). The gateway's own schemas keep their names."""
    definitions: dict[str, list[Any]] = {}
    for name, schema in own.items():
        definitions.setdefault(name, []).append(schema)
    for service in used:
        for name, schema in service_docs[service].get("components", {}).get("schemas", {}).items():
            definitions.setdefault(name, []).append(schema)
    differ = {name for name, ds in definitions.items() if any(d != ds[0] for d in ds)}
    while True:  # a schema that refers to a renamed one is renamed too
        more = {n for n, ds in definitions.items() if n not in differ and any(_refs(d) & differ for d in ds)}
        if not more:
            break
        differ |= more
    out: dict[str, dict[str, str]] = {}
    for service in used:
        out[service] = {
            name: service.capitalize() + name if name in differ else name
            for name in service_docs[service].get("components", {}).get("schemas", {})
        }
    return out


def merge(
    gateway_doc: dict[str, Any], service_docs: dict[str, dict[str, Any]], forwards: Sequence[Forward]
) -> dict[str, Any]:
    doc = copy.deepcopy(gateway_doc)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    used = sorted({f.service for f in forwards if f.service in service_docs})
    names = _names(schemas, service_docs, used)
    for fwd in forwards:
        svc = service_docs.get(fwd.service)
        op = (svc or {}).get("paths", {}).get(fwd.target, {}).get(fwd.method.lower())
        if op is None:
            continue
        ours = doc["paths"].get(fwd.path, {}).get(fwd.method.lower(), {})
        merged = _renamed(op, names[fwd.service])
        merged["summary"] = f"{op.get('summary') or fwd.summary} (→ {fwd.service})"
        merged["tags"] = [fwd.tag]
        merged["operationId"] = ours.get("operationId", merged.get("operationId"))
        # The gateway answers these before the service does (scope, upstream down or slow).
        gateway_errors = {k: v for k, v in ours.get("responses", {}).items() if k.startswith(("4", "5"))}
        merged["responses"] = {**gateway_errors, **merged.get("responses", {})}
        merged["responses"] = dict(sorted(merged["responses"].items()))
        if fwd.scopes:
            merged["security"] = [{"HTTPBearer": []}]
            merged["description"] = (
                op.get("description", "") + f"\n\nScope: {' or '.join(fwd.scopes)} "
                "(checked at the gateway and by the service)."
            ).strip()
        doc["paths"].setdefault(fwd.path, {})[fwd.method.lower()] = merged
    for service in used:
        for name, schema in service_docs[service].get("components", {}).get("schemas", {}).items():
            final = names[service][name]
            schemas[final] = {**_renamed(schema, names[service]), "title": final}
    if any(f.scopes for f in forwards):
        doc["components"].setdefault("securitySchemes", {}).setdefault(
            "HTTPBearer",
            {"type": "http", "scheme": "bearer", "description": "A JWT bearer token with the scopes the route names"},
        )
    doc["components"]["schemas"] = dict(sorted(schemas.items()))
    return doc


def document_text(doc: dict[str, Any]) -> str:
    """The committed form of a document (docs/openapi.json): stable, readable, reviewable."""
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


#: The event contracts (AsyncAPI 3.0), built once: they are the code's.
ASYNCAPI = asyncapi_document()


class SuiteDocs:
    def __init__(self, app: FastAPI, forwards: Sequence[Forward]) -> None:
        self.app = app
        self.forwards = forwards
        self.cache: dict[str, dict[str, Any]] = {}

    async def fetch(self, upstreams: Upstreams, timeout_s: float = 5.0) -> None:
        for service, client in upstreams.clients.items():
            if service in self.cache:
                continue
            try:
                r = await client.get("/openapi.json", timeout=timeout_s)
                r.raise_for_status()
                self.cache[service] = r.json()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("service OpenAPI not available yet", service=service, error=repr(exc))

    def document(self) -> dict[str, Any]:
        return merge(own_document(self.app), self.cache, self.forwards)


def install(app: FastAPI, forwards: Sequence[Forward]) -> SuiteDocs:
    """Replace FastAPI's `/openapi.json` by the suite's merged document; serve `/asyncapi.json`."""
    docs = SuiteDocs(app, forwards)
    url = app.openapi_url or "/openapi.json"
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != url]

    async def openapi_json(request: Request) -> JSONResponse:
        await docs.fetch(request.app.state.upstreams)
        return JSONResponse(docs.document())

    async def asyncapi_json(request: Request) -> JSONResponse:
        return JSONResponse(ASYNCAPI)

    app.add_route(url, openapi_json, include_in_schema=False)
    app.add_route("/asyncapi.json", asyncapi_json, include_in_schema=False)
    app.openapi = docs.document  # type: ignore[method-assign]
    app.state.suite_docs = docs
    return docs
