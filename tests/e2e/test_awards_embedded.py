"""The awards service in the embedded suite (SQLite, the in-process bus fed from the outboxes):
grants of every catalog type, bad input, revocation, the blacklist in step, expiry, import, reading."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from qcity.embedded import create_embedded_app
from services.awards.domain import load_catalog
from services.awards.models import honours, outbox
from shared.clock import FixedClock
from shared.contracts.awards import HonourSnapshot
from shared.events import Envelope
from shared.settings import PlatformSettings
from tests.e2e.awards_helpers import grant_body, listed_event, make_uscc, removed_event, usccable_types
from tests.helpers import eventually, running

A = "/services/awards/v1"
P = "urn:qualitycity:problem:"
USCC = make_uscc(1)
OTHER = make_uscc(2)


@dataclass
class Suite:
    app: FastAPI
    client: httpx.AsyncClient
    clock: FixedClock
    platform: PlatformSettings

    @property
    def runtime(self) -> Any:
        return self.app.state.embedded_services["awards"].state.runtime

    async def events(self, type_: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        async with self.runtime.unit_of_work() as uow:
            stmt = select(outbox.c.type, outbox.c.data).order_by(outbox.c.id)
            if type_:
                stmt = stmt.where(outbox.c.type == type_)
            rows = (await uow.session.execute(stmt)).all()
        return [(r.type, orjson.loads(r.data)) for r in rows]

    async def stored(self) -> tuple[int, int]:
        async with self.runtime.unit_of_work() as uow:
            n_h = await uow.session.scalar(select(func.count()).select_from(honours))
            n_e = await uow.session.scalar(select(func.count()).select_from(outbox))
        return int(n_h or 0), int(n_e or 0)

    async def credit(self, *events: Envelope) -> None:
        """Put credit events on the suite's bus, as the credit service's relay would."""
        await self.app.state.bus.publish(self.platform.topic("credit"), [(e, orjson.dumps(e.data)) for e in events])


@pytest.fixture
async def suite(tmp_path: Path, platform: PlatformSettings) -> AsyncIterator[Suite]:
    clock = FixedClock(datetime(2015, 2, 1, 4, tzinfo=UTC))
    app = create_embedded_app(tmp_path / "data", platform, clock=clock)
    async with running(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://suite") as client:
            yield Suite(app, client, clock, platform)


@pytest.fixture
def w(auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    return auth("awards:write", "read", agency=None, subject="brand-office-1")


async def _grant(s: Suite, h: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = await s.client.post(f"{A}/honours", json=body, headers=h)
    assert r.status_code == 201, r.text
    return dict(r.json())


# ------------------------------------------------------------------------------ catalog


SEED_TYPES = [  # docs/honour-catalog.md, each honour the seed counts, by a fragment of its Chinese name
    "知名品牌",
    "地理标志",
    "驰名商标",
    "优质产品生产基地",
    "山东名牌产品",
    "著名商标",
    "服务名牌",
    "国际标准",
    "国家标准",
    "行业标准",
    "地方标准",
    "秘书处",
    "良好行为",
    "农业标准化",
    "服务业标准化",
    "卓越绩效标杆",
    "评审专家",
    "省长质量奖",
    "市长质量奖",
    "质量创新孵化基地",
    "国家级工程质量奖",
    "省级工程质量奖",
    "服务标准化示范区",
]


async def test_catalog_is_public_and_covers_every_seed_type(suite: Suite) -> None:
    r = await suite.client.get(f"{A}/honour-types")
    assert r.status_code == 200
    types = r.json()["types"]
    for fragment in SEED_TYPES:
        assert any(fragment in t["name_zh"] for t in types), fragment
    b5 = next(t for t in types if t["code"] == "B5")
    assert (b5["holder_kinds"], b5["validity_years"], b5["indicator_code"]) == (
        ["enterprise"],
        3,
        "shandong_famous_brands",
    )
    q2 = next(t for t in types if t["code"] == "Q2")
    assert q2["holder_kinds"] == ["person"]
    assert {"code", "name_zh", "name_en", "holder_kinds", "granting_level", "validity_years", "indicator_code"} <= set(
        b5
    )
    assert (await suite.client.get(f"{A}/honour-types/ZZ")).json()["type"] == P + "unknown-honour-type"
    regions = (await suite.client.get(f"{A}/regions")).json()
    sifang = next(x for x in regions if x["code"] == "370205")
    assert sifang["valid_to"] == "2012-12-31"


# ------------------------------------------------------------------------------ granting


@pytest.mark.parametrize("code", load_catalog().codes)
async def test_every_catalog_type_can_be_granted(suite: Suite, w: dict[str, str], code: str) -> None:
    t = load_catalog().get(code)
    body = grant_body(t, USCC, cert=f"{code}-0001")
    r = await suite.client.post(f"{A}/honours", json=body, headers=w)
    assert r.status_code == 201, r.text
    out = r.json()
    assert r.headers["etag"] == '"1"' and r.headers["location"] == f"/v1/honours/{out['honour_id']}"
    assert out["state"] == "active" and out["type_code"] == code and out["indicator_codes"] == [t.indicator_code]
    expected_until = None if t.validity_years is None else f"{2014 + t.validity_years}-05-31"
    assert out["valid_until"] == expected_until
    assert out["granting_authority"] == t.default_authority
    if body["holder_kind"] == "enterprise":
        assert out["district_code"] == "370211"  # from the USCC's registering region
    got = await suite.client.get(f"{A}/honours/{out['honour_id']}", headers=w)
    assert got.status_code == 200 and got.json() == out
    events = await suite.events()
    assert [e[0] for e in events] == ["awards.honour.granted.v1"]
    snap = HonourSnapshot.model_validate(events[0][1]["honour"])
    assert snap.honour_id == out["honour_id"] and snap.type_name_zh == t.name_zh and snap.version == 1


async def test_idempotency_key_replays_the_first_answer(suite: Suite, w: dict[str, str]) -> None:
    body = grant_body("B5", USCC, cert="SDMP-1")
    h = w | {"Idempotency-Key": "k-1"}
    first = await suite.client.post(f"{A}/honours", json=body, headers=h)
    again = await suite.client.post(f"{A}/honours", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    other = await suite.client.post(f"{A}/honours", json=grant_body("B5", USCC, cert="SDMP-2"), headers=h)
    assert other.status_code == 422 and other.json()["type"] == P + "idempotency-key-reused"
    assert await suite.stored() == (1, 1)


BAD = [
    ("unknown-type", {"type_code": "X9"}, 422, "unknown-honour-type", "type_code"),
    (
        "person-as-brand-zone",
        {"type_code": "B1", "holder_kind": "person", "holder_id": "QD-P-1"},
        422,
        "holder-kind-not-allowed",
        "holder_kind",
    ),
    ("enterprise-as-expert", {"type_code": "Q2", "subject": None}, 422, "holder-kind-not-allowed", "holder_kind"),
    (
        "bad-uscc-check-digit",
        {"holder_id": USCC[:-1] + ("0" if USCC[-1] != "0" else "1")},
        422,
        "invalid-uscc",
        "holder_id",
    ),
    ("bad-uscc-length", {"holder_id": "9137021"}, 422, "invalid-uscc", "holder_id"),
    (
        "unknown-division",
        {"type_code": "B1", "holder_kind": "region", "holder_id": "370299", "subject": None},
        422,
        "invalid-division-code",
        "holder_id",
    ),
    (
        "division-not-in-force",
        {
            "type_code": "B1",
            "holder_kind": "region",
            "holder_id": "370205",
            "subject": None,
            "granted_on": "2014-01-01",
        },
        422,
        "invalid-division-code",
        "holder_id",
    ),
    ("jimo-district-before-2017", {"district_code": "370215"}, 422, "invalid-division-code", "district_code"),
    ("valid-until-before-granted", {"valid_until": "2014-05-31"}, 422, "valid-until-before-granted", "valid_until"),
    ("granted-in-future", {"granted_on": "2015-02-02"}, 422, "granted-in-future", "granted_on"),
    ("subject-missing", {"subject": None}, 422, "subject-required", "subject"),
    (
        "subject-kind-mismatch",
        {"subject": {"kind": "trademark", "name": "海X"}},
        422,
        "subject-kind-mismatch",
        "subject.kind",
    ),
    ("unknown-field", {"colour": "red"}, 422, "validation-error", "colour"),
    # Credit and the gateway keep an enterprise's name in 200 characters: a longer one would stall them.
    ("holder-name-too-long", {"holder_name": "青" * 201}, 422, "validation-error", "holder_name"),
]


@pytest.mark.parametrize(("over", "status", "slug", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
async def test_bad_grant_gets_its_problem_and_changes_nothing(
    suite: Suite, w: dict[str, str], over: dict[str, Any], status: int, slug: str, field: str
) -> None:
    body = {k: v for k, v in (grant_body("B5", USCC) | over).items() if v is not None}
    r = await suite.client.post(f"{A}/honours", json=body, headers=w)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"] == P + slug
    assert [e["field"] for e in problem["errors"]] == [field]
    assert await suite.stored() == (0, 0)


async def test_standard_needs_number_title_role_of_its_level(suite: Suite, w: dict[str, str]) -> None:
    ok = grant_body("S2", USCC, cert="S2-1")
    assert (await suite.client.post(f"{A}/honours", json=ok, headers=w)).status_code == 201
    wrong_level = grant_body(
        "S2", USCC, cert="S2-2", subject={"kind": "standard", "number": "DB37/T 1-2012", "title": "x", "role": "lead"}
    )
    r = await suite.client.post(f"{A}/honours", json=wrong_level, headers=w)
    assert r.status_code == 422 and r.json()["type"] == P + "standard-number-mismatch"
    no_role = grant_body("S2", USCC, cert="S2-3", subject={"kind": "standard", "number": "GB/T 1-2012", "title": "x"})
    r = await suite.client.post(f"{A}/honours", json=no_role, headers=w)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "subject.role"
    assert await suite.stored() == (1, 1)


async def test_duplicate_certificate_number_per_type_is_a_conflict(suite: Suite, w: dict[str, str]) -> None:
    first = await _grant(suite, w, grant_body("B5", USCC, cert="SDMP-2014-1"))
    r = await suite.client.post(f"{A}/honours", json=grant_body("B5", OTHER, cert="SDMP-2014-1"), headers=w)
    assert r.status_code == 409 and r.json()["type"] == P + "duplicate-certificate-no"
    assert r.json()["honour_id"] == first["honour_id"]
    # The same number under another type is another certificate.
    await _grant(suite, w, grant_body("B6", USCC, cert="SDMP-2014-1"))
    assert await suite.stored() == (2, 2)


async def test_writes_need_the_awards_scope(suite: Suite, auth: Callable[..., dict[str, str]]) -> None:
    body = grant_body("B5", USCC)
    assert (await suite.client.post(f"{A}/honours", json=body)).status_code == 401
    r = await suite.client.post(f"{A}/honours", json=body, headers=auth("read"))
    assert r.status_code == 403 and r.json()["required_scope"] == "awards:write"
    assert (await suite.client.get(f"{A}/honours")).status_code == 401
    assert await suite.stored() == (0, 0)


# ------------------------------------------------------------------------------ revoking


async def test_revoke_needs_if_match_and_twice_is_a_conflict(suite: Suite, w: dict[str, str]) -> None:
    h = await _grant(suite, w, grant_body("B5", USCC))
    url = f"{A}/honours/{h['honour_id']}:revoke"
    body = {"reason": "以不正当手段取得", "revoked_on": "2015-01-15"}
    missing = await suite.client.post(url, json=body, headers=w)
    assert missing.status_code == 428 and missing.json()["type"] == P + "precondition-required"
    stale = await suite.client.post(url, json=body, headers=w | {"If-Match": '"7"'})
    assert stale.status_code == 412
    ok = await suite.client.post(url, json=body, headers=w | {"If-Match": '"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.json()["state"] == "revoked" and ok.json()["revoked_on"] == "2015-01-15"
    assert ok.headers["etag"] == '"2"'
    twice = await suite.client.post(url, json=body, headers=w | {"If-Match": '"2"'})
    assert twice.status_code == 409 and twice.json()["type"] == P + "honour-already-revoked"
    revoked = await suite.events("awards.honour.revoked.v1")
    assert len(revoked) == 1 and revoked[0][1]["reason"] == "以不正当手段取得"
    assert revoked[0][1]["honour"]["version"] == 2
    before = await suite.client.post(url.replace(h["honour_id"], "nope"), json=body, headers=w | {"If-Match": "*"})
    assert before.status_code == 404


# ------------------------------------------------------------------------------ in step with credit


async def test_listing_suspends_removal_reinstates_and_a_grant_while_listed_is_refused(
    suite: Suite, w: dict[str, str]
) -> None:
    s = suite
    mine = [await _grant(s, w, grant_body(t, USCC, cert=f"{t.code}-L")) for t in usccable_types()]
    short = await _grant(s, w, grant_body("B6", USCC, cert="B6-short", valid_until="2015-08-01"))
    theirs = await _grant(s, w, grant_body("B5", OTHER, cert="B5-other"))
    listed = listed_event("entry-1", USCC, listed_on=date(2015, 3, 1))
    s.clock.set(datetime(2015, 3, 2, 4, tzinfo=UTC))
    await s.credit(listed)
    for h in [*mine, short]:
        got = (await s.client.get(f"{A}/honours/{h['honour_id']}", headers=w)).json()
        assert got["state"] == "suspended", got
        assert got["suspensions"] == [
            {
                "entry_id": "entry-1",
                "decision_no": "青质监信〔2015〕7号",
                "suspended_on": "2015-03-01",
                "reinstated_on": None,
            }
        ]
    assert (await s.client.get(f"{A}/honours/{theirs['honour_id']}", headers=w)).json()["state"] == "active"
    suspended = await s.events("awards.honour.suspended.v1")
    assert sorted(e[1]["honour"]["honour_id"] for e in suspended) == sorted(h["honour_id"] for h in [*mine, short])
    assert {e[1]["entry_id"] for e in suspended} == {"entry-1"}

    # Redelivered (same event) and republished (same entry and version, new event id): suspended once.
    await s.credit(listed)
    await s.credit(listed_event("entry-1", USCC, listed_on=date(2015, 3, 1)))
    assert len(await s.events("awards.honour.suspended.v1")) == len(mine) + 1

    refused = await s.client.post(f"{A}/honours", json=grant_body("B5", USCC, cert="B5-new"), headers=w)
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["type"] == P + "holder-blacklisted"
    assert (problem["entry_id"], problem["decision_no"]) == ("entry-1", "青质监信〔2015〕7号")
    n_before = await s.stored()

    counts = (
        await s.client.get(
            f"{A}/honour-counts", params={"period_start": "2014-01-01", "period_end": "2015-03-01"}, headers=w
        )
    ).json()
    b5 = next(c for c in counts["by_type"] if c["type_code"] == "B5")
    assert (b5["granted_during"], b5["active_at_end"]) == (2, 1)  # suspended at the end: not active

    s.clock.set(datetime(2015, 9, 2, 4, tzinfo=UTC))
    await s.credit(removed_event("entry-1", USCC, date(2015, 9, 1)))
    for h in mine:
        got = (await s.client.get(f"{A}/honours/{h['honour_id']}", headers=w)).json()
        assert got["state"] == "active" and got["suspensions"][0]["reinstated_on"] == "2015-09-01"
    assert (await s.client.get(f"{A}/honours/{short['honour_id']}", headers=w)).json()["state"] == "expired"
    reinstated = await s.events("awards.honour.reinstated.v1")
    assert sorted(e[1]["honour"]["honour_id"] for e in reinstated) == sorted(h["honour_id"] for h in mine)
    expired = await s.events("awards.honour.expired.v1")
    assert [e[1]["honour"]["honour_id"] for e in expired] == [short["honour_id"]]
    assert n_before[0] == len(mine) + 2

    # Once removed, the enterprise may be granted again.
    await _grant(s, w, grant_body("B5", USCC, cert="B5-after"))


async def test_expiry_job_runs_on_the_injected_clock(suite: Suite, w: dict[str, str], auth: Any) -> None:
    s = suite
    h = await _grant(s, w, grant_body("B5", USCC, granted_on="2012-12-20"))
    assert h["valid_until"] == "2015-12-19"
    admin = auth("admin", agency=None)
    s.clock.set(datetime(2015, 12, 19, 4, tzinfo=UTC))
    r = await s.client.post(f"{A}/jobs/expire-honours:run", headers=admin)
    assert r.status_code == 200 and r.json()["changed"] == 0
    s.clock.set(datetime(2015, 12, 20, 4, tzinfo=UTC))
    assert (await s.client.post(f"{A}/jobs/expire-honours:run", headers=admin)).json()["changed"] == 1
    assert (await s.client.post(f"{A}/jobs/expire-honours:run", headers=admin)).json()["changed"] == 0
    got = (await s.client.get(f"{A}/honours/{h['honour_id']}", headers=w)).json()
    assert got["state"] == "expired" and got["version"] == 2
    assert [e[0] for e in await s.events()] == ["awards.honour.granted.v1", "awards.honour.expired.v1"]


# ------------------------------------------------------------------------------ bulk import

CSV_HEADER = "type_code,holder_id,holder_name,granted_on,certificate_no,subject_kind,subject_name,valid_until\n"


async def test_csv_import_reports_every_row_and_reimport_changes_nothing(suite: Suite, w: dict[str, str]) -> None:
    s = suite
    s.clock.set(datetime(2015, 6, 1, 4, tzinfo=UTC))
    bad_uscc = USCC[:-1] + ("0" if USCC[-1] != "0" else "1")
    rows = [
        f"B5,{USCC},青岛甲公司,2012-12-20,SDMP-2012-001,product,洗衣机,",  # 1 created
        f"B5,{OTHER},青岛乙公司,2012-12-20,SDMP-2012-002,product,冰箱,",  # 2 created
        f"B5,{bad_uscc},青岛丙公司,2012-12-20,SDMP-2012-003,product,空调,",  # 3 bad USCC
        f"X9,{USCC},青岛甲公司,2012-12-20,X-1,product,空调,",  # 4 unknown type
        f"B5,{OTHER},青岛乙公司,2012-12-20,SDMP-2012-001,product,冰箱,",  # 5 certificate of row 1, other holder
        f"B5,{USCC},青岛甲公司,2012-12-20,SDMP-2012-001,product,洗衣机,",  # 6 row 1 again: duplicate
        f"B5,{USCC},青岛甲公司,2011-01-10,SDMP-2011-009,product,热水器,",  # 7 created, already expired
        f"B5,{USCC},青岛甲公司,2012-12-20,SDMP-2012-004,product,,",  # 8 subject without a name
        f"B5,{USCC},青岛甲公司,2012-12-20,SDMP-2012-005,product,灶具,2012-01-01",  # 9 valid-until before granted
        f"B5,{USCC},青岛甲公司,not-a-date,SDMP-2012-006,product,灶具,",  # 10 bad date
        f"B5,{USCC},青岛甲公司,2012-12-20,SDMP-2012-007,product,灶具,,extra",  # 11 too many cells
    ]
    csv_body = (CSV_HEADER + "\n".join(rows) + "\n").encode()
    h = w | {"content-type": "text/csv"}
    r = await s.client.post(f"{A}/honours:import", content=csv_body, headers=h)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["received"], out["created"], out["duplicates"], out["rejected"]) == (11, 3, 1, 7)
    by_row = {x["row"]: x for x in out["rows"]}
    assert [by_row[i]["outcome"] for i in range(1, 12)] == [
        "created",
        "created",
        "rejected",
        "rejected",
        "rejected",
        "duplicate",
        "created",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
    ]
    assert by_row[3]["problems"] == [
        {"field": "holder_id", "reason": "the USCC check digit is wrong", "type": P + "invalid-uscc"}
    ]
    assert by_row[4]["problems"][0]["type"] == P + "unknown-honour-type"
    assert by_row[5]["problems"][0]["type"] == P + "duplicate-certificate-no"
    assert by_row[5]["problems"][0]["field"] == "certificate_no"
    assert by_row[6]["honour_id"] == by_row[1]["honour_id"]
    assert by_row[8]["problems"][0]["field"] == "subject.name"
    assert by_row[9]["problems"][0]["type"] == P + "valid-until-before-granted"
    assert by_row[10]["problems"][0]["field"] == "granted_on"
    assert by_row[11]["problems"][0]["field"] == "row"
    old = (await s.client.get(f"{A}/honours/{by_row[7]['honour_id']}", headers=w)).json()
    assert old["state"] == "expired" and old["source"] == "import"
    types = [e[0] for e in await s.events()]
    assert types.count("awards.honour.granted.v1") == 3 and types.count("awards.honour.expired.v1") == 1
    stored = await s.stored()
    again = (await s.client.post(f"{A}/honours:import", content=csv_body, headers=h)).json()
    assert (again["created"], again["duplicates"]) == (0, 4)
    assert await s.stored() == stored

    wrong = await s.client.post(f"{A}/honours:import", content=b"colour\nred\n", headers=h)
    assert wrong.status_code == 422 and wrong.json()["type"] == P + "csv-columns"
    plain = await s.client.post(f"{A}/honours:import", content=csv_body, headers=w | {"content-type": "text/plain"})
    assert plain.status_code == 415
    assert await s.stored() == stored


async def test_import_of_a_listed_holder_keeps_history_and_refuses_grants_made_while_listed(
    suite: Suite, w: dict[str, str]
) -> None:
    s = suite
    s.clock.set(datetime(2015, 6, 1, 4, tzinfo=UTC))
    await s.credit(listed_event("entry-9", USCC, listed_on=date(2015, 3, 1)))
    csv_body = (
        CSV_HEADER
        + f"B5,{USCC},甲,2013-12-20,SDMP-2013-1,product,洗衣机,\n"  # before the listing: imported, suspended
        + f"B5,{USCC},甲,2015-04-01,SDMP-2015-1,product,洗衣机,\n"  # while listed: refused
    ).encode()
    out = (
        await s.client.post(f"{A}/honours:import", content=csv_body, headers=w | {"content-type": "text/csv"})
    ).json()
    assert [r["outcome"] for r in out["rows"]] == ["created", "rejected"]
    assert out["rows"][1]["problems"][0]["type"] == P + "holder-blacklisted"
    got = (await s.client.get(f"{A}/honours/{out['rows'][0]['honour_id']}", headers=w)).json()
    assert got["state"] == "suspended" and got["suspensions"][0]["entry_id"] == "entry-9"
    assert [e[0] for e in await s.events()] == ["awards.honour.granted.v1", "awards.honour.suspended.v1"]


# ------------------------------------------------------------------------------ reading


async def test_lists_filters_pagination_holders_public_list_and_counts(suite: Suite, w: dict[str, str]) -> None:
    s = suite
    s.clock.set(datetime(2015, 3, 1, 4, tzinfo=UTC))
    a = [await _grant(s, w, grant_body("B5", USCC, granted_on=f"201{i}-06-01")) for i in (1, 2, 3)]
    b = await _grant(s, w, grant_body("B5", make_uscc(3, region="370212")))  # 崂山区
    zone = await _grant(s, w, grant_body("B1", USCC, holder_kind="region", holder_id="370211"))
    await s.client.post(
        f"{A}/honours/{a[2]['honour_id']}:revoke",
        json={"reason": "撤销", "revoked_on": "2015-01-15"},
        headers=w | {"If-Match": '"1"'},
    )
    await s.runtime.scheduler.run_now("expire-honours")

    async def ids(**params: Any) -> list[str]:
        r = await s.client.get(f"{A}/honours", params=params, headers=w)
        assert r.status_code == 200, r.text
        return [x["honour_id"] for x in r.json()["items"]]

    assert await ids(type_code="B1") == [zone["honour_id"]]
    assert await ids(district_code="370212") == [b["honour_id"]]
    assert await ids(state="revoked") == [a[2]["honour_id"]]
    assert await ids(state="expired") == [a[0]["honour_id"]]  # 2011 grant: valid through 2014-05-31
    # On 2014-01-01 the 2013 grant was still standing: its revocation came in 2015.
    assert await ids(type_code="B5", active_on="2014-01-01") == [h["honour_id"] for h in a]
    assert await ids(type_code="B5", active_on="2015-02-01") == [a[1]["honour_id"], b["honour_id"]]
    assert await ids(holder_kind="region") == [zone["honour_id"]]

    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        r = (await s.client.get(f"{A}/holders/{USCC.lower()}/honours", params=params, headers=w)).json()
        pages.append([x["honour_id"] for x in r["items"]])
        cursor = r["next_cursor"]
        if not cursor:
            break
    assert [len(p) for p in pages] == [2, 1]
    assert sum(pages, []) == [h["honour_id"] for h in a]
    bad = await s.client.get(f"{A}/honours", params={"cursor": "!!"}, headers=w)
    assert bad.status_code == 422 and bad.json()["type"] == P + "invalid-cursor"

    public = await s.client.get(f"{A}/public/honour-types/B5/honours")  # no token
    assert public.status_code == 200
    items = public.json()["items"]
    assert [x["honour_id"] for x in items] == [a[1]["honour_id"], b["honour_id"]]  # active only
    assert "granted_by" not in items[0] and "revoke_reason" not in items[0]
    assert (await s.client.get(f"{A}/public/honour-types/ZZ/honours")).status_code == 404

    counts = await s.client.get(
        f"{A}/honour-counts", params={"period_start": "2011-01-01", "period_end": "2015-03-01"}, headers=w
    )
    body = counts.json()
    b5 = next(c for c in body["by_type"] if c["type_code"] == "B5")
    # Granted 2011, 2012, 2013 (revoked 2015-01-15: not counted), 2014 → 3;
    # active on 2015-03-01: the 2012 grant (through 2015-05-31) and the 2014 one; the 2011 one expired.
    assert (b5["granted_during"], b5["active_at_end"]) == (3, 2)
    ind = next(c for c in body["by_indicator"] if c["indicator_code"] == "brand_demonstration_zones")
    assert (ind["granted_during"], ind["active_at_end"]) == (1, 1)
    reversed_ = await s.client.get(
        f"{A}/honour-counts", params={"period_start": "2015-01-01", "period_end": "2014-01-01"}, headers=w
    )
    assert reversed_.status_code == 422 and reversed_.json()["type"] == P + "period-reversed"
    district = (
        await s.client.get(
            f"{A}/honour-counts",
            params={"period_start": "2011-01-01", "period_end": "2015-03-01", "district_code": "370212"},
            headers=w,
        )
    ).json()
    assert [(c["type_code"], c["granted_during"]) for c in district["by_type"] if c["granted_during"]] == [("B5", 1)]


async def test_the_real_credit_service_listing_and_removal_suspend_and_reinstate(
    suite: Suite, w: dict[str, str], auth: Callable[..., dict[str, str]]
) -> None:
    """End to end in one process: the credit service's own four-eyes listing, through its outbox and
    the suite's bus, suspends the honour; its removal as wrongful reinstates it."""
    s = suite
    s.clock.set(datetime(2015, 3, 1, 4, tzinfo=UTC))
    honour = await _grant(s, w, grant_body("B5", USCC, cert="B5-real"))
    C = "/services/credit/v1"
    officer = auth("credit:write", "read", agency=None, subject="officer-1")
    reviewer = auth("credit:review", "credit:write", "read", agency=None, subject="reviewer-2")
    proposal = {
        "uscc": USCC,
        "enterprise_name": "青岛测试电器有限公司",
        "reason_category": "fake_or_shoddy_products",
        "facts": "生产销售以次充好的产品",
        "legal_basis": "《产品质量法》第五十条",
        "deciding_authority": "青岛市质量技术监督局",
        "decision_no": "青质监罚〔2015〕3号",
        "appeal_route": "向青岛市人民政府申请行政复议",
        "appeal_deadline": "2015-05-01",
    }
    proposed = await s.client.post(f"{C}/blacklist-entries", json=proposal, headers=officer)
    assert proposed.status_code == 201, proposed.text
    entry_id = proposed.json()["entry_id"]
    approved = await s.client.post(
        f"{C}/blacklist-entries/{entry_id}:approve",
        json={},
        headers=reviewer | {"If-Match": proposed.headers["etag"]},
    )
    assert approved.status_code == 200, approved.text

    async def state() -> str:
        return str((await s.client.get(f"{A}/honours/{honour['honour_id']}", headers=w)).json()["state"])

    await eventually(state, lambda v: v == "suspended")
    refused = await s.client.post(f"{A}/honours", json=grant_body("B6", USCC), headers=w)
    assert refused.status_code == 409 and refused.json()["entry_id"] == entry_id
    assert refused.json()["decision_no"] == "青质监罚〔2015〕3号"

    # A wrongful removal takes two reviewers: one requests (202), another confirms.
    requested = await s.client.post(
        f"{C}/blacklist-entries/{entry_id}:remove",
        json={"decision_no": "青质监撤〔2015〕1号"},
        headers=reviewer | {"If-Match": approved.headers["etag"]},
    )
    assert requested.status_code == 202, requested.text
    second = auth("credit:review", "read", agency=None, subject="reviewer-3")
    removed = await s.client.post(
        f"{C}/blacklist-entries/{entry_id}:remove",
        json={"decision_no": "青质监撤〔2015〕1号"},
        headers=second | {"If-Match": requested.headers["etag"]},
    )
    assert removed.status_code == 200, removed.text
    await eventually(state, lambda v: v == "active")
    assert [e[1]["entry_id"] for e in await s.events("awards.honour.reinstated.v1")] == [entry_id]
