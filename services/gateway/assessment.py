"""District assessment (考核): every district's score, rank and indicator lines per year.

The method is docs/assessment.md's `capped_attainment`. The values are attainment's: the same
grouped counters, honours and reports (`attainment.gather`, `rate_cells`, `count_cells`), the same
Wilson intervals and the same significance test for a fall (`progress.stability`); this module adds
only the scheme's arithmetic, then ranks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import attainment, progress, repository
from services.gateway.assessment_schemas import AssessmentBonus, AssessmentLine, DistrictAssessment, LineStatus
from services.gateway.plans import HonourCountSource, Indicator, PassRateSource, Plan
from services.gateway.schemas import ReportRef
from services.gateway.schemes import AssessmentScheme, SchemeIndicator
from shared.errors import NotFound
from shared.regions import Region, load_regions

METHOD = "capped_attainment (docs/assessment.md)"
#: Every published number is rounded to this many decimals, and scores equal to them share a rank:
#: float noise never splits a tie, and a spreadsheet (15 significant digits) holds the API's numbers.
DECIMALS = 6


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, DECIMALS)


class SchemeNotFound(NotFound, slug="assessment-scheme-not-found", title="Assessment scheme not found"):
    def __init__(self, plan: Plan, scheme_id: str | None) -> None:
        known = ", ".join(s.id for s in plan.assessment_schemes) or "none"
        what = f"no assessment scheme {scheme_id!r}" if scheme_id else "no assessment scheme"
        super().__init__(f"Plan {plan.id} has {what}; schemes: {known}")


class DistrictNotFound(NotFound, slug="district-not-found", title="District not found"):
    def __init__(self, code: str) -> None:
        super().__init__(f"{code} is not a district of the region list (GET /v1/regions)")


class YearNotAssessed(NotFound, slug="year-not-assessed", title="Year not assessed"):
    """A year outside the plan's period (or not begun): there is no assessment of it to show."""

    def __init__(self, year: int, years: Sequence[int]) -> None:
        span = f"{years[0]}–{years[-1]}" if years else "none yet"
        super().__init__(f"The plan has no assessment of {year}; assessed years: {span}")


def scheme_of(plan: Plan, scheme_id: str | None) -> AssessmentScheme:
    """The named scheme, or the plan's first."""
    if scheme_id is None and plan.assessment_schemes:
        return plan.assessment_schemes[0]
    found = next((s for s in plan.assessment_schemes if s.id == scheme_id), None)
    if found is None:
        raise SchemeNotFound(plan, scheme_id)
    return found


def assessed_years(plan: Plan, as_of: date) -> list[int]:
    """From the plan's base year to as_of's year (attainment's series), within the plan's period."""
    return list(range(max(plan.base_year, plan.period_start.year), min(as_of.year, plan.period_end.year) + 1))


def districts_in(year: int, regions: Sequence[Region]) -> list[Region]:
    """The districts in force on some day of the year (四方区 in 2012, not in 2013)."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    return [
        r
        for r in regions
        if r.is_district
        and (r.valid_from is None or r.valid_from <= last)
        and (r.valid_to is None or r.valid_to >= first)
    ]


# ------------------------------------------------------------------------------------------ facts


@dataclass
class Cell:
    """One indicator's value in one district and year, with what it rests on."""

    value: float | None
    n: int | None = None
    passed: int | None = None
    report: dict[str, Any] | None = None


@dataclass
class Inputs:
    as_of: date
    # indicator code -> (district, year) -> cell
    cells: dict[str, dict[tuple[str, int], Cell]] = field(default_factory=dict)


def _indicators(plan: Plan, scheme: AssessmentScheme) -> list[Indicator]:
    codes = [i.code for i in scheme.indicators] + [b.code for b in scheme.bonuses]
    return [ind for code in dict.fromkeys(codes) if (ind := plan.indicator(code)) is not None]


async def gather(session: AsyncSession, plan: Plan, scheme: AssessmentScheme, as_of: date) -> Inputs:
    facts = await attainment.gather(session, plan, as_of)
    inds = _indicators(plan, scheme)
    reported = [i.code for i in inds if i.reported]
    by_district: dict[str, dict[tuple[str, int], dict[str, Any]]] = {}
    if reported:
        # Ordered by period end: the latest period of a year wins, as in the city's figure.
        for r in await repository.latest_reports(session, plan.id, reported, as_of, districts=True):
            by_district.setdefault(r["indicator_code"], {})[r["district_code"], r["period_end"].year] = r
    out = Inputs(as_of)
    for ind in inds:
        if isinstance(ind.source, PassRateSource):
            out.cells[ind.code] = {
                k: Cell(p / n if n else None, n, p) for k, (n, p) in attainment.rate_cells(facts, ind).items()
            }
        elif isinstance(ind.source, HonourCountSource):
            out.cells[ind.code] = {k: Cell(float(v)) for k, v in attainment.count_cells(facts, ind).items()}
        else:
            out.cells[ind.code] = {
                k: Cell(float(r["value"]), report=r) for k, r in by_district.get(ind.code, {}).items()
            }
    return out


