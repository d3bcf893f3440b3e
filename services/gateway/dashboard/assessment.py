"""The district assessment page (区(市)考核): the year's ranking with every district's score, change and
points per indicator, from `GET /v1/assessments` called in-process like every dashboard page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.gateway.dashboard.charts import shared_range, small_multiple
from services.gateway.dashboard.pages import Page, e, filters_form, notice, table
from services.gateway.dashboard.router import DEFAULT_PLAN, Api, _html, _page, _problem

assessment_pages = APIRouter(prefix="/dashboard", include_in_schema=False)


def _num(v: Any, digits: int = 2, signed: bool = False) -> str:
    if v is None:
        return "—"
    return f"{float(v):+.{digits}f}" if signed else f"{float(v):.{digits}f}"


@assessment_pages.get("/assessment", response_class=HTMLResponse)
async def assessment_page(
    request: Request, plan: str = DEFAULT_PLAN, scheme: str | None = None, year: str | None = None
) -> HTMLResponse:
    year = year if year and year.isdigit() and len(year) == 4 else None
    page = _page(request, plan=plan, scheme=scheme, year=year)
    async with Api(request) as api:
        plan_status, plan_doc = await api.get(f"/v1/plans/{plan}")
        status, body = await api.get("/v1/assessments", {"plan": plan, "scheme": scheme, "year": year})
        series: list[dict[str, Any]] = []
        if status == 200 and plan_status == 200:
            series = await _every_year(api, plan, plan_doc, body["scheme"])
    title = page.t("nav_assessment")
    if status != 200 or plan_status != 200:
        problem = _problem(page, status, body) if status != 200 else _problem(page, plan_status, plan_doc)
        return _html(page.layout(title, problem, active="assessment"))
    districts = body["districts"]
    codes = [i["code"] for i in districts[0]["indicators"]] if districts else []
    names = {
        i["code"]: page.pick(i["name_zh"], i["name_en"]) for i in (districts[0]["indicators"] if districts else [])
    }
    rows = [_district_row(page, d, plan, scheme) for d in districts]
    headers = [page.t(h) for h in ("rank", "district", "score", "change", "judged", "bonus_penalty")]
    headers += [names[c] for c in codes]
    head = (
        f'<p class="plan-name">{e(page.pick(plan_doc.get("name_zh"), plan_doc.get("name_en")))} · '
        f'<span id="year-shown">{e(body["year"])}</span> · {e(page.t("as_of"))} {e(body["as_of"])}</p>'
    )
    content = _filters(page, plan, plan_doc, body) + head
    content += table(headers, rows, "assessment") if rows else notice(page.t("empty"))
    content += f'<p class="method">{e(page.t("scoring_method"))}: {e(body["method"])}</p>'
    content += _multiples(page, series)
    return _html(page.layout(title, content, active="assessment"))


async def _every_year(api: Api, plan: str, plan_doc: dict[str, Any], scheme: str) -> list[dict[str, Any]]:
    """Every assessed year of the plan for the small multiples (a year not begun answers 404)."""
    series: list[dict[str, Any]] = []
    for y in range(int(plan_doc["period_start"][:4]), int(plan_doc["period_end"][:4]) + 1):
        got, other = await api.get("/v1/assessments", {"plan": plan, "scheme": scheme, "year": y})
        if got == 200:
            series.append(other)
    return series


def _filters(page: Page, plan: str, plan_doc: dict[str, Any], body: dict[str, Any]) -> str:
    """The scheme and year to show: the plan's schemes, and every year of its period."""
    first, last = int(plan_doc["period_start"][:4]), int(plan_doc["period_end"][:4])
    scheme_options = "".join(
        f'<option value="{e(s["id"])}"{" selected" if s["id"] == body["scheme"] else ""}>'
        f"{e(page.pick(s['name_zh'], s['name_en']))}</option>"
        for s in plan_doc.get("assessment_schemes", [])
    )
    year_options = "".join(
        f'<option value="{y}"{" selected" if y == body["year"] else ""}>{y}</option>' for y in range(first, last + 1)
    )
    return filters_form(
        page,
        "/dashboard/assessment",
        f'<input type="hidden" name="plan" value="{e(plan)}">'
        f'<label>{e(page.t("scheme"))} <select id="scheme" name="scheme">{scheme_options}</select></label>'
        f'<label>{e(page.t("year"))} <select id="year" name="year">{year_options}</select></label>',
    )


def _district_row(page: Page, d: dict[str, Any], plan: str, scheme: str | None) -> str:
    """A district's line of the ranking: rank, name (its report), score, change, weights, points per indicator."""
    cells = "".join(
        f'<td class="points" data-code="{e(i["code"])}" data-points="{e(i["points"])}" title="{e(i["why"])}">'
        f"{_num(i['points'])}</td>"
        for i in d["indicators"]
    )
    return (
        f'<tr class="district" data-district="{e(d["district_code"])}" data-rank="{e(d["rank"])}" '
        f'data-score="{e(d["score"])}" title="{e(d["why"])}"><td class="rank">{e(d["rank"] or "—")}</td>'
        f'<td><a href="{e(page.url("/dashboard/assessment/" + d["district_code"], plan=plan, scheme=scheme))}">'
        f"{e(page.pick(d['name_zh'], d['name_en']))} {e(d['district_code'])}</a></td>"
        f'<td class="value score">{_num(d["score"])}</td><td class="change">{_num(d["change"], signed=True)}</td>'
        f"<td>{_num(d['judged_weight'], 0)} / {_num(d['total_weight'], 0)}</td>"
        f"<td>{_num(d['bonus'], 0)} / {_num(d['penalties'], 0)}</td>{cells}</tr>"
    )


