"""Thin routes of the gateway's own answers: plans, attainment, credit, change feed, read-model listings.

Public: plans, attainment, the procurement priority list and indicator reports (government targets
and their published figures). Everything naming rows about enterprises needs the `read` scope.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from services.gateway import attainment, profile, repository
from services.gateway.plans import (
    IndicatorNotFound,
    IndicatorNotReported,
    Plan,
    PlanNotFound,
    UnknownIndicator,
    ValueOutOfRange,
    brand_type_codes,
)
from services.gateway.schemas import (
    AttainmentDetailOut,
    AttainmentOut,
    ChangesOut,
    CreditProfile,
    IndicatorReportIn,
    IndicatorReportOut,
    PlansOut,
    PriorityPage,
)
from services.gateway.visibility import visibility
from shared.auth import Principal, require
from shared.clock import as_utc
from shared.errors import ValidationFailed
from shared.pagination import decode_cursor, encode_cursor, page
from shared.problems import PROBLEM_SCHEMA
from shared.regions import load_regions
from shared.routing import CURSOR_PATTERN, ERRORS, Cursor, Limit, Reader, Section
from shared.runtime import Runtime, UoW
from shared.service_app import request_id
from shared.stats import wilson_interval
from shared.strict import Day
from shared.uscc import UsccPath

router = APIRouter(prefix="/v1")
#: The sections of the document, each with the errors its routes answer.
_plans = Section(router, "plans")
_attainment = Section(router, "attainment", ERRORS)
_reports = Section(router, "indicator reports", ERRORS)
_drill_down = Section(router, "drill-down", ERRORS)
_credit = Section(router, "credit", ERRORS)
_changes = Section(router, "change feed", ERRORS)
Reporter = Annotated[Principal, require("indicators:write")]
District = Annotated[str | None, Query(pattern=r"^\d{6}$", description="A district's division code, e.g. 370202")]
METHOD = "open-sdg-progress (docs/attainment-method.md)"
DEFAULT_PLAN = "qingdao-2012"


def _loaded_plans(request: Request) -> dict[str, Plan]:
    plans: dict[str, Plan] = request.app.state.plans
    return plans


def _plan(request: Request, plan_id: str) -> Plan:
    plan = _loaded_plans(request).get(plan_id)
    if plan is None:
        raise PlanNotFound(plan_id, list(_loaded_plans(request)))
    return plan


@dataclass(frozen=True)
class PlanReading:
    """What an attainment reading is of: a plan, on a day, in a district (or the city)."""

    plan: Plan
    day: date
    district: str | None


async def _plan_reading(
    request: Request,
    runtime: Runtime,
    plan: str = DEFAULT_PLAN,
    as_of: Annotated[Day | None, Query(description="Default: today, or the plan's end once it is over")] = None,
    district: District = None,
) -> PlanReading:
    p = _plan(request, plan)
    # Today, but never past the plan's end: a finished plan is read at its end.
    return PlanReading(p, as_of or min(runtime.clock.today(), p.period_end), district)


Reading = Annotated[PlanReading, Depends(_plan_reading)]


# ------------------------------------------------------------------------------------------ legacy


@router.get(
    "/pass-rates",
    tags=["attainment"],
    summary="Pass rates by sector, from the gateway's read model (each result counted once)",
)
async def pass_rates(uow: UoW) -> Any:
    groups = await repository.pass_rates_by_sector(uow.session)
    return {
        "groups": [
            {
                "sector": g["sector"],
                "n": g["n"],
                "passed": g["passed"],
                "rate": g["passed"] / g["n"] if g["n"] else None,
                "wilson_95": wilson_interval(g["passed"], g["n"]),
            }
            for g in groups
        ]
    }


# ------------------------------------------------------------------------------------------ plans


@_plans.get("/plans", response_model=PlansOut, summary="Every plan loaded (no token)")
async def list_plans(request: Request) -> Any:
    return {
        "items": [
            {
                "id": p.id,
                "name_zh": p.name_zh,
                "name_en": p.name_en,
                "period_start": p.period_start,
                "period_end": p.period_end,
                "base_year": p.base_year,
                "indicators": len(p.indicators),
            }
            for p in sorted(_loaded_plans(request).values(), key=lambda p: p.id)
        ]
    }


@_plans.get(
    "/plans/{plan_id}",
    response_model=Plan,
    responses=ERRORS,
    summary="One plan with every indicator: kind, target, unit, counting rule and source (no token)",
)
async def get_plan(plan_id: str, request: Request) -> Any:
    return _plan(request, plan_id)


# ------------------------------------------------------------------------------------------ attainment


@_attainment.get(
    "/attainment",
    response_model=AttainmentOut,
    summary="Every indicator of a plan: value, target, gap, status, n and Wilson interval (no token)",
)
async def get_attainment(request: Request, runtime: Runtime, uow: UoW, reading: Reading) -> Any:
    p, day, district = reading.plan, reading.day, reading.district
    # Answers change only when an event is applied or a report received: cache per data version.
    cache: dict[Any, Any] = request.app.state.__dict__.setdefault("attainment_cache", {})
    key = (p.id, day, district, await repository.data_version(uow.session))
    figures = cache.get(key)
    if figures is None:
        figures = await attainment.evaluate(uow.session, p, day, district)
        if len(cache) > 256:
            cache.clear()
        cache[key] = figures
    return await _answer(uow, runtime, reading, indicators=figures)


@_attainment.get(
    "/attainment/{code}",
    response_model=AttainmentDetailOut,
    summary="One indicator: yearly series, district breakdown, and links to the rows behind (no token)",
)
async def get_indicator_attainment(code: str, runtime: Runtime, uow: UoW, reading: Reading) -> Any:
    if reading.plan.indicator(code) is None:
        raise IndicatorNotFound(reading.plan.id, code)
    (figure,) = await attainment.evaluate(uow.session, reading.plan, reading.day, reading.district, codes=[code])
    return await _answer(uow, runtime, reading, indicator=figure)


async def _answer(uow: UoW, runtime: Runtime, reading: PlanReading, **figures: Any) -> dict[str, Any]:
    """An attainment answer: what it is a reading of, by which method, how fresh the data, the figures."""
    fresh = await attainment.freshness(uow.session, runtime.clock.now())
    return {
        "plan": reading.plan.id,
        "as_of": reading.day,
        "district": reading.district,
        "method": METHOD,
        "freshness": fresh,
        **figures,
    }


# ------------------------------------------------------------------------------------------ reports


def _report_out(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "report_id": r["report_id"],
        "plan": r["plan_id"],
        "indicator": r["indicator_code"],
        "period_start": r["period_start"],
        "period_end": r["period_end"],
        "value": r["value"],
        "district_code": r["district_code"],
        "reporting_system": r["reporting_system"],
        "evidence_ref": r["evidence_ref"],
        "note": r["note"],
        "reported_by": r["reported_by"],
        "reported_at": r["reported_at"],
    }


@_reports.create(
    "/indicator-reports",
    IndicatorReportOut,
    responses={**ERRORS, 409: PROBLEM_SCHEMA},
    summary="Report a value of a reported indicator (another government system; history kept)",
)
async def post_report(
    body: IndicatorReportIn, request: Request, principal: Reporter, runtime: Runtime, uow: UoW, response: Response
) -> Any:
    plan = _plan(request, body.plan)
    ind = plan.indicator(body.indicator)
    if ind is None:
        raise UnknownIndicator(plan.id, body.indicator)
    if not ind.reported:
        raise IndicatorNotReported(ind.code)
    if ind.kind.endswith("_rate") and not 0 <= body.value <= 1:
        raise ValueOutOfRange()
    if body.district_code is not None:
        why = load_regions().district_problem(body.district_code, body.period_end)
        if why is not None:
            raise ValidationFailed.one("district_code", "body", why)
    row = {
        "report_id": str(uuid.uuid4()),
        "plan_id": plan.id,
        "indicator_code": ind.code,
        "period_start": body.period_start,
        "period_end": body.period_end,
        "value": body.value,
        "district_code": body.district_code,
        "reporting_system": body.reporting_system.strip(),
        "evidence_ref": body.evidence_ref.strip(),
        "note": body.note,
        "reported_by": principal.subject,
        # The wall clock, not the service clock: the latest report wins, so order must be real time.
        "reported_at": datetime.now(UTC),
        "request_id": request_id(request),
    }
    await repository.add_report(uow.session, row)
    await uow.commit()
    response.headers["Location"] = f"/v1/indicator-reports?plan={plan.id}&indicator={ind.code}"
    return _report_out(row)


@_reports.listing(
    "/indicator-reports",
    IndicatorReportOut,
    summary="Every report of a plan (or one indicator), oldest first (no token)",
)
async def list_reports(
    request: Request,
    uow: UoW,
    plan: str = DEFAULT_PLAN,
    indicator: str | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Any:
    p = _plan(request, plan)
    after = decode_cursor(cursor, datetime, str)
    rows = await repository.list_reports(uow.session, p.id, indicator, after, limit + 1)
    return page(rows, limit, lambda r: (r["reported_at"], r["report_id"]), _report_out)


# ------------------------------------------------------------------------------------------ facts


@_drill_down.get(
    "/facts/results", summary="The results a pass rate counts (not retracted, latest version), by the figure's filter"
)
async def facts_results(
    _: Reader,
    uow: UoW,
    sampled_from: Day,
    sampled_to: Day,
    sector: Literal["manufacturing", "agricultural", "food", "engineering"] | None = None,
    level: Literal["national", "provincial", "municipal", "district"] | None = None,
    key_product: bool | None = None,
    district: District = None,
    cursor: Cursor = None,
    limit: Limit = 500,
) -> Any:
    after = decode_cursor(cursor, date, str)
    where = repository.results_clause(sector, level, key_product, district, sampled_from, sampled_to)
    rows = await repository.list_results(uow.session, where, after, limit + 1)
    return page(
        rows,
        limit,
        lambda r: (r["sampling_date"], r["result_id"]),
        lambda r: {k: v for k, v in r.items() if k != "updated_at"},
    )


@_drill_down.get(
    "/facts/honours", summary="The honours a count includes: granted during [granted_from, on], or active on `on`"
)
async def facts_honours(
    _: Reader,
    uow: UoW,
    counting: Literal["granted_during", "active_at_end"],
    on: Day,
    type_code: Annotated[list[str], Query(min_length=1)],
    granted_from: Annotated[
        Day | None, Query(description="Required with `counting=granted_during` (else 422): the period's first day")
    ] = None,
    district: District = None,
    cursor: Cursor = None,
    limit: Limit = 500,
) -> Any:
    if counting == "granted_during":
        if granted_from is None:
            raise ValidationFailed.one("granted_from", "query", "field required", "granted_during needs granted_from")
        where = repository.granted_clause(granted_from, on)
    else:
        where = repository.active_clause(on)
    after = decode_cursor(cursor, str)
    rows = await repository.list_honours(uow.session, type_code, where, district, after, limit + 1)
    return page(rows, limit, lambda r: (r["honour_id"],), _honour_out)


def _honour_out(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k not in ("updated_at", "indicator_codes")}


# ------------------------------------------------------------------------------------------ credit


@_credit.get(
    "/credit/{uscc}",
    response_model=CreditProfile,
    summary="An enterprise's credit profile on a date, with procurement-priority eligibility and reasons",
)
async def credit_profile(
    code: UsccPath, principal: Reader, runtime: Runtime, uow: UoW, as_of: Day | None = None
) -> Any:
    day, now = as_of or runtime.clock.today(), runtime.clock.now()
    return await profile.credit_profile(uow.session, code, day, now, visibility(principal))


@_credit.get(
    "/procurement/priority-list",
    response_model=PriorityPage,
    summary="Enterprises eligible for procurement priority on a date: an active brand honour, not listed",
)
async def priority_list(
    _: Reader, runtime: Runtime, uow: UoW, as_of: Day | None = None, cursor: Cursor = None, limit: Limit = 100
) -> Any:
    day = as_of or runtime.clock.today()
    brands = sorted(brand_type_codes())
    rows = await repository.priority_list(uow.session, brands, day, decode_cursor(cursor, str), limit + 1)
    return {
        "as_of": day,
        "brand_type_codes": brands,
        **page(
            rows,
            limit,
            lambda r: (r["holder_id"],),
            lambda r: {"uscc": r["holder_id"], "name": r["holder_name"], "brand_honours": r["brand_honours"]},
        ),
    }


@_credit.get("/enterprises", summary="Search enterprises by name fragment or USCC")
async def search_enterprises(
    _: Reader,
    uow: UoW,
    q: Annotated[str, Query(min_length=1, max_length=100)],
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Any:
    rows = await repository.search_enterprises(uow.session, q.strip(), decode_cursor(cursor, str), limit + 1)
    return page(
        rows,
        limit,
        lambda r: (r["uscc"],),
        lambda r: {"uscc": r["uscc"], "name": r["name"], "district_code": r["district_code"]},
    )


# ------------------------------------------------------------------------------------------ changes


@_changes.get(
    "/changes",
    response_model=ChangesOut,
    summary="Every event the gateway applied, in order, after a cursor (for systems without Kafka)",
)
async def get_changes(
    principal: Reader,
    uow: UoW,
    after: Annotated[
        str | None,
        Query(
            description="A cursor from this feed; omit to read from the start",
            json_schema_extra={"pattern": CURSOR_PATTERN},
        ),
    ] = None,
    subject: Annotated[str | None, Query(description="Only events about this USCC (or holder id)")] = None,
    limit: Limit = 100,
) -> Any:
    key = decode_cursor(after, int)
    seq = key[0] if key else 0
    subject_code = subject.strip().upper() if subject else None
    hidden = visibility(principal).hidden_event_types
    rows = await repository.changes(uow.session, seq, subject_code, limit, hidden)
    items = [
        {
            "cursor": encode_cursor([r["seq"]]),
            "event": repository.cloud_event(r),
            "applied_at": as_utc(r["applied_at"]),
        }
        for r in rows
    ]
    return {"items": items, "next_cursor": items[-1]["cursor"] if items else after}
