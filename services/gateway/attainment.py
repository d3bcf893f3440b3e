"""Attainment of a plan's indicators, read from the counters and read models.

Every figure is a few grouped queries (yearly counters, at most one year of daily counters, one
aggregate over honours, the latest reports) and then pure arithmetic in `domain`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import progress, repository
from services.gateway.plans import HonourCountSource, Indicator, PassRateSource, Plan, ReportedSource
from services.gateway.schemas import (
    CountFigure,
    DistrictPoint,
    DistrictYearPoint,
    Figure,
    PassRateFigure,
    ProgressOut,
    ReportedFigure,
    ReportRef,
    SeriesPoint,
)
from shared.clock import as_utc


@dataclass
class Facts:
    """What the queries returned for one plan, as of one date."""

    as_of: date
    years: list[int]
    # (sector, level, key_product, district, year) -> (n, passed)
    rates: dict[tuple[str, str, bool, str, int], tuple[int, int]] = field(default_factory=dict)
    # (type, district) -> per year of `years`: (granted during, active at the year's evaluation day)
    honours: dict[tuple[str, str | None], list[tuple[int, int]]] = field(default_factory=dict)
    # indicator -> the latest report of each period
    reports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def evaluation_day(year: int, as_of: date) -> date:
    """Each year is evaluated at its last day, the as_of year at as_of."""
    return as_of if year == as_of.year else date(year, 12, 31)


async def gather(session: AsyncSession, plan: Plan, as_of: date) -> Facts:
    years = list(range(plan.base_year, as_of.year + 1))
    facts = Facts(as_of, years)
    if not years:
        return facts
    if any(isinstance(i.source, PassRateSource) for i in plan.indicators):
        rows = await repository.yearly_counts(session, years[0], years[-1])
        if as_of != date(as_of.year, 12, 31):
            # The as_of year is read to date from the daily counters, every other year from the yearly ones.
            rows = [r for r in rows if r["year"] != as_of.year]
            rows += await repository.year_to_date_counts(session, as_of)
        for r in rows:
            key = (r["sector"], r["level"], r["key_product"], r["district_code"], r["year"])
            n, p = facts.rates.get(key, (0, 0))
            facts.rates[key] = (n + r["n"], p + r["passed"])
    types = sorted({t for i in plan.indicators if isinstance(i.source, HonourCountSource) for t in i.source.type_codes})
    if types:
        days = [evaluation_day(y, as_of) for y in years]
        facts.honours = await repository.honour_counts(session, types, plan.period_start, days)
    reported = [i.code for i in plan.indicators if isinstance(i.source, ReportedSource)]
    if reported:
        for r in await repository.latest_reports(session, plan.id, reported, as_of):
            facts.reports.setdefault(r["indicator_code"], []).append(r)
    return facts


def rate_cells(facts: Facts, ind: Indicator) -> dict[tuple[str, int], tuple[int, int]]:
    """(district, year) -> (n, passed) of the results the indicator's filter counts."""
    assert isinstance(ind.source, PassRateSource)
    f = ind.source.filter
    out: dict[tuple[str, int], tuple[int, int]] = defaultdict(lambda: (0, 0))
    for (sector, level, key_product, d, year), (n, p) in facts.rates.items():
        if (f.sector and sector != f.sector) or (f.level and level != f.level):
            continue
        if f.key_product is not None and key_product != f.key_product:
            continue
        n0, p0 = out[d, year]
        out[d, year] = (n0 + n, p0 + p)
    return out


def _rate_series(cells: dict[tuple[str, int], tuple[int, int]], district: str | None) -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for (d, year), (n, p) in cells.items():
        if not district or d == district:
            n0, p0 = out[year]
            out[year] = (n0 + n, p0 + p)
    return {y: v for y, v in sorted(out.items()) if v[0] > 0}


def count_cells(facts: Facts, ind: Indicator) -> dict[tuple[str, int], int]:
    """(district, year) -> the honours counted by the indicator's rule on the year's evaluation day."""
    assert isinstance(ind.source, HonourCountSource)
    pick = 0 if ind.counting == "granted_during" else 1
    out: dict[tuple[str, int], int] = defaultdict(int)
    for (type_code, d), per_year in facts.honours.items():
        if type_code in ind.source.type_codes:
            for year, counts in zip(facts.years, per_year, strict=True):
                out[d or "unknown", year] += counts[pick]
    return out


def _count_series(facts: Facts, cells: dict[tuple[str, int], int], district: str | None) -> dict[int, int]:
    out = dict.fromkeys(facts.years, 0)
    for (d, year), v in cells.items():
        if not district or d == district:
            out[year] += v
    return out


