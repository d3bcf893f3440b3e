"""The shared request plumbing through the embedded suite: tampered cursors are 422 `invalid-cursor`
on every paged route, a real cursor still pages, and Idempotency-Key is scoped by agency."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from tests.e2e.awards_helpers import grant_body
from tests.factories import result_body

Suite = tuple[FastAPI, httpx.AsyncClient]
ENTERPRISE = "91370200163562681G"
FACTS = {"sampled_from": "2014-01-01", "sampled_to": "2014-12-31"}


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


#: Wrong for every key: not base64 JSON, not a list, too long, values of the wrong type.
TAMPERED = ["%%%", _cursor({"a": 1}), _cursor(["x", "y", "z"]), _cursor([None]), _cursor([1, 2])]
#: Wrong where the key starts with a timestamp, a date or a sequence number (a bare id would be a real key).
NOT_A_DATE = [_cursor(["x"]), _cursor(["x", "r-1"]), _cursor(["2014-13-45", "r-1"])]


@pytest.mark.parametrize(
    ("path", "param", "extra", "scopes", "cursors"),
    [
        ("/v1/indicator-reports", "cursor", {}, (), TAMPERED + NOT_A_DATE),
        ("/v1/changes", "after", {}, ("read",), TAMPERED + NOT_A_DATE[:1]),
        ("/v1/facts/results", "cursor", FACTS, ("read",), TAMPERED + NOT_A_DATE),
        ("/v1/results", "cursor", {}, ("read",), TAMPERED),
        ("/v1/blacklist", "cursor", {}, (), TAMPERED + NOT_A_DATE),
        ("/v1/honours", "cursor", {}, ("read",), TAMPERED),
        ("/v1/procurement/priority-list", "cursor", {}, ("read",), TAMPERED),
    ],
)
async def test_a_tampered_cursor_is_422_invalid_cursor_never_500(
    embedded: Suite,
    auth: Callable[..., dict[str, str]],
    path: str,
    param: str,
    extra: dict[str, str],
    scopes: tuple[str, ...],
    cursors: list[str],
) -> None:
    _, client = embedded
    headers = auth(*scopes) if scopes else {}
    for cursor in cursors:
        r = await client.get(path, params={**extra, param: cursor}, headers=headers)
        assert r.status_code == 422, (path, cursor, r.status_code, r.text)
        assert r.json()["type"] == "urn:qualitycity:problem:invalid-cursor", r.text


async def test_a_real_cursor_still_pages_through_results(embedded: Suite, auth: Callable[..., dict[str, str]]) -> None:
    _, client = embedded
    writer = auth("sampling:write")
    for i in range(3):
        r = await client.post("/v1/results", json=result_body(f"QD-2014-P{i}"), headers=writer)
        assert r.status_code == 201, r.text
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        got = (await client.get("/v1/results", params=params, headers=auth("read"))).json()
        seen += [item["report_no"] for item in got["items"]]
        cursor = got["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["QD-2014-P0", "QD-2014-P1", "QD-2014-P2"] and len(seen) == 3


async def test_idempotency_keys_are_scoped_by_agency(embedded: Suite, auth: Callable[..., dict[str, str]]) -> None:
    """The same subject and key under two agencies are two clients: neither replays the other's answer."""
    _, client = embedded
    key = {"Idempotency-Key": "grant-0001"}
    first_body, second_body = grant_body("B5", ENTERPRISE), grant_body("B5", ENTERPRISE)
    as_a = auth("awards:write", agency="QD-A", subject="registry") | key
    as_b = auth("awards:write", agency="QD-B", subject="registry") | key
    a = await client.post("/v1/honours", json=first_body, headers=as_a)
    b = await client.post("/v1/honours", json=second_body, headers=as_b)
    assert a.status_code == 201 and b.status_code == 201, (a.text, b.text)
    assert a.json()["honour_id"] != b.json()["honour_id"]
    # Within one agency the key still replays, and another body under it is refused.
    again = await client.post("/v1/honours", json=first_body, headers=as_a)
    assert again.status_code == 201 and again.json()["honour_id"] == a.json()["honour_id"]
    assert again.headers["etag"] == a.headers["etag"] and again.headers["location"] == a.headers["location"]
    reused = await client.post("/v1/honours", json=second_body, headers=as_a)
    assert reused.status_code == 422 and reused.json()["type"].endswith(":idempotency-key-reused")


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        (b"\xff\xfe\x00\x00\xc3", 400, "malformed-csv"),  # neither UTF-8 nor GB18030
        (b"", 400, "malformed-csv"),
        (b'"unterminated,header\n', 400, "malformed-csv"),
        (b"colour\nred\n", 422, "csv-columns"),
    ],
    ids=["encoding", "empty", "quoting", "columns"],
)
async def test_the_same_csv_defect_is_the_same_problem_in_sampling_and_awards(
    embedded: Suite, auth: Callable[..., dict[str, str]], body: bytes, status: int, slug: str
) -> None:
    _, client = embedded
    csv_type = {"content-type": "text/csv"}
    batch = await client.post("/v1/results:batch", content=body, headers=auth("sampling:write") | csv_type)
    imported = await client.post("/v1/honours:import", content=body, headers=auth("awards:write") | csv_type)
    for r in (batch, imported):
        assert r.status_code == status, r.text
        assert r.json()["type"] == f"urn:qualitycity:problem:{slug}"


async def test_a_bom_before_the_body_and_each_ndjson_line_is_accepted(
    embedded: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    _, client = embedded
    bom = "\ufeff".encode()
    lines = bom + orjson.dumps(result_body("BOM-1")) + b"\n" + bom + orjson.dumps(result_body("BOM-2")) + b"\n"
    nd = await client.post(
        "/v1/results:batch", content=lines, headers=auth("sampling:write") | {"content-type": "application/x-ndjson"}
    )
    assert nd.status_code == 200 and nd.json()["created"] == 2, nd.text
    js = await client.post(
        "/v1/results:batch",
        content=bom + orjson.dumps([result_body("BOM-3")]),
        headers=auth("sampling:write") | {"content-type": "application/json"},
    )
    assert js.status_code == 200 and js.json()["created"] == 1, js.text
