"""The routes the gateway forwards to their owning service, with the scope each needs.

Scopes are checked here and again by the service: the gateway refuses early, the service stays
safe when reached directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from services.gateway.upstream import Upstreams
from shared.audit import delegated
from shared.auth import require_any
from shared.routing import problems


@dataclass(frozen=True)
class Forward:
    service: str
    method: str
    path: str
    scope: str | tuple[str, ...] | None  # None: public; a tuple: any one of them
    summary: str
    tag: str
    upstream_path: str | None = None  # when the gateway's path differs (two services own /v1/regions)

    @property
    def scopes(self) -> tuple[str, ...]:
        if self.scope is None:
            return ()
        return (self.scope,) if isinstance(self.scope, str) else self.scope

    @property
    def target(self) -> str:
        return self.upstream_path or self.path


OFFICER = ("credit:write", "credit:review")
ENTRY = "/v1/blacklist-entries/{entry_id}"
#: Records from other authorities: sent by their systems, read by them (their own) and by officers.
RECORDS = "/v1/credit-records"
RECORD_READERS = ("credit:records", *OFFICER)

_sampling = partial(Forward, "sampling")
_credit = partial(Forward, "credit")
_awards = partial(Forward, "awards")


def _job(service: str, summary: str) -> tuple[Forward, Forward]:
    """The gateway's paths to a service's jobs: their schedule and the runner (each service serves
    them at /v1/jobs)."""
    return (
        Forward(
            service,
            "GET",
            f"/v1/jobs/{service}",  # not /v1/{service}/jobs: /v1/credit/{uscc} is the gateway's own
            "read",
            f"The {service} service's periodic jobs and their schedule",
            "operations",
            upstream_path="/v1/jobs",
        ),
        Forward(
            service,
            "POST",
            f"/v1/{service}/jobs/{{name}}:run",
            "admin",
            summary,
            "operations",
            upstream_path="/v1/jobs/{name}:run",
        ),
    )


#: Archive imports (docs/archive-import.md).
ARCHIVE = ("admin", "archive:import")


#: Each consuming service's quarantine (shared/quarantine.py) is at `/v1/quarantine/{service}` here:
#: the gateway's own is mounted at its prefix, the others' are forwarded to their `/v1/quarantine`.
QUARANTINE_PREFIX = "/v1/quarantine/gateway"


def quarantine_forwards(service: str) -> tuple[Forward, ...]:
    at, up = f"/v1/quarantine/{service}", "/v1/quarantine"
    return tuple(
        Forward(service, method, at + path, "admin", summary, "operations", upstream_path=up + path)
        for method, path, summary in (
            ("GET", "", f"Quarantined events of the {service} service"),
            ("GET", "/{quarantine_id}", f"One quarantined event of the {service} service"),
            ("POST", "/{quarantine_id}:replay", f"Replay a quarantined event of the {service} service"),
            ("POST", "/{quarantine_id}:discard", f"Discard a quarantined event of the {service} service"),
        )
    )


#: Each service's audit records (shared/audit.py) are at `/v1/audit/{service}` here, like the quarantine:
#: the gateway's own (its writes and the forwarded writes it refused) at its prefix, the others' forwarded.
AUDIT_PREFIX = "/v1/audit/gateway"


def audit_forward(service: str) -> Forward:
    return Forward(
        service,
        "GET",
        f"/v1/audit/{service}",
        "admin",
        f"Audit records of the {service} service's writes",
        "operations",
        upstream_path="/v1/audit",
    )


FORWARDS: tuple[Forward, ...] = (
    _sampling("POST", "/v1/results", "sampling:write", "Record one result", "sampling"),
    _sampling("POST", "/v1/results:batch", "sampling:write", "Record up to 10,000 results", "sampling"),
    _sampling("POST", "/v1/results:import", ARCHIVE, "Import archived results with their outcome", "sampling"),
    _sampling("GET", "/v1/results", "read", "List results", "sampling"),
    _sampling("GET", "/v1/results:export", "read", "Export results as CSV", "sampling"),
    _sampling("GET", "/v1/results/{result_id}", "read", "One result", "sampling"),
    _sampling("GET", "/v1/results/{result_id}/history", "read", "A result's versions", "sampling"),
    _sampling("PATCH", "/v1/results/{result_id}", "sampling:write", "Correct a result", "sampling"),
    _sampling("POST", "/v1/results/{result_id}:retract", "sampling:write", "Retract a result", "sampling"),
    _sampling("POST", "/v1/results/{result_id}/reinspection", "sampling:write", "Record a re-inspection", "sampling"),
    _sampling("GET", "/v1/stats/pass-rates", "read", "Pass rates from the sampling service", "sampling"),
    _sampling("GET", "/v1/agencies/{code}/scorecard", "read", "An agency's scorecard", "sampling"),
    _sampling("GET", "/v1/regions", None, "Districts with validity dates", "reference"),
    _sampling("GET", "/v1/rules", None, "Sampling rules in force", "reference"),
    _sampling("GET", "/v1/public/nonconforming-products", None, "Published non-conforming products (公示)", "public"),
    _sampling("GET", "/v1/public/nonconforming-products:export", None, "The same as CSV", "public"),
    *_job("sampling", "Run a sampling job now"),
    _sampling("POST", "/v1/notices", "sampling:publish", "Publish a notice (公告) of final fails", "notices"),
    _sampling("GET", "/v1/notices", "read", "Published notices", "notices"),
    _sampling("GET", "/v1/notices/{notice_id}", "read", "One notice with its versions", "notices"),
    _sampling("PATCH", "/v1/notices/{notice_id}", "sampling:publish", "Correct a notice", "notices"),
    # credit
    _credit("GET", "/v1/rating-rules", None, "The credit rule set in force, and every version", "credit"),
    _credit("POST", "/v1/blacklist-entries", "credit:write", "Propose a blacklist entry", "blacklist"),
    _credit("GET", "/v1/blacklist-entries", OFFICER, "Blacklist entries (officers)", "blacklist"),
    _credit("GET", "/v1/blacklist-entries/{entry_id}", OFFICER, "One blacklist entry", "blacklist"),
    _credit("POST", ENTRY + ":approve", "credit:review", "Approve a proposal (another reviewer)", "blacklist"),
    _credit("POST", ENTRY + ":reject", "credit:review", "Reject a proposal", "blacklist"),
    _credit("POST", ENTRY + ":apply-repair", "credit:write", "File a credit-repair application", "blacklist"),
    _credit("POST", ENTRY + ":review-repair", "credit:review", "Review a credit-repair application", "blacklist"),
    _credit("POST", ENTRY + ":remove", "credit:review", "Remove a listing as wrongful", "blacklist"),
    _credit("POST", ENTRY + ":record-statement", "credit:write", "Record the enterprise's statement", "blacklist"),
    _credit("POST", ENTRY + ":decide-statement", "credit:review", "Decide on the statement", "blacklist"),
    _credit("POST", "/v1/enterprises:match", "read", "Find enterprises by name", "credit"),
    _credit("POST", RECORDS, "credit:records", "Send one authority record", "credit records"),
    _credit("POST", RECORDS + ":batch", "credit:records", "Send up to 10,000 authority records", "credit records"),
    _credit("GET", RECORDS, RECORD_READERS, "Records from other authorities", "credit records"),
    _credit(
        "GET", RECORDS + "/{record_id}", RECORD_READERS, "One authority record with its versions", "credit records"
    ),
    _credit(
        "POST", RECORDS + "/{record_id}:correct", "credit:records", "Correct an authority record", "credit records"
    ),
    _credit(
        "POST", RECORDS + "/{record_id}:withdraw", "credit:records", "Withdraw an authority record", "credit records"
    ),
    _credit("POST", "/v1/blacklist:import", ARCHIVE, "Import archived listings and removals", "blacklist"),
    _credit("GET", "/v1/blacklist", None, "The published blacklist (公示)", "public"),
    _credit("GET", "/v1/blacklist/check", "read", "Is this enterprise blacklisted on a date?", "credit"),
    _credit("POST", "/v1/screenings", "read", "Screen up to 1,000 enterprises", "credit"),
    _credit("GET", "/v1/enterprises/{uscc}/credit", "read", "An enterprise's rating with contributions", "credit"),
    _credit("GET", "/v1/enterprises/{uscc}/history", OFFICER, "An enterprise's blacklist history", "credit"),
    *_job("credit", "Run a credit job now"),
    # awards
    _awards("GET", "/v1/honour-types", None, "Every honour type", "awards"),
    _awards("GET", "/v1/honour-types/{code}", None, "One honour type", "awards"),
    _awards(
        "GET",
        "/v1/awards/regions",
        None,
        "Division codes with their dates (awards)",
        "reference",
        upstream_path="/v1/regions",
    ),
    _awards("POST", "/v1/honours", "awards:write", "Grant an honour", "awards"),
    _awards("POST", "/v1/honours:import", "awards:write", "Import a historical registry (CSV)", "awards"),
    _awards("POST", "/v1/honours:archive", ARCHIVE, "Import an archived registry with revocations", "awards"),
    _awards("POST", "/v1/honours/{honour_id}:revoke", "awards:write", "Revoke an honour", "awards"),
    _awards("GET", "/v1/honours", "read", "Honours, filtered", "awards"),
    _awards("GET", "/v1/honours/{honour_id}", "read", "One honour", "awards"),
    _awards("GET", "/v1/holders/{holder_id}/honours", "read", "Every honour of one holder", "awards"),
    _awards("GET", "/v1/honour-counts", "read", "Counts per type and plan indicator", "awards"),
    _awards("GET", "/v1/public/honour-types/{code}/honours", None, "The public list (公示) of a type", "public"),
    *_job("awards", "Run an awards job now"),
    *quarantine_forwards("credit"),
    *quarantine_forwards("awards"),
    *(audit_forward(s) for s in ("sampling", "credit", "awards")),
)


def _endpoint(fwd: Forward) -> Callable[..., Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        upstreams: Upstreams = request.app.state.upstreams
        delegated(request)  # the owning service records the write (or its refusal)
        # Each parameter percent-encoded again: decoded, an id holding `?` or `#` would cut the path.
        params = {k: quote(str(v), safe="") for k, v in request.path_params.items()}
        return await upstreams.forward(fwd.service, request, path=fwd.target.format(**params))

    return endpoint


def forwarding_router(forwards: tuple[Forward, ...] = FORWARDS) -> APIRouter:
    router = APIRouter()
    for fwd in forwards:
        # The gateway's own answers: the scope it checks, the service down (502) or slow (504).
        errors = problems(*((401, 403) if fwd.scopes else ()), 502, 504)
        deps = [require_any(*fwd.scopes)] if fwd.scopes else []
        router.add_api_route(
            fwd.path,
            _endpoint(fwd),
            methods=[fwd.method],
            summary=f"{fwd.summary} (→ {fwd.service})",
            tags=[fwd.tag],
            dependencies=deps,
            responses=errors,
            response_class=StreamingResponse,
            name=f"{fwd.service}:{fwd.method}:{fwd.path}",
        )
    return router
