"""The early-warning page (质量安全预警), Chinese by default: the warnings not yet closed (or of one
state), each with its rule, its evidence and, for a fail rate, a chart of the window's rate against
its baseline; from `GET /v1/warnings` and `GET /v1/warning-rules`, called in-process with the
visitor's token (`read`) like every dashboard page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.gateway.dashboard import charts
from services.gateway.dashboard.pages import WARNING_WORDS, Page, e, filters_form, notice, row, table
from services.gateway.dashboard.router import Api, _district_names, _html, _page, _problem

warnings_pages = APIRouter(prefix="/dashboard", include_in_schema=False)
PAGE_SIZE = 100
#: What "not closed" means on this page: the states still to be handled, newest first within each.
ACTIVE = ("open", "acknowledged")
STATES = ("open", "acknowledged", "closed")


def _w(page: Page, key: str) -> str:
    return page.t(key, WARNING_WORDS)


def _pct(v: Any) -> str:
    return f"{float(v) * 100:.2f}%"


@warnings_pages.get("/warnings", response_class=HTMLResponse)
async def warnings_page(
    request: Request, state: str | None = None, kind: str | None = None, district: str | None = None
) -> HTMLResponse:
    state = state if state in STATES else None
    kind = kind if kind in ("fail_rate_above_baseline", "repeated_final_fails", "listed_enterprise_fails") else None
    district = district if district and district.isdigit() and len(district) == 6 else None
    page = _page(request, state=state, kind=kind, district=district)
    items: list[dict[str, Any]] = []
    async with Api(request) as api:
        names = await _district_names(api)
        _, rules = await api.get("/v1/warning-rules")
        status, body = 200, None
        for s in (state,) if state else ACTIVE:
            status, body = await api.get(
                "/v1/warnings", {"state": s, "kind": kind, "district": district, "limit": PAGE_SIZE}, auth=True
            )
            if status != 200:
                break
            items += body["items"]
    title = page.t("nav_warnings")
    form = _form(page, names, state, kind, district)
    if status != 200:
        return _html(page.layout(title, form + _problem(page, status, body), active="warnings"))
    rule_names = {r["id"]: page.pick(r["name_zh"], r["name_en"]) for r in rules.get("rules", [])}
    items.sort(key=lambda w: (w["raised_at"], w["warning_id"]), reverse=True)
    cards = "".join(_card(page, w, rule_names, names) for w in items)
    content = form + f'<p class="method">{e(_w(page, "method_note"))}</p>'
    content += cards or notice(_w(page, "none_open"))
    return _html(page.layout(title, content, active="warnings"))


def _form(page: Page, names: dict[str, str], state: str | None, kind: str | None, district: str | None) -> str:
    def options(values: list[tuple[str, str]], chosen: str | None) -> str:
        return "".join(
            f'<option value="{e(v)}"{" selected" if v == (chosen or "") else ""}>{e(label)}</option>'
            for v, label in values
        )

    states = [("", _w(page, "active"))] + [(s, _w(page, s)) for s in STATES]
    kinds = [("", _w(page, "all_kinds"))] + [
        (k, _w(page, k)) for k in ("fail_rate_above_baseline", "repeated_final_fails", "listed_enterprise_fails")
    ]
    districts = [("", page.t("whole_city"))] + [(c, f"{n} {c}") for c, n in sorted(names.items())]
    return filters_form(
        page,
        "/dashboard/warnings",
        f'<label>{e(page.t("state"))} <select id="state" name="state">{options(states, state)}</select></label>'
        f'<label>{e(_w(page, "kind"))} <select id="kind" name="kind">{options(kinds, kind)}</select></label>'
        f'<label>{e(page.t("district"))} <select id="district" name="district">'
        f"{options(districts, district)}</select></label>",
    )


#: A state's badge colour, from the stylesheet's status classes.
BADGES = {"open": "deterioration", "acknowledged": "acceleration_needed", "closed": "achieved"}


def _card(page: Page, w: dict[str, Any], rule_names: dict[str, str], names: dict[str, str]) -> str:
    where = " · ".join(
        x
        for x in (
            w.get("product_category"),
            f"{names.get(w['district_code'], '')} {w['district_code']}".strip() if w.get("district_code") else None,
            w.get("uscc"),
        )
        if x
    )
    facts = [
        (_w(page, "rule"), f"{rule_names.get(w['rule_id'], w['rule_id'])} ({w['rule_id']}, {w['rule_set_version']})"),
        (_w(page, "window"), f"{w['window_start']} – {w['window_end']}"),
        (_w(page, "raised_at"), str(w["raised_at"])[:19].replace("T", " ") + " UTC"),
    ]
    for step in ("acknowledged", "closed"):
        if w.get(f"{step}_by"):
            at = str(w[f"{step}_at"])[:19].replace("T", " ")
            facts.append((_w(page, step), f"{w[f'{step}_by']} · {at} · {w.get(f'{step}_note') or ''}"))
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
    return (
        f'<section class="warning" data-warning-id="{e(w["warning_id"])}" data-kind="{e(w["kind"])}" '
        f'data-state="{e(w["state"])}"><h2><span class="badge s-{BADGES.get(w["state"], "no_data")}">'
        f"{e(_w(page, w['state']) if w['state'] in STATES else w['state'])}</span> "
        f"{e(_w(page, w['kind']) if w['kind'] in WARNING_WORDS else w['kind'])} · {e(where)}</h2>"
        f'<p class="summary">{e(w["summary"])}</p><dl class="facts">{dl}</dl>{_evidence(page, w)}</section>'
    )


def _evidence(page: Page, w: dict[str, Any]) -> str:
    ev = w["evidence"]
    # The drill-down: the enterprise's credit page when there is one, else the API's rows behind the figure.
    if w.get("uscc"):
        href, label = page.url("/dashboard/credit", uscc=w["uscc"]), page.t("profile")
    else:
        href, label = ev.get("rows", ""), _w(page, "drill_down")
    link = f'<p><a class="rows" href="{e(href)}">{e(label)}</a></p>' if href else ""
    if w["kind"] == "fail_rate_above_baseline":
        win, base = ev["window"], ev["baseline"]
        period, since = ev.get("period", ""), ev.get("baseline_from", "")
        rows = [
            f'<tr class="{cls}" data-n="{e(x["n"])}" data-fails="{e(x["fails"])}" data-rate="{e(x["rate"])}">'
            f'<td>{e(label)}</td><td>{e(x["n"])}</td><td>{e(x["fails"])}</td><td class="value">{_pct(x["rate"])}</td>'
            "</tr>"
            for cls, label, x in (
                ("window", f"{_w(page, 'this_quarter')} {period}", win),
                ("baseline", f"{_w(page, 'baseline')} {since} –", base),
            )
        ]
        stats = (
            f'<p class="statistic"><span>{e(_w(page, "ratio"))} <b class="ratio">{e(ev.get("ratio"))}</b></span> · '
            f'<span>{e(_w(page, "p_value"))} <b class="p-value">{ev["p_value"]:.3g}</b></span> · '
            f'<span>{e(_w(page, "alpha"))} <b class="alpha">{ev["alpha_per_look"]:.3g}</b></span></p>'
        )
        chart = charts.district_bars(
            [(f"{_w(page, 'baseline')}", float(base["rate"])), (f"{period}", float(win["rate"]))],
            float(base["rate"]),
            fmt=_pct,
            scale_max=None,
            title=_w(page, "rate_chart"),
        )
        headers = ["", _w(page, "samples"), _w(page, "fails"), _w(page, "rate")]
        return table(headers, rows, "rate-evidence") + stats + chart + link
    if w["kind"] == "repeated_final_fails":
        rows = [
            f'<tr class="result" data-result="{e(r["result_id"])}"><td>{e(r["sampling_date"])}</td>'
            f"<td>{e(r['report_no'])}</td></tr>"
            for r in ev.get("results", [])
        ]
        return f"<h3>{e(_w(page, 'results'))}</h3>" + table([page.t("sampling_date"), "No."], rows, "results") + link
    parts = []
    if ev.get("result"):
        r = ev["result"]
        parts.append(f'<p class="result">{e(page.t("report_no"))} {e(r["report_no"])} · {e(r["state"])}</p>')
    if ev.get("listed"):
        rows = [row(x["entry_id"], x.get("decision_no")) for x in ev["listed"]]
        parts.append(f"<h3>{e(_w(page, 'listings'))}</h3>" + table(["ID", page.t("decision_no")], rows, "listed"))
    if ev.get("suspended_honours"):
        rows = [row(x["honour_id"], x["type_code"]) for x in ev["suspended_honours"]]
        parts.append(f"<h3>{e(_w(page, 'suspended'))}</h3>" + table(["ID", page.t("honour_type")], rows, "suspended"))
    return "".join(parts) + link
