"""HTML building blocks for the dashboard: the layout, words in two languages, number formats.

Plain functions over `html.escape` rather than a template engine: the pages are few, and every
value that reaches the page passes through `e()` (or is SVG built the same way in charts.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

#: Words in two languages, (zh, en), one table per use (data/dashboard_words.json, read once).
Words = dict[str, tuple[str, str]]


def _word_tables() -> dict[str, Words]:
    raw = json.loads((Path(__file__).parents[1] / "data" / "dashboard_words.json").read_text(encoding="utf-8"))
    return {name: {k: (zh, en) for k, (zh, en) in words.items()} for name, words in raw.items() if name != "_comment"}


_TABLES = _word_tables()
#: Every page's words.
WORDS = _TABLES["pages"]
#: The attainment statuses' names (Open SDG).
STATUS_NAMES = _TABLES["statuses"]
#: The early-warning page's own words.
WARNING_WORDS = _TABLES["warnings"]


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

    def t(self, key: str, words: Words = WORDS) -> str:
        """A word in the page's language, from every page's words or a page's own (`words`)."""
        zh, en = words[key]
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
