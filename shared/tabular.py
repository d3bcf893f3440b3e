"""Bulk request bodies — CSV, NDJSON, a JSON array — read the same way in every service.

One reader answers the same problem for the same defect whichever service is asked:

- a body type the route does not take: 415 `unsupported-media-type`;
- not text in UTF-8 (with or without BOM) or GB18030, no header row, broken quoting: 400 `malformed-csv`;
- header names that are not the documented columns, or required ones missing: 422 `csv-columns`,
  each named in `errors`;
- not JSON: 400 `malformed-json`; JSON but not an array: 422 `validation-error`;
- more rows than the route takes: 413 `batch-too-large` (with `rows` and `max_rows`).

A byte-order mark is dropped wherever a file can carry one: before the body, before each NDJSON
line (files joined with `cat`), and before the first header name (a BOM inside GB18030 text).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from shared.errors import (
    BatchTooLarge,
    MalformedCsv,
    MalformedJson,
    UnsupportedMediaType,
    ValidationFailed,
    field_error,
)


# What every bulk answer starts with, whatever else it counts (no docstring: a subclass's schema would
# take it as its description).
class BulkReceipt(BaseModel):
    received: int
    created: int
    duplicates: int


#: The count field of a bulk answer that tallies each row outcome.
_TALLIED_OUTCOME = {
    "created": "created",
    "duplicates": "duplicate",
    "conflicts": "conflict",
    "rejected": "rejected",
    "unmatched": "unmatched",
}


def tally(answer: type[BaseModel], outcomes: Iterable[str] | Mapping[str, int]) -> dict[str, int]:
    """The count fields `answer` has (created, duplicates, conflicts, rejected, unmatched), in its order,
    from the rows' outcomes (or their counts already made)."""
    counts = Counter(outcomes)
    return {f: counts[_TALLIED_OUTCOME[f]] for f in answer.model_fields if f in _TALLIED_OUTCOME}


Format = Literal["csv", "ndjson", "json"]
MEDIA_TYPES: dict[str, Format] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/json": "json",
}
CSV_ONLY: tuple[Format, ...] = ("csv",)
ANY_FORMAT: tuple[Format, ...] = ("json", "ndjson", "csv")
BOM = "\ufeff"
_BOM_BYTES = BOM.encode()


class CsvColumns(ValidationFailed, slug="csv-columns", title="CSV columns not as documented"): ...


def body_format(content_type: str, accepted: Collection[Format]) -> Format:
    """Which reader a `Content-Type` asks for, among the formats the route takes (else 415)."""
    media = content_type.split(";")[0].strip().lower()
    fmt = MEDIA_TYPES.get(media)
    if fmt is None or fmt not in accepted:
        names = ", ".join(m for m, f in MEDIA_TYPES.items() if f in accepted)
        raise UnsupportedMediaType(f"Send {names}; got {media or 'none'}.")
    return fmt


def decode_text(body: bytes) -> str:
    """UTF-8 with or without Excel's BOM; else GB18030, which older Chinese office software saves."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return body.decode("gb18030").removeprefix(BOM)
    except UnicodeDecodeError:
        raise MalformedCsv("The CSV is neither UTF-8 nor GB18030 text") from None


@dataclass(frozen=True)
class CsvTable:
    """The header (column names as documented) and each non-blank row's cells, as sent."""

    names: list[str]
    rows: list[list[str]]


def read_csv(
    body: bytes,
    columns: Collection[str],
    required: Sequence[str],
    max_rows: int,
    aliases: Mapping[str, str] | None = None,
) -> CsvTable:
    """The CSV's header checked against `columns` (names may be given by an alias) and its rows.

    Rows whose cells are all blank are skipped; a row with another number of cells than the header
    is returned as sent, for the service to report on that row.
    """
    reader = csv.reader(io.StringIO(decode_text(body), newline=""), strict=True)
    aliases = aliases or {}
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise MalformedCsv("The CSV has no header row")
        sent = [h.strip().removeprefix(BOM).strip() for h in header]
        names = [aliases.get(h, h) for h in sent]
        unknown = [h for h, n in zip(sent, names, strict=True) if n not in columns]
        missing = [c for c in required if c not in names]
        if unknown or missing:
            raise CsvColumns(
                f"unknown columns: {', '.join(unknown) or 'none'}; missing columns: {', '.join(missing) or 'none'}",
                [field_error(h, "body", "unknown column") for h in unknown]
                + [field_error(h, "body", "missing column") for h in missing],
                columns=list(columns),
            )
        rows: list[list[str]] = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= max_rows:
                raise BatchTooLarge(len(rows) + 1 + sum(1 for c in reader if any(x.strip() for x in c)), max_rows)
            rows.append(cells)
    except csv.Error as exc:
        raise MalformedCsv(f"line {reader.line_num}: {exc}") from None
    return CsvTable(names, rows)


def ndjson_lines(body: bytes, max_rows: int) -> list[bytes]:
    """The non-blank lines of an NDJSON body, each without a BOM (JSON itself is parsed by the caller)."""
    lines = [ln.strip().removeprefix(_BOM_BYTES) for ln in body.split(b"\n")]
    lines = [ln for ln in lines if ln]
    if len(lines) > max_rows:
        raise BatchTooLarge(len(lines), max_rows)
    return lines


def json_array(body: bytes, max_rows: int) -> list[Any]:
    """The items of a JSON array body."""
    try:
        data = orjson.loads(body.removeprefix(_BOM_BYTES))
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(f"The body is not JSON: {exc}") from None
    if not isinstance(data, list):
        raise ValidationFailed.one(
            "body", "body", "expected an array", "The body must be a JSON array of rows", "list_type"
        )
    if len(data) > max_rows:
        raise BatchTooLarge(len(data), max_rows)
    return data


def csv_download(header: Sequence[str], rows: AsyncIterable[Sequence[Any]], filename: str) -> StreamingResponse:
    """A CSV download streamed row by row: UTF-8 with a BOM (so spreadsheet programs read the Chinese
    right), None written as an empty cell."""

    async def lines() -> AsyncIterator[bytes]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(header)
        yield (BOM + buf.getvalue()).encode()
        async for row in rows:
            buf.seek(0)
            buf.truncate()
            writer.writerow(["" if v is None else v for v in row])
            yield buf.getvalue().encode()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
