"""The dashboard: HTML pages over the gateway's own JSON API.

Every number on a page comes from the gateway's public API, called in-process (httpx over ASGI on
the same app): one source of truth, so a page can never disagree with `GET /v1/attainment`, and
the API's auth, rate limits and problem answers apply to the pages too. Public pages need no token;
the credit pages use the bearer token a user pasted into the sign-in form (kept in an HttpOnly,
SameSite=Strict cookie and sent to the API as `Authorization: Bearer`).
"""

from __future__ import annotations

import hmac
import re
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.gateway.dashboard import charts
from services.gateway.dashboard.csrf import (
    CSRF_COOKIE,
    login_csrf_ok,
    logout_csrf,
    new_csrf,
    set_csrf_cookie,
)
from services.gateway.dashboard.pages import Page, e, fmt_target, fmt_value, notice, row, scale_of, table
from services.gateway.schemas import (
    AttainmentDetailOut,
    AttainmentOut,
    CreditProfile,
    DistrictYearPoint,
    Figure,
    FigureDetail,
    Freshness,
    HonourRow,
)
from shared.auth import verify
from shared.errors import Unauthenticated

dashboard_router = APIRouter(prefix="/dashboard", include_in_schema=False)
COOKIE = "qc_token"
STATIC = Path(__file__).parent / "static"
DEFAULT_PLAN = "qingdao-2012"
USCC_LIKE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$", re.IGNORECASE)


class Api:
    """The gateway's own API, called in-process with the visitor's token and address (`async with`:
    the client is closed on the way out)."""

    def __init__(self, request: Request) -> None:
        host = request.client.host if request.client else "127.0.0.1"
        # The visitor's address is passed on so the public lists' per-client rate limit still applies
        # per visitor, not to the dashboard as a whole.
        transport = httpx.ASGITransport(app=request.app, client=(host, 0))
        headers = {}
        if rid := request.headers.get("x-request-id"):
            headers["X-Request-ID"] = rid
        self.client = httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers, timeout=30)
        self.token = request.cookies.get(COOKIE)

    async def get(self, path: str, params: dict[str, Any] | None = None, *, auth: bool = False) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if auth and self.token else {}
        resp = await self.client.get(
            path, params={k: v for k, v in (params or {}).items() if v not in (None, "")}, headers=headers
        )
        try:
            body = resp.json()
        except ValueError:
            body = {"detail": resp.text[:300]}
        return resp.status_code, body

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


def _page(request: Request, **keep: str | None) -> Page:
    q = request.query_params
    token = request.cookies.get(COOKIE)
    return Page(q.get("lang", "zh"), {"lang": q.get("lang"), **keep}, bool(token), logout_csrf(token))


def _problem(page: Page, status: int, body: Any) -> str:
    detail = body.get("detail") or body.get("title") if isinstance(body, dict) else str(body)
    if status == 401:
        return (
            notice(page.t("need_token"), "notice warn")
            + f'<p><a href="{e(page.url("/dashboard/login"))}">{e(page.t("login"))}</a></p>'
        )
    return notice(f"{page.t('unavailable')} ({status}): {detail}", "notice error")


def _filters(
    request: Request, plan: str, district: str | None, as_of: str | None
) -> tuple[str | None, str | None, Page]:
    """A figure page's filters: the district only if it is a code, the date only if valid, and the page keeping both."""
    district = district if district and re.fullmatch(r"\d{6}", district) else None
    day = _valid_date(as_of)
    return district, day, _page(request, plan=plan, district=district, as_of=day)


def _valid_date(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        return None


async def _district_names(api: Api) -> dict[str, str]:
    status, body = await api.get("/v1/regions")
    if status != 200 or not isinstance(body, list):
        return {}
    return {r["code"]: r["name_zh"] for r in body if r.get("level") != "city"}


def _district_label(page: Page, names: dict[str, str], code: str | None) -> str:
    if not code or code == "unknown":
        return page.t("district_unknown")
    return f"{names.get(code, '')} {code}".strip()


def _freshness(page: Page, fresh: Freshness) -> str:
    if not fresh.events_applied:
        return f'<p class="freshness">{e(page.t("freshness"))}: {e(page.t("no_events"))}</p>'
    return (
        f'<p class="freshness" data-events="{e(fresh.events_applied)}">{e(page.t("freshness"))}: '
        f"{e(page.t('last_event'))} {e(str(fresh.last_event_time)[:19].replace('T', ' '))} UTC · "
        f"{e(page.t('lag'))} {e(fresh.lag_s)} s · {e(page.t('events'))} {e(fresh.events_applied)}</p>"
    )


def _n(n: int | None) -> str:
    return f"n = {n:,}" if n else ""


def _pct(v: float | None) -> str:
    return f"{v * 100:.2f}%" if v is not None else "—"


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers={"Cache-Control": "no-store"})


