"""Reading a historical registry sent as CSV: the header names the columns (see CSV_COLUMNS)."""

from __future__ import annotations

import csv
import io

from services.awards.service import CSV_COLUMNS, CSV_REQUIRED, EXTRA_CELLS
from shared.problems import Problem


def decode(body: bytes) -> str:
    """UTF-8 (with or without Excel's BOM); registries saved by older Chinese office software are
    often GB18030, so try it before giving up."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return body.decode("gb18030")
    except UnicodeDecodeError:
        raise Problem(422, "csv-encoding", "Unreadable CSV", "The CSV is neither UTF-8 nor GB18030 text") from None


def parse_csv(body: bytes, content_type: str, max_rows: int) -> list[dict[str, str]]:
    if content_type.split(";")[0].strip().lower() not in ("text/csv", "application/csv"):
        raise Problem(415, "unsupported-media-type", "Send text/csv", f"Got {content_type or 'no content type'}")
    reader = csv.DictReader(io.StringIO(decode(body)))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise Problem(422, "csv-empty", "Empty CSV", "The CSV has no header row")
    unknown = [h for h in header if h not in CSV_COLUMNS]
    missing = [h for h in CSV_REQUIRED if h not in header]
    if unknown or missing:
        raise Problem(
            422,
            "csv-columns",
            "CSV columns not as documented",
            f"unknown columns: {unknown or 'none'}; missing columns: {missing or 'none'}",
            errors=[{"field": h, "in": "body", "reason": "unknown column"} for h in unknown]
            + [{"field": h, "in": "body", "reason": "missing column"} for h in missing],
            columns=list(CSV_COLUMNS),
        )
    reader.fieldnames = header
    rows: list[dict[str, str]] = []
    for record in reader:
        if len(rows) >= max_rows:
            raise Problem(413, "too-many-rows", "Too many rows", f"At most {max_rows} rows per request")
        extra = record.pop(None, None)
        row = {k: (v or "") for k, v in record.items()}
        if extra:
            row[EXTRA_CELLS] = ",".join(extra)  # reported on its row, not a reason to refuse the file
        rows.append(row)
    return rows
