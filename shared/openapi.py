"""What every service's OpenAPI document shares: short operationIds and the one `Problem` schema.

A generated client names its functions after `operationId` and its models after the schemas, so
both are part of the contract: the ids come from one table keyed by method and path (the gateway
forwards a route under the same path, so a service's operation and the gateway's share an id), and
every error answers `#/components/schemas/Problem` instead of FastAPI's `HTTPValidationError`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from shared.problems import PROBLEM_JSON, PROBLEM_SCHEMA, Problem

#: `(METHOD, path)` → operationId, for the paths as the gateway serves them. A service's route at the
#: same path gets the same id; a route not listed is named after its function in camelCase.
OPERATION_IDS: dict[tuple[str, str], str] = {
    # gateway: attainment, plans, read models
    ("GET", "/v1/pass-rates"): "getPassRates",
    ("GET", "/v1/plans"): "listPlans",
    ("GET", "/v1/plans/{plan_id}"): "getPlan",
    ("GET", "/v1/attainment"): "getAttainment",
    ("GET", "/v1/attainment/{code}"): "getIndicatorAttainment",
    ("POST", "/v1/indicator-reports"): "createIndicatorReport",
    ("GET", "/v1/indicator-reports"): "listIndicatorReports",
    ("GET", "/v1/facts/results"): "listResultFacts",
    ("GET", "/v1/facts/honours"): "listHonourFacts",
    ("GET", "/v1/credit/{uscc}"): "getCreditProfile",
    ("GET", "/v1/procurement/priority-list"): "getPriorityList",
    ("GET", "/v1/enterprises"): "searchEnterprises",
    ("GET", "/v1/changes"): "listChanges",
    ("GET", "/v1/assessments"): "listAssessments",
    ("GET", "/v1/assessments:export"): "exportAssessments",
    ("GET", "/v1/assessments/{district}"): "getDistrictAssessment",
    ("GET", "/v1/assessments:report"): "getAssessmentReport",
    ("GET", "/v1/open-data/datapackage.zip"): "downloadOpenData",
    # sampling
    ("POST", "/v1/results"): "createResult",
    ("POST", "/v1/results:batch"): "createResultsBatch",
    ("POST", "/v1/results:import"): "importResults",
    ("GET", "/v1/results"): "listResults",
    ("GET", "/v1/results:export"): "exportResults",
    ("GET", "/v1/results/{result_id}"): "getResult",
    ("GET", "/v1/results/{result_id}/history"): "getResultHistory",
    ("PATCH", "/v1/results/{result_id}"): "correctResult",
    ("POST", "/v1/results/{result_id}:retract"): "retractResult",
    ("POST", "/v1/results/{result_id}/reinspection"): "reinspectResult",
    ("GET", "/v1/stats/pass-rates"): "getSamplingPassRates",
    ("GET", "/v1/agencies/{code}/scorecard"): "getAgencyScorecard",
    ("GET", "/v1/regions"): "listRegions",
    ("GET", "/v1/rules"): "getSamplingRules",
    ("GET", "/v1/public/nonconforming-products"): "listNonconformingProducts",
    ("GET", "/v1/public/nonconforming-products:export"): "exportNonconformingProducts",
    ("POST", "/v1/notices"): "publishNotice",
    ("GET", "/v1/notices"): "listNotices",
    ("GET", "/v1/notices/{notice_id}"): "getNotice",
    ("PATCH", "/v1/notices/{notice_id}"): "correctNotice",
    ("POST", "/v1/sampling/jobs/{name}:run"): "runSamplingJob",
    ("GET", "/v1/jobs/sampling"): "listSamplingJobs",
    # credit
    ("GET", "/v1/rating-rules"): "getRatingRules",
    ("POST", "/v1/blacklist-entries"): "proposeBlacklistEntry",
    ("GET", "/v1/blacklist-entries"): "listBlacklistEntries",
    ("GET", "/v1/blacklist-entries/{entry_id}"): "getBlacklistEntry",
    ("POST", "/v1/blacklist-entries/{entry_id}:approve"): "approveBlacklistEntry",
    ("POST", "/v1/blacklist-entries/{entry_id}:reject"): "rejectBlacklistEntry",
    ("POST", "/v1/blacklist-entries/{entry_id}:apply-repair"): "applyForRepair",
    ("POST", "/v1/blacklist-entries/{entry_id}:review-repair"): "reviewRepair",
    ("POST", "/v1/blacklist-entries/{entry_id}:remove"): "removeBlacklistEntry",
    ("GET", "/v1/blacklist"): "listPublicBlacklist",
    ("GET", "/v1/blacklist/check"): "checkBlacklist",
    ("POST", "/v1/screenings"): "createScreening",
    ("GET", "/v1/enterprises/{uscc}/credit"): "getEnterpriseCredit",
    ("GET", "/v1/enterprises/{uscc}/history"): "getEnterpriseHistory",
    ("POST", "/v1/credit/jobs/{name}:run"): "runCreditJob",
    ("GET", "/v1/jobs/credit"): "listCreditJobs",
    ("POST", "/v1/blacklist:import"): "importBlacklist",
    ("POST", "/v1/blacklist-entries/{entry_id}:record-statement"): "recordStatement",
    ("POST", "/v1/blacklist-entries/{entry_id}:decide-statement"): "decideStatement",
    ("POST", "/v1/enterprises:match"): "matchEnterprises",
    ("POST", "/v1/credit-records"): "createCreditRecord",
    ("POST", "/v1/credit-records:batch"): "createCreditRecordsBatch",
    ("GET", "/v1/credit-records"): "listCreditRecords",
    ("GET", "/v1/credit-records/{record_id}"): "getCreditRecord",
    ("POST", "/v1/credit-records/{record_id}:correct"): "correctCreditRecord",
    ("POST", "/v1/credit-records/{record_id}:withdraw"): "withdrawCreditRecord",
    # awards
    ("GET", "/v1/honour-types"): "listHonourTypes",
    ("GET", "/v1/honour-types/{code}"): "getHonourType",
    ("GET", "/v1/awards/regions"): "listAwardsRegions",
    ("POST", "/v1/honours"): "grantHonour",
    ("POST", "/v1/honours:import"): "importHonours",
    ("POST", "/v1/honours/{honour_id}:revoke"): "revokeHonour",
    ("GET", "/v1/honours"): "listHonours",
    ("GET", "/v1/honours/{honour_id}"): "getHonour",
    ("GET", "/v1/holders/{holder_id}/honours"): "listHolderHonours",
    ("GET", "/v1/honour-counts"): "countHonours",
    ("GET", "/v1/public/honour-types/{code}/honours"): "listPublicHonours",
    ("POST", "/v1/awards/jobs/{name}:run"): "runAwardsJob",
    ("GET", "/v1/jobs/awards"): "listAwardsJobs",
    ("POST", "/v1/honours:archive"): "importHonoursArchive",
    # every service
    ("POST", "/v1/jobs/{name}:run"): "runJob",
    ("GET", "/v1/jobs"): "listJobs",
    ("GET", "/healthz"): "getHealth",
    ("GET", "/readyz"): "getReadiness",
}
for _service in ("credit", "awards", "gateway"):
    _at, _name = f"/v1/quarantine/{_service}", "" if _service == "gateway" else _service.capitalize()
    OPERATION_IDS |= {
        ("GET", _at): f"list{_name}Quarantined",
        ("GET", _at + "/{quarantine_id}"): f"get{_name}Quarantined",
        ("POST", _at + "/{quarantine_id}:replay"): f"replay{_name}Quarantined",
        ("POST", _at + "/{quarantine_id}:discard"): f"discard{_name}Quarantined",
    }

#: A path parameter: one segment without `:` or control characters (shared.routing.SegmentConvertor).
SEGMENT = r"^[^:/\x00-\x1f\x7f]+$"
#: A query value never holds a control character (shared.service_app answers 422 for one).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


def _printable(schema: dict[str, Any]) -> None:
    """States the control-character rule on a query parameter's free strings (not on enums,
    formats or values that already have a pattern)."""
    for alternative in schema.get("anyOf", []) + schema.get("oneOf", []):
        _printable(alternative)
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        _printable(schema["items"])
    if schema.get("type") == "string" and not {"pattern", "enum", "format", "const"} & schema.keys():
        schema["pattern"] = PRINTABLE


def camel(name: str) -> str:
    head, *rest = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    return head[:1].lower() + head[1:] + "".join(p[:1].upper() + p[1:] for p in rest)


def operation_id_for(method: str, path: str, fallback: str) -> str:
    return OPERATION_IDS.get((method.upper(), path)) or camel(fallback)


def operation_id(route: APIRoute) -> str:
    """FastAPI's `generate_unique_id_function`: the table's id, else the function's name in camelCase."""
    return operation_id_for(sorted(route.methods or {"GET"})[0], route.path_format, route.name)


