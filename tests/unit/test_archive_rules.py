"""The archive import's rules, pure: a re-inspection inside the window of its own dates, the state it
implies, four eyes on archived names, and a listing's dates."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from services.credit.domain import RuleBook, check_archived_listing, same_person
from services.sampling.domain import Rules, check_archived_outcome

RULES = Rules.load()
TODAY = date(2019, 6, 1)
REPORT = date(2014, 5, 25)
DEADLINE = REPORT + timedelta(days=RULES.objection_window_days)


def result(conclusion: str = "fail", **over: Any) -> dict[str, Any]:
    return {"conclusion": conclusion, "report_date": REPORT, **over}


def reinspection(requested: date, decided: date | None = None, outcome: str = "overturned") -> dict[str, Any]:
    return {
        "reinspection_outcome": outcome,
        "reinspection_report_no": "FJ-1",
        "reinspection_requested_on": requested,
        "reinspection_decided_on": decided or requested + timedelta(days=10),
    }


def test_a_reinspection_on_the_last_day_of_its_own_window_is_taken_years_later() -> None:
    problems, steps = check_archived_outcome(result(**reinspection(DEADLINE)), TODAY, RULES)
    assert problems == []
    assert [(s.change, s.on) for s in steps] == [("reinspected", DEADLINE + timedelta(days=10))]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (result(**reinspection(DEADLINE + timedelta(days=1))), "reinspection_requested_on"),
        (result(**reinspection(REPORT - timedelta(days=1))), "reinspection_requested_on"),
        (result(**reinspection(REPORT, REPORT - timedelta(days=1))), "reinspection_decided_on"),
        (result(**reinspection(REPORT, TODAY + timedelta(days=1))), "reinspection_decided_on"),
        (result("pass", **reinspection(REPORT)), "reinspection_outcome"),
        (result(reinspection_outcome="upheld"), "reinspection_report_no"),
    ],
)
def test_a_reinspection_that_breaks_a_rule_names_the_field(row: dict[str, Any], field: str) -> None:
    problems, _ = check_archived_outcome(row, TODAY, RULES)
    assert field in {p.field for p in problems}


def test_an_unchallenged_fail_was_finalised_the_day_after_its_deadline_or_is_still_provisional() -> None:
    assert [(s.change, s.on) for s in check_archived_outcome(result(), TODAY, RULES)[1]] == [
        ("finalised", DEADLINE + timedelta(days=1))
    ]
    open_window = check_archived_outcome(result(state="final"), DEADLINE, RULES)
    assert [p.field for p in open_window[0]] == ["state"] and open_window[1] == []
    assert check_archived_outcome(result(state="provisional"), TODAY, RULES)[0][0].field == "state"
    assert check_archived_outcome(result("pass", state="final"), TODAY, RULES) == ([], [])


def test_four_eyes_on_archived_names_ignores_case_width_and_spaces() -> None:
    assert same_person("张科员", " 张 科员 ") and same_person("Alice Wang", "alice wang")
    assert same_person("ＡＢＣ", "abc")  # full-width letters are the same letters
    assert not same_person("张科员", "李处长")


def listing(**over: Any) -> dict[str, Any]:
    return {
        "proposed_by": "张科员",
        "reviewed_by": "李处长",
        "reason_category": "fake_or_shoddy_products",
        "publication_years": None,
        "proposed_on": date(2015, 2, 20),
        "decided_on": date(2015, 3, 1),
        "listed_from": date(2015, 3, 10),
        "removed_on": None,
        "removal_reason": None,
    } | over


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"reviewed_by": "张科员"}, "reviewed_by"),
        ({"listed_from": date(2015, 2, 1)}, "listed_from"),
        ({"proposed_on": date(2015, 3, 2)}, "decided_on"),
        ({"removed_on": date(2016, 1, 1)}, "removal_reason"),
        ({"removed_on": date(2015, 3, 10), "removal_reason": "wrongful"}, "removed_on"),
        ({"removed_on": date(2018, 3, 10), "removal_reason": "repaired"}, "removed_on"),  # after the last day
        ({"removed_on": TODAY + timedelta(days=1), "removal_reason": "repaired"}, "removed_on"),
        ({"publication_years": 9}, "publication_years"),
        ({"reason_category": "nope"}, "reason_category"),
    ],
)
def test_an_archived_listing_that_breaks_a_rule_names_the_field(over: dict[str, Any], field: str) -> None:
    rules = RuleBook.load().in_force(date(2015, 3, 1))
    assert check_archived_listing(listing(), rules, TODAY) == []
    assert field in {f for f, _ in check_archived_listing(listing(**over), rules, TODAY)}
