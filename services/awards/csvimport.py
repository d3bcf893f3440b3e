"""Reading a historical registry sent as CSV: the header names the columns (see CSV_COLUMNS)."""

from __future__ import annotations

from collections.abc import Sequence

from services.awards.service import CSV_COLUMNS, CSV_REQUIRED, EXTRA_CELLS
from shared.errors import PayloadTooLarge
from shared.tabular import CSV_ONLY, body_format, read_csv


class CsvTooLarge(PayloadTooLarge, title="CSV too large"): ...


def parse_csv(
    body: bytes, content_type: str, max_rows: int, columns: Sequence[str] = CSV_COLUMNS
) -> list[dict[str, str]]:
    body_format(content_type, CSV_ONLY)
    table = read_csv(body, columns, CSV_REQUIRED, max_rows)
    rows: list[dict[str, str]] = []
    for cells in table.rows:
        row = dict(zip(table.names, cells + [""] * (len(table.names) - len(cells)), strict=False))
        if len(cells) > len(table.names):
            # Reported on its row, not a reason to refuse the file.
            row[EXTRA_CELLS] = ",".join(cells[len(table.names) :])
        rows.append(row)
    return rows