def _problem_components() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
    defs = schema.pop("$defs", {})
    return {"Problem": schema, **defs}


def finish(doc: dict[str, Any]) -> dict[str, Any]:
    """Every error response answers the shared `Problem` (problem+json only); FastAPI's own
    `HTTPValidationError` is gone; each schema's title is its component name (generators name
    their classes after it)."""
    for path, item in doc.get("paths", {}).items():
        for op in item.values():
            responses = op.setdefault("responses", {})
            # Answered by the routing and the body parser before any handler runs.
            if "{" in path:
                responses.setdefault("404", {"description": "Not Found"})
            if "requestBody" in op:
                responses.setdefault("400", {"description": "The body cannot be parsed"})
            if any(other.startswith(path + ":") for other in doc["paths"]):
                # `GET /v1/results/{id}:retract` names the action, whose methods the 405 lists.
                responses.setdefault("405", {"description": "The path names an action with other methods"})
            for param in op.get("parameters", []):
                if param["in"] == "path" and param.get("schema", {}).get("type") == "string":
                    param["schema"].setdefault("pattern", SEGMENT)
                if param["in"] == "query" and isinstance(param.get("schema"), dict):
                    _printable(param["schema"])
                # The server answers 428 without it (a problem that names the header, not a 422).
                if param["in"] == "header" and param["name"] == "If-Match" and "428" in op.get("responses", {}):
                    param["required"] = True
                    param["schema"] = {"type": "string", "title": "If-Match"}
            for status, response in responses.items():
                if str(status).startswith(("4", "5")):
                    response["content"] = copy_problem()
            op["responses"] = dict(sorted(responses.items()))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(_problem_components())
    for name, schema in schemas.items():
        schema["title"] = name
    return doc


def copy_problem() -> dict[str, Any]:
    return {PROBLEM_JSON: dict(PROBLEM_SCHEMA["content"][PROBLEM_JSON])}


def own_document(app: FastAPI) -> dict[str, Any]:
    """The app's own routes as a finished document."""
    return finish(
        get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
    )


def install(app: FastAPI) -> None:
    """`app.openapi()` answers the finished document (built once, like FastAPI's own)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = own_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
