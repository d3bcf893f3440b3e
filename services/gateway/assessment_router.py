"""Thin routes of the district assessment (docs/assessment.md): public, like the attainment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, Field

from services.gateway import assessment, assessment_export, assessment_report
from services.gateway.assessment_schemas import AssessmentOut, DistrictAssessmentsOut, Document
from services.gateway.plans import Plan

# The plan lookup is the attainment's: an assessment reads the same plans the same way.
from services.gateway.router import DEFAULT_PLAN, _plan
from services.gateway.schemes import AssessmentScheme
from shared.db import UnitOfWork
from shared.routing import ERRORS, Section
from shared.runtime import Runtime, ServiceRuntime, UoW

router = APIRouter(prefix="/v1")
_assessment = Section(router, "assessment", ERRORS)


class AssessmentQuery(BaseModel):
    """The query every assessment route reads: which plan, assessed by which of its schemes.

    Each route takes its whole query as one such model (`Annotated[…, Query()]`, FastAPI's query
    parameter model: the only query parameter of its route), whose fields the document lists in their
    order, the plan and scheme first."""

    plan: str = DEFAULT_PLAN
    scheme: str | None = Field(None, description="One of the plan's assessment_schemes (default: its first)")


class YearQuery(AssessmentQuery):
    year: int | None = Field(None, ge=1900, le=2200, description="Default: the plan's last year up to today")


class ExportQuery(AssessmentQuery):
    format: Literal["xlsx", "csv"] = "xlsx"


class ReportQuery(YearQuery):
    district: str | None = Field(None, pattern=r"^\d{6}$", description="One district; default the city")
    format: Literal["pdf", "html"] = "pdf"


@dataclass(frozen=True)
class Assessing:
    """What every assessment route reads with: the loaded plans, the clock and the request's session."""

    request: Request
    runtime: ServiceRuntime
    uow: UnitOfWork

    def plan(self, q: AssessmentQuery) -> Plan:
        return _plan(self.request, q.plan)

    def as_of(self, plan: Plan) -> date:
        """Today, but never past the plan's end (as the attainment reads a finished plan)."""
        return min(self.runtime.clock.today(), plan.period_end)

    def year(self, q: YearQuery) -> int:
        """The year asked for, or the plan's last year up to today."""
        plan = self.plan(q)
        return q.year if q.year is not None else min(self.as_of(plan).year, plan.period_end.year)

    async def assess(
        self, q: AssessmentQuery, years: list[int] | None
    ) -> tuple[Plan, AssessmentScheme, date, dict[int, list[Any]]]:
        plan = self.plan(q)
        scheme = assessment.scheme_of(plan, q.scheme)
        as_of = self.as_of(plan)
        every = assessment.assessed_years(plan, as_of)
        for y in years or []:
            if y not in every:
                raise assessment.YearNotAssessed(y, every)
        inputs = await assessment.gather(self.uow.session, plan, scheme, as_of)
        wanted = every if years is None else [y for y in every if y in years or y + 1 in years]
        return plan, scheme, as_of, assessment.assess(plan, scheme, inputs, wanted)


async def _assessing(request: Request, runtime: Runtime, uow: UoW) -> Assessing:
    return Assessing(request, runtime, uow)


#: `a: Assessor` in an assessment route (it takes no parameters of its own: the document is unchanged).
Assessor = Annotated[Assessing, Depends(_assessing)]


@_assessment.get(
    "/assessments",
    response_model=AssessmentOut,
    summary="Every district's score, rank, change and indicator contributions in one year (no token)",
)
async def list_assessments(a: Assessor, q: Annotated[YearQuery, Query()]) -> Any:
    y = a.year(q)
    p, s, as_of, years = await a.assess(q, [y])
    return {
        "plan": p.id,
        "scheme": s.id,
        "scheme_name_zh": s.name_zh,
        "year": y,
        "as_of": min(as_of, date(y, 12, 31)),
        "method": assessment.METHOD,
        "districts": years[y],
    }


def _document(path: str, document: Document, summary: str) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A route answering a document (not JSON): what it holds and its media types, documented."""
    content: dict[str, dict[str, Any]] = {m: {} for m in document.media_types.values()}
    responses = {**ERRORS, 200: {"description": document.what, "content": content}}
    return _assessment.get(path, responses=responses, response_class=Response, summary=summary)


@_document(
    "/assessments:export", assessment_export.DOCUMENT, "Every year's assessment as an XLSX workbook or CSV (no token)"
)
async def export_assessments(a: Assessor, q: Annotated[ExportQuery, Query()]) -> Response:
    p, s, _, years = await a.assess(q, None)
    body = assessment_export.csv_bytes(s, years) if q.format == "csv" else assessment_export.xlsx(p.id, s, years)
    # A text/* media type is answered with "; charset=utf-8" (Starlette adds it).
    media = assessment_export.DOCUMENT.media_types[q.format]
    name = f"assessment-{p.id}-{s.id}.{q.format}"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@_document(
    "/assessments:report",
    assessment_report.DOCUMENT,
    "The annual assessment report for the city, or one district, as PDF or printable HTML (no token)",
)
async def assessment_report_document(a: Assessor, q: Annotated[ReportQuery, Query()]) -> Response:
    y, district = a.year(q), q.district
    p, s, as_of, years = await a.assess(q, [y])
    if district is not None and all(a.district_code != district for a in years[y]):
        raise assessment.DistrictNotFound(district)
    html = assessment_report.report_html(p, s, y, min(as_of, date(y, 12, 31)), years[y], district)
    name = f"assessment-{p.id}-{s.id}-{y}" + (f"-{district}" if district else "")
    media = assessment_report.DOCUMENT.media_types[q.format]
    if q.format == "html":
        return Response(html, media_type=media)
    pdf = await assessment_report.report_pdf(html)
    return Response(pdf, media_type=media, headers={"Content-Disposition": f'inline; filename="{name}.pdf"'})


@_assessment.get(
    "/assessments/{district}",
    response_model=DistrictAssessmentsOut,
    summary="One district's assessment in every year of the plan up to today (no token)",
)
async def get_district_assessment(
    a: Assessor,
    district: Annotated[str, Path(pattern=r"^\d{6}$", description="A district's division code, e.g. 370202")],
    q: Annotated[AssessmentQuery, Query()],
) -> Any:
    p, s, as_of, years = await a.assess(q, None)
    mine = [a for per_year in years.values() for a in per_year if a.district_code == district]
    if not mine:
        raise assessment.DistrictNotFound(district)
    return {
        "plan": p.id,
        "scheme": s.id,
        "district_code": district,
        "name_zh": mine[0].name_zh,
        "as_of": as_of,
        "method": assessment.METHOD,
        "years": mine,
    }
