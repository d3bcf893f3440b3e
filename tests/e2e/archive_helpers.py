"""A five-year archive (2014-2018) imported through the gateway, and the figures it must give as of
past dates, computed here from the archive itself — the same in embedded and distributed mode."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from tests.e2e.credit_helpers import proposal
from tests.factories import result_body
from tests.helpers import eventually

TODAY = date(2019, 6, 1)
YEARS = range(2014, 2019)
AS_OF = (date(2015, 8, 15), date(2016, 12, 31), date(2018, 10, 1))


def _valid(code17: str) -> str:
    from stdnum.cn import uscc

    return code17 + uscc.calc_check_digit(code17)


ENTERPRISES = [_valid(f"9137020{d}MA3C1000{i}") for i, d in enumerate("1234")]
#: Each listing: enterprise, decided_on, listed_from, removal (on, reason) or None; 3 years' publication.
LISTINGS = [
    (0, date(2015, 3, 1), date(2015, 3, 10), None),  # expired: removed on 2018-03-10
    (1, date(2016, 4, 20), date(2016, 5, 1), (date(2017, 2, 1), "repaired")),
    (2, date(2018, 8, 25), date(2018, 9, 1), None),  # still listed today
]
REVOKED = (3, date(2016, 7, 1))  # the fourth enterprise's honour, revoked


@dataclass
class Archive:
    window_days: int
    results: list[dict[str, Any]] = field(default_factory=list)
    listings: list[dict[str, Any]] = field(default_factory=list)

    def build(self) -> None:
        rnd = random.Random(2014)
        for year in YEARS:
            for i in range(24):
                sampled = date(year, 1, 1) + timedelta(days=rnd.randrange(330))
                reported = sampled + timedelta(days=10)
                fail = rnd.random() < 0.3
                row = result_body(
                    f"ARC-{year}-{i:03d}",
                    sector="agricultural",
                    product_category="蔬菜",
                    production_date=None,
                    uscc=ENTERPRISES[i % len(ENTERPRISES)],
                    sampling_date=sampled.isoformat(),
                    report_date=reported.isoformat(),
                    conclusion="fail" if fail else "pass",
                )
                if fail and i % 3 != 2:
                    requested = reported + timedelta(days=rnd.randrange(self.window_days + 1))
                    row |= {
                        "reinspection_outcome": "overturned" if i % 3 == 0 else "upheld",
                        "reinspection_report_no": f"FJ-{year}-{i:03d}",
                        "reinspection_requested_on": requested.isoformat(),
                        "reinspection_decided_on": (requested + timedelta(days=20)).isoformat(),
                        "state": "final",
                    }
                self.results.append(row)
        for n, (who, decided, listed, removal) in enumerate(LISTINGS):
            body = proposal(
                ENTERPRISES[who],
                decision_no=f"青质监罚〔{decided.year}〕{n + 1}号",
                appeal_deadline=decided.isoformat(),
            )
            body |= {
                "proposed_by": "张科员",
                "reviewed_by": "李处长",
                "proposed_on": (decided - timedelta(days=10)).isoformat(),
                "decided_on": decided.isoformat(),
                "listed_from": listed.isoformat(),
            }
            if removal:
                body |= {"removed_on": removal[0].isoformat(), "removal_reason": removal[1]}
                body |= {"removal_decision_no": f"青质监复〔{removal[0].year}〕{n + 1}号"}
            self.listings.append(body)

    # ------------------------------------------------------------------ the figures, computed here

    def standing_pass(self, r: dict[str, Any]) -> bool:
        return r["conclusion"] == "pass" or r.get("reinspection_outcome") == "overturned"

    def pass_series(self, on: date) -> dict[int, tuple[int, int]]:
        """(n, passed) per sampling year: whole years before `on`'s year, that year up to `on`."""
        out: dict[int, tuple[int, int]] = {}
        for r in self.results:
            sampled = date.fromisoformat(r["sampling_date"])
            if sampled > on:
                continue
            n, p = out.get(sampled.year, (0, 0))
            out[sampled.year] = (n + 1, p + self.standing_pass(r))
        return out

    def listed_on(self, who: int, on: date) -> bool:
        for w, _, listed, removal in LISTINGS:
            end = removal[0] if removal else listed.replace(year=listed.year + 3)
            if w == who and listed <= on < end:
                return True
        return False

    def counted_fails(self, who: int, on: date, window_days: int) -> int:
        """Final fails (not overturned) reported within the rating window before `on`."""
        n = 0
        for r in self.results:
            if r["uscc"] != ENTERPRISES[who] or self.standing_pass(r):
                continue
            reported = date.fromisoformat(r["report_date"])
            final = "reinspection_outcome" in r or reported + timedelta(days=self.window_days) < TODAY
            if final and reported <= on < reported + timedelta(days=window_days):
                n += 1
        return n


