"""Parsing bulk requests (JSON array, NDJSON, CSV) into validated rows or per-row problems."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from services.sampling.schemas import ArchiveResultIn, ResultIn, RowProblem
from shared.problems import validation_errors
from shared.tabular import ANY_FORMAT, body_format, json_array, ndjson_lines, read_csv

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
#: An archive row's further columns (POST /v1/results:import).
ARCHIVE_COLUMNS: dict[str, str] = CSV_COLUMNS | {
    "agency_code": "抽检机构",
    "reinspection_outcome": "复检结论",
    "reinspection_report_no": "复检报告编号",
    "reinspection_requested_on": "复检申请日期",
    "reinspection_decided_on": "复检决定日期",
    "state": "状态",
}
_ARCHIVE_FROM_ZH = {zh: en for en, zh in ARCHIVE_COLUMNS.items()}
CSV_REQUIRED = ("report_no", "uscc", "conclusion")
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
    "reinspection_outcome": {"维持": "upheld", "撤销": "overturned"},
    "state": {"待定": "provisional", "终局": "final"},
}


_BOOLEAN_COLUMNS = frozenset({"key_product"})
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


def _problems(exc: ValidationError, prefix_loc: int = 0) -> list[RowProblem]:
    errors = []
    for e in exc.errors():
        loc = tuple(e["loc"])[prefix_loc:]
        errors.append({**e, "loc": loc})
    return [RowProblem(field=e["field"], reason=e["reason"]) for e in validation_errors(errors)]


def _validate(obj: Any, model: type[ResultIn] = ResultIn) -> Row:
    if not isinstance(obj, dict):
        return [RowProblem(field="", reason="each row must be a JSON object")]
    try:
        return model.model_validate(obj)
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


def _csv_rows(body: bytes, max_rows: int, model: type[ResultIn] = ResultIn) -> list[Row]:
    columns, aliases = (ARCHIVE_COLUMNS, _ARCHIVE_FROM_ZH) if model is ArchiveResultIn else (CSV_COLUMNS, _FROM_ZH)
    table = read_csv(body, columns, CSV_REQUIRED, max_rows, aliases=aliases)
    width = len(table.names)
    return [
        _csv_row(dict(zip(table.names, cells, strict=True)), model)
        if len(cells) == width
        else [RowProblem(field="", reason=f"{len(cells)} cells, the header has {width}")]
        for cells in table.rows
    ]


def _csv_row(cells: dict[str, str], model: type[ResultIn] = ResultIn) -> Row:
    obj: dict[str, Any] = {}
    for key, raw in cells.items():
        value = raw.strip()
        if value == "":
            continue
        value = _VALUES_ZH.get(key, {}).get(value, value)
        if key in _BOOLEAN_COLUMNS:
            # A cell is text: `true`/`false`, `1`/`0` or 是/否 is the boolean; anything else is refused by
            # the strict model, as in a JSON row.
            obj[key] = _BOOLEANS.get(value.lower(), value)
        elif key == "nonconforming_items":
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
    return _validate(obj, model)


def parse_batch(body: bytes, content_type: str, max_rows: int) -> list[Row]:
    fmt = body_format(content_type, ANY_FORMAT)
    if fmt == "ndjson":
        return _validate_json_rows(ndjson_lines(body, max_rows))
    if fmt == "json":
        return [_validate(obj) for obj in json_array(body, max_rows)]
    return _csv_rows(body, max_rows)


def parse_archive(body: bytes, content_type: str, max_rows: int) -> list[ArchiveResultIn | list[RowProblem]]:
    """An archive's rows (POST /v1/results:import): the batch formats, with the outcome columns."""
    fmt = body_format(content_type, ANY_FORMAT)
    if fmt == "csv":
        rows = _csv_rows(body, max_rows, ArchiveResultIn)
    else:
        objs = json_array(body, max_rows) if fmt == "json" else [_loads(line) for line in ndjson_lines(body, max_rows)]
        rows = [_validate(obj, ArchiveResultIn) for obj in objs]
    return [
        r if isinstance(r, ArchiveResultIn | list) else [RowProblem(field="", reason="not an archive row")]
        for r in rows
    ]


def _loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None  # reported as "each row must be a JSON object"
