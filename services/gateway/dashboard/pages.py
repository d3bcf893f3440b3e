"""HTML building blocks for the dashboard: the layout, words in two languages, number formats.

Plain functions over `html.escape` rather than a template engine: the pages are few, and every
value that reaches the page passes through `e()` (or is SVG built the same way in charts.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any, Protocol
from urllib.parse import urlencode

WORDS: dict[str, tuple[str, str]] = {
    "title": ("青岛市质量强市目标达成情况", "Qingdao quality-city targets: attainment"),
    "nav_overview": ("目标总览", "Overview"),
    "nav_credit": ("企业质量信用", "Enterprise credit"),
    "nav_blacklist": ("黑名单公示", "Published blacklist"),
    "nav_honours": ("荣誉公示", "Published honours"),
    "nav_nonconforming": ("不合格产品公示", "Non-conforming products"),
    "nav_assessment": ("区(市)考核", "District assessment"),
    "nav_warnings": ("质量安全预警", "Early warnings"),
    "scheme": ("考核方案", "Scheme"),
    "rank": ("排名", "Rank"),
    "score": ("得分", "Score"),
    "change": ("较上年", "Change"),
    "bonus_penalty": ("加分 / 扣分", "Bonus / penalty"),
    "judged": ("可评权重", "Weight judged"),
    "scoring_method": ("计分方法", "Scoring method"),
    "report": ("年度考核报告", "Annual assessment report"),
    "weight": ("权重", "Weight"),
    "points": ("得分", "Points"),
    "login": ("登录", "Sign in"),
    "logout": ("退出", "Sign out"),
    "signed_in": ("已登录", "Signed in"),
    "csrf_refused": ("表单已过期，请重新提交。", "The form has expired; please submit it again."),
    "token_refused": ("令牌无效或已过期。", "The token is not valid or has expired."),
    "plan": ("规划", "Plan"),
    "district": ("区(市)", "District"),
    "whole_city": ("全市", "Whole city"),
    "as_of": ("截至日期", "As of"),
    "apply": ("查询", "Apply"),
    "indicator": ("指标", "Indicator"),
    "value": ("当前值", "Value"),
    "target": ("目标", "Target"),
    "progress": ("进度", "Progress"),
    "status": ("状态", "Status"),
    "year": ("年份", "Year"),
    "basis": ("样本量 / 95%区间", "n / 95% interval"),
    "freshness": ("数据新鲜度", "Data freshness"),
    "last_event": ("最近事件时间", "last event"),
    "lag": ("延迟", "lag"),
    "events": ("已处理事件", "events applied"),
    "no_events": ("尚无数据", "no data yet"),
    "method": ("状态判定方法", "Status method"),
    "series": ("历年数值与目标线", "Yearly values against the target"),
    "by_district": ("分区(市)情况", "By district"),
    "by_district_year": ("分区(市)历年情况", "By district and year"),
    "rows": ("明细", "rows"),
    "reported_by": ("报送系统", "Reported by"),
    "evidence": ("依据", "Evidence"),
    "reason": ("说明", "Reason"),
    "computed": ("由事件计算", "computed from events"),
    "reported": ("外部系统报送", "reported by another system"),
    "a_batch": ("一批", "a batch"),
    "search": ("搜索", "Search"),
    "search_hint": ("企业名称或统一社会信用代码", "Enterprise name or USCC"),
    "no_match": ("没有找到匹配的企业", "No enterprise matches"),
    "name": ("名称", "Name"),
    "uscc": ("统一社会信用代码", "USCC"),
    "rating": ("信用等级", "Credit rating"),
    "listed": ("列入黑名单", "Blacklisted"),
    "not_listed": ("未列入黑名单", "Not blacklisted"),
    "blacklist_history": ("黑名单记录", "Blacklist history"),
    "active_honours": ("有效荣誉", "Active honours"),
    "suspended_honours": ("暂停的荣誉", "Suspended honours"),
    "procurement": ("政府采购优先", "Procurement priority"),
    "eligible": ("符合", "Eligible"),
    "not_eligible": ("不符合", "Not eligible"),
    "sampling": ("抽检情况", "Sampling"),
    "pass_rate": ("合格率", "Pass rate"),
    "recent_fails": ("近期不合格", "Recent fails"),
    "history_chart": ("历年抽检结果", "Sampling results by year"),
    "passes": ("合格", "pass"),
    "fails": ("不合格", "fail"),
    "need_token": (
        "此页面含非公开数据：请先登录(粘贴访问令牌)。",
        "This page shows non-public data: sign in by pasting a bearer token.",
    ),
    "token": ("访问令牌 (Bearer token)", "Bearer token"),
    "reason_category": ("列入事由", "Reason"),
    "authority": ("决定机关", "Authority"),
    "decision_no": ("决定文号", "Decision no."),
    "listed_on": ("列入日期", "Listed on"),
    "publish_until": ("公示截止", "Published until"),
    "honour_type": ("荣誉类型", "Honour type"),
    "holder": ("获得者", "Holder"),
    "subject": ("对象", "Subject"),
    "certificate": ("证书编号", "Certificate"),
    "granted_on": ("授予日期", "Granted on"),
    "valid_until": ("有效期至", "Valid until"),
    "next_page": ("下一页", "Next page"),
    "empty": ("暂无记录", "Nothing to show"),
    "unavailable": ("数据暂不可用", "Data unavailable"),
    "public_note": ("公示信息，无需登录。", "Public information: no sign-in needed."),
    "back": ("返回总览", "Back to the overview"),
    "profile": ("企业信用档案", "Credit profile"),
    "district_unknown": ("未知", "unknown"),
    "state": ("状态", "State"),
    "product": ("产品", "Product"),
    "sampling_date": ("抽样日期", "Sampled"),
    "producer": ("标称生产企业", "Producer"),
    "brand": ("商标", "Brand"),
    "model_spec": ("规格型号", "Specification"),
    "batch": ("生产日期/批号", "Batch or production date"),
    "sampled_unit": ("被抽样单位", "Sampled unit"),
    "nonconforming_items": ("不合格项目(检验结果; 标准值)", "Non-conforming items (measured; required)"),
    "agency": ("承检机构", "Agency"),
    "report_no": ("报告编号", "Report no."),
    "report_date": ("报告日期", "Report date"),
}
STATUS_NAMES: dict[str, tuple[str, str]] = {
    "achieved": ("已实现", "achieved"),
    "on_track": ("进展顺利", "on track"),
    "acceleration_needed": ("需加快", "acceleration needed"),
    "limited_progress": ("进展有限", "limited progress"),
    "deterioration": ("退步", "deterioration"),
    "no_data": ("无数据", "no data"),
}


def e(value: Any) -> str:
    return escape("" if value is None else str(value))


class Page:
    """What every page needs to know about its request: the language and the filters to keep."""

    def __init__(
        self, lang: str, keep: Mapping[str, str | None], signed_in: bool, logout_csrf: str | None = None
    ) -> None:
        self.lang = "en" if lang == "en" else "zh"
        self.keep = {k: v for k, v in keep.items() if v}
        self.signed_in = signed_in
        self.logout_csrf = logout_csrf or ""

    def t(self, key: str) -> str:
        zh, en = WORDS[key]
        return en if self.lang == "en" else zh

    def status(self, code: str) -> str:
        zh, en = STATUS_NAMES.get(code, (code, code))
        return en if self.lang == "en" else zh

    def pick(self, zh: str | None, en: str | None) -> str:
        return (en or zh or "") if self.lang == "en" else (zh or en or "")

    def url(self, path: str, **params: Any) -> str:
        """A dashboard link that keeps the language (and any filter asked to be kept)."""
        q = {"lang": "en"} if self.lang == "en" else {}
        q.update({k: str(v) for k, v in params.items() if v not in (None, "")})
        return path + ("?" + urlencode(q) if q else "")

    def layout(self, title: str, body: str, *, active: str) -> str:
        nav = [
            ("overview", "/dashboard", self.t("nav_overview")),
            ("assessment", "/dashboard/assessment", self.t("nav_assessment")),
            ("credit", "/dashboard/credit", self.t("nav_credit")),
            ("blacklist", "/dashboard/public/blacklist", self.t("nav_blacklist")),
            ("honours", "/dashboard/public/honours", self.t("nav_honours")),
            ("nonconforming", "/dashboard/public/nonconforming", self.t("nav_nonconforming")),
            ("warnings", "/dashboard/warnings", self.t("nav_warnings")),
        ]
        links = "".join(
            f'<a class="{"active" if key == active else ""}" href="{e(self.url(href))}">{e(label)}</a>'
            for key, href, label in nav
        )
        other = "zh" if self.lang == "en" else "en"
        switch_q = {**self.keep, **({"lang": "en"} if other == "en" else {})}
        switch = f'<a class="lang" href="?{e(urlencode(switch_q))}">{"中文" if other == "zh" else "English"}</a>'
        if self.signed_in:
            auth = (
                f'<form class="logout" method="post" action="/dashboard/logout">'
                f'<input type="hidden" name="csrf" value="{e(self.logout_csrf)}"><span>{e(self.t("signed_in"))}'
                f'</span> <button type="submit">{e(self.t("logout"))}</button></form>'
            )
        else:
            auth = f'<a class="login" href="{e(self.url("/dashboard/login"))}">{e(self.t("login"))}</a>'
        return (
            f'<!doctype html><html lang="{"en" if self.lang == "en" else "zh-CN"}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(title)} · QualityCity</title>"
            f'<link rel="stylesheet" href="/dashboard/static/dashboard.css"></head><body>'
            f'<header><div class="brand">QualityCity · {e(self.t("title"))}</div><nav>{links}</nav>'
            f'<div class="tools">{switch} {auth}</div></header><main><h1>{e(title)}</h1>{body}</main>'
            f"<footer>青政发〔2012〕32号 · QualityCity</footer></body></html>"
        )


class Shown(Protocol):
    """What writing a figure's value needs to know about it (a schemas.Figure has it all)."""

    @property
    def kind(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def target(self) -> float | None: ...
    @property
    def target_text(self) -> str | None: ...


def is_rate(fig: Shown) -> bool:
    return fig.kind.endswith("_rate") or fig.unit == "ratio"


def scale_of(fig: Shown) -> float | None:
    """The value's natural scale for bars and charts: 1 for rates, 100 for 0–100 scores, none for counts."""
    if is_rate(fig):
        return 1.0
    if fig.kind == "min_score":
        return 100.0
    return None


def fmt_value(fig: Shown, value: float | None) -> str:
    """How a figure's value is written on the page (the tests compute the same from the API)."""
    if value is None:
        return "—"
    if is_rate(fig):
        return f"{value * 100:.2f}%"
    if fig.kind == "min_score":
        return f"{value:.1f}"
    return f"{value:,.0f}"


def fmt_target(page: Page, fig: Shown) -> str:
    if fig.target is None:
        if fig.target_text:
            zh, _, en = fig.target_text.partition(" (")
            return en.rstrip(")") if page.lang == "en" and en else zh
        return "—"
    prefix = "" if fig.kind in ("exact_rate", "qualitative") else "≥ "
    return prefix + fmt_value(fig, float(fig.target))


def filters_form(page: Page, action: str, fields: str, button: str = "apply") -> str:
    """A GET form of filters (`fields`: its labelled inputs) that keeps the page's language."""
    lang = '<input type="hidden" name="lang" value="en">' if page.lang == "en" else ""
    return (
        f'<form class="filters" method="get" action="{e(action)}">{lang}{fields}'
        f'<button id="apply" type="submit">{e(page.t(button))}</button></form>'
    )


def row(*cells: Any, cls: str | None = None) -> str:
    """A table row of plain-text cells, each escaped."""
    tds = "".join(f"<td>{e(c)}</td>" for c in cells)
    return f'<tr class="{e(cls)}">{tds}</tr>' if cls is not None else f"<tr>{tds}</tr>"


def table(headers: list[str], rows: list[str], cls: str = "") -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def notice(text: str, cls: str = "notice") -> str:
    return f'<p class="{cls}">{e(text)}</p>'
