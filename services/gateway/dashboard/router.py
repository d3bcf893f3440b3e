"""The dashboard: HTML pages over the gateway's own JSON API.

Every number on a page comes from the gateway's public API, called in-process (httpx over ASGI on
the same app): one source of truth, so a page can never disagree with `GET /v1/attainment`, and
the API's auth, rate limits and problem answers apply to the pages too. Public pages need no token;
the credit pages use the bearer token a user pasted into the sign-in form (kept in an HttpOnly,
SameSite=Strict cookie and sent to the API as `Authorization: Bearer`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.gateway.dashboard import charts
from services.gateway.dashboard.pages import Page, e, fmt_target, fmt_value, notice, scale_of, table

dashboard_router = APIRouter(prefix="/dashboard", include_in_schema=False)
COOKIE = "qc_token"
STATIC = Path(__file__).parent / "static"
DEFAULT_PLAN = "qingdao-2012"
USCC_LIKE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$", re.IGNORECASE)


class Api:
    """The gateway's own API, called in-process with the visitor's token and address."""

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

    async def aclose(self) -> None:
        await self.client.aclose()


def _page(request: Request, **keep: str | None) -> Page:
    q = request.query_params
    return Page(q.get("lang", "zh"), {"lang": q.get("lang"), **keep}, bool(request.cookies.get(COOKIE)))


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


def _freshness(page: Page, fresh: dict[str, Any] | None) -> str:
    if not fresh or not fresh.get("events_applied"):
        return f'<p class="freshness">{e(page.t("freshness"))}: {e(page.t("no_events"))}</p>'
    return (
        f'<p class="freshness" data-events="{e(fresh["events_applied"])}">{e(page.t("freshness"))}: '
        f"{e(page.t('last_event'))} {e(str(fresh['last_event_time'])[:19].replace('T', ' '))} UTC · "
        f"{e(page.t('lag'))} {e(fresh['lag_s'])} s · {e(page.t('events'))} {e(fresh['events_applied'])}</p>"
    )


def _n(n: int | None) -> str:
    return f"n = {n:,}" if n else ""


def _pct(v: float | None) -> str:
    return f"{v * 100:.2f}%" if v is not None else "—"


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------------------------------- overview


@dashboard_router.get("", response_class=HTMLResponse)
async def overview(
    request: Request, plan: str = DEFAULT_PLAN, district: str | None = None, as_of: str | None = None
) -> HTMLResponse:
    district, day, page = _filters(request, plan, district, as_of)
    api = Api(request)
    try:
        names = await _district_names(api)
        plans_status, plans = await api.get("/v1/plans")
        plan_status, plan_doc = await api.get(f"/v1/plans/{plan}")
        status, att = await api.get("/v1/attainment", {"plan": plan, "district": district, "as_of": day})
    finally:
        await api.aclose()
    title = page.t("title")
    if status != 200 or plan_status != 200:
        return _html(
            page.layout(
                title,
                _problem(page, status if status != 200 else plan_status, att if status != 200 else plan_doc),
                active="overview",
            ),
            200,
        )
    plan_items = plans.get("items", []) if plans_status == 200 else []
    plan_options = "".join(
        f'<option value="{e(p["id"])}"{" selected" if p["id"] == plan else ""}>'
        f"{e(page.pick(p['name_zh'], p['name_en']))}</option>"
        for p in plan_items
    )
    district_options = f'<option value="">{e(page.t("whole_city"))}</option>' + "".join(
        f'<option value="{e(code)}"{" selected" if code == district else ""}>{e(name)} {e(code)}</option>'
        for code, name in names.items()
    )
    form = (
        '<form class="filters" method="get" action="/dashboard">'
        + ('<input type="hidden" name="lang" value="en">' if page.lang == "en" else "")
        + f'<label>{e(page.t("plan"))} <select name="plan">{plan_options}</select></label>'
        f'<label>{e(page.t("district"))} <select id="district" name="district">{district_options}</select></label>'
        f'<label>{e(page.t("as_of"))} <input type="date" name="as_of" value="{e(att["as_of"])}"></label>'
        f'<button id="apply" type="submit">{e(page.t("apply"))}</button></form>'
    )
    shown_district = _district_label(page, names, district) if district else page.t("whole_city")
    head = (
        f'<p class="plan-name">{e(page.pick(plan_doc.get("name_zh"), plan_doc.get("name_en")))} · '
        f'{e(page.t("as_of"))} <span id="as-of">{e(att["as_of"])}</span> · {e(page.t("district"))} '
        f'<span id="district-shown">{e(shown_district)}</span></p>'
    )
    by_section: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fig in att["indicators"]:
        by_section[fig["section"]].append(fig)
    sections = list(plan_doc.get("sections", {}).items())
    sections += [(s, "") for s in by_section if s not in dict(sections)]
    blocks = []
    for code, name in sections:
        figs = by_section.get(code)
        if not figs:
            continue
        zh, _, en = name.partition(" (")
        label = f"{code} {en.rstrip(')') if page.lang == 'en' and en else zh}"
        rows = [_indicator_row(page, fig, plan, district, day) for fig in figs]
        blocks.append(
            f'<section class="plan-section" data-section="{e(code)}"><h2>{e(label)}</h2>'
            + table(
                [
                    page.t("indicator"),
                    page.t("value"),
                    page.t("target"),
                    page.t("progress"),
                    page.t("status"),
                    page.t("basis"),
                ],
                rows,
                "indicators",
            )
            + "</section>"
        )
    method = f'<p class="method">{e(page.t("method"))}: {e(att.get("method"))}</p>'
    body = form + head + _freshness(page, att.get("freshness")) + "".join(blocks) + method
    return _html(page.layout(title, body, active="overview"))


def _indicator_row(page: Page, fig: dict[str, Any], plan: str, district: str | None, day: str | None) -> str:
    value = fig.get("value")
    shown = fmt_value(fig, value)
    bar = charts.progress_bar(
        value,
        fig.get("target"),
        fig["status"],
        scale_max=scale_of(fig),
        label=f"{page.pick(fig['name_zh'], fig['name_en'])}: {shown}",
    )
    basis = ""
    if fig.get("n"):
        ci = fig.get("wilson_95")
        basis = f"n = {fig['n']:,}" + (f" · [{ci[0] * 100:.1f}%, {ci[1] * 100:.1f}%]" if ci else "")
    elif fig.get("source") == "reported":
        basis = page.t("reported")
    year = f' <span class="year">({e(fig["value_year"])})</span>' if fig.get("value_year") else ""
    link = page.url(f"/dashboard/indicators/{fig['code']}", plan=plan, district=district, as_of=day)
    colour = charts.STATUS_COLOURS.get(fig["status"], "#8c959f")
    return (
        f'<tr class="indicator" data-code="{e(fig["code"])}" data-status="{e(fig["status"])}">'
        f'<td class="name"><a href="{e(link)}">{e(page.pick(fig["name_zh"], fig["name_en"]))}</a></td>'
        f'<td class="value" data-value="{e(value if value is not None else "")}">{e(shown)}{year}</td>'
        f'<td class="target">{e(fmt_target(page, fig))}</td>'
        f'<td class="bar">{bar}</td>'
        f'<td class="status"><span class="badge" style="background:{colour}">{e(page.status(fig["status"]))}'
        f"</span></td>"
        f'<td class="basis">{e(basis)}</td></tr>'
    )


# ---------------------------------------------------------------------------------------- indicator


@dashboard_router.get("/indicators/{code}", response_class=HTMLResponse)
async def indicator(
    request: Request, code: str, plan: str = DEFAULT_PLAN, district: str | None = None, as_of: str | None = None
) -> HTMLResponse:
    district, day, page = _filters(request, plan, district, as_of)
    api = Api(request)
    try:
        names = await _district_names(api)
        status, body = await api.get(f"/v1/attainment/{code}", {"plan": plan, "district": district, "as_of": day})
    finally:
        await api.aclose()
    if status != 200:
        return _html(page.layout(code, _problem(page, status, body), active="overview"), 200)
    fig = body["indicator"]
    title = page.pick(fig["name_zh"], fig["name_en"])

    def fmt(v: float) -> str:
        return fmt_value(fig, v)

    shown = fmt(fig["value"]) if fig.get("value") is not None else "—"
    colour = charts.STATUS_COLOURS.get(fig["status"], "#8c959f")
    summary = (
        f'<div class="headline" data-code="{e(fig["code"])}">'
        f'<div><span class="label">{e(page.t("value"))}</span><span class="big value" '
        f'data-value="{e(fig.get("value") if fig.get("value") is not None else "")}">{e(shown)}</span></div>'
        f'<div><span class="label">{e(page.t("target"))}</span><span class="big">{e(fmt_target(page, fig))}</span>'
        f'</div><div><span class="label">{e(page.t("status"))}</span><span class="badge" style="background:{colour}">'
        f"{e(page.status(fig['status']))}</span></div></div>"
        f'<p class="reason">{e(page.t("reason"))}: {e(fig["progress"].get("reason"))} · '
        f"{e(page.t('computed') if fig['source'] == 'computed' else page.t('reported'))} · {e(fig['section'])}</p>"
    )
    points = [
        (int(p["year"]), float(p["value"]), tuple(p["wilson_95"]) if p.get("wilson_95") else None)
        for p in fig.get("series", [])
    ]
    chart = charts.series_chart(
        points,
        fig.get("target"),
        fmt=fmt,
        scale_max=scale_of(fig),
        title=page.t("series"),
        target_label=page.t("target"),
    )
    series_rows = []
    for p in fig.get("series", []):
        ci = p.get("wilson_95")
        extra = f"n = {p['n']:,}" + (f" · [{ci[0] * 100:.1f}%, {ci[1] * 100:.1f}%]" if ci else "") if p.get("n") else ""
        if p.get("report"):
            extra = f"{p['report']['reporting_system']} · {p['report']['evidence_ref']}"
        link = f' <a href="{e(p["rows"])}">{e(page.t("rows"))}</a>' if p.get("rows") else ""
        series_rows.append(
            f'<tr class="series-row" data-year="{e(p["year"])}"><td>{e(p["year"])}</td>'
            f'<td class="value" data-value="{e(p["value"])}">{e(fmt(p["value"]))}</td>'
            f"<td>{e(extra)}{link}</td></tr>"
        )
    series_table = table([page.t("year"), page.t("value"), page.t("basis")], series_rows, "series")
    districts = fig.get("districts", [])
    district_html = ""
    if districts:
        bars = charts.district_bars(
            [(_district_label(page, names, d["district_code"]), float(d["value"])) for d in districts],
            fig.get("target"),
            fmt=fmt,
            scale_max=scale_of(fig),
            title=page.t("by_district"),
        )
        rows = [
            f'<tr class="district-row" data-district="{e(d["district_code"])}">'
            f"<td>{e(_district_label(page, names, d['district_code']))}</td>"
            f'<td class="value" data-value="{e(d["value"])}">{e(fmt(d["value"]))}</td>'
            f'<td>{e(_n(d.get("n")))} <a href="{e(d["rows"])}">{e(page.t("rows"))}</a>'
            f"</td></tr>"
            for d in districts
        ]
        district_html = (
            f"<section><h2>{e(page.t('by_district'))} ({e(body['as_of'][:4])})</h2>{bars}"
            + table([page.t("district"), page.t("value"), page.t("basis")], rows, "districts")
            + "</section>"
        )
    home = page.url("/dashboard", plan=plan, district=district, as_of=day)
    back = f'<p><a href="{e(home)}">← {e(page.t("back"))}</a></p>'
    content = (
        back
        + summary
        + _freshness(page, body.get("freshness"))
        + f"<section>{chart}{series_table}</section>"
        + district_html
    )
    return _html(page.layout(title, content, active="overview"))


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
        body = search + notice(page.t("need_token"), "notice warn") + _login_form(page, "/dashboard/credit")
        return _html(page.layout(page.t("nav_credit"), body, active="credit"))
    api = Api(request)
    try:
        if q and not uscc and USCC_LIKE.match(q):
            uscc = q.upper()  # a USCC typed into the search box opens the profile directly
        if uscc:
            content = await _profile(page, api, uscc.strip().upper())
        elif q:
            content = await _search(page, api, q)
        else:
            content = ""
    finally:
        await api.aclose()
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
    status, p = await api.get(f"/v1/credit/{uscc}", auth=True)
    if status != 200:
        return _problem(page, status, p)
    ident = p["identity"]
    rating = p.get("rating")
    listed = p["blacklist"]["listed"]
    elig = p["procurement_priority"]
    s = p["sampling"]
    grade = rating["rating"] if rating else "—"
    cards = (
        f'<div class="profile" data-uscc="{e(ident["uscc"])}"><h2 id="enterprise-name">{e(ident.get("name") or uscc)}'
        f"</h2><p>{e(page.t('uscc'))} <code>{e(ident['uscc'])}</code> · {e(page.t('district'))} "
        f'{e(ident.get("district_code"))} · {e(page.t("as_of"))} {e(p["as_of"])}</p><div class="headline">'
        f'<div><span class="label">{e(page.t("rating"))}</span><span class="big grade grade-{e(grade)}" id="rating">'
        f"{e(grade)}</span></div>"
        f'<div><span class="label">{e(page.t("nav_blacklist"))}</span><span class="big {"bad" if listed else "good"}"'
        f' id="listed">{e(page.t("listed") if listed else page.t("not_listed"))}</span></div>'
        f'<div><span class="label">{e(page.t("procurement"))}</span><span class="big" id="eligible">'
        f"{e(page.t('eligible') if elig['eligible'] else page.t('not_eligible'))}</span></div>"
        f'<div><span class="label">{e(page.t("pass_rate"))}</span><span class="big" id="pass-rate">'
        f"{e(_pct(s.get('pass_rate')))}</span>"
        f'<span class="small">n = {e(s["n"])}</span></div></div>'
        f'<ul class="reasons">{"".join(f"<li>{e(r)}</li>" for r in elig["reasons"])}</ul></div>'
    )
    status_r, results = await api.get("/v1/results", {"uscc": uscc, "limit": 1000}, auth=True)
    history = ""
    if status_r == 200:
        per_year: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for r in results.get("items", []):
            if r.get("state") == "retracted":
                continue
            per_year[int(str(r["sampling_date"])[:4])][0 if r["conclusion"] == "pass" else 1] += 1
        history = charts.pass_fail_history(
            [(y, v[0], v[1]) for y, v in sorted(per_year.items())],
            title=page.t("history_chart"),
            pass_label=page.t("passes"),
            fail_label=page.t("fails"),
        )
    fails = [
        f"<tr><td>{e(r['sampling_date'])}</td><td>{e(r['product_name'])}</td><td>{e(r['report_no'])}</td>"
        f"<td>{e(r['state'])}{' · ' + e(r['reinspection']) if r.get('reinspection') else ''}</td></tr>"
        for r in s.get("recent_fails", [])
    ]
    fails_html = f"<h3>{e(page.t('recent_fails'))}</h3>" + (
        table([page.t("sampling_date"), page.t("product"), "No.", page.t("state")], fails)
        if fails
        else notice(page.t("empty"))
    )
    honours = [
        f'<tr class="honour"><td>{e(h["type_code"])} {e(h["type_name_zh"])}</td><td>{e(h["certificate_no"])}'
        f"</td><td>{e(h['granted_on'])}</td><td>{e(h.get('valid_until') or '—')}</td></tr>"
        for h in p["honours"]["active"]
    ]
    suspended = [
        f'<tr class="honour suspended"><td>{e(h["type_code"])} {e(h["type_name_zh"])}</td>'
        f"<td>{e(h['certificate_no'])}</td><td>{e(h['granted_on'])}</td><td>{e(h.get('valid_until') or '—')}"
        f"</td></tr>"
        for h in p["honours"]["suspended"]
    ]
    hh = [page.t("honour_type"), page.t("certificate"), page.t("granted_on"), page.t("valid_until")]
    entries = [
        f"<tr><td>{e(x['status'])}</td><td>{e(x.get('decision_no'))}</td><td>{e(x.get('listed_on'))}</td>"
        f"<td>{e(x.get('removed_on') or '')} {e(x.get('removal_reason') or '')}</td></tr>"
        for x in p["blacklist"]["history"]
    ]
    return (
        cards + f'<section class="cols"><div>{history}{fails_html}</div><div>'
        f"<h3>{e(page.t('active_honours'))}</h3>{table(hh, honours) if honours else notice(page.t('empty'))}"
        + (f"<h3>{e(page.t('suspended_honours'))}</h3>{table(hh, suspended)}" if suspended else "")
        + f"<h3>{e(page.t('blacklist_history'))}</h3>"
        + (
            table([page.t("state"), page.t("decision_no"), page.t("listed_on"), ""], entries)
            if entries
            else notice(page.t("empty"))
        )
        + "</div></section>"
    )


# ---------------------------------------------------------------------------------------- sign-in


def _login_form(page: Page, next_url: str) -> str:
    return (
        f'<form class="login" method="post" action="/dashboard/login"><input type="hidden" name="next" '
        f'value="{e(next_url)}"><label>{e(page.t("token"))}<br><textarea id="token" name="token" rows="4" cols="60" '
        f'autocomplete="off"></textarea></label><br><button id="sign-in" type="submit">{e(page.t("login"))}'
        f"</button></form>"
    )


@dashboard_router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/dashboard/credit") -> HTMLResponse:
    page = _page(request)
    return _html(
        page.layout(page.t("login"), notice(page.t("need_token")) + _login_form(page, _safe_next(next)), active="")
    )


def _safe_next(target: str) -> str:
    """Only back into the dashboard: never an open redirect to another site."""
    return target if target.startswith("/dashboard") and not target.startswith("//") else "/dashboard"


@dashboard_router.post("/login")
async def login(
    request: Request,
    token: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/dashboard/credit",
) -> Response:
    resp = RedirectResponse(_safe_next(next), status_code=303)
    value = token.strip().removeprefix("Bearer ").strip()
    if value:
        resp.set_cookie(
            COOKIE,
            value,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/dashboard",
            max_age=12 * 3600,
        )
    return resp


@dashboard_router.post("/logout")
async def logout() -> Response:
    resp = RedirectResponse("/dashboard", status_code=303)
    resp.delete_cookie(COOKIE, path="/dashboard")
    return resp


# ---------------------------------------------------------------------------------------- public lists


@dashboard_router.get("/public/blacklist", response_class=HTMLResponse)
async def public_blacklist(request: Request, cursor: str | None = None, on: date | None = None) -> HTMLResponse:
    page = _page(request)
    api = Api(request)
    try:
        status, body = await api.get("/v1/blacklist", {"limit": 200, "cursor": cursor, "on": on})
    finally:
        await api.aclose()
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
    api = Api(request)
    try:
        types_status, types = await api.get("/v1/honour-types")
        status, body = await api.get(f"/v1/public/honour-types/{type}/honours", {"limit": 100, "cursor": cursor})
    finally:
        await api.aclose()
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
    return Response(
        (STATIC / "dashboard.css").read_bytes(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )
