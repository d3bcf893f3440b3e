"""Security (issue 13, findings 3 to 8): crafted input answers 4xx problems, officer-only data stays
with officers, body caps, four eyes, re-inspections by another agency, the dashboard's headers and
forms, and /docs without a CDN. docs/security.md lists the findings and where each is held."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from qcity.embedded import create_embedded_app
from services.credit.main import create_app as create_credit
from services.credit.settings import CreditSettings
from services.sampling.main import create_app as create_sampling
from services.sampling.settings import SamplingSettings
from shared.clock import FixedClock
from shared.settings import PlatformSettings
from tests.e2e.credit_helpers import proposal
from tests.factories import result_body
from tests.helpers import eventually, running

Auth = Callable[..., dict[str, str]]
Suite = tuple[FastAPI, httpx.AsyncClient]
CREDIT = "/services/credit"
SAMPLING = "/services/sampling"


def problem(resp: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body = dict(resp.json())
    if slug is not None:
        assert body["type"] == f"urn:qualitycity:problem:{slug}", body
    return body


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


# ---------------------------------------------------------------- 3: crafted input


@pytest.mark.parametrize(
    ("path", "field", "where"),
    [
        ("/v1/honour-types/a%01b", "path", "path"),  # forwarded by the gateway: httpx refused the URL
        (f"{SAMPLING}/v1/results/a%00b", "path", "path"),  # directly at a service
        ("/dashboard?plan=%01", "plan", "query"),
        ("/v1/results?uscc=%00", "uscc", "query"),
    ],
)
async def test_control_characters_in_path_or_query_answer_422(
    suite: Suite, auth: Auth, path: str, field: str, where: str
) -> None:
    _, client = suite
    body = problem(await client.get(path, headers=auth("read")), 422, "validation-error")
    assert body["errors"] == [{"field": field, "in": where, "reason": "must not contain control characters"}]


@pytest.mark.parametrize("header", ["Idempotency-Key", "If-Match", "Accept", "Content-Type"])
async def test_non_ascii_headers_through_the_gateway_answer_400_before_forwarding(
    suite: Suite, auth: Auth, header: str
) -> None:
    _, client = suite
    headers = auth("sampling:write") | {header: "clé-é".encode()}  # raw UTF-8 bytes on the wire
    r = await client.post("/v1/results", content=orjson.dumps(result_body()), headers=headers)
    body = problem(r, 400, "invalid-header")
    assert body["errors"][0]["field"] == header.lower()


@pytest.mark.parametrize(
    ("path", "param", "status"),
    [
        ("/v1/indicator-reports", "cursor", 422),  # keyed on (time, id): ["x"] has the wrong shape
        ("/v1/changes", "after", 422),  # keyed on an integer
        ("/v1/results", "cursor", 200),  # keyed on one string: ["x"] is a well-formed key, nothing after it
        ("/v1/facts/results", "cursor", 422),
    ],
)
async def test_tampered_cursors_are_refused_or_harmless(
    suite: Suite, auth: Auth, path: str, param: str, status: int
) -> None:
    _, client = suite
    for value in (cursor(["x"]), cursor({"a": 1}), "%%%", cursor([1, 2, 3, 4])):
        r = await client.get(path, params={param: value}, headers=auth("read"))
        assert r.status_code < 500, r.text
    r = await client.get(path, params={param: cursor(["x"])}, headers=auth("read"))
    assert r.status_code == status, r.text


async def test_publication_years_beyond_64_bits_answer_422(suite: Suite, auth: Auth) -> None:
    _, client = suite
    r = await client.post("/v1/blacklist-entries", json=proposal(publication_years=2**64), headers=auth("credit:write"))
    body = problem(r, 422, "validation-error")
    assert [e["field"] for e in body["errors"]] == ["publication_years"]


def _csv(rows: list[dict[str, Any]]) -> bytes:
    columns = ["report_no", "level", "sector", "product_category", "product_name", "uscc", "enterprise_name"]
    columns += ["district_code", "sampling_date", "report_date", "conclusion"]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows([[r[c] for c in columns] for r in rows])
    return buf.getvalue().encode()


async def test_nul_in_text_fields_on_postgresql_answers_422_and_a_batch_keeps_its_good_rows(
    pg_database: Callable[[str], Any], platform: PlatformSettings, auth: Auth
) -> None:
    sampling = create_sampling(
        SamplingSettings(database_url=await pg_database("nul_sampling"), run_jobs=False, platform=platform)
    )
    credit = create_credit(
        CreditSettings(database_url=await pg_database("nul_credit"), run_jobs=False, platform=platform)
    )
    h = auth("sampling:write", "read")
    async with serving(sampling) as client:
        r = await client.post("/v1/results", json=result_body("N-1", product_name="矿泉\u0000水"), headers=h)
        assert problem(r, 422, "validation-error")["errors"][0]["field"] == "product_name"
        nested = result_body(
            "N-2",
            conclusion="fail",
            nonconforming_items=[{"item": "x\u0000", "requirement": "r", "measured": "1", "standard": "GB 1"}],
        )
        r = await client.post("/v1/results", json=nested, headers=h)
        assert problem(r, 422, "validation-error")["errors"][0]["field"] == "nonconforming_items[0].item"

        rows = [result_body("N-3"), result_body("N-4", enterprise_name="某\u0000厂"), result_body("N-5")]
        r = await client.post("/v1/results:batch", content=_csv(rows), headers=h | {"content-type": "text/csv"})
        assert r.status_code == 200, r.text
        out = r.json()
        assert [x["outcome"] for x in out["rows"]] == ["created", "rejected", "created"]
        assert out["rows"][1]["problems"][0]["field"] == "enterprise_name"
        listed = (await client.get("/v1/results", headers=h)).json()["items"]
        assert sorted(x["report_no"] for x in listed) == ["N-3", "N-5"]

    async with serving(credit) as client:
        r = await client.post("/v1/blacklist-entries", json=proposal(facts="事实\u0000"), headers=auth("credit:write"))
        assert problem(r, 422, "validation-error")["errors"][0]["field"] == "facts"


# ---------------------------------------------------------------- 4: officer-only data


async def test_read_tokens_see_no_proposals_or_rejections_in_the_feed_or_the_profile(suite: Suite, auth: Auth) -> None:
    _, client = suite
    officer = auth("credit:write", "read", agency=None, subject="officer-1")
    reviewer = auth("credit:review", "read", agency=None, subject="reviewer-2")
    reader = auth("read", agency=None, subject="analyst")
    r = await client.post("/v1/blacklist-entries", json=proposal(), headers=officer)
    assert r.status_code == 201, r.text
    rejected = await client.post(
        f"/v1/blacklist-entries/{r.json()['entry_id']}:reject",
        json={"reason": "证据不足，退回"},
        headers=reviewer | {"If-Match": r.headers["etag"]},
    )
    assert rejected.status_code == 200, rejected.text

    async def types(h: dict[str, str]) -> list[str]:
        return [i["event"]["type"] for i in (await client.get("/v1/changes", headers=h)).json()["items"]]

    seen = await eventually(lambda: types(officer), lambda t: "credit.blacklist_entry.rejected.v1" in t)
    assert "credit.blacklist_entry.proposed.v1" in seen
    assert not [t for t in await types(reader) if t.startswith("credit.blacklist_entry.")]
    feed = (await client.get("/v1/changes", headers=reader)).json()
    assert "证据不足" not in json.dumps(feed) and "officer-1" not in json.dumps(feed)

    uscc = proposal()["uscc"]
    officer_view = (await client.get(f"/v1/credit/{uscc}", headers=officer)).json()
    assert [e["status"] for e in officer_view["blacklist"]["history"]] == ["rejected"]
    reader_view = await client.get(f"/v1/credit/{uscc}", headers=reader)
    assert reader_view.status_code in (200, 404), reader_view.text
    if reader_view.status_code == 200:
        assert reader_view.json()["blacklist"]["history"] == []
    # The credit service itself: the same rule (officers only) for an entry's history.
    assert (await client.get(f"/v1/enterprises/{uscc}/history", headers=reader)).status_code == 403


# ---------------------------------------------------------------- 5: body size


async def _one_request(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int, dict[str, Any], int]:
    """Call the ASGI app directly: the status, the problem and how many body chunks it read."""
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read < len(chunks):
            read += 1
            return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}
        await asyncio.Event().wait()  # a client that stays connected: no disconnect until the answer
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, orjson.loads(body) if body else {}, read


async def test_body_caps_answer_413_before_reading_and_writes_check_the_token_first(
    tmp_path: Path, platform: PlatformSettings, auth: Auth
) -> None:
    capped = platform.model_copy(update={"max_body_bytes": 2000, "max_bulk_body_bytes": 50_000})
    app = create_sampling(
        SamplingSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db", run_jobs=False, platform=capped)
    )
    token = auth("sampling:write")["Authorization"].encode()
    chunk = b"x" * 1000
    async with running(app) as manager:
        asgi = manager.app
        json_type = (b"content-type", b"application/json")
        # A declared length over the cap: 413 without reading a byte.
        status, body, read = await _one_request(
            asgi,
            "POST",
            "/v1/results",
            [json_type, (b"authorization", token), (b"content-length", b"5000")],
            [chunk] * 5,
        )
        assert (status, body["type"], read) == (413, "urn:qualitycity:problem:payload-too-large", 0)
        # No length, streamed: refused at the first chunk past the cap, the rest never read.
        status, body, read = await _one_request(
            asgi, "POST", "/v1/results", [json_type, (b"authorization", token)], [chunk] * 10
        )
        assert (status, read) == (413, 3), body
        # No token on a write: 401 before the body is read (FastAPI would parse it first).
        status, body, read = await _one_request(
            asgi, "POST", "/v1/results", [json_type, (b"content-length", b"1000")], [chunk]
        )
        assert (status, body["type"], read) == (401, "urn:qualitycity:problem:unauthenticated", 0)
        status, body, read = await _one_request(
            asgi, "POST", "/v1/results", [json_type, (b"authorization", b"Bearer forged.token.here")], [chunk]
        )
        assert (status, read) == (401, 0), body


async def test_the_bulk_routes_have_their_own_larger_cap_through_the_gateway(
    tmp_path: Path, platform: PlatformSettings, auth: Auth
) -> None:
    capped = platform.model_copy(update={"max_body_bytes": 2000, "max_bulk_body_bytes": 50_000})
    rows = b"\n".join(orjson.dumps(result_body(f"B-{i}")) for i in range(8))
    assert 2000 < len(rows) < 50_000
    h = auth("sampling:write") | {"content-type": "application/x-ndjson"}
    async with serving(create_embedded_app(tmp_path / "data", capped)) as client:
        r = await client.post("/v1/results:batch", content=rows, headers=h)
        assert r.status_code == 200 and r.json()["created"] == 8, r.text
        problem(await client.post("/v1/results:batch", content=rows * 15, headers=h), 413, "payload-too-large")
        big = orjson.dumps(result_body("J-1", product_name="长" * 300, enterprise_name="名" * 300))
        assert len(big) > 2000
        r = await client.post("/v1/results", content=big, headers=h | {"content-type": "application/json"})
        problem(r, 413, "payload-too-large")


# ---------------------------------------------------------------- 6: four eyes


async def test_four_eyes_ignores_case_and_a_wrongful_removal_needs_two_reviewers(suite: Suite, auth: Auth) -> None:
    _, client = suite
    officer = auth("credit:write", "credit:review", "read", agency=None, subject="officer1")
    same_upper = auth("credit:review", "read", agency=None, subject=" OFFICER1 ")
    reviewer_a = auth("credit:review", "read", agency=None, subject="reviewer-a")
    reviewer_b = auth("credit:review", "read", agency=None, subject="Reviewer-B")
    r = await client.post("/v1/blacklist-entries", json=proposal(), headers=officer)
    url, tag = f"/v1/blacklist-entries/{r.json()['entry_id']}", r.headers["etag"]

    problem(await client.post(f"{url}:approve", json={}, headers=same_upper | {"If-Match": tag}), 403, "own-proposal")
    problem(
        await client.post(f"{url}:reject", json={"reason": "x"}, headers=same_upper | {"If-Match": tag}),
        403,
        "own-proposal",
    )
    approved = await client.post(f"{url}:approve", json={}, headers=reviewer_a | {"If-Match": tag})
    assert approved.status_code == 200 and approved.json()["status"] == "listed", approved.text

    removal = {"decision_no": "青质监撤〔2015〕1号"}
    requested = await client.post(
        f"{url}:remove", json=removal, headers=reviewer_a | {"If-Match": approved.headers["etag"]}
    )
    assert requested.status_code == 202 and requested.json()["status"] == "listed", requested.text
    again = await client.post(
        f"{url}:remove",
        json=removal,
        headers=auth("credit:review", subject="REVIEWER-A") | {"If-Match": requested.headers["etag"]},
    )
    problem(again, 403, "own-removal-request")
    removed = await client.post(
        f"{url}:remove", json=removal, headers=reviewer_b | {"If-Match": requested.headers["etag"]}
    )
    assert removed.status_code == 200 and removed.json()["status"] == "removed", removed.text
    history = (await client.get(f"/v1/enterprises/{proposal()['uscc']}/history", headers=officer)).json()
    actions = [(h["action"], h["actor"]) for h in history["transitions"]]
    assert actions[-2:] == [("removal_requested", "reviewer-a"), ("removed", "Reviewer-B")]


# ---------------------------------------------------------------- 7: re-inspection by another agency


async def test_a_reinspection_by_another_agency_is_recorded_with_that_agency(
    suite: Suite, auth: Auth, clock: FixedClock
) -> None:
    _, client = suite
    owner = auth("sampling:write", "read", agency="QD-AGENCY-1")
    dates = {"production_date": "2015-05-01", "sampling_date": "2015-05-10", "report_date": "2015-05-25"}
    r = await client.post("/v1/results", json=result_body("F-1", conclusion="fail", **dates), headers=owner)
    assert r.status_code == 201, r.text
    body = {
        "outcome": "overturned",
        "reinspection_report_no": "FJ-1",
        "requested_on": "2015-05-30",
        "decided_on": "2015-06-01",
    }
    other = auth("sampling:write", agency="QD-AGENCY-9", subject="inspector-9")
    done = await client.post(
        f"/v1/results/{r.json()['id']}/reinspection", json=body, headers=other | {"If-Match": r.headers["etag"]}
    )
    assert done.status_code == 200, done.text
    history = (await client.get(f"/v1/results/{r.json()['id']}/history", headers=owner)).json()
    assert [(v["change"], v["agency"], v["actor"]) for v in history] == [
        ("recorded", "QD-AGENCY-1", "tester"),
        ("reinspected", "QD-AGENCY-9", "inspector-9"),
    ]
    doc = (await client.get(f"{SAMPLING}/openapi.json")).json()
    described = doc["paths"]["/v1/results/{result_id}/reinspection"]["post"]["description"]
    assert "Any agency" in described and "agency" in described


# ---------------------------------------------------------------- 8: dashboard and docs


async def test_dashboard_headers_and_csrf_on_sign_in_and_sign_out(suite: Suite, auth: Auth) -> None:
    _, client = suite
    page = await client.get("/dashboard")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert ' style="' not in page.text  # the CSP allows no inline style

    token = auth("read")["Authorization"].removeprefix("Bearer ")
    # No CSRF token (a form posted from another site): refused, no cookie set.
    forged = await client.post("/dashboard/login", data={"token": token, "next": "/dashboard/credit"})
    assert forged.status_code == 403 and "qc_token" not in forged.cookies
    client.cookies.clear()

    form = await client.get("/dashboard/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None and form.cookies["qc_csrf"] == csrf.group(1)
    # An invalid token is refused before it is kept.
    bad = await client.post("/dashboard/login", data={"token": "not-a-token", "csrf": csrf.group(1)})
    assert bad.status_code == 401 and "qc_token" not in bad.cookies
    fresh = re.search(r'name="csrf" value="([^"]+)"', bad.text)
    assert fresh is not None
    good = await client.post("/dashboard/login", data={"token": token, "csrf": fresh.group(1)})
    assert good.status_code == 303 and good.cookies["qc_token"] == token, good.text

    signed_in = await client.get("/dashboard/credit")
    logout_csrf = re.search(
        r'action="/dashboard/logout"><input type="hidden" name="csrf" value="([^"]+)"', signed_in.text
    )
    assert logout_csrf is not None
    refused = await client.post("/dashboard/logout", data={"csrf": "guess"})
    assert refused.status_code == 403 and "qc_token" in client.cookies
    out = await client.post("/dashboard/logout", data={"csrf": logout_csrf.group(1)})
    assert out.status_code == 303 and "qc_token" not in client.cookies


@pytest.mark.parametrize("prefix", ["", SAMPLING, CREDIT, "/services/awards"])
async def test_docs_load_swagger_ui_from_the_suite_itself(suite: Suite, prefix: str) -> None:
    _, client = suite
    page = await client.get(f"{prefix}/docs")
    assert page.status_code == 200
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page.text, re.IGNORECASE), page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for asset in assets:
        assert asset.startswith(f"{prefix}/docs/assets/"), asset
        r = await client.get(asset)
        assert r.status_code == 200 and len(r.content) > 500, asset
    assert f"'{prefix}/openapi.json'" in page.text or f'"{prefix}/openapi.json"' in page.text
