"""Records from other authorities and due process before listing, driven over HTTP: the same flows
in embedded and distributed mode (issue 17).

The clock is set in 2025, where the rule set qd-credit-2025.1 is in force: authority records weigh in
the rating and the automatic proposal, and an approval first gives notice with a statement period
counted in working days.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

import httpx

from shared.clock import FixedClock
from tests.e2e.credit_helpers import ENTERPRISE, OTHER, THIRD, outbox_types, proposal

#: 10:00 in Qingdao, as UTC.
AT = time(2, 0)
Auth = Callable[..., dict[str, str]]


def penalty(n: int, on: str, uscc: str = ENTERPRISE, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "record_no": f"370200-2025-{n:06d}",
        "kind": "administrative_penalty",
        "uscc": uscc,
        "enterprise_name": "青岛测试电器有限公司",
        "occurred_on": on,
        "deciding_authority": "青岛市市场监督管理局",
        "category": "生产销售不合格产品",
        "decision_no": f"青市监罚〔2025〕{n}号",
        "legal_basis": "《中华人民共和国产品质量法》第四十九条",
        "amount_yuan": "20000.00",
    }
    body.update(over)
    return body


async def _credit(client: httpx.AsyncClient, base: str, headers: dict[str, str]) -> dict[str, Any]:
    r = await client.get(f"{base}/v1/enterprises/{ENTERPRISE}/credit", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _entries(client: httpx.AsyncClient, base: str, uscc: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = await client.get(f"{base}/v1/blacklist-entries", params={"uscc": uscc}, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def run_records(client: httpx.AsyncClient, base: str, auth: Auth, clock: FixedClock, runtime: Any) -> list[str]:
    """A penalty batch from an authority's token moves the rating and triggers the automatic proposal
    the rules set (3 within 365 days); a resend is a duplicate; only the sender withdraws, and the
    withdrawal reverses both; a correction keeps every version. Returns the three record ids."""
    clock.set(datetime.combine(date(2025, 6, 2), AT))
    amr = auth("credit:records", subject="amr-penalty-system", agency="QD-AMR")
    hotline = auth("credit:records", subject="hotline-12345", agency="QD-12345")
    officer = auth("credit:write", "credit:review", "read", subject="alice")

    before = await _credit(client, base, officer)
    assert (before["rating"], before["score"], before["rule_set_version"]) == ("B", 80.0, "qd-credit-2025.1")

    batch = [
        penalty(1, "2025-01-10"),
        penalty(2, "2025-03-05"),
        penalty(3, "2025-05-20"),
        penalty(4, "2025-05-21", decision_no=None),  # a penalty needs its decision number
        penalty(5, "2025-05-22", uscc="91370200163562681X"),  # a wrong check digit
    ]
    url = f"{base}/v1/credit-records:batch"
    sent = await client.post(url, json=batch, headers=amr)
    assert sent.status_code == 200, sent.text
    out = sent.json()
    assert (out["received"], out["created"], out["duplicates"], out["rejected"]) == (5, 3, 0, 2)
    assert [r["outcome"] for r in out["rows"]] == ["created", "created", "created", "rejected", "rejected"]
    assert out["rows"][3]["problems"] == [
        {"field": "decision_no", "reason": "required for a record of kind administrative_penalty"}
    ]
    assert out["rows"][4]["problems"][0]["field"] == "uscc"
    ids = [r["record_id"] for r in out["rows"][:3]]

    again = (await client.post(url, json=batch[:3], headers=amr)).json()  # the authority's retry
    assert (again["created"], again["duplicates"]) == (0, 3)
    assert [r["record_id"] for r in again["rows"]] == ids
    refused = await client.post(url, json=batch[:1], headers=officer)  # not an authority's token
    assert refused.status_code == 403

    credit = await _credit(client, base, officer)
    assert (credit["rating"], credit["score"]) == ("C", 50.0)  # 80 − 3 × 10 (rating.records.negative_weights)
    counted = [r for r in credit["records"] if r["counted"]]
    assert [(r["source"], r["authority"], r["points"]) for r in counted] == [("authority", "QD-AMR", -10.0)] * 3
    assert counted[0]["title"] == "行政处罚 青市监罚〔2025〕1号"

    (auto,) = await _entries(client, base, ENTERPRISE, officer)
    assert (auto["status"], auto["automatic"], auto["reason_category"]) == ("proposed", True, "repeated_violations")
    assert auto["trigger_records"] == [f"record:{i}" for i in ids]
    assert "administrative_penalty 行政处罚 青市监罚〔2025〕2号 (QD-AMR)" in auto["facts"]

    one = f"{base}/v1/credit-records/{ids[1]}"
    got = await client.get(one, headers=amr)
    assert got.status_code == 200 and got.headers["etag"] == '"1"', got.text
    assert (await client.get(one, headers=hotline)).status_code == 403  # another authority's record
    reason = {"reason": "处罚决定已被行政复议撤销"}
    theirs = await client.post(f"{one}:withdraw", json=reason, headers=hotline | {"If-Match": '"1"'})
    assert theirs.status_code == 403 and theirs.json()["type"].endswith(":not-your-record")
    assert (await client.post(f"{one}:withdraw", json=reason, headers=amr)).status_code == 428
    gone = await client.post(f"{one}:withdraw", json=reason, headers=amr | {"If-Match": '"1"'})
    assert gone.status_code == 200, gone.text
    assert (gone.json()["status"], gone.json()["version"]) == ("withdrawn", 2)
    twice = await client.post(f"{one}:withdraw", json=reason, headers=amr | {"If-Match": '"2"'})
    assert twice.status_code == 409

    credit = await _credit(client, base, officer)
    assert (credit["rating"], credit["score"]) == ("B", 60.0)
    (closed,) = await _entries(client, base, ENTERPRISE, officer)
    assert (closed["status"], closed["decided_by"]) == ("rejected", "system:auto-proposal")
    assert f"record:{ids[1]}" in closed["decision_comment"]

    versions = (await client.get(one, headers=officer)).json()["versions"]
    assert [(v["version"], v["action"], v["status"], v["actor"]) for v in versions] == [
        (1, "recorded", "active", "amr-penalty-system"),
        (2, "withdrawn", "withdrawn", "amr-penalty-system"),
    ]
    assert versions[1]["reason"] == reason["reason"]

    # The same number with other content is not a resend: the authority corrects instead.
    changed = penalty(1, "2025-01-10", amount_yuan="30000.00")
    clash = await client.post(f"{base}/v1/credit-records", json=changed, headers=amr)
    assert clash.status_code == 409 and clash.json()["type"].endswith(":credit-record-exists"), clash.text
    first = f"{base}/v1/credit-records/{ids[0]}"
    fixed = await client.post(
        f"{first}:correct", json={"reason": "罚款金额更正", "record": changed}, headers=amr | {"If-Match": '"1"'}
    )
    assert fixed.status_code == 200, fixed.text
    assert (fixed.json()["version"], fixed.json()["body"]["amount_yuan"]) == (2, "30000.00")
    kept = (await client.get(first, headers=amr)).json()["versions"]
    assert [v["body"]["amount_yuan"] for v in kept] == ["20000.00", "30000.00"]

    # A positive record (守信表彰) from another authority, and a single record sent twice.
    praise = {
        "record_no": "12345-PRAISE-1",
        "kind": "positive_record",
        "uscc": ENTERPRISE,
        "enterprise_name": "青岛测试电器有限公司",
        "occurred_on": "2025-05-01",
        "deciding_authority": "青岛市12345政务服务便民热线",
        "title": "守信企业表彰",
    }
    created = await client.post(f"{base}/v1/credit-records", json=praise, headers=hotline)
    assert created.status_code == 201 and created.headers["location"].endswith(created.json()["record_id"])
    resent = await client.post(f"{base}/v1/credit-records", json=praise, headers=hotline)
    assert resent.status_code == 200 and resent.json()["record_id"] == created.json()["record_id"]
    credit = await _credit(client, base, officer)
    assert (credit["rating"], credit["score"]) == ("B", 65.0)

    listed = await client.get(f"{base}/v1/credit-records", params={"uscc": ENTERPRISE}, headers=hotline)
    assert [r["authority"] for r in listed.json()["items"]] == ["QD-12345"]  # an authority sees its own

    types = await outbox_types(runtime)
    records = [t for t in types if t.startswith("credit.record.")]
    assert records == ["credit.record.recorded.v1"] * 3 + [
        "credit.record.withdrawn.v1",
        "credit.record.corrected.v1",
        "credit.record.recorded.v1",
    ]
    blacklist = [t.split(".")[2] for t in types if t.startswith("credit.blacklist_entry.")]
    assert blacklist == ["proposed", "rejected"]
    return ids


async def run_due_process(client: httpx.AsyncClient, base: str, auth: Auth, clock: FixedClock, runtime: Any) -> None:
    """Approval gives notice (告知) with a statement period of 5 working days across the National Day
    holiday (its 调休 Sunday a working day); the listing takes effect only after the deadline; a statement
    (陈述申辩) moves the entry to a reviewer, who is not the proposer; a late statement is refused."""
    clock.set(datetime.combine(date(2025, 9, 26), AT))  # a Friday
    alice = auth("credit:write", "read", subject="alice")
    bob = auth("credit:review", "read", subject="bob")
    admin = auth("admin", subject="ops")
    job = f"{base}/v1/jobs/list-after-notice:run"

    async def propose_and_approve(uscc: str, decision_no: str) -> tuple[str, dict[str, Any], str]:
        p = await client.post(
            f"{base}/v1/blacklist-entries", json=proposal(uscc, decision_no=decision_no), headers=alice
        )
        assert p.status_code == 201, p.text
        url = f"{base}/v1/blacklist-entries/{p.json()['entry_id']}"
        a = await client.post(f"{url}:approve", json={}, headers=bob | {"If-Match": p.headers["etag"]})
        assert a.status_code == 200, a.text
        return url, a.json(), a.headers["etag"]

    url, noticed, _ = await propose_and_approve(ENTERPRISE, "青质监罚〔2025〕1号")
    assert (noticed["status"], noticed["noticed_on"]) == ("noticed", "2025-09-26")
    # 5 working days: 9-28 (调休 Sunday), 9-29, 9-30, then 10-1…10-8 are the holiday: 10-9, 10-10.
    assert noticed["statement_deadline"] == "2025-10-10"
    assert noticed["listed_on"] is None and noticed["decided_by"] == "bob"

    async def listed(uscc: str, on: str | None = None) -> bool:
        params = {"uscc": uscc} | ({"as_of": on} if on else {})
        r = await client.get(f"{base}/v1/blacklist/check", params=params, headers=bob)
        assert r.status_code == 200, r.text
        return bool(r.json()["listed"])

    assert not await listed(ENTERPRISE)
    assert (await client.get(f"{base}/v1/blacklist")).json()["items"] == []
    clock.set(datetime.combine(date(2025, 10, 10), AT))  # the deadline itself: still open for a statement
    assert (await client.post(job, headers=admin)).json()["changed"] == 0
    assert not await listed(ENTERPRISE)
    clock.set(datetime.combine(date(2025, 10, 11), AT))
    assert (await client.post(job, headers=admin)).json()["changed"] == 1
    assert (await client.post(job, headers=admin)).json()["changed"] == 0
    entry = (await client.get(url, headers=bob)).json()
    assert (entry["status"], entry["listed_on"], entry["publish_until"]) == ("listed", "2025-10-11", "2028-10-10")
    assert await listed(ENTERPRISE) and not await listed(ENTERPRISE, "2025-10-10")
    rating = (await client.get(f"{base}/v1/enterprises/{ENTERPRISE}/credit", headers=bob)).json()
    assert (rating["rating"], rating["forced_by"]) == ("D", "listed")
    hist = (await client.get(f"{base}/v1/enterprises/{ENTERPRISE}/history", headers=bob)).json()["transitions"]
    assert [(t["action"], t["actor"]) for t in hist] == [
        ("proposed", "alice"),
        ("noticed", "bob"),
        ("listed", "system:notice-period"),
    ]
    assert hist[1]["details"] == {"statement_deadline": "2025-10-10"}

    # A statement in time goes to a reviewer: the deadline passing does not list it.
    clock.set(datetime.combine(date(2025, 10, 13), AT))
    url2, noticed2, tag = await propose_and_approve(OTHER, "青质监罚〔2025〕2号")
    assert noticed2["statement_deadline"] == "2025-10-20"
    statement = {
        "kind": "hearing_request",
        "received_on": "2025-10-14",
        "text": "产品已召回，申请听证",
        "submitted_by": "青岛测试电器有限公司 法定代表人",
    }
    early = await client.post(f"{url2}:record-statement", json=statement, headers=alice | {"If-Match": tag})
    assert early.status_code == 422  # received after today: not yet
    clock.set(datetime.combine(date(2025, 10, 14), AT))
    heard = await client.post(f"{url2}:record-statement", json=statement, headers=alice | {"If-Match": tag})
    assert heard.status_code == 200, heard.text
    assert (heard.json()["status"], heard.json()["statement"]["kind"]) == ("in_review", "hearing_request")
    clock.set(datetime.combine(date(2025, 10, 27), AT))
    assert (await client.post(job, headers=admin)).json()["changed"] == 0
    assert not await listed(OTHER)
    decision = {"outcome": "upheld", "reason": "申辩理由不成立", "decision_no": "青质监罚〔2025〕2号"}
    own = await client.post(
        f"{url2}:decide-statement",
        json=decision,
        headers=auth("credit:review", subject="alice") | {"If-Match": heard.headers["etag"]},
    )
    assert own.status_code == 403 and own.json()["type"].endswith(":own-statement-decision")
    upheld = await client.post(
        f"{url2}:decide-statement", json=decision, headers=bob | {"If-Match": heard.headers["etag"]}
    )
    assert upheld.status_code == 200, upheld.text
    assert (upheld.json()["status"], upheld.json()["listed_on"]) == ("listed", "2025-10-27")
    assert await listed(OTHER)

    # A statement after the deadline is late; the reviewer may also accept one (not listed).
    url3, noticed3, tag3 = await propose_and_approve(THIRD, "青质监罚〔2025〕3号")
    clock.set(datetime.combine(date.fromisoformat(noticed3["statement_deadline"]), AT))
    late = dict(statement, kind="statement", received_on="2025-11-04")
    tardy = await client.post(f"{url3}:record-statement", json=late, headers=alice | {"If-Match": tag3})
    assert tardy.status_code == 409 and tardy.json()["type"].endswith(":statement-too-late"), tardy.text
    assert tardy.json()["statement_deadline"] == noticed3["statement_deadline"]
    ok = dict(late, received_on=noticed3["statement_deadline"])
    heard3 = await client.post(f"{url3}:record-statement", json=ok, headers=alice | {"If-Match": tag3})
    assert heard3.status_code == 200, heard3.text
    accepted = await client.post(
        f"{url3}:decide-statement",
        json={"outcome": "accepted", "reason": "已提供合格检验报告"},
        headers=bob | {"If-Match": heard3.headers["etag"]},
    )
    assert accepted.status_code == 200 and accepted.json()["status"] == "rejected", accepted.text
    assert not await listed(THIRD)

    types = await outbox_types(runtime)
    steps = [t.split(".")[2] for t in types if t.startswith("credit.blacklist_entry.")]
    assert steps == [
        "proposed",
        "noticed",
        "listed",
        "proposed",
        "noticed",
        "statement_received",
        "listed",
        "proposed",
        "noticed",
        "statement_received",
        "rejected",
    ]
