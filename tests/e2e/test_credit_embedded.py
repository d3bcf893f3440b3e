"""The credit service in the embedded suite: the blacklist lifecycle over HTTP, sampling events
through the suite's in-process bus, bad input, and two reviewers acting at once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from qcity.embedded import create_embedded_app
from services.credit.models import blacklist_entries, entry_history, outbox, records
from shared.clock import FixedClock
from shared.settings import PlatformSettings
from tests.e2e.credit_helpers import (
    ENTERPRISE,
    OTHER,
    START,
    THIRD,
    proposal,
    run_lifecycle,
    sampling_event,
    snapshot,
    wire,
)
from tests.e2e.records_helpers import run_due_process, run_records
from tests.helpers import eventually, running

BASE = "/services/credit"


class Suite:
    def __init__(self, app: FastAPI, client: httpx.AsyncClient, clock: FixedClock, platform: PlatformSettings):
        self.app, self.client, self.clock, self.platform = app, client, clock, platform

    @property
    def runtime(self) -> Any:
        return self.app.state.embedded_services["credit"].state.runtime

    async def publish_sampling(self, envelopes: list[Any]) -> None:
        await self.app.state.bus.publish(self.platform.topic("sampling"), wire(envelopes))

    async def counts(self) -> tuple[int, int, int, int]:
        async with self.runtime.unit_of_work() as uow:
            s = uow.session
            return (
                int(await s.scalar(select(func.count()).select_from(blacklist_entries)) or 0),
                int(await s.scalar(select(func.count()).select_from(entry_history)) or 0),
                int(await s.scalar(select(func.count()).select_from(outbox)) or 0),
                int(await s.scalar(select(func.count()).select_from(records)) or 0),
            )


@pytest.fixture
async def suite(tmp_path: Path, platform: PlatformSettings) -> AsyncIterator[Suite]:
    clock = FixedClock(START)
    app = create_embedded_app(tmp_path / "data", platform, clock=clock)
    async with running(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://suite") as c:
            yield Suite(app, c, clock, platform)


async def test_blacklist_lifecycle_embedded(suite: Suite, auth: Callable[..., dict[str, str]]) -> None:
    await run_lifecycle(suite.client, BASE, auth, suite.clock, suite.runtime)


async def _entries(s: Suite, uscc: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = await s.client.get(f"{BASE}/v1/blacklist-entries", params={"uscc": uscc}, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_repeated_final_fails_over_the_bus_propose_once_and_never_list(
    suite: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    s = suite
    officer = auth("credit:write", subject="alice")
    reader = auth("read")
    provisional = snapshot(THIRD, state="provisional", report_date=date(2014, 2, 25))
    fails = [
        sampling_event(snapshot(THIRD, report_date=date(2013, 9, 1))),
        sampling_event(snapshot(THIRD, sector="food", report_date=date(2014, 1, 10))),
        sampling_event(provisional, "corrected"),  # provisional: not (yet) negative
    ]
    await s.publish_sampling(fails)
    assert await _entries(s, THIRD, officer) == []  # two final fails: below the threshold of three
    credit = (await s.client.get(f"{BASE}/v1/enterprises/{THIRD}/credit", headers=reader)).json()
    assert [(r["kind"], r["counted"]) for r in credit["records"]].count(("negative", True)) == 2
    assert credit["rating"] == "C" and credit["score"] == 80 - 10 - 15  # municipal 10, municipal food 10×1.5

    upheld = dict(provisional, version=2, state="final", reinspection="upheld")
    third_fail = sampling_event(upheld, "reinspected")
    await s.publish_sampling([third_fail])
    (entry,) = await eventually(lambda: _entries(s, THIRD, officer), lambda v: len(v) == 1)
    assert (entry["status"], entry["automatic"], entry["proposed_by"]) == ("proposed", True, "system:auto-proposal")
    assert entry["reason_category"] == "food_sampling_failure" and len(entry["trigger_records"]) == 3
    assert entry["listed_on"] is None and entry["decision_no"] is None
    check = await s.client.get(f"{BASE}/v1/blacklist/check", params={"uscc": THIRD}, headers=reader)
    assert check.json()["listed"] is False  # a proposal only, never a listing

    before = await s.counts()
    await s.publish_sampling([third_fail, *fails])  # the same events delivered again
    again = dict(upheld)
    await s.publish_sampling([sampling_event(again, "reinspected")])  # same version, a new event id
    await s.publish_sampling([sampling_event(dict(provisional), "corrected")])  # an older version, late
    assert await s.counts() == before
    assert len(await _entries(s, THIRD, officer)) == 1
    credit2 = (await s.client.get(f"{BASE}/v1/enterprises/{THIRD}/credit", headers=reader)).json()
    assert sum(r["counted"] for r in credit2["records"]) == 3

    # An overturned re-inspection neutralises its record; a retraction too.
    await s.publish_sampling(
        [sampling_event(dict(upheld, version=3, conclusion="pass", reinspection="overturned"), "reinspected")]
    )
    credit3 = (await s.client.get(f"{BASE}/v1/enterprises/{THIRD}/credit", headers=reader)).json()
    assert sum(r["counted"] for r in credit3["records"]) == 2
    assert "overturned on re-inspection" in [r["note"] for r in credit3["records"]]


async def test_two_reviewers_at_once_leave_exactly_one_decision(
    suite: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    s = suite
    created = await s.client.post(
        f"{BASE}/v1/blacklist-entries", json=proposal(), headers=auth("credit:write", subject="alice")
    )
    url = f"{BASE}/v1/blacklist-entries/{created.json()['entry_id']}"
    tag = created.headers["etag"]
    approve, reject = await asyncio.gather(
        s.client.post(f"{url}:approve", json={}, headers=auth("credit:review", subject="bob") | {"If-Match": tag}),
        s.client.post(
            f"{url}:reject",
            json={"reason": "证据不足"},
            headers=auth("credit:review", subject="carol") | {"If-Match": tag},
        ),
    )
    assert sorted([approve.status_code, reject.status_code]) == [200, 412], (approve.text, reject.text)
    loser = approve if approve.status_code == 412 else reject
    assert loser.json()["type"] == "urn:qualitycity:problem:precondition-failed"
    entries, history, events, _ = await s.counts()
    assert (entries, history, events) == (1, 2, 2 + (approve.status_code == 200))  # + rating.changed on listing


async def test_public_list_needs_no_token_and_is_rate_limited(suite: Suite) -> None:
    limiter = suite.app.state.embedded_services["credit"].state.public_limiter
    # Time stands still for the limiter: on a loaded machine a refill during the burst let one more through.
    now = time.time()
    limiter.clock = lambda: now
    codes = [(await suite.client.get(f"{BASE}/v1/blacklist")).status_code for _ in range(int(limiter.burst) + 1)]
    assert codes[:-1] == [200] * int(limiter.burst)
    last = await suite.client.get(f"{BASE}/v1/blacklist")
    assert last.status_code == 429 and last.json()["type"].endswith(":rate-limited")
    assert int(last.headers["retry-after"]) >= 1


async def test_rating_rules_are_published(suite: Suite) -> None:
    r = await suite.client.get(f"{BASE}/v1/rating-rules")
    assert r.status_code == 200
    body = r.json()
    assert body["rule_set"]["version"] == "qd-credit-2012.2"
    assert body["rule_set"]["blacklist"]["publication_years"]["default"] == 3
    assert body["rule_set"]["blacklist"]["repair_waiting_months"] == {"general": 6, "food": 12, "special_equipment": 12}


BAD_PROPOSALS = [
    (proposal(uscc="91370200163562681X"), 422, "validation-error", "uscc"),
    (proposal(reason_category="jaywalking"), 422, "unknown-reason-category", None),
    (proposal(publication_years=7), 422, "publication-period-out-of-range", None),
    (proposal(publication_years=0), 422, "publication-period-out-of-range", None),
    (proposal(colour="red"), 422, "validation-error", "colour"),
]


@pytest.mark.parametrize(
    ("body", "status", "slug", "field"),
    BAD_PROPOSALS,
    ids=["bad-uscc", "unknown-category", "period-too-long", "period-zero", "unknown-field"],
)
async def test_bad_proposals_get_their_problem_and_change_nothing(
    suite: Suite,
    auth: Callable[..., dict[str, str]],
    body: dict[str, Any],
    status: int,
    slug: str,
    field: str | None,
) -> None:
    before = await suite.counts()
    r = await suite.client.post(f"{BASE}/v1/blacklist-entries", json=body, headers=auth("credit:write"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == f"urn:qualitycity:problem:{slug}"
    if field:
        assert [e["field"] for e in r.json()["errors"]] == [field]
    assert await suite.counts() == before


async def test_bad_transitions_and_queries_get_their_problem_and_change_nothing(
    suite: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    s = suite
    alice, bob = auth("credit:write", subject="alice"), auth("credit:review", "read", subject="bob")
    created = await s.client.post(f"{BASE}/v1/blacklist-entries", json=proposal(), headers=alice)
    url = f"{BASE}/v1/blacklist-entries/{created.json()['entry_id']}"
    rejected = await s.client.post(f"{url}:reject", json={"reason": "证据不足"}, headers=bob | {"If-Match": '"1"'})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    before = await s.counts()

    async def expect(resp: httpx.Response, status: int, slug: str) -> dict[str, Any]:
        assert resp.status_code == status, resp.text
        assert resp.json()["type"] == f"urn:qualitycity:problem:{slug}"
        assert await s.counts() == before
        return dict(resp.json())

    await expect(
        await s.client.post(f"{url}:approve", json={}, headers=bob | {"If-Match": '"2"'}), 409, "entry-not-pending"
    )
    stale = await expect(
        await s.client.post(f"{url}:approve", json={}, headers=bob | {"If-Match": '"1"'}), 412, "precondition-failed"
    )
    assert stale["current_etag"] == '"2"'
    await expect(await s.client.post(f"{url}:approve", json={}, headers=bob), 428, "precondition-required")
    await expect(
        await s.client.post(f"{url}:remove", json={"decision_no": "X"}, headers=bob | {"If-Match": '"2"'}),
        409,
        "invalid-transition",
    )
    await expect(
        await s.client.post(f"{url}:approve", json={}, headers=alice | {"If-Match": '"2"'}), 403, "insufficient-scope"
    )
    bad = await expect(
        await s.client.get(f"{BASE}/v1/blacklist/check", params={"uscc": "91370200163562681X"}, headers=bob),
        422,
        "invalid-uscc",
    )
    assert bad["errors"][0]["field"] == "uscc" and "check digit" in bad["errors"][0]["reason"]
    bad = await expect(
        await s.client.post(f"{BASE}/v1/screenings", json={"usccs": [ENTERPRISE, "nope"]}, headers=bob),
        422,
        "invalid-uscc",
    )
    assert [e["field"] for e in bad["errors"]] == ["usccs[1]"]
    await expect(
        await s.client.post(f"{BASE}/v1/screenings", json={"usccs": [OTHER] * 1001}, headers=bob),
        422,
        "validation-error",
    )
    # A second open entry for the same enterprise is refused while one is pending.
    await s.client.post(f"{BASE}/v1/blacklist-entries", json=proposal(OTHER), headers=alice)
    dup = await s.client.post(f"{BASE}/v1/blacklist-entries", json=proposal(OTHER), headers=alice)
    assert dup.status_code == 409 and dup.json()["type"].endswith(":entry-already-open")


async def test_authority_records_move_ratings_and_proposals_embedded(
    suite: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    await run_records(suite.client, BASE, auth, suite.clock, suite.runtime)


async def test_due_process_before_listing_embedded(suite: Suite, auth: Callable[..., dict[str, str]]) -> None:
    await run_due_process(suite.client, BASE, auth, suite.clock, suite.runtime)


async def test_names_without_a_uscc_are_matched_only_when_unambiguous(
    suite: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    """The register learns enterprises from the sampling stream (passes too); a name is answered with a
    USCC only when one enterprise matches; a record sent by name is stored only then, else it answers
    the candidates for a person to choose."""
    names = {
        ENTERPRISE: ("青岛海达机械有限公司", "370211"),
        OTHER: ("平度市海达机械股份有限公司", "370283"),
        THIRD: ("青岛利华电器有限公司", "370202"),
    }
    await suite.publish_sampling(
        [
            sampling_event(dict(snapshot(u, conclusion="pass"), enterprise_name=n, district_code=d), "recorded")
            for u, (n, d) in names.items()
        ]
    )
    reader = auth("read")

    async def match(*queries: dict[str, str]) -> dict[str, Any]:
        r = await suite.client.post(f"{BASE}/v1/enterprises:match", json={"names": list(queries)}, headers=reader)
        assert r.status_code == 200, r.text
        return dict(r.json())

    await eventually(lambda: match({"name": "利华电器"}), lambda m: m["matched"] == 1)
    out = await match(
        {"name": "青島利華電器有限責任公司"},
        {"name": "海达机械"},
        {"name": "海达机械", "district_code": "370283"},
        {"name": "崂山矿泉水"},
    )
    assert [(r["outcome"], r["uscc"]) for r in out["results"]] == [
        ("matched", THIRD),
        ("ambiguous", None),
        ("matched", OTHER),
        ("not_found", None),
    ]
    assert {c["uscc"] for c in out["results"][1]["candidates"]} == {ENTERPRISE, OTHER}
    why = out["results"][0]["candidates"][0]["explanation"]
    assert why["matched"] == ["利华电器"] and why["removed"]["query"]["forms"] == ["有限责任公司"]

    clock_day = suite.clock.today().isoformat()
    amr = auth("credit:records", subject="amr", agency="QD-AMR")
    by_name = {
        "record_no": "N-1",
        "kind": "upheld_complaint",
        "enterprise_name": "青岛利华电器",
        "occurred_on": clock_day,
        "deciding_authority": "青岛市12315",
        "case_no": "12315-2014-1",
        "channel": "12315",
        "category": "产品质量",
    }
    ambiguous = dict(by_name, record_no="N-2", enterprise_name="海达机械")
    sent = await suite.client.post(f"{BASE}/v1/credit-records:batch", json=[by_name, ambiguous], headers=amr)
    assert sent.status_code == 200, sent.text
    rows = sent.json()["rows"]
    assert [r["outcome"] for r in rows] == ["created", "unmatched"] and sent.json()["unmatched"] == 1
    assert {c["uscc"] for c in rows[1]["candidates"]} == {ENTERPRISE, OTHER}
    got = await suite.client.get(f"{BASE}/v1/credit-records/{rows[0]['record_id']}", headers=amr)
    assert got.json()["uscc"] == THIRD
    single = await suite.client.post(f"{BASE}/v1/credit-records", json=ambiguous, headers=amr)
    assert single.status_code == 422 and single.json()["type"].endswith(":enterprise-not-matched"), single.text
    assert len(single.json()["candidates"]) == 2

    # The archive import takes a name without a USCC on the same terms.
    archived = {k: v for k, v in proposal(appeal_deadline="2014-02-01").items() if k != "uscc"}
    archived |= {
        "enterprise_name": "青岛利华电器",
        "proposed_by": "张科员",
        "reviewed_by": "李处长",
        "decided_on": "2014-01-10",
        "listed_from": "2014-01-11",
    }
    rows = [archived, dict(archived, enterprise_name="海达机械", decision_no="青质监罚〔2014〕13号")]
    importer = auth("archive:import") | {"X-Source-File": "archive.json"}
    imported = await suite.client.post(f"{BASE}/v1/blacklist:import", json=rows, headers=importer)
    assert imported.status_code == 200, imported.text
    out = imported.json()
    assert (out["created"], out["unmatched"]) == (1, 1)
    assert out["rows"][1]["problems"][0]["field"] == "uscc"
    assert {c["uscc"] for c in out["rows"][1]["candidates"]} == {ENTERPRISE, OTHER}
    check = await suite.client.get(f"{BASE}/v1/blacklist/check", params={"uscc": THIRD}, headers=reader)
    assert check.json()["listed"] is True


async def test_next_years_holiday_arrangement_loaded_by_the_operator_counts_a_notice_into_it(
    tmp_path: Path, platform: PlatformSettings, auth: Callable[..., dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notice given on Monday 2026-12-28 runs into a year chinese-calendar does not ship: refused (503,
    nothing changed) until the operator loads the year's arrangement, then counted from it."""
    arrangement = {"year": 2027, "notice": "test arrangement", "holidays": ["2027-01-01"], "workdays": []}
    holidays = tmp_path / "holidays.json"
    holidays.write_text(json.dumps({"years": [arrangement]}), encoding="utf-8")
    alice, bob = auth("credit:write", subject="alice"), auth("credit:review", subject="bob")

    async def approve(data: str) -> tuple[httpx.Response, dict[str, Any]]:
        clock = FixedClock(datetime(2026, 12, 28, 2, 0, tzinfo=UTC))
        async with running(create_embedded_app(tmp_path / data, platform, clock=clock)) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://suite") as c:
                p = await c.post(f"{BASE}/v1/blacklist-entries", json=proposal(), headers=alice)
                assert p.status_code == 201, p.text
                url = f"{BASE}/v1/blacklist-entries/{p.json()['entry_id']}"
                a = await c.post(f"{url}:approve", json={}, headers=bob | {"If-Match": p.headers["etag"]})
                rules = (await c.get(f"{BASE}/v1/rating-rules")).json()["working_days"]
                return a, {"entry": (await c.get(url, headers=bob)).json(), "working_days": rules}

    refused, seen = await approve("without")
    assert refused.status_code == 503 and refused.json()["type"].endswith(":holiday-calendar-missing"), refused.text
    assert refused.json()["year"] == 2027
    assert seen["entry"]["status"] == "proposed" and seen["entry"]["version"] == 1  # nothing changed
    assert seen["working_days"]["loaded_years"] == []

    monkeypatch.setenv("QC_CREDIT_HOLIDAY_FILE", str(holidays))
    noticed, seen = await approve("with")
    assert noticed.status_code == 200, noticed.text
    # 12-29, 12-30, 12-31, (01-01 off), 01-04, 01-05: the fifth working day.
    assert noticed.json()["statement_deadline"] == "2027-01-05"
    assert seen["working_days"] == {
        "covered_through": 2027,
        "loaded_years": [{"year": 2027, "notice": "test arrangement"}],
    }
