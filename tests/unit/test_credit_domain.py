"""The credit rules as pure functions: ratings, repair dates, publication periods, transitions, records."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.credit.domain import (
    PublicationPeriodOutOfRange,
    RuleBook,
    RuleSet,
    UnknownReasonCategory,
    add_months,
    allowed,
    check_publication_years,
    check_reason_category,
    compute_rating,
    earliest_repair_on,
    listed_on_date,
    publish_until,
    record_from_honour,
    record_from_result,
    triggers_in_window,
)

BOOK = RuleBook.load()
RULES = BOOK.in_force(date(2014, 1, 1))


def neg(rid: str, fact: date, level: str = "municipal", sector: str = "manufacturing") -> dict[str, Any]:
    return {
        "record_id": rid,
        "kind": "negative",
        "source": "sampling",
        "fact_date": fact,
        "level": level,
        "sector": sector,
    }


def pos(rid: str, fact: date, until: date | None = None, category: str = "shandong_famous_brand") -> dict[str, Any]:
    return {
        "record_id": rid,
        "kind": "positive",
        "source": "awards",
        "fact_date": fact,
        "valid_until": until,
        "category": category,
    }


def test_no_records_rate_b_and_weights_follow_level_and_sector() -> None:
    assert compute_rating(RULES, [], date(2014, 1, 1), False).grade == "B"
    r = compute_rating(RULES, [neg("a", date(2013, 5, 1), "national", "food")], date(2014, 1, 1), False)
    assert r.score == 80 - 15 * 1.5 and r.grade == "C"
    assert r.contributions[0].points == -22.5 and r.contributions[0].counted


def test_negatives_leave_the_window_and_future_records_do_not_count() -> None:
    recs = [neg("old", date(2010, 1, 1)), neg("future", date(2015, 1, 1)), neg("in", date(2013, 1, 1))]
    r = compute_rating(RULES, recs, date(2014, 1, 1), False)
    by = {c.record_id: c for c in r.contributions}
    assert not by["old"].counted and by["old"].why == "outside the window"
    assert not by["future"].counted and by["in"].counted
    assert r.score == 70


def test_honours_lift_the_rating_but_are_capped_and_count_only_while_valid() -> None:
    honours = [pos(f"h{i}", date(2013, 1, 1)) for i in range(6)] + [pos("lapsed", date(2010, 1, 1), date(2012, 1, 1))]
    r = compute_rating(RULES, honours, date(2014, 1, 1), False)
    assert r.score == 100 and r.grade == "A"  # 6 × 5 capped at 20
    assert sum(c.counted for c in r.contributions) == 4
    assert {c.record_id for c in r.contributions if c.why == "not valid on the date asked"} == {"lapsed"}
    mayor = compute_rating(RULES, [pos("m", date(2013, 1, 1), category="Q5")], date(2014, 1, 1), False)
    assert mayor.score == 90 and mayor.grade == "A"


def test_being_listed_forces_d_whatever_the_score() -> None:
    r = compute_rating(RULES, [pos("h", date(2013, 1, 1))], date(2014, 1, 1), True)
    assert (r.grade, r.forced_by, r.rule_set_version) == ("D", "listed", "qd-credit-2012.2")


def test_neutral_records_are_shown_but_count_nothing() -> None:
    rec = {
        "record_id": "n",
        "kind": "neutral",
        "source": "sampling",
        "fact_date": date(2013, 1, 1),
        "note": "overturned on re-inspection",
    }
    r = compute_rating(RULES, [rec], date(2014, 1, 1), False)
    assert r.score == 80 and r.contributions[0].why == "overturned on re-inspection"


@pytest.mark.parametrize(
    ("category", "listed", "earliest"),
    [
        ("fake_or_shoddy_products", date(2014, 3, 3), date(2014, 9, 3)),
        ("food_safety_violation", date(2014, 3, 3), date(2015, 3, 3)),
        ("special_equipment_violation", date(2014, 3, 3), date(2015, 3, 3)),
        ("repeated_sampling_failure", date(2014, 8, 31), date(2015, 2, 28)),  # clamped to the month's end
    ],
)
def test_earliest_repair_date_follows_the_category_group(category: str, listed: date, earliest: date) -> None:
    assert earliest_repair_on(RULES, category, listed) == earliest


def test_publication_period_defaults_to_three_years_and_is_bounded() -> None:
    assert check_publication_years(RULES, None) == 3
    assert check_publication_years(RULES, 5) == 5
    for bad in (0, 6, -1):
        with pytest.raises(PublicationPeriodOutOfRange) as info:
            check_publication_years(RULES, bad)
        assert info.value.slug == "publication-period-out-of-range"
    assert publish_until(date(2014, 3, 3), 3) == date(2017, 3, 2)
    assert publish_until(date(2012, 2, 29), 1) == date(2013, 2, 27)


def test_unknown_reason_category_is_refused() -> None:
    with pytest.raises(UnknownReasonCategory) as info:
        check_reason_category(RULES, "jaywalking")
    assert info.value.slug == "unknown-reason-category" and "food_safety_violation" in info.value.extensions["allowed"]


def test_transitions() -> None:
    assert allowed("proposed", "approve") and allowed("proposed", "reject")
    assert not allowed("listed", "approve") and not allowed("rejected", "approve")
    assert allowed("listed", "apply_repair") and allowed("listed", "remove") and allowed("listed", "expire")
    assert not allowed("removed", "apply_repair") and not allowed("proposed", "remove")


def test_listed_on_a_date_uses_listing_last_day_and_removal() -> None:
    e = {
        "status": "removed",
        "listed_on": date(2014, 1, 1),
        "publish_until": date(2016, 12, 31),
        "removed_on": date(2014, 7, 1),
    }
    assert not listed_on_date(e, date(2013, 12, 31))
    assert listed_on_date(e, date(2014, 1, 1)) and listed_on_date(e, date(2014, 6, 30))
    assert not listed_on_date(e, date(2014, 7, 1))
    assert listed_on_date(dict(e, removed_on=None, status="listed"), date(2016, 12, 31))
    assert not listed_on_date(dict(e, removed_on=None, status="listed"), date(2017, 1, 1))
    assert not listed_on_date(dict(e, status="proposed", listed_on=None), date(2014, 2, 1))


def _result(**over: Any) -> dict[str, Any]:
    r = {
        "result_id": "r1",
        "version": 1,
        "uscc": "91370200163562681G",
        "enterprise_name": "x",
        "level": "national",
        "sector": "food",
        "conclusion": "fail",
        "original_conclusion": "fail",
        "state": "final",
        "reinspection": None,
        "report_date": "2014-02-20",
        "sampling_date": "2014-02-10",
    }
    r.update(over)
    return r


@pytest.mark.parametrize(
    ("over", "kind"),
    [
        ({}, "negative"),
        ({"state": "provisional"}, "neutral"),
        ({"reinspection": "upheld"}, "negative"),
        ({"reinspection": "overturned", "conclusion": "pass"}, "neutral"),
        ({"state": "retracted"}, "neutral"),
        ({"conclusion": "pass", "original_conclusion": "pass"}, "neutral"),
    ],
    ids=["final-fail", "provisional", "upheld", "overturned", "retracted", "pass"],
)
def test_sampling_snapshot_to_record(over: dict[str, Any], kind: str) -> None:
    rec = record_from_result(_result(**over))
    assert rec["kind"] == kind and rec["record_id"] == "sampling:r1" and rec["fact_date"] == date(2014, 2, 20)


def test_honour_snapshot_to_record() -> None:
    h = {
        "honour_id": "h1",
        "version": 2,
        "type_code": "shandong_famous_brand",
        "type_name_zh": "山东名牌产品",
        "holder_kind": "enterprise",
        "holder_id": "91370200163562681g",
        "holder_name": "x",
        "granted_on": "2013-01-01",
        "valid_until": "2015-12-31",
        "state": "active",
    }
    rec = record_from_honour(h)
    assert rec is not None and rec["kind"] == "positive" and rec["uscc"] == "91370200163562681G"
    suspended = record_from_honour(dict(h, state="suspended"))
    assert suspended is not None and suspended["kind"] == "neutral"
    assert record_from_honour(dict(h, holder_kind="region")) is None


def test_triggers_in_window_count_only_sampling_negatives_inside_it_under_2012_rules() -> None:
    recs = [
        neg("a", date(2013, 1, 2)),
        neg("b", date(2013, 12, 31)),
        neg("c", date(2012, 12, 31)),
        dict(neg("d", date(2013, 6, 1)), kind="neutral"),
        dict(neg("e", date(2013, 6, 1)), source="authority", category="administrative_penalty"),
    ]
    assert [r["record_id"] for r in triggers_in_window(RULES, recs, date(2014, 1, 1))] == ["a", "b"]


def test_rule_book_picks_the_set_in_force_on_a_date() -> None:
    later = RuleSet("v2", date(2016, 1, 1), dict(RULES.raw, version="v2"))
    book = RuleBook([RULES, later])
    assert book.in_force(date(2015, 12, 31)).version == "qd-credit-2012.2"
    assert book.in_force(date(2016, 1, 1)).version == "v2"
    assert add_months(date(2014, 1, 31), 1) == date(2014, 2, 28)