def _badge(status: str) -> str:
    """A status badge's classes: its colour comes from the stylesheet (the CSP allows no inline style)."""
    return f"badge s-{status if status in charts.STATUS_COLOURS else 'no_data'}"


# ---------------------------------------------------------------------------------------- overview


@dashboard_router.get("", response_class=HTMLResponse)
async def overview(
    request: Request, plan: str = DEFAULT_PLAN, district: str | None = None, as_of: str | None = None
) -> HTMLResponse:
    district, day, page = _filters(request, plan, district, as_of)
    async with Api(request) as api:
        names = await _district_names(api)
        plans_status, plans = await api.get("/v1/plans")
        plan_status, plan_doc = await api.get(f"/v1/plans/{plan}")
        status, body = await api.get("/v1/attainment", {"plan": plan, "district": district, "as_of": day})
    title = page.t("title")
    if status != 200 or plan_status != 200:
        problem = _problem(page, status, body) if status != 200 else _problem(page, plan_status, plan_doc)
        return _html(page.layout(title, problem, active="overview"), 200)
    att = AttainmentOut.model_validate(body)
    plan_items = plans.get("items", []) if plans_status == 200 else []
    shown_district = _district_label(page, names, district) if district else page.t("whole_city")
    head = (
        f'<p class="plan-name">{e(page.pick(plan_doc.get("name_zh"), plan_doc.get("name_en")))} · '
        f'{e(page.t("as_of"))} <span id="as-of">{e(att.as_of)}</span> · {e(page.t("district"))} '
        f'<span id="district-shown">{e(shown_district)}</span></p>'
    )
    blocks = [
        _section_block(page, code, name, figs, plan, district, day)
        for code, name, figs in _sections(plan_doc, att.indicators)
    ]
    method = f'<p class="method">{e(page.t("method"))}: {e(att.method)}</p>'
    form = _overview_form(page, plan_items, names, plan, district, att.as_of)
    body_html = form + head + _freshness(page, att.freshness) + "".join(blocks) + method
    return _html(page.layout(title, body_html, active="overview"))


def _overview_form(
    page: Page, plans: list[dict[str, Any]], names: dict[str, str], plan: str, district: str | None, as_of: date
) -> str:
    plan_options = "".join(
        f'<option value="{e(p["id"])}"{" selected" if p["id"] == plan else ""}>'
        f"{e(page.pick(p['name_zh'], p['name_en']))}</option>"
        for p in plans
    )
    district_options = f'<option value="">{e(page.t("whole_city"))}</option>' + "".join(
        f'<option value="{e(code)}"{" selected" if code == district else ""}>{e(name)} {e(code)}</option>'
        for code, name in names.items()
    )
    return (
        '<form class="filters" method="get" action="/dashboard">'
        + ('<input type="hidden" name="lang" value="en">' if page.lang == "en" else "")
        + f'<label>{e(page.t("plan"))} <select name="plan">{plan_options}</select></label>'
        f'<label>{e(page.t("district"))} <select id="district" name="district">{district_options}</select></label>'
        f'<label>{e(page.t("as_of"))} <input type="date" name="as_of" value="{e(as_of)}"></label>'
        f'<button id="apply" type="submit">{e(page.t("apply"))}</button></form>'
    )


def _sections(plan_doc: dict[str, Any], figures: list[Figure]) -> list[tuple[str, str, list[Figure]]]:
    """The figures by the plan's sections, in the plan's order (sections it does not name last)."""
    by_section: dict[str, list[Figure]] = defaultdict(list)
    for fig in figures:
        by_section[fig.section].append(fig)
    sections = list(plan_doc.get("sections", {}).items())
    sections += [(s, "") for s in by_section if s not in dict(sections)]
    return [(code, name, by_section[code]) for code, name in sections if by_section.get(code)]


