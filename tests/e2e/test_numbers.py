"""The figures issue 11 found wrong, checked through the gateway of the whole suite, embedded (one
process, SQLite) and distributed (four apps over HTTP, PostgreSQL, Kafka): honour weights by catalog
code, repeated query parameters, timestamps with their zone, conflicts apart from rejections, each
invalid field named once, the gateway's own path in a forwarded problem, results counted by year."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import qcity
from qcity.embedded import create_embedded_app
from services.credit.domain import RULES_DIR, RuleBook, compute_rating
from shared.clock import FixedClock
from shared.settings import PlatformSettings
from tests.e2e.awards_helpers import grant_body, make_uscc
from tests.e2e.credit_helpers import proposal
from tests.e2e.distributed_helpers import four_apps
from tests.factories import result_body
from tests.helpers import eventually, running

Auth = Callable[..., dict[str, str]]


def _result_in(year: str, report_no: str, **over: Any) -> dict[str, Any]:
    """A result sampled, produced and reported in `year`."""
    dates = {"production_date": f"{year}-05-01", "sampling_date": f"{year}-05-10", "report_date": f"{year}-05-25"}
    return result_body(report_no, **dates | over)


CATALOG = Path(__file__).parents[2] / "services" / "awards" / "data" / "catalog.json"
STARTED = datetime(2015, 6, 1, 4, tzinfo=UTC)


@dataclass
class Suite:
    client: httpx.AsyncClient  # based at the gateway
    service_base: dict[str, str]  # where each service answers directly

    def direct(self, service: str, path: str) -> str:
        return self.service_base[service] + path


async def _embedded(tmp_path: Path, platform: PlatformSettings) -> AsyncIterator[Suite]:
    app = create_embedded_app(tmp_path / "data", platform, clock=FixedClock(STARTED))
    async with running(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://suite") as c:
            yield Suite(c, {s: f"/services/{s}" for s in ("sampling", "credit", "awards")})


async def _distributed(platform: PlatformSettings, bootstrap: str, pg: Callable[[str], Any]) -> AsyncIterator[Suite]:
    async with four_apps(platform, bootstrap, pg, FixedClock(STARTED)) as apps:
        async with httpx.AsyncClient(base_url=apps.gateway.url, timeout=30) as c:
            yield Suite(c, {"sampling": apps.sampling.url, "credit": apps.credit.url, "awards": apps.awards.url})


@pytest.fixture(
    params=["embedded", pytest.param("distributed", marks=[pytest.mark.kafka, pytest.mark.postgres])],
)
async def suite(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    platform: PlatformSettings,
    kafka_bootstrap: str,
    pg_database: Callable[[str], Any],  # lazy: creates a database only when asked
) -> AsyncIterator[Suite]:
    make = (
        _embedded(tmp_path, platform)
        if request.param == "embedded"
        else _distributed(platform, kafka_bootstrap, pg_database)
    )
    async for s in make:
        yield s


async def _ok(r: Any, status: int = 200) -> Any:
    resp = await r
    assert resp.status_code == status, resp.text
    return resp.json()


# ---------------------------------------------------------------- 1. honour weights by catalog code


async def test_an_enterprise_holding_only_a_mayors_quality_award_rates_a(suite: Suite, auth: Auth) -> None:
    """A real `awards.honour.granted.v1` through the credit consumer: Q5 weighs 10 (80 + 10 = 90, A), not
    the default 5 (85, B) that a rule set keyed by names gave."""
    c, uscc = suite.client, make_uscc(5001)
    await _ok(
        c.post("/v1/honours", json=grant_body("Q5", uscc, granted_on="2014-06-01"), headers=auth("awards:write")), 201
    )

    async def credit() -> Any:
        return await _ok(c.get(f"/v1/enterprises/{uscc}/credit", headers=auth("read")))

    got = await eventually(credit, lambda r: len(r["records"]) == 1, timeout=60)
    assert (got["score"], got["rating"], got["rule_set_version"]) == (90.0, "A", "qd-credit-2012.2")
    (record,) = got["records"]
    assert record["points"] == 10.0 and record["counted"] is True, record


def test_the_honour_weights_are_keyed_by_catalog_codes_the_catalog_knows() -> None:
    catalog = {t["code"]: t for t in json.loads(CATALOG.read_text(encoding="utf-8"))["types"]}
    rules = RuleBook.load().in_force(date(2015, 1, 1))
    positive = rules.rating["positive"]
    assert set(positive["honour_codes"]) == set(catalog)  # the list shipped with the rules is the catalog's
    weights = positive["type_weights"]
    assert set(weights) <= set(catalog)
    # The weights the names meant: Mayor's award 10, Governor's award 15, China well-known trademark 8.
    named = {catalog[code]["name_en"]: w for code, w in weights.items()}
    assert named == {
        "Qingdao Mayor's Quality Award": 10,
        "Shandong Governor's Quality Award": 15,
        "China well-known trademark": 8,
    }


def test_a_rule_set_weighting_unknown_codes_is_refused_at_start_and_old_versions_stay_loadable() -> None:
    book = RuleBook.load()
    old = book.version("qd-credit-2012.1")  # entries decided under it still name it
    assert old.rating["positive"]["type_weights"]["mayor_quality_award"] == 10
    for day in (date(2000, 1, 1), date(2012, 7, 4), date(2024, 12, 31)):
        assert book.in_force(day).version == "qd-credit-2012.2"  # the correction answers for every date
    assert book.in_force(date(2025, 1, 1)).version == "qd-credit-2025.1"  # …until the next version
    with pytest.raises(ValueError, match="mayor_quality_award"):
        RuleBook([old])
    mayor = [
        {"record_id": "h", "kind": "positive", "fact_date": date(2014, 1, 1), "valid_until": None, "category": "Q5"}
    ]
    assert compute_rating(book.in_force(date(2015, 1, 1)), mayor, date(2015, 1, 1), False).score == 90.0
    assert compute_rating(old, mayor, date(2015, 1, 1), False).score == 85.0  # the defect, kept for the record


def test_the_credit_system_is_cited_as_section_3_2_3() -> None:
    rules = RuleBook.load().in_force(date(2015, 1, 1)).raw
    cited = [rules["basis"], rules["blacklist"]["auto_proposal"]["legal_basis"]]
    cited.append((Path(qcity.__file__).parent / "demo.py").read_text(encoding="utf-8"))
    for text in cited:
        assert "三(三)3" not in text
    assert all("三(二)3" in t for t in cited)
    assert sorted(p.name for p in RULES_DIR.glob("*.json")) == [
        "qd-credit-2012.1.json",
        "qd-credit-2012.2.json",
        "qd-credit-2025.1.json",
    ]
    assert "三(二)3" in RuleBook.load().version("qd-credit-2025.1").raw["basis"]


# ---------------------------------------------------------------- 3. repeated query parameters


async def test_every_value_of_a_repeated_parameter_reaches_the_service(suite: Suite, auth: Auth) -> None:
    c, w, r = suite.client, auth("sampling:write"), auth("read")
    rows = [
        ("food", "municipal", "2013", "pass"),
        ("food", "municipal", "2014", "fail"),
        ("food", "municipal", "2014", "pass"),
        ("food", "national", "2014", "pass"),
        ("manufacturing", "municipal", "2014", "pass"),
    ]
    for i, (sector, level, year, conclusion) in enumerate(rows):
        body = _result_in(year, f"QD-NUM-{i}", sector=sector, level=level, conclusion=conclusion)
        await _ok(c.post("/v1/results", json=body, headers=w), 201)
    query = "group_by=sector&group_by=year&sector=food&level=municipal"
    through = await _ok(c.get(f"/v1/stats/pass-rates?{query}", headers=r))
    direct = await _ok(c.get(suite.direct("sampling", f"/v1/stats/pass-rates?{query}"), headers=r))
    assert through == direct
    assert through["group_by"] == ["sector", "year"]
    got = sorted((g["key"]["sector"], g["key"]["year"], g["n"], g["passed"]) for g in through["groups"])
    assert got == [("food", 2013, 1, 1), ("food", 2014, 2, 1)]  # both filters applied, both groupings kept
    swapped = await _ok(c.get("/v1/stats/pass-rates?group_by=year&group_by=level&sector=food", headers=r))
    assert swapped["group_by"] == ["year", "level"]
    assert sorted((g["key"]["year"], g["key"]["level"], g["n"]) for g in swapped["groups"]) == [
        (2013, "municipal", 1),
        (2014, "municipal", 2),
        (2014, "national", 1),
    ]


# ---------------------------------------------------------------- 4. timestamps with their zone

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:\d{2})$")


def _timestamps(value: Any, key: str = "") -> list[tuple[str, str]]:
    """Every (field, value) in a JSON document whose value is a date-time (not a date)."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _timestamps(v, k)]
    if isinstance(value, list):
        return [t for v in value for t in _timestamps(v, key)]
    return [(key, value)] if isinstance(value, str) and _TIMESTAMP.match(value) else []