# ------------------------------------------------------------------------------------------ arithmetic


def _fmt(ind: Indicator, v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.4f}" if ind.is_rate else f"{v:g}"


def _cell(inputs: Inputs, ind: Indicator, district: str, year: int) -> Cell:
    """A district-year's cell: a count with no honour is a count of zero, a rate without results has
    n = 0, a report not sent is missing."""
    got = inputs.cells.get(ind.code, {}).get((district, year))
    if got is not None:
        return got
    if isinstance(ind.source, HonourCountSource):
        return Cell(0.0)
    return Cell(None, 0, 0) if isinstance(ind.source, PassRateSource) else Cell(None)


def _judged(scheme: AssessmentScheme, ind: Indicator, c: Cell) -> bool:
    if c.value is None:
        return False
    return not (isinstance(ind.source, PassRateSource) and (c.n or 0) < scheme.min_results)


def _year_target(plan: Plan, si: SchemeIndicator, ind: Indicator, district: str, year: int) -> tuple[float, str, str]:
    """The target a district's year is judged against, whose it is (district, scheme, plan), and a note
    saying how a count's target was shared out."""
    target, source = si.target_for(district, ind.target)
    assert target is not None  # the plan's validation: every scheme indicator has a target
    if not isinstance(ind.source, HonourCountSource):
        return target, source, ""
    # A count target is the plan's end's; year y is judged against its pro-rata share.
    start, end = plan.period_start.year, plan.period_end.year
    share = (year - start + 1) / (end - start + 1)
    return target * share, source, f" ({target:g} by {end} × {year - start + 1}/{end - start + 1})"


def _not_judged(scheme: AssessmentScheme, ind: Indicator, c: Cell, year: int) -> tuple[LineStatus, str]:
    """Why a district's year of an indicator cannot be judged: no data, or too few results for a rate."""
    status: LineStatus
    if c.value is None:
        why = f"no report from the district for {year}" if ind.reported else f"no result in {year}"
        status = "no_data"
    else:
        why = f"only {c.n} results in {year}, fewer than the {scheme.min_results} needed to judge a pass rate"
        status = "too_few_results"
    return status, why + ": not judged; its weight is left out of the district's score"


_WHOSE = {"district": "the district's own target", "scheme": "the scheme's target", "plan": "the plan's target"}


def _line(
    plan: Plan, scheme: AssessmentScheme, si: SchemeIndicator, inputs: Inputs, district: str, year: int
) -> AssessmentLine:
    ind = plan.indicator(si.code)
    assert ind is not None  # the plan's validation: every scheme code is an indicator
    target, source, target_note = _year_target(plan, si, ind, district, year)
    c = _cell(inputs, ind, district, year)
    before = _cell(inputs, ind, district, year - 1) if year - 1 >= plan.base_year else Cell(None)
    wilson = progress.wilson_interval(c.passed, c.n) if c.n is not None and c.passed is not None else None
    base: dict[str, Any] = {
        "code": ind.code,
        "name_zh": ind.name_zh,
        "name_en": ind.name_en,
        "kind": ind.kind,
        "unit": ind.unit,
        "weight": si.weight,
        "value": _r(c.value),
        "target": _r(target),
        "target_source": source,
        "floor": si.floor,
        "previous_value": _r(before.value),
        "n": c.n,
        "passed": c.passed,
        "wilson_95": wilson,
        "report": ReportRef.model_validate({k: c.report[k] for k in ReportRef.model_fields}) if c.report else None,
    }
    if not _judged(scheme, ind, c):
        status, why = _not_judged(scheme, ind, c, year)
        return AssessmentLine(
            **base, status=status, attainment=None, points=None, contribution=None, penalty=0.0, why=why
        )
    assert c.value is not None
    a = min(max((c.value - si.floor) / (target - si.floor), 0.0), scheme.cap)
    points = si.weight * a
    basis = f" (n={c.n}, 95% [{wilson[0]:.4f}, {wilson[1]:.4f}])" if wilson else ""
    why = (
        f"{_fmt(ind, c.value)}{basis} against {_WHOSE[source]} {_fmt(ind, target)}{target_note}"
        + (f", floor {_fmt(ind, si.floor)}" if si.floor else "")
        + f": attainment {a:.4f}"
        + (f" (capped at {scheme.cap:g})" if a >= scheme.cap else "")
        + f" × weight {si.weight:g} = {points:.2f} points"
    )
    penalty, fell = 0.0, _fell(scheme, ind, c, before, year)
    if fell and scheme.deterioration_penalty:
        penalty = scheme.deterioration_penalty
        why += f"; deterioration ({fell}): −{penalty:g}"
    return AssessmentLine(
        **base, status="scored", attainment=a, points=points, contribution=None, penalty=penalty, why=why
    )