def _section_block(
    page: Page, code: str, name: str, figs: list[Figure], plan: str, district: str | None, day: str | None
) -> str:
    zh, _, en = name.partition(" (")
    label = f"{code} {en.rstrip(')') if page.lang == 'en' and en else zh}"
    headers = ["indicator", "value", "target", "progress", "status", "basis"]
    rows = [_indicator_row(page, fig, plan, district, day) for fig in figs]
    return (
        f'<section class="plan-section" data-section="{e(code)}"><h2>{e(label)}</h2>'
        + table([page.t(h) for h in headers], rows, "indicators")
        + "</section>"
    )


def _basis(n: int | None, ci: tuple[float, float] | None) -> str:
    """n and the Wilson interval behind a rate."""
    return f"n = {n:,}" + (f" · [{ci[0] * 100:.1f}%, {ci[1] * 100:.1f}%]" if ci else "") if n else ""


def _indicator_row(page: Page, fig: Figure, plan: str, district: str | None, day: str | None) -> str:
    shown = fmt_value(fig, fig.value)
    bar = charts.progress_bar(
        fig.value,
        fig.target,
        fig.status,
        scale_max=scale_of(fig),
        label=f"{page.pick(fig.name_zh, fig.name_en)}: {shown}",
    )
    basis = _basis(fig.n, fig.wilson_95) if fig.n else page.t("reported") if fig.source == "reported" else ""
    year = f' <span class="year">({e(fig.value_year)})</span>' if fig.value_year else ""
    link = page.url(f"/dashboard/indicators/{fig.code}", plan=plan, district=district, as_of=day)
    return (
        f'<tr class="indicator" data-code="{e(fig.code)}" data-status="{e(fig.status)}">'
        f'<td class="name"><a href="{e(link)}">{e(page.pick(fig.name_zh, fig.name_en))}</a></td>'
        f'<td class="value" data-value="{e(fig.value if fig.value is not None else "")}">{e(shown)}{year}</td>'
        f'<td class="target">{e(fmt_target(page, fig))}</td>'
        f'<td class="bar">{bar}</td>'
        f'<td class="status"><span class="{_badge(fig.status)}">{e(page.status(fig.status))}'
        f"</span></td>"
        f'<td class="basis">{e(basis)}</td></tr>'
    )


# ---------------------------------------------------------------------------------------- indicator


@dashboard_router.get("/indicators/{code}", response_class=HTMLResponse)
async def indicator(
    request: Request, code: str, plan: str = DEFAULT_PLAN, district: str | None = None, as_of: str | None = None
) -> HTMLResponse:
    district, day, page = _filters(request, plan, district, as_of)
    async with Api(request) as api:
        names = await _district_names(api)
        status, body = await api.get(f"/v1/attainment/{code}", {"plan": plan, "district": district, "as_of": day})
    if status != 200:
        return _html(page.layout(code, _problem(page, status, body), active="overview"), 200)
    detail = AttainmentDetailOut.model_validate(body)
    fig = detail.indicator
    home = page.url("/dashboard", plan=plan, district=district, as_of=day)
    content = (
        f'<p><a href="{e(home)}">← {e(page.t("back"))}</a></p>'
        + _headline(page, fig)
        + _freshness(page, detail.freshness)
        + f"<section>{_series_chart(page, fig)}{_series_table(page, fig)}</section>"
        + _district_years(page, fig, names)
        + _districts(page, fig, names, detail.as_of.year)
    )
    return _html(page.layout(page.pick(fig.name_zh, fig.name_en), content, active="overview"))


def _headline(page: Page, fig: FigureDetail) -> str:
    basis = page.t("computed") if fig.source == "computed" else page.t("reported")
    value = f' data-value="{e(fig.value if fig.value is not None else "")}"'
    return (
        f'<div class="headline" data-code="{e(fig.code)}">'
        + _stat(page.t("value"), fmt_value(fig, fig.value), "big value", value)
        + _stat(page.t("target"), fmt_target(page, fig))
        + _stat(page.t("status"), page.status(fig.status), _badge(fig.status))
        + "</div>"
        f'<p class="reason">{e(page.t("reason"))}: {e(fig.progress.reason)} · {e(basis)} · {e(fig.section)}</p>'
    )


def _stat(label: str, value: Any, classes: str = "big", attrs: str = "", after: str = "") -> str:
    """One figure of a headline: its label above, its value large (`attrs` and `after` already escaped)."""
    return f'<div><span class="label">{e(label)}</span><span class="{classes}"{attrs}>{e(value)}</span>{after}</div>'


