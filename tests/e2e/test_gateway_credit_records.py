"""Records from other authorities at the gateway (embedded): sent through the gateway's forwarding,
shown in the credit profile with their source, and carried by the change feed under the scope rules
of the rest of credit (a `read` token sees the records and the rating, not the officers' proposals)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from shared.clock import FixedClock
from tests.e2e.credit_helpers import ENTERPRISE
from tests.e2e.records_helpers import AT, penalty
from tests.helpers import eventually

Suite = tuple[FastAPI, httpx.AsyncClient]


async def test_records_reach_the_profile_and_the_change_feed_with_their_source(
    embedded: Suite, clock: FixedClock, auth: Callable[..., dict[str, str]]
) -> None:
    _, client = embedded
    clock.set(datetime.combine(date(2025, 6, 2), AT))
    amr = auth("credit:records", subject="amr-penalty-system", agency="QD-AMR")
    reader, officer = auth("read"), auth("read", "credit:review")
    assert (await client.post("/v1/credit-records", json=penalty(1, "2025-01-10"), headers=reader)).status_code == 403
    batch = [penalty(1, "2025-01-10"), penalty(2, "2025-03-05"), penalty(3, "2025-05-20")]
    sent = await client.post("/v1/credit-records:batch", json=batch, headers=amr)
    assert sent.status_code == 200 and sent.json()["created"] == 3, sent.text
    first = sent.json()["rows"][0]["record_id"]

    async def profile() -> dict[str, Any]:
        r = await client.get(f"/v1/credit/{ENTERPRISE}", headers=reader)
        return dict(r.json()) if r.status_code == 200 else {}

    seen = await eventually(profile, lambda p: len(p.get("credit_records", [])) == 3 and p.get("rating") is not None)
    assert seen["rating"]["rating"] == "C" and seen["identity"]["name"] == "青岛测试电器有限公司"
    rec = seen["credit_records"][0]
    assert (rec["record_id"], rec["authority"], rec["kind"], rec["status"]) == (
        first,
        "QD-AMR",
        "administrative_penalty",
        "active",
    )
    assert rec["details"]["decision_no"] == "青市监罚〔2025〕1号"
    assert seen["blacklist"]["history"] == []  # the automatic proposal is the officers' working data

    withdrawn = await client.post(
        f"/v1/credit-records/{first}:withdraw", json={"reason": "复议撤销"}, headers=amr | {"If-Match": '"1"'}
    )
    assert withdrawn.status_code == 200, withdrawn.text
    seen = await eventually(profile, lambda p: p["credit_records"][0]["status"] == "withdrawn")
    assert seen["credit_records"][0]["version"] == 2 and seen["rating"]["rating"] == "B"

    async def feed(headers: dict[str, str]) -> list[str]:
        r = await client.get("/v1/changes", params={"subject": ENTERPRISE}, headers=headers)
        assert r.status_code == 200, r.text
        return [i["event"]["type"] for i in r.json()["items"]]

    public = await eventually(lambda: feed(reader), lambda t: "credit.record.withdrawn.v1" in t)
    assert [t for t in public if t.startswith("credit.record.")] == ["credit.record.recorded.v1"] * 3 + [
        "credit.record.withdrawn.v1"
    ]
    assert not [t for t in public if t.startswith("credit.blacklist_entry.")]
    full = await feed(officer)
    assert [t for t in full if t.startswith("credit.blacklist_entry.")] == [
        "credit.blacklist_entry.proposed.v1",
        "credit.blacklist_entry.rejected.v1",
    ]