async def test_every_timestamp_on_the_wire_carries_its_zone(suite: Suite, auth: Auth) -> None:
    c, uscc = suite.client, make_uscc(5002)
    w, r = auth("sampling:write", "awards:write", "read"), auth("read", "credit:write", "credit:review")
    alice = auth("credit:write", "read", subject="alice")
    bob = auth("credit:review", "read", subject="bob")
    made = await c.post("/v1/results", json=result_body("QD-TZ-1", uscc=uscc), headers=w)
    assert made.status_code == 201, made.text
    result_id = made.json()["id"]
    honour = await _ok(c.post("/v1/honours", json=grant_body("Q5", uscc), headers=w), 201)
    proposed = await c.post("/v1/blacklist-entries", json=proposal(uscc), headers=alice)
    assert proposed.status_code == 201, proposed.text
    entry_id = proposed.json()["entry_id"]
    await _ok(
        c.post(
            f"/v1/blacklist-entries/{entry_id}:approve", json={}, headers=bob | {"If-Match": proposed.headers["etag"]}
        )
    )
    report = {
        "indicator": "expressway_good_road_rate",
        "period_start": "2014-01-01",
        "period_end": "2014-12-31",
        "value": 0.97,
        "reporting_system": "公路养护管理系统",
        "evidence_ref": "鲁交公路〔2015〕3号",
    }
    documents = [
        await _ok(c.post("/v1/indicator-reports", json=report, headers=auth("indicators:write")), 201),
        await _ok(c.get("/v1/indicator-reports", headers=r)),
        await _ok(c.get("/v1/results", headers=r)),
        await _ok(c.get(f"/v1/results/{result_id}", headers=r)),
        await _ok(c.get(f"/v1/results/{result_id}/history", headers=r)),
        await _ok(c.get(f"/v1/blacklist-entries/{entry_id}", headers=r)),
        await _ok(c.get("/v1/blacklist-entries", headers=r)),
        await _ok(c.get(f"/v1/enterprises/{uscc}/history", headers=r)),
        await _ok(c.get(f"/v1/honours/{honour['honour_id']}", headers=r)),
        await _ok(c.get(suite.direct("sampling", f"/v1/results/{result_id}"), headers=r)),
        await _ok(c.get(suite.direct("credit", f"/v1/blacklist-entries/{entry_id}"), headers=r)),
    ]
    found = [t for d in documents for t in _timestamps(d)]
    naive = [t for t in found if not _OFFSET.search(t[1])]
    assert not naive, naive
    seen = {k for k, _ in found}
    assert {"recorded_at", "updated_at", "at", "proposed_at", "decided_at", "reported_at"} <= seen, seen


# ---------------------------------------------------------------- 5. conflicts apart from rejections


async def test_a_conflicting_report_is_counted_as_a_conflict_not_a_rejection(suite: Suite, auth: Auth) -> None:
    c, w = suite.client, auth("sampling:write", "read")
    first = await _ok(c.post("/v1/results:batch", json=[result_body("QD-C-1"), result_body("QD-C-2")], headers=w))
    assert (first["created"], first["rejected"], first["conflicts"]) == (2, 0, 0)
    again = [
        result_body("QD-C-1"),  # the same: a duplicate
        result_body("QD-C-2", brand="青啤"),  # the same report number, other content: a conflict
        result_body("QD-C-3", uscc="x"),  # a bad row: a rejection
        result_body("QD-C-4"),
    ]
    out = await _ok(c.post("/v1/results:batch", json=again, headers=w))
    assert [o["outcome"] for o in out["rows"]] == ["duplicate", "conflict", "rejected", "created"]
    assert (out["received"], out["created"], out["duplicates"], out["rejected"], out["conflicts"]) == (4, 1, 1, 1, 1)
    card = await _ok(c.get("/v1/agencies/QD-AGENCY-1/scorecard", headers=w))
    assert (card["submissions"], card["results"], card["duplicates"]) == (6, 3, 1)
    assert (card["rejected_rows"], card["conflict_rows"]) == (1, 1)


# ---------------------------------------------------------------- 6. the smaller ones


async def test_a_field_refused_by_two_checks_is_named_once(suite: Suite, auth: Auth) -> None:
    body = result_body("QD-F-1", sampling_date="2015-07-01", report_date="2015-05-25", production_date="2015-05-01")
    r = await suite.client.post("/v1/results", json=body, headers=auth("sampling:write"))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert [e["field"] for e in problem["errors"]] == ["sampling_date", "sampling_date"]  # two reasons
    assert problem["detail"] == "Invalid fields: sampling_date"


async def test_a_forwarded_problem_names_the_gateways_path(suite: Suite, auth: Auth) -> None:
    for service in ("sampling", "credit", "awards"):
        path = f"/v1/{service}/jobs/no-such-job:run"
        r = await suite.client.post(path, headers=auth("admin"))
        assert r.status_code == 404, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["instance"] == path, r.json()
        direct = await suite.client.post(suite.direct(service, "/v1/jobs/no-such-job:run"), headers=auth("admin"))
        assert direct.json()["type"] == r.json()["type"]


async def test_the_credit_profile_counts_every_result_by_year(suite: Suite, auth: Auth) -> None:
    c, uscc = suite.client, make_uscc(5003)
    w = auth("sampling:write")
    for i, (year, conclusion) in enumerate((("2012", "pass"), ("2013", "fail"), ("2013", "pass"), ("2014", "pass"))):
        await _ok(
            c.post("/v1/results", json=_result_in(year, f"QD-Y-{i}", uscc=uscc, conclusion=conclusion), headers=w), 201
        )

    async def profile() -> httpx.Response:  # 404 until the gateway has heard of the enterprise
        return await c.get(f"/v1/credit/{uscc}", headers=auth("read"))

    got = (await eventually(profile, lambda p: p.status_code == 200 and p.json()["sampling"]["n"] == 4, 60)).json()
    assert got["sampling"]["by_year"] == [
        {"year": 2012, "passed": 1, "failed": 0},
        {"year": 2013, "passed": 1, "failed": 1},
        {"year": 2014, "passed": 1, "failed": 0},
    ]
    earlier = await _ok(c.get(f"/v1/credit/{uscc}", params={"as_of": "2013-12-31"}, headers=auth("read")))
    assert [y["year"] for y in earlier["sampling"]["by_year"]] == [2012, 2013]
