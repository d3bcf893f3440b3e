"""Reading a historical registry sent as CSV: the header names the columns (see CSV_COLUMNS)."""

from __future__ import annotations

import csv
import io

from services.awards.service import CSV_COLUMNS, CSV_REQUIRED, EXTRA_CELLS
from shared.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed, field_error


class CsvEncoding(ValidationFailed):
    slug = "csv-encoding"
    title = "Unreadable CSV"


class CsvEmpty(ValidationFailed):
    slug = "csv-empty"
    title = "Empty CSV"


class CsvColumns(ValidationFailed):
    slug = "csv-columns"
    title = "CSV columns not as documented"


class TooManyRows(PayloadTooLarge):
    slug = "too-many-rows"
    title = "Too many rows"


class CsvTooLarge(PayloadTooLarge):
    title = "CSV too large"


class SendCsv(UnsupportedMediaType):
    title = "Send text/csv"


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
        raise CsvEncoding("The CSV is neither UTF-8 nor GB18030 text") from None


def parse_csv(body: bytes, content_type: str, max_rows: int) -> list[dict[str, str]]:
    if content_type.split(";")[0].strip().lower() not in ("text/csv", "application/csv"):
        raise SendCsv(f"Got {content_type or 'no content type'}")
    reader = csv.DictReader(io.StringIO(decode(body)))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise CsvEmpty("The CSV has no header row")
    unknown = [h for h in header if h not in CSV_COLUMNS]
    missing = [h for h in CSV_REQUIRED if h not in header]
    if unknown or missing:
        raise CsvColumns(
            f"unknown columns: {unknown or 'none'}; missing columns: {missing or 'none'}",
            [field_error(h, "body", "unknown column") for h in unknown]
            + [field_error(h, "body", "missing column") for h in missing],
            columns=list(CSV_COLUMNS),
        )
    reader.fieldnames = header
    rows: list[dict[str, str]] = []
    for record in reader:
        if len(rows) >= max_rows:
            raise TooManyRows(f"At most {max_rows} rows per request")
        extra = record.pop(None, None)
        row = {k: (v or "") for k, v in record.items()}
        if extra:
            row[EXTRA_CELLS] = ",".join(extra)  # reported on its row, not a reason to refuse the file
        rows.append(row)
    return rows