_RATES = ("min_rate", "exact_rate")


def _multiples(page: Page, years: list[dict[str, Any]]) -> str:
    """Small multiples: for each indicator of the scheme, every district's yearly value against its
    own target (dashed; a count's target grows year by year), all on one scale per indicator."""
    if not years:
        return ""
    codes: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    values: dict[tuple[str, str], dict[int, tuple[float | None, float | None]]] = {}
    for year in years:
        for d in year["districts"]:
            names[d["district_code"]] = page.pick(d["name_zh"], d["name_en"])
            for i in d["indicators"]:
                codes.setdefault(i["code"], i)
                values.setdefault((i["code"], d["district_code"]), {})[year["year"]] = (i["value"], i["target"])
    all_years = [y["year"] for y in years]
    sections = []
    for code, ind in codes.items():
        rate = ind["kind"] in _RATES
        pool = [
            v for (c, _), per in values.items() if c == code for pair in per.values() for v in pair if v is not None
        ]
        lo, hi = shared_range(pool, 1.0 if rate else None)

        def fmt(v: float, rate: bool = rate) -> str:
            return f"{v * 100:.1f}%" if rate else f"{v:g}"

        panels = "".join(
            f'<div class="multiple" data-code="{e(code)}" data-district="{e(district)}">'
            + small_multiple(
                [(y, *values[(code, district)].get(y, (None, None))) for y in all_years],
                lo=lo,
                hi=hi,
                fmt=fmt,
                title=f"{names[district]} {district}",
            )
            + "</div>"
            for district in sorted(d for c, d in values if c == code)
        )
        scale = f"{fmt(lo)} – {fmt(hi)}"
        sections.append(
            f"<h3>{e(page.pick(ind['name_zh'], ind['name_en']))} <small>({e(scale)})</small></h3>"
            f'<div class="multiples">{panels}</div>'
        )
    title = page.pick("各区(市)指标历年值与目标", "Every district's indicator series against its target")
    legend = page.pick(
        "蓝线：指标值；红色虚线：该区(市)目标；红点：低于目标。同一指标各图纵轴相同。",
        "Blue: the value; dashed red: the district's target; red dots: below target. One scale per indicator.",
    )
    return (
        f'<section class="small-multiples"><h2>{e(title)}</h2><p class="method">{e(legend)}</p>'
        f"{''.join(sections)}</section>"
    )


@assessment_pages.get("/assessment/{district}", response_class=HTMLResponse)
async def district_report(
    request: Request, district: str, plan: str = DEFAULT_PLAN, scheme: str | None = None
) -> HTMLResponse:
    """A district's annual assessment report, every year of the plan: printable (the stylesheet's
    print rules drop the navigation and keep each year on its own page)."""
    page = _page(request, plan=plan, scheme=scheme)
    async with Api(request) as api:
        status, body = await api.get(f"/v1/assessments/{district}", {"plan": plan, "scheme": scheme})
    if status != 200:
        return _html(page.layout(page.t("nav_assessment"), _problem(page, status, body), active="assessment"))
    title = f"{body['name_zh']} {body['district_code']} · {page.t('report')}"
    years = []
    for y in body["years"]:
        lines = [
            f'<tr class="line" data-code="{e(i["code"])}" data-status="{e(i["status"])}"><td>'
            f"{e(page.pick(i['name_zh'], i['name_en']))}</td><td>{_num(i['weight'], 0)}</td>"
            f'<td class="value">{_num(i["value"], 4)}</td><td>{_num(i["target"], 4)}</td>'
            f'<td class="value" data-points="{e(i["points"])}">{_num(i["points"])}</td>'
            f'<td class="reason">{e(i["why"])}</td></tr>'
            for i in y["indicators"]
        ]
        headers = [page.t(h) for h in ("indicator", "weight", "value", "target", "points", "reason")]
        years.append(
            f'<section class="report-year" data-year="{e(y["year"])}" data-score="{e(y["score"])}" '
            f'data-rank="{e(y["rank"])}"><h2>{e(y["year"])} · {e(page.t("score"))} {_num(y["score"])} · '
            f"{e(page.t('rank'))} {e(y['rank'] or '—')} · {e(page.t('change'))} {_num(y['change'], signed=True)}</h2>"
            f'<p class="reason">{e(y["why"])}</p>{table(headers, lines, "report")}</section>'
        )
    content = f'<p class="method">{e(page.t("scoring_method"))}: {e(body["method"])}</p>' + "".join(years)
    return _html(page.layout(title, content, active="assessment"))