def _series_chart(page: Page, fig: FigureDetail) -> str:
    return charts.series_chart(
        [(p.year, p.value, p.wilson_95) for p in fig.series],
        fig.target,
        fmt=lambda v: fmt_value(fig, v),
        scale_max=scale_of(fig),
        title=page.t("series"),
        target_label=page.t("target"),
    )


def _series_table(page: Page, fig: FigureDetail) -> str:
    rows = []
    for p in fig.series:
        extra = f"{p.report.reporting_system} · {p.report.evidence_ref}" if p.report else _basis(p.n, p.wilson_95)
        link = f' <a href="{e(p.rows)}">{e(page.t("rows"))}</a>' if p.rows else ""
        rows.append(
            f'<tr class="series-row" data-year="{e(p.year)}"><td>{e(p.year)}</td>'
            f'<td class="value" data-value="{e(p.value)}">{e(fmt_value(fig, p.value))}</td>'
            f"<td>{e(extra)}{link}</td></tr>"
        )
    return table([page.t("year"), page.t("value"), page.t("basis")], rows, "series")


def _district_years(page: Page, fig: FigureDetail, names: dict[str, str]) -> str:
    """District × year: one row per district, one column per year (value, and n for a rate)."""
    if not fig.district_years:
        return ""
    years = sorted({c.year for c in fig.district_years})
    by_district: dict[str, dict[int, DistrictYearPoint]] = {}
    for c in fig.district_years:
        by_district.setdefault(c.district_code, {})[c.year] = c
    rows = [
        f'<tr class="district-year-row" data-district="{e(code)}"><td>{e(_district_label(page, names, code))}</td>'
        + "".join(_district_year_cell(fig, cells[y]) for y in years)
        + "</tr>"
        for code, cells in by_district.items()
    ]
    return (
        f"<section><h2>{e(page.t('by_district_year'))}</h2>"
        + table([page.t("district"), *(str(y) for y in years)], rows, "district-years")
        + "</section>"
    )


def _district_year_cell(fig: FigureDetail, c: DistrictYearPoint) -> str:
    n = f"<br><small>{e(_n(c.n) or 'n = 0')}</small>" if c.n is not None else ""  # rates say their n
    return (
        f'<td class="value" data-year="{e(c.year)}" data-value="{e(c.value if c.value is not None else "")}" '
        f'data-n="{e(c.n if c.n is not None else "")}"><a href="{e(c.rows)}">{e(fmt_value(fig, c.value))}</a>{n}</td>'
    )


def _districts(page: Page, fig: FigureDetail, names: dict[str, str], year: int) -> str:
    if not fig.districts:
        return ""
    bars = charts.district_bars(
        [(_district_label(page, names, d.district_code), d.value) for d in fig.districts],
        fig.target,
        fmt=lambda v: fmt_value(fig, v),
        scale_max=scale_of(fig),
        title=page.t("by_district"),
    )
    rows = [
        f'<tr class="district-row" data-district="{e(d.district_code)}">'
        f"<td>{e(_district_label(page, names, d.district_code))}</td>"
        f'<td class="value" data-value="{e(d.value)}">{e(fmt_value(fig, d.value))}</td>'
        f'<td>{e(_n(d.n))} <a href="{e(d.rows)}">{e(page.t("rows"))}</a>'
        f"</td></tr>"
        for d in fig.districts
    ]
    return (
        f"<section><h2>{e(page.t('by_district'))} ({e(year)})</h2>{bars}"
        + table([page.t("district"), page.t("value"), page.t("basis")], rows, "districts")
        + "</section>"
    )


# ---------------------------------------------------------------------------------------- credit