def honours_active(honours: list[dict[str, Any]], archive: Archive, on: date) -> int:
    """Honours granted by `on`, still valid, not revoked by then and their holder not listed then."""
    n = 0
    for who, h in enumerate(honours):
        granted, until = date.fromisoformat(h["granted_on"]), h["valid_until"]
        if granted > on or (until is not None and date.fromisoformat(until) < on):
            continue
        if who == REVOKED[0] and REVOKED[1] <= on:
            continue
        n += not archive.listed_on(who, on)
    return n


async def import_and_check(client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]) -> None:
    """The whole scenario through the gateway: import, then every figure as of three past dates."""
    importer = auth("archive:import", subject="archivist", agency="QD-AGENCY-1")
    reader = auth("read", "credit:review", subject="reader")
    rules = (await client.get("/v1/rules")).json()
    assert {j["name"] for j in rules["jobs"]} == {"finalise-results"} and rules["jobs"][0]["every_s"] > 0
    for svc, job in (("sampling", "finalise-results"), ("credit", None), ("awards", None)):
        got = await client.get(f"/v1/jobs/{svc}", headers=reader)
        assert got.status_code == 200, got.text
        jobs = got.json()["jobs"]
        assert jobs and all(j["does"] and j["every_s"] > 0 for j in jobs), (svc, jobs)
        assert job is None or [j["name"] for j in jobs] == [job]
    archive = Archive(window_days=int(rules["objection_window_days"]))
    archive.build()

    # Honours first (granted before any listing), one per enterprise, in different years; one revoked in
    # the archive, and a row whose revocation precedes its grant is refused.
    grants = (date(2014, 1, 15), date(2015, 6, 1), date(2016, 3, 1), date(2016, 1, 10))
    lines = [
        "type_code,holder_id,holder_name,granted_on,certificate_no,subject_kind,subject_name,revoked_on,revoke_reason"
    ]
    for who, granted in enumerate(grants):
        revocation = f"{REVOKED[1].isoformat()},以不合格产品冒充合格产品" if who == REVOKED[0] else ","
        lines.append(
            f"B5,{ENTERPRISES[who]},青岛测试{who}有限公司,{granted.isoformat()},B5-ARC-{who},product,产品{who},{revocation}"
        )
    lines.append(f"B5,{ENTERPRISES[0]},青岛测试0有限公司,2016-01-01,B5-ARC-9,product,产品9,2015-01-01,撤销")
    r = await client.post(
        "/v1/honours:archive",
        content="\n".join(lines).encode(),
        headers=importer | {"Content-Type": "text/csv", "X-Source-File": "honours.csv"},
    )
    assert r.status_code == 200, r.text
    assert [o["outcome"] for o in r.json()["rows"]] == ["created"] * 4 + ["rejected"]
    assert r.json()["rows"][-1]["problems"][0]["field"] == "revoked_on"
    honours = []
    for o in r.json()["rows"][:4]:
        got = await client.get(f"/v1/honours/{o['honour_id']}", headers=reader)
        honours.append(got.json())
    assert honours[REVOKED[0]]["state"] == "revoked" and honours[REVOKED[0]]["revoked_on"] == REVOKED[1].isoformat()

    # Results: a bad row (re-inspection asked after its own window) is refused, the others created.
    late = archive.results[0] | {
        "report_no": "ARC-LATE",
        "conclusion": "fail",
        "nonconforming_items": [
            {"item": "毒死蜱", "requirement": "≤0.02 mg/kg", "measured": "0.09", "standard": "GB 2763-2021"}
        ],
        "reinspection_outcome": "overturned",
        "reinspection_report_no": "FJ-LATE",
        "reinspection_requested_on": (
            date.fromisoformat(archive.results[0]["report_date"]) + timedelta(days=archive.window_days + 1)
        ).isoformat(),
        "reinspection_decided_on": "2018-01-01",
    }
    r = await client.post(
        "/v1/results:import",
        json=[*archive.results, late],
        headers=importer | {"X-Source-File": "results-2014-2018.json"},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["created"], out["rejected"], out["source_file"]) == (len(archive.results), 1, "results-2014-2018.json")
    assert out["rows"][-1]["problems"][0]["field"] == "reinspection_requested_on"
    again = await client.post(
        "/v1/results:import", json=archive.results, headers=importer | {"X-Source-File": "results-2014-2018.json"}
    )
    assert again.json()["duplicates"] == len(archive.results) and again.json()["created"] == 0
    refused = await client.post(
        "/v1/results:import", json=archive.results[:1], headers=auth("sampling:write") | {"X-Source-File": "x.json"}
    )
    assert refused.status_code == 403
    # A re-inspected result's history: recorded then re-inspected on the archive's dates, imported by whom, from where.
    i = next(i for i, x in enumerate(archive.results) if "reinspection_outcome" in x)
    history = (await client.get(f"/v1/results/{out['rows'][i]['id']}/history", headers=reader)).json()
    assert [v["change"] for v in history] == ["recorded", "reinspected"]
    assert history[0]["at"].startswith(archive.results[i]["report_date"])
    assert history[1]["at"].startswith(archive.results[i]["reinspection_decided_on"])
    assert all("imported from results-2014-2018.json" in v["reason"] for v in history)
    assert history[0]["actor"] == "archivist"

    # Listings: four eyes on the archive's names (normalised), then the three decisions.
    same = archive.listings[0] | {"reviewed_by": " 张科员 ", "decision_no": "青质监罚〔2015〕99号"}
    r = await client.post(
        "/v1/blacklist:import", json=[same, *archive.listings], headers=importer | {"X-Source-File": "blacklist.json"}
    )
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert rows[0]["outcome"] == "rejected" and rows[0]["problems"][0]["field"] == "reviewed_by"
    assert [x["status"] for x in rows[1:]] == ["removed", "removed", "listed"]
    public = (await client.get("/v1/blacklist")).json()["items"]
    assert [(e["uscc"], e["listed_on"]) for e in public] == [(ENTERPRISES[2], "2018-09-01")]

    # The audit trail marks both imports: by whom, from which file.
    admin = auth("admin")
    for svc, route, file in (
        ("sampling", "/v1/results:import", "results-2014-2018.json"),
        ("credit", "/v1/blacklist:import", "blacklist.json"),
    ):
        records = (await client.get(f"/v1/audit/{svc}", params={"path": route}, headers=admin)).json()["items"]
        assert records and all(x["subject"] == "archivist" for x in records)
        assert {x["resource"]["source_file"] for x in records} == {file}
        assert all(x["resource"]["imported"] == "true" for x in records)

    credit_rules = (await client.get("/v1/rating-rules")).json()
    window = int(credit_rules["rule_set"]["rating"]["negative"]["window_days"])
    for on in AS_OF:
        expected = archive.pass_series(on)

        async def attainment(code: str, on: date = on) -> dict[str, Any]:
            a = await client.get(f"/v1/attainment/{code}", params={"as_of": on.isoformat()}, headers=reader)
            assert a.status_code == 200, a.text
            return dict(a.json()["indicator"])

        agri = await eventually(
            lambda: attainment("agri_pass_rate"),
            lambda a, expected=expected: {s["year"]: (s["n"], s["passed"]) for s in a["series"]} == expected,
        )
        assert agri["value_year"] == on.year
        brands = await eventually(
            lambda: attainment("shandong_famous_brands"),
            lambda a, on=on: a["value"] == honours_active(honours, archive, on),
        )
        assert brands["value_year"] == on.year
        for who in range(3):
            c = (
                await client.get(
                    "/v1/blacklist/check", params={"uscc": ENTERPRISES[who], "as_of": on.isoformat()}, headers=reader
                )
            ).json()
            assert c["listed"] is archive.listed_on(who, on), (who, on, c)

            async def rating(who: int = who, on: date = on) -> dict[str, Any]:
                x = await client.get(
                    f"/v1/enterprises/{ENTERPRISES[who]}/credit", params={"as_of": on.isoformat()}, headers=reader
                )
                return dict(x.json())

            fails = archive.counted_fails(who, on, window)
            cr = await eventually(
                rating,
                lambda x, fails=fails: (
                    sum(1 for c in x.get("records", []) if c["kind"] == "negative" and c["counted"]) == fails
                ),
            )
            assert cr["listed"] is archive.listed_on(who, on)
            if archive.listed_on(who, on):
                assert cr["rating"] == "D" and cr["forced_by"]
            else:
                assert cr["rating"] != "D" or fails > 0, (who, on, cr["rating"], fails)