def _districts_of(cells: Mapping[tuple[str, int], Any], year: int | None, counted: Callable[[Any], bool]) -> list[str]:
    """The districts with something counted (in `year`, or in any year), in code order."""
    return sorted({d for (d, y), v in cells.items() if (year is None or y == year) and counted(v)})


def results_link(ind: Indicator, start: date, end: date, district: str | None) -> str:
    assert isinstance(ind.source, PassRateSource)
    f = ind.source.filter
    q: list[tuple[str, str]] = []
    if f.sector:
        q.append(("sector", f.sector))
    if f.level:
        q.append(("level", f.level))
    if f.key_product is not None:
        q.append(("key_product", str(f.key_product).lower()))
    if district:
        q.append(("district", district))
    q += [("sampled_from", start.isoformat()), ("sampled_to", end.isoformat())]
    return "/v1/facts/results?" + urlencode(q)


def honours_link(plan: Plan, ind: Indicator, on: date, district: str | None) -> str:
    assert isinstance(ind.source, HonourCountSource) and ind.counting is not None
    q = [("type_code", t) for t in ind.source.type_codes]
    q.append(("counting", ind.counting))
    if ind.counting == "granted_during":
        q.append(("granted_from", plan.period_start.isoformat()))
    q.append(("on", on.isoformat()))
    if district:
        q.append(("district", district))
    return "/v1/facts/honours?" + urlencode(q)


def reports_link(plan: Plan, ind: Indicator) -> str:
    return "/v1/indicator-reports?" + urlencode([("plan", plan.id), ("indicator", ind.code)])


def _progress(
    plan: Plan, ind: Indicator, series: dict[int, float], counts: dict[int, tuple[int, int]] | None
) -> ProgressOut:
    if ind.stability is not None:
        assert counts is not None  # the plan's validation: a stability target is a pass rate's
        p = progress.stability(counts, base_year=plan.base_year)
    else:
        p = progress.progress(
            series,
            base_year=plan.base_year,
            target=ind.target,
            target_year=plan.due(ind).year,
            limit=ind.natural_limit,
        )
    return ProgressOut.model_validate(p, from_attributes=True)