@dashboard_router.get("/credit", response_class=HTMLResponse)
async def credit(request: Request, q: str | None = None, uscc: str | None = None) -> HTMLResponse:
    page = _page(request, q=q, uscc=uscc)
    q = (q or "").strip()[:100]
    search = (
        '<form class="search" method="get" action="/dashboard/credit">'
        + ('<input type="hidden" name="lang" value="en">' if page.lang == "en" else "")
        + f'<input id="q" type="search" name="q" value="{e(q)}" placeholder="{e(page.t("search_hint"))}" '
        f'size="40"><button id="search" type="submit">{e(page.t("search"))}</button></form>'
    )
    if not page.signed_in:
        before = search + notice(page.t("need_token"), "notice warn")
        return _login_answer(request, page, "/dashboard/credit", before, title=page.t("nav_credit"), active="credit")
    async with Api(request) as api:
        if q and not uscc and USCC_LIKE.match(q):
            uscc = q.upper()  # a USCC typed into the search box opens the profile directly
        if uscc:
            content = await _profile(page, api, uscc.strip().upper())
        elif q:
            content = await _search(page, api, q)
        else:
            content = ""
    return _html(page.layout(page.t("nav_credit"), search + content, active="credit"))


async def _search(page: Page, api: Api, q: str) -> str:
    status, body = await api.get("/v1/enterprises", {"q": q, "limit": 50}, auth=True)
    if status != 200:
        return _problem(page, status, body)
    if not body["items"]:
        return notice(page.t("no_match"))
    rows = [
        f'<tr class="enterprise"><td><a href="{e(page.url("/dashboard/credit", uscc=r["uscc"]))}">'
        f'{e(r["name"])}</a></td><td class="uscc">{e(r["uscc"])}</td><td>{e(r.get("district_code"))}</td></tr>'
        for r in body["items"]
    ]
    return table([page.t("name"), page.t("uscc"), page.t("district")], rows, "results")


async def _profile(page: Page, api: Api, uscc: str) -> str:
    status, body = await api.get(f"/v1/credit/{uscc}", auth=True)
    if status != 200:
        return _problem(page, status, body)
    p = CreditProfile.model_validate(body)
    history = _history_chart(page, p)
    return (
        _profile_cards(page, p, uscc)
        + f'<section class="cols"><div>{history}{_recent_fails(page, p)}</div><div>'
        + _honours(page, p)
        + _listings(page, p)
        + "</div></section>"
    )


def _profile_cards(page: Page, p: CreditProfile, uscc: str) -> str:
    ident, listed, elig = p.identity, p.blacklist.listed, p.procurement_priority
    grade = p.rating.rating if p.rating else "—"
    return (
        f'<div class="profile" data-uscc="{e(ident.uscc)}"><h2 id="enterprise-name">{e(ident.name or uscc)}'
        f"</h2><p>{e(page.t('uscc'))} <code>{e(ident.uscc)}</code> · {e(page.t('district'))} "
        f'{e(ident.district_code)} · {e(page.t("as_of"))} {e(p.as_of)}</p><div class="headline">'
        + _stat(page.t("rating"), grade, f"big grade grade-{e(grade)}", ' id="rating"')
        + _stat(
            page.t("nav_blacklist"),
            page.t("listed") if listed else page.t("not_listed"),
            f"big {'bad' if listed else 'good'}",
            ' id="listed"',
        )
        + _stat(
            page.t("procurement"),
            page.t("eligible") if elig.eligible else page.t("not_eligible"),
            attrs=' id="eligible"',
        )
        + _stat(
            page.t("pass_rate"),
            _pct(p.sampling.pass_rate),
            attrs=' id="pass-rate"',
            after=f'<span class="small">n = {e(p.sampling.n)}</span>',
        )
        + f'</div><ul class="reasons">{"".join(f"<li>{e(r)}</li>" for r in elig.reasons)}</ul></div>'
    )


def _history_chart(page: Page, p: CreditProfile) -> str:
    """Passes and fails per year, counted by the gateway over every standing result (not a first page)."""
    return charts.pass_fail_history(
        [(y.year, y.passed, y.failed) for y in p.sampling.by_year],
        title=page.t("history_chart"),
        pass_label=page.t("passes"),
        fail_label=page.t("fails"),
    )


def _recent_fails(page: Page, p: CreditProfile) -> str:
    fails = [
        row(r.sampling_date, r.product_name, r.report_no, r.state + (f" · {r.reinspection}" if r.reinspection else ""))
        for r in p.sampling.recent_fails
    ]
    headers = [page.t("sampling_date"), page.t("product"), "No.", page.t("state")]
    return _titled_table(page, "recent_fails", headers, fails)


def _honour_rows(honours: list[HonourRow], cls: str) -> list[str]:
    return [
        row(f"{h.type_code} {h.type_name_zh}", h.certificate_no, h.granted_on, h.valid_until or "—", cls=cls)
        for h in honours
    ]


