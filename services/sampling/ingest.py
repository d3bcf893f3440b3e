"""Parsing bulk requests (JSON array, NDJSON, CSV) into validated rows or per-row problems."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from services.sampling.schemas import ResultIn, RowProblem
from shared.errors import (
    BatchTooLarge,
    MalformedCsv,
    MalformedCsvHeader,
    MalformedJson,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.problems import validation_errors

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv",)

Row = ResultIn | list[RowProblem]
_many = TypeAdapter(list[ResultIn])

#: The CSV header, in English and in Chinese (either row is accepted; documented in the API).
CSV_COLUMNS: dict[str, str] = {
    "report_no": "报告编号",
    "level": "抽检级别",
    "sector": "行业",
    "key_product": "重要产品",
    "product_category": "产品类别",
    "product_name": "产品名称",
    "brand": "商标",
    "model_spec": "规格型号",
    "batch_no": "批号",
    "production_date": "生产日期",
    "uscc": "统一社会信用代码",
    "enterprise_name": "企业名称",
    "district_code": "区市代码",
    "sampled_unit": "被抽样单位",
    "sampling_date": "抽样日期",
    "report_date": "报告日期",
    "conclusion": "检验结论",
    "nonconforming_items": "不合格项目",
}
_FROM_ZH = {zh: en for en, zh in CSV_COLUMNS.items()}
#: Chinese cell values accepted in CSV files for the enumerations.
_VALUES_ZH: dict[str, dict[str, str]] = {
    "level": {
        "国家级": "national",
        "国家": "national",
        "省级": "provincial",
        "省": "provincial",
        "市级": "municipal",
        "市": "municipal",
        "区级": "district",
        "区市级": "district",
        "区": "district",
    },
    "sector": {
        "制造业": "manufacturing",
        "农产品": "agricultural",
        "农业": "agricultural",
        "食品": "food",
        "工程": "engineering",
        "建设工程": "engineering",
    },
    "conclusion": {"合格": "pass", "不合格": "fail"},
    "key_product": {"是": "true", "否": "false"},
}


def _problems(exc: ValidationError, prefix_loc: int = 0) -> list[RowProblem]:
    errors = []
    for e in exc.errors():
        loc = tuple(e["loc"])[prefix_loc:]
        errors.append({**e, "loc": loc})
    return [RowProblem(field=e["field"], reason=e["reason"]) for e in validation_errors(errors)]


def _validate(obj: Any) -> Row:
    if not isinstance(obj, dict):
        return [RowProblem(field="", reason="each row must be a JSON object")]
    try:
        return ResultIn.model_validate(obj)
    except ValidationError as exc:
        return _problems(exc)


def _validate_json_rows(raw_rows: list[bytes]) -> list[Row]:
    """All rows in one pydantic-core call (the fast path); row by row only if some row is bad."""
    try:
        return list(_many.validate_json(b"[" + b",".join(raw_rows) + b"]"))
    except ValidationError:
        pass
    out: list[Row] = []
    for raw in raw_rows:
        try:
            out.append(ResultIn.model_validate_json(raw))
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                out.append([RowProblem(field="", reason="malformed JSON")])
            elif any(e["type"] == "model_type" for e in exc.errors()):
                out.append([RowProblem(field="", reason="each row must be a JSON object")])
            else:
                out.append(_problems(exc))
    return out


def _parse_ndjson(body: bytes, max_rows: int) -> list[Row]:
    lines = [ln for ln in body.split(b"\n") if ln.strip()]
    if len(lines) > max_rows:
        raise BatchTooLarge(len(lines), max_rows)
    return _validate_json_rows(lines)


def _parse_json(body: bytes, max_rows: int) -> list[Row]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(f"The body is not JSON: {exc}") from None
    if not isinstance(data, list):
        raise ValidationFailed.one(
            "body", "body", "expected an array", "The body must be a JSON array of rows", "list_type"
        )
    if len(data) > max_rows:
        raise BatchTooLarge(len(data), max_rows)
    return [_validate(obj) for obj in data]


def _parse_csv(body: bytes, max_rows: int) -> list[Row]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedCsv(f"CSV must be UTF-8: {exc}") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise MalformedCsv("The CSV has no header row") from None
    names = [_FROM_ZH.get(h.strip(), h.strip()) for h in header]
    unknown = [h for h, n in zip(header, names, strict=True) if n not in CSV_COLUMNS]
    missing = [c for c in ("report_no", "uscc", "conclusion") if c not in names]
    if unknown or missing:
        detail = "; ".join(
            filter(
                None,
                [
                    f"unknown columns: {', '.join(unknown)}" if unknown else "",
                    f"missing columns: {', '.join(missing)}" if missing else "",
                ],
            )
        )
        raise MalformedCsvHeader(
            f"{detail}. Columns (English or Chinese): " + ", ".join(f"{en}/{zh}" for en, zh in CSV_COLUMNS.items()),
        )
    rows: list[Row] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= max_rows:
                raise BatchTooLarge(len(rows) + 1 + sum(1 for _ in reader), max_rows)
            if len(cells) != len(names):
                rows.append([RowProblem(field="", reason=f"{len(cells)} cells, the header has {len(names)}")])
                continue
            rows.append(_csv_row(dict(zip(names, cells, strict=True))))
    except csv.Error as exc:
        raise MalformedCsv(f"line {reader.line_num}: {exc}") from None
    return rows


def _csv_row(cells: dict[str, str]) -> Row:
    obj: dict[str, Any] = {}
    for key, raw in cells.items():
        value = raw.strip()
        if value == "":
            continue
        value = _VALUES_ZH.get(key, {}).get(value, value)
        if key == "nonconforming_items":
            try:
                obj[key] = orjson.loads(value)
            except orjson.JSONDecodeError:
                return [
                    RowProblem(
                        field=key, reason="must be a JSON array of {item, requirement, measured, unit, standard}"
                    )
                ]
        else:
            obj[key] = value
    return _validate(obj)


def parse_batch(body: bytes, content_type: str, max_rows: int) -> list[Row]:
    media = content_type.split(";")[0].strip().lower()
    if media in NDJSON_TYPES:
        return _parse_ndjson(body, max_rows)
    if media in JSON_TYPES:
        return _parse_json(body, max_rows)
    if media in CSV_TYPES:
        return _parse_csv(body, max_rows)
    raise UnsupportedMediaType(
        f"Send {', '.join(JSON_TYPES + NDJSON_TYPES + CSV_TYPES)}; got {media or 'none'}.",
    )
