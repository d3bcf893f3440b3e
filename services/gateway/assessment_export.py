"""The district × indicator table of an assessment as XLSX (openpyxl) and CSV, from the same objects
the API answers with: a cell's number is the API's number, only its display is formatted."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from services.gateway.assessment_schemas import DistrictAssessment, Document
from services.gateway.schemes import AssessmentScheme

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: What `GET /v1/assessments:export` answers, in each `format`.
DOCUMENT = Document(
    "The district × indicator table: XLSX (a sheet per year and the method) or CSV", {"xlsx": XLSX, "csv": "text/csv"}
)
FIXED = ("district_code", "district", "score", "rank", "change", "base_score", "penalties", "bonus", "judged_weight")
_HEAD = Font(bold=True, color="FFFFFF")
_FILL = PatternFill("solid", fgColor="1F4E79")
_GREY = Font(color="808080", italic=True)

METHOD_TEXT = (
    "Each indicator: attainment = clamp((value − floor) ÷ (target − floor), 0, cap); points = weight × attainment.",
    "A pass rate with fewer than min_results results, or a value not reported, is not judged: its weight leaves the "
    "district's denominator.",
    "Base score = full_marks × Σ points ÷ Σ judged weights; score = base − deterioration penalties + bonuses.",
    "Deterioration: a pass rate's 95% Wilson interval wholly below the year before; other values: any fall.",
    "A count's target is the plan's end's, judged each year against its pro-rata share.",
    "Districts judged on less than min_judged_share of the weights get no score and no rank.",
    "Ranks: highest score first; equal scores share a rank. Change: the score minus the year before's.",
)


def _columns(scheme: AssessmentScheme) -> list[str]:
    cols = list(FIXED)
    for i in scheme.indicators:
        cols += [f"{i.code}.value", f"{i.code}.target", f"{i.code}.points", f"{i.code}.status"]
    return cols


def _row(a: DistrictAssessment) -> dict[str, Any]:
    row: dict[str, Any] = {
        "district_code": a.district_code,
        "district": a.name_zh,
        "score": a.score,
        "rank": a.rank,
        "change": a.change,
        "base_score": a.base_score,
        "penalties": a.penalties,
        "bonus": a.bonus,
        "judged_weight": a.judged_weight,
    }
    for ln in a.indicators:
        row |= {
            f"{ln.code}.value": ln.value,
            f"{ln.code}.target": ln.target,
            f"{ln.code}.points": ln.points,
            f"{ln.code}.status": ln.status,
        }
    return row


def xlsx(plan_id: str, scheme: AssessmentScheme, years: Mapping[int, Sequence[DistrictAssessment]]) -> bytes:
    """One sheet per year (districts by rank, every indicator's value, target, points and status)
    and the method on its own sheet."""
    book = Workbook()
    book.remove(book.active)
    cols = _columns(scheme)
    for year, districts in years.items():
        sheet = book.create_sheet(str(year))
        sheet.append(cols)
        for cell in sheet[1]:
            cell.font, cell.fill = _HEAD, _FILL
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for a in districts:
            row = _row(a)
            sheet.append([row[c] for c in cols])
            if not a.ranked:
                for cell in sheet[sheet.max_row]:
                    cell.font = _GREY
        for idx, name in enumerate(cols, start=1):
            letter = get_column_letter(idx)
            sheet.column_dimensions[letter].width = 12 if "." in name else 14
            if name.endswith((".points",)) or name in ("score", "change", "base_score"):
                for (cell,) in sheet.iter_rows(min_row=2, min_col=idx, max_col=idx):
                    cell.number_format = "0.00"
            elif name.endswith(".value") or name.endswith(".target"):
                for (cell,) in sheet.iter_rows(min_row=2, min_col=idx, max_col=idx):
                    cell.number_format = "0.0000"
        sheet.freeze_panes = "C2"
    method = book.create_sheet("method")
    method.append([f"{scheme.method}: {scheme.name_zh} ({scheme.name_en}), plan {plan_id}, scheme {scheme.id}"])
    method["A1"].font = Font(bold=True)
    for line in METHOD_TEXT:
        method.append([line])
    method.append([])
    method.append(["full_marks", scheme.full_marks])
    method.append(["cap", scheme.cap])
    method.append(["min_results", scheme.min_results])
    method.append(["min_judged_share", scheme.min_judged_share])
    method.append(["deterioration_penalty", scheme.deterioration_penalty])
    method.append([])
    method.append(["indicator", "weight", "target", "floor", "district targets"])
    for i in scheme.indicators:
        targets = ", ".join(f"{d}: {t:g}" for d, t in sorted(i.district_targets.items()))
        method.append([i.code, i.weight, i.target, i.floor, targets])
    for b in scheme.bonuses:
        method.append([f"bonus {b.code}", b.points_each, b.max_points])
    method.column_dimensions["A"].width = 48
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(scheme: AssessmentScheme, years: Mapping[int, Sequence[DistrictAssessment]]) -> bytes:
    """The same rows as the sheets, one per (year, district), with a BOM so spreadsheet programs read UTF-8."""
    buf = io.StringIO()
    cols = ["year", *_columns(scheme)]
    writer = csv.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    for year, districts in years.items():
        for a in districts:
            writer.writerow({"year": year, **{k: ("" if v is None else v) for k, v in _row(a).items()}})
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