def _honours(page: Page, p: CreditProfile) -> str:
    active = _honour_rows(p.honours.active, "honour")
    suspended = _honour_rows(p.honours.suspended, "honour suspended")
    hh = [page.t("honour_type"), page.t("certificate"), page.t("granted_on"), page.t("valid_until")]
    return _titled_table(page, "active_honours", hh, active) + (
        f"<h3>{e(page.t('suspended_honours'))}</h3>{table(hh, suspended)}" if suspended else ""
    )


def _listings(page: Page, p: CreditProfile) -> str:
    entries = [
        row(x.status, x.decision_no, x.listed_on, f"{x.removed_on or ''} {x.removal_reason or ''}")
        for x in p.blacklist.history
    ]
    headers = [page.t("state"), page.t("decision_no"), page.t("listed_on"), ""]
    return _titled_table(page, "blacklist_history", headers, entries)


def _titled_table(page: Page, title: str, headers: list[str], rows: list[str]) -> str:
    """A profile's table under its heading, or the empty notice there."""
    return f"<h3>{e(page.t(title))}</h3>" + (table(headers, rows) if rows else notice(page.t("empty")))


# ---------------------------------------------------------------------------------------- sign-in


def _login_form(page: Page, next_url: str, csrf: str) -> str:
    return (
        f'<form class="login" method="post" action="/dashboard/login"><input type="hidden" name="next" '
        f'value="{e(next_url)}"><input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<label>{e(page.t("token"))}<br><textarea id="token" name="token" rows="4" cols="60" '
        f'autocomplete="off"></textarea></label><br><button id="sign-in" type="submit">{e(page.t("login"))}'
        f"</button></form>"
    )


@dashboard_router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/dashboard/credit") -> HTMLResponse:
    return _login_answer(request, _page(request), next, notice(_page(request).t("need_token")))


def _login_answer(
    request: Request,
    page: Page,
    next_url: str,
    before: str,
    status: int = 200,
    *,
    title: str | None = None,
    active: str = "",
) -> HTMLResponse:
    """A page with the sign-in form and a fresh CSRF token, in the form and in its cookie (double submit)."""
    csrf = new_csrf()
    body = before + _login_form(page, _safe_next(next_url), csrf)
    resp = _html(page.layout(title or page.t("login"), body, active=active), status)
    set_csrf_cookie(resp, csrf, secure=request.url.scheme == "https")
    return resp


def _safe_next(target: str) -> str:
    """Only back into the dashboard: never an open redirect to another site."""
    return target if target.startswith("/dashboard") and not target.startswith("//") else "/dashboard"


@dashboard_router.post("/login")
async def login(
    request: Request,
    token: Annotated[str, Form(max_length=16384)],
    next: Annotated[str, Form(max_length=2048)] = "/dashboard/credit",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Sign in: the form's CSRF token must match its cookie, and the token must verify (signature,
    issuer, audience, lifetime) before it is kept in the cookie."""
    page = _page(request)
    if not login_csrf_ok(request.cookies.get(CSRF_COOKIE), csrf):
        return _login_answer(request, page, next, notice(page.t("csrf_refused"), "notice error"), 403)
    value = token.strip().removeprefix("Bearer ").strip()
    try:
        await verify(request.app.state.tokens, value)
    except Unauthenticated:
        return _login_answer(request, page, next, notice(page.t("token_refused"), "notice error"), 401)
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(
        COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/dashboard",
        max_age=12 * 3600,
    )
    resp.delete_cookie(CSRF_COOKIE, path="/dashboard")
    return resp


@dashboard_router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    """Sign out, if the form carries the token derived from this browser's session (no cross-site sign-out)."""
    expected = logout_csrf(request.cookies.get(COOKIE))
    if expected is not None and not hmac.compare_digest(expected, csrf):
        page = _page(request)
        return _html(page.layout(page.t("logout"), notice(page.t("csrf_refused"), "notice error"), active=""), 403)
    resp = RedirectResponse("/dashboard", status_code=303)
    resp.delete_cookie(COOKIE, path="/dashboard")
    return resp


# ---------------------------------------------------------------------------------------- public lists


