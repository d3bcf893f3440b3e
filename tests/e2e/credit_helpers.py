"""Helpers for the credit service's end-to-end tests: sampling snapshots as envelopes, and the
blacklist lifecycle driven over HTTP, the same in embedded and distributed mode."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import select

from services.credit.models import outbox
from shared.clock import FixedClock
from shared.events import Envelope

ENTERPRISE = "91370200163562681G"
OTHER = "91370200MA3C00001N"
START = datetime(2014, 3, 3, 2, 0)  # 10:00 in Qingdao
_seq = itertools.count(1)


def _valid(code17: str) -> str:
    from stdnum.cn import uscc

    return code17 + uscc.calc_check_digit(code17)


THIRD = _valid("91370211MA3C00005")
FOURTH = _valid("91370212MA3C00009")


def snapshot(
    uscc: str,
    *,
    result_id: str | None = None,
    version: int = 1,
    conclusion: str = "fail",
    state: str = "final",
    reinspection: str | None = None,
    sector: str = "manufacturing",
    level: str = "municipal",
    report_date: date = date(2014, 2, 20),
) -> dict[str, Any]:
    """A sampling result snapshot as `services/sampling/events.py` defines it (built here, not imported)."""
    n = next(_seq)
    return {
        "result_id": result_id or f"r-{n:06d}",
        "version": version,
        "agency_code": "QD-AGENCY-1",
        "report_no": f"QD-2014-{n:05d}",
        "level": level,
        "sector": sector,
        "key_product": True,
        "product_category": "electrical",
        "product_name": f"product {n}",
        "brand": None,
        "uscc": uscc,
        "enterprise_name": "青岛测试电器有限公司",
        "district_code": "370202",
        "sampling_date": (report_date - timedelta(days=10)).isoformat(),
        "report_date": report_date.isoformat(),
        "conclusion": conclusion,
        "original_conclusion": "fail" if reinspection == "overturned" else conclusion,
        "state": state,
        "objection_deadline": (report_date + timedelta(days=15)).isoformat() if conclusion == "fail" else None,
        "reinspection": reinspection,
        "nonconforming_count": 1 if conclusion == "fail" else 0,
        "recorded_at": "2014-02-20T02:00:00Z",
    }


def sampling_event(result: dict[str, Any], verb: str = "finalised") -> Envelope:
    data: dict[str, Any] = {"result": result}
    if verb == "reinspected":
        data |= {
            "outcome": result["reinspection"],
            "decided_on": result["report_date"],
            "reinspection_report_no": "RE-1",
        }
    elif verb in ("corrected", "retracted"):
        data["reason"] = "test"
        if verb == "corrected":
            data["changed_fields"] = ["conclusion"]
    return Envelope(
        type=f"sampling.result.{verb}.v1", source="/qualitycity/sampling", subject=result["uscc"], data=data
    )


def wire(envelopes: list[Envelope]) -> list[tuple[Envelope, bytes]]:
    return [(e, orjson.dumps(e.data)) for e in envelopes]


def proposal(uscc: str = ENTERPRISE, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uscc": uscc,
        "enterprise_name": "青岛测试电器有限公司",
        "reason_category": "fake_or_shoddy_products",
        "facts": "以不合格产品冒充合格产品",
        "legal_basis": "《中华人民共和国产品质量法》第五十条",
        "deciding_authority": "青岛市质量技术监督局",
        "decision_no": "青质监罚〔2014〕12号",
        "appeal_route": "向青岛市人民政府申请行政复议",
        "appeal_deadline": "2014-05-03",
    }
    body.update(over)
    return body


async def outbox_types(runtime: Any) -> list[str]:
    async with runtime.unit_of_work() as uow:
        return list(await uow.session.scalars(select(outbox.c.type).order_by(outbox.c.id)))


async def run_lifecycle(
    client: httpx.AsyncClient, base: str, auth: Callable[..., dict[str, str]], clock: FixedClock, runtime: Any
) -> None:
    """propose → approve by another reviewer → listed → public → check/screening → repair → removed;
    then another listing expiring by the job with a moved clock."""
    alice = auth("credit:write", "credit:review", "read", subject="alice")
    bob = auth("credit:review", "read", subject="bob")
    admin = auth("admin", subject="ops")

    created = await client.post(
        f"{base}/v1/blacklist-entries", json=proposal(), headers=alice | {"Idempotency-Key": "p-1"}
    )
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["status"] == "proposed" and entry["publication_years"] == 3 and not entry["automatic"]
    again = await client.post(
        f"{base}/v1/blacklist-entries", json=proposal(), headers=alice | {"Idempotency-Key": "p-1"}
    )
    assert again.status_code == 201 and again.json()["entry_id"] == entry["entry_id"]  # a retry, not a second one
    url = f"{base}/v1/blacklist-entries/{entry['entry_id']}"
    tag = created.headers["etag"]
    assert tag == '"1"'

    own = await client.post(f"{url}:approve", json={}, headers=alice | {"If-Match": tag})
    assert own.status_code == 403 and own.json()["type"].endswith(":own-proposal")
    listed = await client.post(f"{url}:approve", json={"comment": "证据确凿"}, headers=bob | {"If-Match": tag})
    assert listed.status_code == 200, listed.text
    e = listed.json()
    today = clock.today()
    assert (e["status"], e["decided_by"], e["listed_on"]) == ("listed", "bob", today.isoformat())
    assert e["publish_until"] == date(today.year + 3, today.month, today.day - 1).isoformat()
    assert e["earliest_repair_on"] == date(today.year, today.month + 6, today.day).isoformat()
    tag = listed.headers["etag"]

    public = await client.get(f"{base}/v1/blacklist")  # no token
    assert public.status_code == 200, public.text
    (item,) = public.json()["items"]
    assert item["uscc"] == ENTERPRISE and item["decision_no"] == "青质监罚〔2014〕12号"
    assert item["reason_category_zh"] == "生产销售假冒伪劣产品"
    assert not {"facts", "proposed_by", "decided_by", "repair_evidence"} & set(item)

    check = await client.get(f"{base}/v1/blacklist/check", params={"uscc": ENTERPRISE}, headers=bob)
    assert check.json()["listed"] is True and check.json()["entry"]["entry_id"] == entry["entry_id"]
    before = await client.get(
        f"{base}/v1/blacklist/check",
        params={"uscc": ENTERPRISE, "as_of": (today - timedelta(days=1)).isoformat()},
        headers=bob,
    )
    assert before.json()["listed"] is False
    screening = await client.post(f"{base}/v1/screenings", json={"usccs": [OTHER, ENTERPRISE, OTHER]}, headers=bob)
    assert screening.status_code == 200, screening.text
    s = screening.json()
    assert (s["count"], s["listed_count"]) == (3, 1)
    assert [r["listed"] for r in s["results"]] == [False, True, False]
    rating = (await client.get(f"{base}/v1/enterprises/{ENTERPRISE}/credit", headers=bob)).json()
    assert (rating["rating"], rating["forced_by"], rating["rule_set_version"]) == ("D", "listed", "qd-credit-2012.2")

    evidence = {
        "applicant": "青岛测试电器有限公司",
        "statement": "已整改并召回",
        "evidence": [{"title": "整改报告", "document_no": "ZG-1"}],
    }
    early = await client.post(f"{url}:apply-repair", json=evidence, headers=alice | {"If-Match": tag})
    assert early.status_code == 409 and early.json()["type"].endswith(":repair-too-early")
    assert early.json()["earliest_repair_on"] == e["earliest_repair_on"]
    clock.set(datetime.combine(date.fromisoformat(e["earliest_repair_on"]), START.time()))
    once = alice | {"If-Match": tag, "Idempotency-Key": "repair-1"}
    applied = await client.post(f"{url}:apply-repair", json=evidence, headers=once)
    assert applied.status_code == 200, applied.text
    again = await client.post(f"{url}:apply-repair", json=evidence, headers=once)  # a retry: the first answer
    assert (again.status_code, again.json(), again.headers["etag"]) == (200, applied.json(), applied.headers["etag"])
    assert applied.json()["repair_status"] == "applied" and applied.json()["status"] == "listed"
    review = {"outcome": "approved", "reason": "整改到位", "decision_no": "青质监信修〔2014〕3号"}
    removed = await client.post(
        f"{url}:review-repair", json=review, headers=bob | {"If-Match": applied.headers["etag"]}
    )
    assert removed.status_code == 200, removed.text
    r = removed.json()
    assert (r["status"], r["removal_reason"], r["removed_on"]) == ("removed", "repaired", clock.today().isoformat())
    assert r["removal_decision_no"] == "青质监信修〔2014〕3号" and r["removed_by"] == "bob"
    now = await client.get(f"{base}/v1/blacklist/check", params={"uscc": ENTERPRISE}, headers=bob)
    assert now.json()["listed"] is False
    then = await client.get(
        f"{base}/v1/blacklist/check", params={"uscc": ENTERPRISE, "as_of": today.isoformat()}, headers=bob
    )
    assert then.json()["listed"] is True  # "was X blacklisted on date D?" still answers from the history
    assert (await client.get(f"{base}/v1/blacklist")).json()["items"] == []
    hist = await client.get(f"{base}/v1/enterprises/{ENTERPRISE}/history", headers=bob)
    assert [(t["action"], t["actor"]) for t in hist.json()["transitions"]] == [
        ("proposed", "alice"),
        ("listed", "bob"),
        ("repair_applied", "alice"),
        ("removed", "bob"),
    ]
    assert hist.json()["transitions"][-1]["document_no"] == "青质监信修〔2014〕3号"
    assert (await client.get(f"{base}/v1/enterprises/{ENTERPRISE}/history", headers=auth("read"))).status_code == 403

    # Expiry: another enterprise listed for one year, then the clock moves past its last day.
    second = await client.post(f"{base}/v1/blacklist-entries", json=proposal(OTHER, publication_years=1), headers=alice)
    assert second.status_code == 201, second.text
    url2 = f"{base}/v1/blacklist-entries/{second.json()['entry_id']}"
    ok = await client.post(f"{url2}:approve", json={}, headers=bob | {"If-Match": second.headers["etag"]})
    assert ok.status_code == 200, ok.text
    until = date.fromisoformat(ok.json()["publish_until"])
    job = f"{base}/v1/jobs/expire-listings:run"
    clock.set(datetime.combine(until, START.time()))
    assert (await client.post(job, headers=admin)).json()["changed"] == 0  # the last day is still published
    clock.set(datetime.combine(until + timedelta(days=1), START.time()))
    assert (await client.post(job, headers=admin)).json()["changed"] == 1
    assert (await client.post(job, headers=admin)).json()["changed"] == 0
    gone = (await client.get(url2, headers=bob)).json()
    assert (gone["status"], gone["removal_reason"], gone["removed_on"]) == (
        "removed",
        "expired",
        (until + timedelta(days=1)).isoformat(),
    )
    assert (
        await client.get(f"{base}/v1/blacklist/check", params={"uscc": OTHER, "as_of": until.isoformat()}, headers=bob)
    ).json()["listed"] is True

    types = await outbox_types(runtime)
    blacklist = [t.split(".")[2] for t in types if t.startswith("credit.blacklist_entry.")]
    assert blacklist == ["proposed", "listed", "repair_applied", "removed", "proposed", "listed", "removed"]
    assert types.count("credit.rating.changed.v1") == 4  # D, back, D, back
