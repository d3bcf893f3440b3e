"""The public page of non-conforming products (抽检不合格公示), Chinese by default: searchable by a
fragment of the producer's name and of the product, by district; every row from
`GET /v1/public/nonconforming-products`, called in-process like every dashboard page."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.gateway.dashboard.pages import Page, e, filters_form
from services.gateway.dashboard.router import Api, _district_names, _html, _page, _problem, _public_table

disclosure_pages = APIRouter(prefix="/dashboard", include_in_schema=False)
PAGE_SIZE = 100


#: The table's columns (words of the page), then the notice's.
_COLUMNS = (
    "producer",
    "district",
    "product",
    "brand",
    "model_spec",
    "batch",
    "sampled_unit",
    "nonconforming_items",
    "agency",
    "report_no",
    "report_date",
)


@disclosure_pages.get("/public/nonconforming", response_class=HTMLResponse)
async def public_nonconforming(
    request: Request,
    enterprise: str | None = None,
    product: str | None = None,
    district: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    district = district if district and re.fullmatch(r"\d{6}", district) else None
    enterprise = (enterprise or "").strip()[:100] or None
    product = (product or "").strip()[:100] or None
    page = _page(request, enterprise=enterprise, product=product, district=district)
    params = {"limit": PAGE_SIZE, "cursor": cursor, "enterprise": enterprise, "product": product, "district": district}
    async with Api(request) as api:
        names = await _district_names(api)
        status, body = await api.get("/v1/public/nonconforming-products", params)
    title = page.t("nav_nonconforming")
    form = _search_form(page, names, enterprise, product, district)
    if status != 200:
        return _html(page.layout(title, form + _problem(page, status, body), active="nonconforming"))
    rows = [_row(r) for r in body["items"]]
    headers = [page.t(h) for h in _COLUMNS] + [page.pick("公告", "Notice")]
    nxt = body.get("next_cursor")
    more = (
        page.url(
            "/dashboard/public/nonconforming", enterprise=enterprise, product=product, district=district, cursor=nxt
        )
        if nxt
        else None
    )
    content = form + _public_table(page, headers, rows, "public nonconforming", more)
    return _html(page.layout(title, content, active="nonconforming"))


def _search_form(
    page: Page, names: dict[str, str], enterprise: str | None, product: str | None, district: str | None
) -> str:
    """Fragments of the producer's name and of the product, and a district (or the whole city)."""
    options = f'<option value="">{e(page.t("whole_city"))}</option>' + "".join(
        f'<option value="{e(code)}"{" selected" if code == district else ""}>{e(name)} {e(code)}</option>'
        for code, name in sorted(names.items())
    )
    return filters_form(
        page,
        "/dashboard/public/nonconforming",
        f'<label>{e(page.t("producer"))} <input id="enterprise" name="enterprise" value="{e(enterprise)}"></label>'
        f'<label>{e(page.t("product"))} <input id="product" name="product" value="{e(product)}"></label>'
        f'<label>{e(page.t("district"))} <select id="district" name="district">{options}</select></label>',
        button="search",
    )


def _items(r: dict[str, object]) -> str:
    """The non-conforming items of one result, one a line."""
    found = r["nonconforming_items"]
    assert isinstance(found, list)
    return "<br>".join(
        f"{e(i['item'])}: {e(i['measured'])}{e(i.get('unit') or '')} ({e(i['requirement'])}; {e(i['standard'])})"
        for i in found
    )


def _row(r: dict[str, object]) -> str:
    """One published result: the producer, the product, what failed, who tested it and the notice."""
    return (
        f'<tr class="nonconforming" data-report="{e(r["report_no"])}" data-agency="{e(r["agency_code"])}">'
        f'<td class="producer">{e(r["enterprise_name"])}</td><td>{e(r.get("district_name_zh") or r["district_code"])}'
        f'</td><td class="product">{e(r["product_name"])}</td><td>{e(r.get("brand"))}</td>'
        f"<td>{e(r.get('model_spec'))}</td><td>{e(r.get('batch_no') or r.get('production_date'))}</td>"
        f"<td>{e(r.get('sampled_unit'))}</td><td>{_items(r)}</td><td>{e(r['agency_code'])}</td>"
        f"<td>{e(r['report_no'])}</td><td>{e(r['report_date'])}</td>"
        f'<td class="notice">{e(r.get("notice_no") or "—")} {e(r.get("notice_date") or "")}</td></tr>'
    )