@dashboard_router.get("/public/blacklist", response_class=HTMLResponse)
async def public_blacklist(request: Request, cursor: str | None = None, on: date | None = None) -> HTMLResponse:
    page = _page(request)
    async with Api(request) as api:
        status, body = await api.get("/v1/blacklist", {"limit": 200, "cursor": cursor, "on": on})
    title = page.t("nav_blacklist")
    if status != 200:
        return _html(page.layout(title, _problem(page, status, body), active="blacklist"))
    rows = [
        f'<tr class="entry" data-uscc="{e(r["uscc"])}"><td>{e(r["enterprise_name"])}</td><td>{e(r["uscc"])}</td>'
        f"<td>{e(r.get('reason_category_zh') or r['reason_category'])}</td><td>{e(r['deciding_authority'])}</td>"
        f"<td>{e(r.get('decision_no'))}</td><td>{e(r['listed_on'])}</td><td>{e(r['publish_until'])}</td></tr>"
        for r in body["items"]
    ]
    headers = ["name", "uscc", "reason_category", "authority", "decision_no", "listed_on", "publish_until"]
    more = (
        page.url("/dashboard/public/blacklist", cursor=body["next_cursor"], on=on) if body.get("next_cursor") else None
    )
    content = _public_table(page, [page.t(h) for h in headers], rows, "public blacklist", more)
    if on is not None:  # the list of a past day (an imported archive's listings keep their dates)
        content = f'<p class="as-of">{e(on.isoformat())}</p>' + content
    return _html(page.layout(title, content, active="blacklist"))


def _public_table(page: Page, headers: list[str], rows: list[str], label: str, more: str | None) -> str:
    """A public list's body: the note, the table (or a notice that it is empty), the next page's link."""
    content = notice(page.t("public_note")) + (table(headers, rows, label) if rows else notice(page.t("empty")))
    if more:
        content += f'<p><a href="{e(more)}">{e(page.t("next_page"))} →</a></p>'
    return content


@dashboard_router.get("/public/honours", response_class=HTMLResponse)
async def public_honours(request: Request, type: str = "B5", cursor: str | None = None) -> HTMLResponse:
    page = _page(request, type=type)
    async with Api(request) as api:
        types_status, types = await api.get("/v1/honour-types")
        status, body = await api.get(f"/v1/public/honour-types/{type}/honours", {"limit": 100, "cursor": cursor})
    title = page.t("nav_honours")
    options = "".join(
        f'<option value="{e(t["code"])}"{" selected" if t["code"] == type else ""}>{e(t["code"])} '
        f"{e(page.pick(t['name_zh'], t['name_en']))}</option>"
        for t in (types.get("types", []) if types_status == 200 else [])
    )
    form = (
        '<form class="filters" method="get" action="/dashboard/public/honours">'
        + ('<input type="hidden" name="lang" value="en">' if page.lang == "en" else "")
        + f'<label>{e(page.t("honour_type"))} <select id="type" name="type">{options}</select></label>'
        f'<button id="apply" type="submit">{e(page.t("apply"))}</button></form>'
    )
    if status != 200:
        return _html(page.layout(title, form + _problem(page, status, body), active="honours"))

    def subject(h: dict[str, Any]) -> str:
        s = h.get("subject") or {}
        return " ".join(str(x) for x in (s.get("number"), s.get("name") or s.get("title")) if x)

    rows = [
        f'<tr class="honour" data-type="{e(h["type_code"])}"><td>{e(h["holder_name"])}</td><td>{e(h["holder_id"])}'
        f"</td><td>{e(subject(h))}</td><td>{e(h['certificate_no'])}</td><td>{e(h['granted_on'])}</td>"
        f"<td>{e(h.get('valid_until') or '—')}</td><td>{e(h['granting_authority'])}</td></tr>"
        for h in body["items"]
    ]
    headers = [page.t("holder"), "ID"] + [
        page.t(h) for h in ("subject", "certificate", "granted_on", "valid_until", "authority")
    ]
    cursor_ = body.get("next_cursor")
    more = page.url("/dashboard/public/honours", type=type, cursor=cursor_) if cursor_ else None
    return _html(
        page.layout(title, form + _public_table(page, headers, rows, "public honours", more), active="honours")
    )


# ---------------------------------------------------------------------------------------- static


@dashboard_router.get("/static/dashboard.css")
async def stylesheet() -> Response:
    badges = "".join(f".badge.s-{k} {{ background: {v}; }}\n" for k, v in charts.STATUS_COLOURS.items())
    return Response(
        (STATIC / "dashboard.css").read_bytes() + badges.encode(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )
