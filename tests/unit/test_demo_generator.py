"""The demo generator: deterministic, valid by the services' own rules, covering what the dashboard shows."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
from datetime import date, timedelta
from pathlib import Path

from qcity.demo import AGENCIES, DISTRICTS, REPORTED, DemoData, generate, honours_csv, make_uscc
from services.sampling.schemas import ResultIn
from shared.uscc import validate_uscc

CATALOG = Path(__file__).resolve().parents[2] / "services" / "awards" / "data" / "catalog.json"
SMALL = {"results_per_year": 300, "enterprises": 80, "honour_scale": 0.2}


def test_the_same_seed_gives_the_same_city_and_another_seed_another() -> None:
    a, b, c = generate(7, **SMALL), generate(7, **SMALL), generate(8, **SMALL)  # type: ignore[arg-type]
    assert a == b
    assert a.results != c.results


def _bodies(data: DemoData) -> bytes:
    """Every request body the loader sends, in its order, as JSON (key order and number types count)."""
    changes = data.lifecycle.corrections + data.lifecycle.retractions + data.lifecycle.reinspections
    parts = (
        [dataclasses.asdict(f) for f in data.enterprises],
        data.results,
        [dataclasses.asdict(c) for c in changes],
        data.honours.grants,
        data.honours.revocations,
        [dataclasses.asdict(c) for c in data.blacklist],
        data.reports,
    )
    return json.dumps(parts, ensure_ascii=False, default=str).encode()


def test_a_seed_gives_the_same_city_from_one_version_of_the_generator_to_the_next() -> None:
    """The city is reproducible by its seed: a change to the generator or to its tables (qcity/data/demo.json)
    that moves one random draw, reorders a table or turns an integer into a float shows here."""
    digest = hashlib.sha256(_bodies(generate(2012, **SMALL))).hexdigest()  # type: ignore[arg-type]
    assert digest == "42d54d2e2b17b3865f9aa2adbd1133d6552616a541e4ce121f20f000741f4f0a"


def test_every_uscc_is_valid_and_names_its_district() -> None:
    data = generate(2012, **SMALL)  # type: ignore[arg-type]
    for firm in data.enterprises:
        assert validate_uscc(firm.uscc) == firm.uscc
        assert firm.uscc[2:8] == firm.district
    assert validate_uscc(make_uscc("51", "370202", 12345678))
    assert len({f.uscc for f in data.enterprises}) == len(data.enterprises)
    assert len({f.name for f in data.enterprises}) == len(data.enterprises)


def test_results_keep_the_sampling_rules() -> None:
    data = generate(2012, **SMALL)  # type: ignore[arg-type]
    assert data.outbreak is not None  # the campaign of the outbreak quarter comes on top (docs/warnings.md)
    assert data.result_count == 300 * 5 + len(data.outbreak.report_nos)
    assert set(data.results) <= {a.code for a in AGENCIES}
    districts = {d.code for d in DISTRICTS}
    seen_levels, seen_sectors, report_nos = set(), set(), set()
    for agency, rows in data.results.items():
        for r in rows:
            ResultIn.model_validate(r)  # the sampling API's own request model
            assert (r["conclusion"] == "fail") == bool(r["nonconforming_items"])
            produced, sampled, reported = (
                date.fromisoformat(r[k]) for k in ("production_date", "sampling_date", "report_date")
            )
            assert produced <= sampled <= reported <= date(2015, 12, 31)
            assert r["district_code"] in districts
            assert r["report_no"].startswith(agency) and r["report_no"] not in report_nos
            report_nos.add(r["report_no"])
            seen_levels.add(r["level"])
            seen_sectors.add(r["sector"])
    assert seen_levels == {"national", "provincial", "municipal", "district"}
    assert seen_sectors == {"manufacturing", "food", "agricultural", "engineering"}


def test_corrections_retractions_and_reinspections_are_each_present_and_well_formed() -> None:
    data = generate(2012, **SMALL)  # type: ignore[arg-type]
    rows = {(a, r["report_no"]): r for a, rs in data.results.items() for r in rs}
    changes = data.lifecycle
    assert changes.corrections and changes.retractions and changes.reinspections
    for c in changes.corrections:
        assert (c.agency, c.report_no) in rows and c.body["reason"] and c.body["changes"]
    for r in changes.retractions:
        assert (r.agency, r.report_no) in rows and r.body["reason"]
    outcomes = set()
    for i in changes.reinspections:
        result = rows[(i.agency, i.report_no)]
        assert result["conclusion"] == "fail"
        requested = date.fromisoformat(i.body["requested_on"])
        # Within the 15-day objection window from the report date, decided after it was asked for.
        assert (
            date.fromisoformat(result["report_date"])
            < requested
            <= date.fromisoformat(result["report_date"]) + timedelta(days=15)
        )
        assert date.fromisoformat(i.body["decided_on"]) >= requested
        outcomes.add(i.body["outcome"])
    assert outcomes == {"upheld", "overturned"}
    touched = [(c.agency, c.report_no) for c in changes.corrections + changes.retractions]
    assert len(touched) == len(set(touched)), "one lifecycle change per result"


def test_honours_cover_every_catalog_type_with_unique_certificates() -> None:
    data = generate(2012, **SMALL)  # type: ignore[arg-type]
    catalog = {t["code"]: t for t in json.loads(CATALOG.read_text(encoding="utf-8"))["types"]}
    assert {h["type_code"] for h in data.honours.grants} == set(catalog)
    certs = [(h["type_code"], h["certificate_no"]) for h in data.honours.grants]
    assert len(certs) == len(set(certs))
    assert {r[:2] for r in data.honours.revocations} <= set(certs)
    for h in data.honours.grants:
        t = catalog[h["type_code"]]
        assert h["holder_kind"] in t["holder_kinds"]
        assert ("subject" in h) == (t["subject_kind"] is not None) or not t["subject_required"]
        if "subject" in h:
            assert h["subject"]["kind"] == t["subject_kind"]


def test_honours_csv_carries_every_grant_field() -> None:
    data = generate(2012, **SMALL)  # type: ignore[arg-type]
    standard = next(h for h in data.honours.grants if h["type_code"] == "S2")
    rows = list(csv.DictReader(io.StringIO(honours_csv([standard]).decode("utf-8"))))
    assert rows[0]["certificate_no"] == standard["certificate_no"]
    assert rows[0]["subject_number"] == standard["subject"]["number"]
    assert rows[0]["subject_role"] == standard["subject"]["role"]


def test_blacklist_cases_and_reports() -> None:
    data = generate(2012, **SMALL)  # type: ignore[arg-type]
    failing = {r["uscc"] for rs in data.results.values() for r in rs if r["conclusion"] == "fail"}
    assert {c.fate for c in data.blacklist} == {"listed", "rejected", "wrongful", "repaired"}
    assert all(c.proposal["uscc"] in failing for c in data.blacklist)
    assert len({c.proposal["decision_no"] for c in data.blacklist}) == len(data.blacklist)
    assert {r["indicator"] for r in data.reports} == set(REPORTED)
    assert len(data.reports) == len(REPORTED) * 5
