"""The annual printable assessment report (考核报告), for the city (every district) or one district:
HTML with a print stylesheet, and PDF rendered from that HTML by WeasyPrint (Debian's pango).

Drawn from the same `DistrictAssessment` objects `GET /v1/assessments` answers with: a number on
paper is the API's number, shown with two decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

from anyio import to_thread

from services.gateway.assessment_export import METHOD_TEXT
from services.gateway.assessment_schemas import DistrictAssessment, Document
from services.gateway.plans import Plan
from services.gateway.schemes import AssessmentScheme

PDF = "application/pdf"
#: What `GET /v1/assessments:report` answers, in each `format`.
DOCUMENT = Document(
    "The year's printable report: PDF, or the HTML it is printed from", {"pdf": PDF, "html": "text/html"}
)

#: A CJK font first (fonts-wqy-zenhei, installed with the browser tests' packages): the report is Chinese.
_STYLE = """
@page { size: A4; margin: 16mm 14mm; @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; } }
body { font-family: "WenQuanYi Zen Hei", "Noto Sans CJK SC", sans-serif; font-size: 9pt; color: #111; }
h1 { font-size: 15pt; margin: 0 0 4pt; } h2 { font-size: 11.5pt; margin: 14pt 0 4pt; }
p.meta, ol.method { color: #444; font-size: 8pt; }
table { border-collapse: collapse; width: 100%; margin: 4pt 0; page-break-inside: auto; }
th, td { border: 0.5pt solid #999; padding: 2pt 4pt; vertical-align: top; }
th { background: #1f4e79; color: #fff; font-weight: normal; }
td.n { text-align: right; white-space: nowrap; } td.why { font-size: 7pt; color: #333; }
tr { page-break-inside: avoid; } section.district { page-break-before: always; }
"""


def _n(v: float | int | None, digits: int = 2, signed: bool = False) -> str:
    if v is None:
        return "—"
    return f"{float(v):+.{digits}f}" if signed else f"{float(v):.{digits}f}"


def _ranking(districts: Sequence[DistrictAssessment]) -> str:
    head = "".join(
        f"<th>{h}</th>" for h in ("排名", "区(市)", "代码", "得分", "较上年", "基础分", "扣分", "加分", "已评权重")
    )
    rows = "".join(
        f'<tr class="district" data-district="{d.district_code}"><td class="n">{d.rank or "—"}</td>'
        f'<td>{escape(d.name_zh)}</td><td>{d.district_code}</td><td class="n score">{_n(d.score)}</td>'
        f'<td class="n">{_n(d.change, signed=True)}</td><td class="n">{_n(d.base_score)}</td>'
        f'<td class="n">{_n(d.penalties)}</td><td class="n">{_n(d.bonus)}</td>'
        f'<td class="n">{_n(d.judged_weight, 0)} / {_n(d.total_weight, 0)}</td></tr>'
        for d in districts
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _district(d: DistrictAssessment) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("指标", "权重", "数值", "目标", "得分", "扣分", "说明"))
    lines = "".join(
        f'<tr><td>{escape(i.name_zh)}</td><td class="n">{_n(i.weight, 0)}</td><td class="n">{_n(i.value, 4)}</td>'
        f'<td class="n">{_n(i.target, 4)}</td><td class="n">{_n(i.points)}</td><td class="n">{_n(i.penalty)}</td>'
        f'<td class="why">{escape(i.why)}</td></tr>'
        for i in d.indicators
    )
    bonuses = "".join(f"<li>{escape(b.why)}</li>" for b in d.bonuses if b.points)
    return (
        f'<section class="district" data-district="{d.district_code}"><h2>{escape(d.name_zh)} {d.district_code} · '
        f"得分 {_n(d.score)} · 排名 {d.rank or '—'} · 较上年 {_n(d.change, signed=True)}</h2>"
        f'<p class="meta">{escape(d.why)}</p><table><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>'
        + (f"<ul>{bonuses}</ul>" if bonuses else "")
        + "</section>"
    )


def report_html(
    plan: Plan,
    scheme: AssessmentScheme,
    year: int,
    as_of: date,
    districts: Sequence[DistrictAssessment],
    district: str | None = None,
) -> str:
    """The year's report: the ranking, then each district's lines (only `district`'s when given)."""
    shown = [d for d in districts if district is None or d.district_code == district]
    whose = f"{escape(shown[0].name_zh)} " if district is not None and shown else ""
    method = "".join(f"<li>{escape(t)}</li>" for t in METHOD_TEXT)
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{year} {whose}考核报告</title>'
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{escape(plan.name_zh)} · {escape(scheme.name_zh)} · {year}年度{whose}考核报告</h1>"
        f'<p class="meta">数据截至 {as_of.isoformat()} · 方案 {escape(scheme.id)} · 满分 {_n(scheme.full_marks, 0)}'
        f" · 与 GET /v1/assessments?plan={escape(plan.id)}&amp;scheme={escape(scheme.id)}&amp;year={year} 数据一致</p>"
        f"<h2>排名</h2>{_ranking(districts if district is None else shown)}"
        f'<h2>评分方法</h2><ol class="method">{method}</ol>' + "".join(_district(d) for d in shown) + "</body></html>"
    )


async def report_pdf(html: str) -> bytes:
    """The HTML rendered to PDF off the event loop (WeasyPrint is synchronous and takes a second or two)."""

    def render() -> bytes:
        # Imported here: WeasyPrint loads pango through cffi, which only the report needs.
        from weasyprint import HTML

        pdf: bytes = HTML(string=html).write_pdf()
        return pdf

    return await to_thread.run_sync(render)