def _common(
    plan: Plan,
    ind: Indicator,
    value: float | None,
    series: dict[int, float],
    counts: dict[int, tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """What every figure says whatever its source: the indicator as planned, and its gap and progress
    from the value and the yearly series (pass rates: also each year's (n, passed))."""
    p = _progress(plan, ind, series, counts)
    return {
        "code": ind.code,
        "name_zh": ind.name_zh,
        "name_en": ind.name_en,
        "section": ind.section,
        "kind": ind.kind,
        "unit": ind.unit,
        "target": ind.target,
        "target_text": ind.target_text,
        "due": plan.due(ind),
        "value": value,
        "gap": progress.gap(value, ind.target),
        "progress": p,
        "status": p.status,
    }


def _rate_figure(plan: Plan, ind: Indicator, facts: Facts, district: str | None, *, detail: bool) -> PassRateFigure:
    as_of = facts.as_of
    cells = rate_cells(facts, ind)
    series = _rate_series(cells, district)

    def rows(year: int, d: str | None = district) -> str:
        return results_link(ind, date(year, 1, 1), evaluation_day(year, as_of), d)

    def cell(d: str, year: int) -> DistrictYearPoint:
        n, p = cells.get((d, year), (0, 0))
        value = p / n if n else None
        wilson = progress.wilson_interval(p, n)
        return DistrictYearPoint(
            district_code=d, year=year, value=value, n=n, passed=p, wilson_95=wilson, rows=rows(year, d)
        )

    common = _common(plan, ind, None, {y: p / n for y, (n, p) in series.items()}, series)
    fig = PassRateFigure(**common, value_year=None, n=None, passed=None, wilson_95=None, links={})
    if series:
        year = max(series)
        n, p = series[year]
        fig.value, fig.gap = p / n, progress.gap(p / n, ind.target)
        fig.n, fig.passed, fig.wilson_95, fig.value_year = n, p, progress.wilson_interval(p, n), year
        fig.links["rows"] = rows(year)
    if detail:
        fig.series = [
            SeriesPoint(year=y, value=p / n, n=n, passed=p, wilson_95=progress.wilson_interval(p, n), rows=rows(y))
            for y, (n, p) in series.items()
        ]
        counted = _districts_of(cells, as_of.year, lambda v: v[0] > 0)
        fig.districts = [DistrictPoint.model_validate(cell(d, as_of.year), from_attributes=True) for d in counted]
        every = _districts_of(cells, None, lambda v: v[0] > 0)
        fig.district_years = [cell(d, y) for d in every for y in facts.years]
    return fig


def _count_figure(plan: Plan, ind: Indicator, facts: Facts, district: str | None, *, detail: bool) -> CountFigure:
    assert ind.counting is not None  # the plan's validation: an honour count has its counting rule
    as_of = facts.as_of
    cells = count_cells(facts, ind)
    counts = _count_series(facts, cells, district)
    value = float(counts[as_of.year]) if counts else 0.0
    common = _common(plan, ind, value, {y: float(v) for y, v in counts.items()})
    fig = CountFigure(
        **common,
        counting=ind.counting,
        value_year=as_of.year,
        n=None,
        passed=None,
        wilson_95=None,
        links={"rows": honours_link(plan, ind, as_of, district)},
    )

    def cell(d: str, year: int) -> DistrictYearPoint:
        v = float(cells.get((d, year), 0))
        return DistrictYearPoint(
            district_code=d, year=year, value=v, rows=honours_link(plan, ind, evaluation_day(year, as_of), d)
        )

    if detail:
        fig.series = [
            SeriesPoint(year=y, value=float(v), rows=honours_link(plan, ind, evaluation_day(y, as_of), district))
            for y, v in counts.items()
        ]
        counted = _districts_of(cells, as_of.year, bool)
        fig.districts = [DistrictPoint.model_validate(cell(d, as_of.year), from_attributes=True) for d in counted]
        fig.district_years = [cell(d, y) for d in _districts_of(cells, None, bool) for y in facts.years]
    return fig


def _reported_figure(plan: Plan, ind: Indicator, facts: Facts, district: str | None, *, detail: bool) -> ReportedFigure:
    by_year: dict[int, dict[str, Any]] = {}
    for r in [] if district else facts.reports.get(ind.code, []):
        by_year[r["period_end"].year] = r  # ordered by period_end: a later period of the same year wins
    latest = by_year[max(by_year)] if by_year else None
    value = float(latest["value"]) if latest else None
    common = _common(plan, ind, value, {y: float(r["value"]) for y, r in by_year.items()})
    fig = ReportedFigure(
        **common,
        value_year=latest["period_end"].year if latest else None,
        n=None,
        passed=None,
        wilson_95=None,
        links={"rows": reports_link(plan, ind)},
        report=_report_ref(latest) if latest else None,
    )
    if district:
        fig.progress.reason = "reported for the whole city only"
    if detail:
        fig.series = [
            SeriesPoint(year=y, value=float(r["value"]), rows=None, report=_report_ref(r))
            for y, r in sorted(by_year.items())
        ]
    return fig


def figure(plan: Plan, ind: Indicator, facts: Facts, district: str | None, *, detail: bool) -> Figure:
    """One indicator's figure; with `detail`, its yearly series, district breakdown and links per year."""
    if isinstance(ind.source, PassRateSource):
        return _rate_figure(plan, ind, facts, district, detail=detail)
    if isinstance(ind.source, HonourCountSource):
        return _count_figure(plan, ind, facts, district, detail=detail)
    return _reported_figure(plan, ind, facts, district, detail=detail)


def _report_ref(r: dict[str, Any]) -> ReportRef:
    return ReportRef.model_validate({k: r[k] for k in ReportRef.model_fields})


async def freshness(session: AsyncSession, now: datetime) -> dict[str, Any]:
    return freshness_of(await repository.last_change(session), now)


def freshness_of(last: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The freshness figures from the feed's newest change (`repository.last_change`)."""
    if last is None:
        return {"last_event_time": None, "last_applied_at": None, "lag_s": None, "age_s": None, "events_applied": 0}
    t, applied = as_utc(last["time"]), as_utc(last["applied_at"])
    return {
        "last_event_time": t.isoformat(),
        "last_applied_at": applied.isoformat(),
        "lag_s": round((applied - t).total_seconds(), 3),
        "age_s": round((now - applied).total_seconds(), 3),
        "events_applied": last["applied"],
    }


async def evaluate(
    session: AsyncSession, plan: Plan, as_of: date, district: str | None, codes: Sequence[str] | None = None
) -> list[Figure]:
    facts = await gather(session, plan, as_of)
    inds = [i for i in plan.indicators if codes is None or i.code in codes]
    return [figure(plan, i, facts, district, detail=codes is not None) for i in inds]
