"""The one reader of bulk bodies: the same problem for the same defect, and a BOM dropped in every position."""

from __future__ import annotations

from collections import Counter

import pytest

from shared.errors import BatchTooLarge, MalformedCsv, MalformedJson, UnsupportedMediaType, ValidationFailed
from shared.tabular import (
    ANY_FORMAT,
    CSV_ONLY,
    BulkReceipt,
    CsvColumns,
    body_format,
    json_array,
    ndjson_lines,
    read_csv,
    tally,
)

COLUMNS = ("id", "name", "note")
BOM = "\ufeff".encode()


def test_the_content_type_picks_the_reader() -> None:
    assert body_format("text/csv; charset=utf-8", ANY_FORMAT) == "csv"
    assert body_format("application/x-ndjson", ANY_FORMAT) == "ndjson"
    assert body_format("Application/JSON", ANY_FORMAT) == "json"
    for refused, accepted in (("application/json", CSV_ONLY), ("text/plain", ANY_FORMAT), ("", CSV_ONLY)):
        with pytest.raises(UnsupportedMediaType):
            body_format(refused, accepted)


def test_a_csv_is_read_with_aliases_and_blank_rows_skipped() -> None:
    body = "编号,name\n1,甲\n\n , \n2,乙,extra\n".encode()
    table = read_csv(body, COLUMNS, ("id",), 10, aliases={"编号": "id"})
    assert table.names == ["id", "name"]
    assert table.rows == [["1", "甲"], ["2", "乙", "extra"]]  # a wrong width is the service's row problem


@pytest.mark.parametrize(
    "body",
    [
        BOM + b"id,name\n1,a\n",  # Excel's UTF-8 BOM
        "\ufeffid,name\n1,a\n".encode("gb18030"),  # a BOM inside GB18030 text
        "id,name\n1,a\n".encode("gb18030"),
    ],
    ids=["utf-8-bom", "gb18030-bom", "gb18030"],
)
def test_a_bom_or_gb18030_reads_the_same_header(body: bytes) -> None:
    assert read_csv(body, COLUMNS, ("id",), 10).names == ["id", "name"]


def test_a_bom_before_json_and_before_every_ndjson_line_is_dropped() -> None:
    assert json_array(BOM + b'[{"a": 1}]', 5) == [{"a": 1}]
    assert ndjson_lines(BOM + b'{"a": 1}\n' + BOM + b'{"a": 2}\n\n', 5) == [b'{"a": 1}', b'{"a": 2}']


@pytest.mark.parametrize(
    ("body", "error", "status", "slug"),
    [
        (b"\xff\xfe\x00\x00\xc3", MalformedCsv, 400, "malformed-csv"),  # neither UTF-8 nor GB18030
        (b"", MalformedCsv, 400, "malformed-csv"),
        (b"\n\n", MalformedCsv, 400, "malformed-csv"),
        (b'id,name\n"unterminated', MalformedCsv, 400, "malformed-csv"),
        (b"id,colour\n1,red\n", CsvColumns, 422, "csv-columns"),
        (b"name\nx\n", CsvColumns, 422, "csv-columns"),
        (b"id\n1\n2\n3\n", BatchTooLarge, 413, "batch-too-large"),
    ],
    ids=["encoding", "empty", "blank", "quoting", "unknown-column", "missing-column", "too-many-rows"],
)
def test_each_csv_defect_has_one_problem(body: bytes, error: type[Exception], status: int, slug: str) -> None:
    with pytest.raises(error) as caught:
        read_csv(body, COLUMNS, ("id",), 2)
    assert (caught.value.status, caught.value.slug) == (status, slug)  # type: ignore[attr-defined]


def test_column_problems_name_each_column_and_too_many_rows_counts_them() -> None:
    with pytest.raises(CsvColumns) as columns:
        read_csv(b"colour,name\nred,x\n", COLUMNS, ("id",), 2)
    assert [(e["field"], e["reason"]) for e in columns.value.extensions["errors"]] == [
        ("colour", "unknown column"),
        ("id", "missing column"),
    ]
    with pytest.raises(BatchTooLarge) as rows:
        read_csv(b"id\n1\n2\n\n3\n4\n", COLUMNS, ("id",), 2)
    assert rows.value.extensions == {"max_rows": 2, "rows": 4}


def test_json_defects() -> None:
    with pytest.raises(MalformedJson):
        json_array(b"[{", 5)
    with pytest.raises(ValidationFailed):
        json_array(b'{"a": 1}', 5)
    with pytest.raises(BatchTooLarge):
        json_array(b"[1, 2, 3]", 2)
    with pytest.raises(BatchTooLarge):
        ndjson_lines(b"1\n2\n3\n", 2)


class _Answer(BulkReceipt):
    rejected: int
    unmatched: int
    rows: list[str]


def test_tally_counts_the_fields_an_answer_has_in_its_order() -> None:
    counts = tally(_Answer, ["created", "rejected", "created", "conflict", "duplicate"])
    assert list(counts.items()) == [("created", 2), ("duplicates", 1), ("rejected", 1), ("unmatched", 0)]
    assert tally(_Answer, Counter({"unmatched": 3})) == {"created": 0, "duplicates": 0, "rejected": 0, "unmatched": 3}
    answer = _Answer(received=5, **counts, rows=[])
    assert list(answer.model_dump()) == ["received", "created", "duplicates", "rejected", "unmatched", "rows"]