def _fell(scheme: AssessmentScheme, ind: Indicator, now: Cell, before: Cell, year: int) -> str | None:
    """Why the value deteriorated since the year before (judged both years), or None."""
    if not _judged(scheme, ind, before):
        return None
    assert now.value is not None and before.value is not None
    if isinstance(ind.source, PassRateSource):
        assert now.n is not None and now.passed is not None and before.n is not None and before.passed is not None
        p = progress.stability({year - 1: (before.n, before.passed), year: (now.n, now.passed)}, base_year=year - 1)
        return p.reason if p.status == "deterioration" else None
    if now.value < before.value:
        return f"fell from {_fmt(ind, before.value)} in {year - 1}"
    return None


def _bonus(plan: Plan, scheme: AssessmentScheme, inputs: Inputs, district: str, year: int) -> list[AssessmentBonus]:
    out = []
    for b in scheme.bonuses:
        ind = plan.indicator(b.code)
        assert ind is not None
        now = _cell(inputs, ind, district, year).value or 0.0
        before = (_cell(inputs, ind, district, year - 1).value or 0.0) if year > plan.base_year else 0.0
        granted = max(0, round(now - before))
        points = min(granted * b.points_each, b.max_points)
        why = f"{granted} granted in {year} × {b.points_each:g} = {granted * b.points_each:g}" + (
            f", at most {b.max_points:g}" if granted * b.points_each > b.max_points else ""
        )
        out.append(AssessmentBonus(code=b.code, name_zh=ind.name_zh, granted=granted, points=points, why=why))
    return out


def assess_year(
    plan: Plan, scheme: AssessmentScheme, inputs: Inputs, year: int, regions: Sequence[Region]
) -> list[DistrictAssessment]:
    """Every district of the year, scored and ranked (ranked first by rank, then the rest by code)."""
    out = []
    total = scheme.total_weight
    for region in districts_in(year, regions):
        d = region.code
        lines = [_line(plan, scheme, si, inputs, d, year) for si in scheme.indicators]
        judged = sum(ln.weight for ln in lines if ln.points is not None)
        bonuses = _bonus(plan, scheme, inputs, d, year)
        bonus = sum(b.points for b in bonuses)
        penalties = sum(ln.penalty for ln in lines)
        ranked = judged > 0 and judged >= scheme.min_judged_share * total
        base = score = None
        if ranked:
            for ln in lines:
                if ln.points is not None:
                    ln.contribution = scheme.full_marks * ln.points / judged
            base = sum(ln.contribution or 0.0 for ln in lines)
            score = base - penalties + bonus
            why = (
                f"{judged:g} of {total:g} weight judged: base {base:.2f} − penalties {penalties:g} + bonus {bonus:g}"
                f" = {score:.2f}"
            )
        else:
            why = (
                f"only {judged:g} of {total:g} weight could be judged (at least {scheme.min_judged_share:.0%} needed):"
                " too little data to score and rank"
            )
        for ln in lines:  # computed unrounded above, published rounded
            ln.attainment, ln.points, ln.contribution = _r(ln.attainment), _r(ln.points), _r(ln.contribution)
        out.append(
            DistrictAssessment(
                year=year,
                district_code=d,
                name_zh=region.name_zh,
                name_en=region.name_en,
                ranked=ranked,
                score=_r(score),
                rank=None,
                previous_score=None,
                previous_rank=None,
                change=None,
                base_score=_r(base),
                penalties=penalties,
                bonus=bonus,
                judged_weight=judged,
                total_weight=total,
                why=why,
                indicators=lines,
                bonuses=bonuses,
            )
        )
    scores = [a.score for a in out if a.score is not None]
    for a in out:
        if a.score is not None:
            a.rank = 1 + sum(1 for s in scores if s > a.score)  # competition ranking: 1, 2, 2, 4
    return sorted(out, key=lambda a: (a.rank is None, a.rank or 0, a.district_code))


def assess(
    plan: Plan, scheme: AssessmentScheme, inputs: Inputs, years: Sequence[int]
) -> dict[int, list[DistrictAssessment]]:
    """Each year's assessment, with every district's score and rank of the year before."""
    regions = load_regions().regions
    out: dict[int, list[DistrictAssessment]] = {}
    for year in years:
        out[year] = assess_year(plan, scheme, inputs, year, regions)
        before: Mapping[str, DistrictAssessment] = {a.district_code: a for a in out.get(year - 1, [])}
        for a in out[year]:
            prev = before.get(a.district_code)
            if prev is not None:
                a.previous_score, a.previous_rank = prev.score, prev.rank
                if a.score is not None and prev.score is not None:
                    a.change = _r(a.score - prev.score)
    return out
