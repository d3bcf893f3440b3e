"""The rules of issue 17 as pure functions: authority records in the rating and the automatic
proposal (rule set qd-credit-2025.1), working days across holidays, what each kind of record needs."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.credit.domain import (
    AUTHORITY_SOURCE,
    RuleBook,
    compute_rating,
    credit_row,
    record_problems,
    statement_deadline,
    triggers_in_window,
)
from services.credit.working_days import HolidayCalendarMissing, WorkingDays

BOOK = RuleBook.load()
RULES_2025 = BOOK.in_force(date(2025, 6, 1))
RULES_2012 = BOOK.in_force(date(2014, 6, 1))


def rec(rid: str, kind: str, fact: date, category: str, **over: Any) -> dict[str, Any]:
    return {
        "record_id": rid,
        "kind": kind,
        "source": AUTHORITY_SOURCE,
        "category": category,
        "fact_date": fact,
        "authority": "QD-AMR",
        "sector": None,
        "level": None,
        "valid_until": None,
    } | over


def test_each_kind_weighs_as_the_rules_say_and_only_from_2025() -> None:
    assert RULES_2025.version == "qd-credit-2025.1" and RULES_2012.version == "qd-credit-2012.2"
    records = [
        rec("p", "negative", date(2025, 1, 2), "administrative_penalty"),
        rec("c", "negative", date(2025, 2, 2), "upheld_complaint"),
        rec("r", "negative", date(2025, 3, 2), "licence_revocation", sector="food"),
        rec("old", "negative", date(2021, 1, 1), "licence_suspension"),
        rec("g", "positive", date(2025, 4, 2), "positive_record"),
    ]
    r = compute_rating(RULES_2025, records, date(2025, 6, 1), listed=False)
    points = {c.record_id: c.points for c in r.contributions}
    assert points == {"old": 0.0, "p": -10.0, "c": -3.0, "r": -45.0, "g": 5.0}  # revocation 30 × food 1.5
    assert (r.score, r.grade) == (80 - 10 - 3 - 45 + 5, "C")
    assert next(c for c in r.contributions if c.record_id == "old").why == "outside the window"
    before = compute_rating(RULES_2012, records, date(2025, 6, 1), listed=False)
    assert before.score == 80 and not any(c.counted for c in before.contributions)
    assert "gives administrative_penalty no weight" in before.contributions[1].why


def test_positive_records_share_the_cap_with_honours() -> None:
    honours = [
        {"record_id": f"h{i}", "kind": "positive", "source": "awards", "category": "Q4", "fact_date": date(2025, 1, 1)}
        for i in range(2)
    ]
    r = compute_rating(
        RULES_2025, [*honours, rec("g", "positive", date(2025, 2, 1), "positive_record")], date(2025, 6, 1), False
    )
    assert r.score == 100 and [c.points for c in r.contributions] == [15.0, 5.0, 0.0]


def test_penalties_count_towards_the_automatic_proposal_and_complaints_do_not() -> None:
    records = [
        rec("p", "negative", date(2025, 5, 1), "administrative_penalty"),
        rec("c", "negative", date(2025, 5, 2), "upheld_complaint"),
        rec("w", "neutral", date(2025, 5, 3), "licence_revocation"),
        {"record_id": "s", "kind": "negative", "source": "sampling", "fact_date": date(2025, 5, 4)},
    ]
    assert [r["record_id"] for r in triggers_in_window(RULES_2025, records, date(2025, 6, 1))] == ["p", "s"]


@pytest.mark.parametrize(
    ("noticed", "deadline"),
    [
        (date(2025, 9, 26), date(2025, 10, 10)),  # National Day: 9-28 (Sunday) works, 10-1…10-8 off
        (date(2026, 2, 11), date(2026, 2, 25)),  # Spring Festival 2026: 2-14 (Saturday) works, 2-15…2-23 off
        (date(2025, 6, 2), date(2025, 6, 9)),  # given on a holiday (端午, Monday): counted from the next day
        (date(2025, 6, 9), date(2025, 6, 16)),  # an ordinary week
    ],
)
def test_the_statement_period_is_counted_in_working_days(noticed: date, deadline: date) -> None:
    assert statement_deadline(RULES_2025, noticed, BOOK.working_days) == deadline


def test_a_year_without_a_published_holiday_arrangement_is_refused_not_guessed() -> None:
    with pytest.raises(HolidayCalendarMissing) as exc:
        WorkingDays().add(date(2099, 1, 5), 5)
    assert exc.value.extensions["year"] == 2099


def test_due_process_is_in_the_2025_rules_only() -> None:
    assert RULES_2025.needs_notice("fake_or_shoddy_products")
    assert not RULES_2012.needs_notice("fake_or_shoddy_products")


def test_what_each_kind_needs() -> None:
    penalty = {"kind": "administrative_penalty", "occurred_on": "2025-01-02", "decision_no": "D-1"}
    assert record_problems(penalty, date(2025, 6, 1)) == [
        ("legal_basis", "required for a record of kind administrative_penalty"),
        ("category", "required for a record of kind administrative_penalty"),
    ]
    praise = {"kind": "positive_record", "occurred_on": "2025-07-01", "title": "守信", "valid_until": "2025-06-30"}
    assert record_problems(praise, date(2025, 6, 1)) == [
        ("occurred_on", "2025-07-01 is in the future"),
        ("valid_until", "before occurred_on"),
    ]


def test_a_withdrawn_record_is_kept_neutral() -> None:
    stored = {
        "record_id": "0192",
        "uscc": "91370200163562681G",
        "enterprise_name": "青岛测试",
        "authority": "QD-AMR",
        "version": 2,
        "kind": "licence_revocation",
        "status": "withdrawn",
        "occurred_on": date(2025, 1, 2),
        "body": {"decision_no": "D-1", "document_no": "L-1"},
    }
    row = credit_row(stored)
    assert (row["kind"], row["state"], row["source_version"], row["title"]) == (
        "neutral",
        "withdrawn",
        2,
        "吊销许可证 D-1",
    )
    assert credit_row(dict(stored, status="active"))["kind"] == "negative"
