"""Sampling rules and the event payloads built on the bulk path."""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson
import pytest

from services.sampling.domain import (
    NotReinspectable,
    Rules,
    State,
    Transition,
    check_result,
    objection_deadline,
    reinspect,
)
from services.sampling.events import ResultRecorded, ResultSnapshot
from services.sampling.service import snapshot
from shared.regions import load_regions

REGIONS = load_regions()
RULES = Rules.load()


def _row(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "conclusion": "pass",
        "nonconforming_items": [],
        "production_date": date(2014, 5, 1),
        "sampling_date": date(2014, 5, 10),
        "report_date": date(2014, 5, 25),
        "district_code": "370212",
    }
    row.update(over)
    return row


def test_a_clean_result_breaks_no_rule() -> None:
    assert check_result(_row(), date(2015, 1, 1), REGIONS) == []


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"conclusion": "fail"}, [("nonconforming_items", "a fail needs at least one non-conforming item")]),
        (
            {"nonconforming_items": [{"item": "x"}]},
            [("nonconforming_items", "a pass cannot have non-conforming items")],
        ),
        ({"production_date": date(2014, 5, 11)}, [("production_date", "production_date is after sampling_date")]),
        ({"sampling_date": date(2014, 5, 26)}, [("sampling_date", "sampling_date is after report_date")]),
        ({"report_date": date(2015, 1, 2)}, [("report_date", "2015-01-02 is in the future")]),
        ({"district_code": "370299"}, [("district_code", "unknown district code 370299; see GET /v1/regions")]),
    ],
)
def test_each_rule_names_its_field(over: dict[str, object], expected: list[tuple[str, str]]) -> None:
    assert check_result(_row(**over), date(2015, 1, 1), REGIONS) == expected


def test_districts_follow_their_validity_dates() -> None:
    assert REGIONS.district_problem("370205", date(2012, 6, 1)) is None  # 四方区 in 2012
    assert "was not a district on 2013-01-01" in (REGIONS.district_problem("370205", date(2013, 1, 1)) or "")
    assert REGIONS.district_problem("370282", date(2016, 1, 1)) is None  # 即墨市 until 2017-06
    assert REGIONS.district_problem("370282", date(2018, 1, 1)) is not None
    assert REGIONS.district_problem("370215", date(2018, 1, 1)) is None  # 即墨区 from 2017-07
    assert "is the city" in (REGIONS.district_problem("370200", date(2018, 1, 1)) or "")


def test_objection_window_is_data() -> None:
    assert RULES.objection_window_days == 15
    assert objection_deadline("fail", date(2014, 5, 25), RULES) == date(2014, 6, 9)
    assert objection_deadline("pass", date(2014, 5, 25), RULES) is None


def test_reinspection_transitions() -> None:
    deadline = date(2014, 6, 9)
    assert reinspect("provisional", deadline, date(2014, 6, 9), "overturned", "fail") == Transition(
        State.final, "pass", "overturned"
    )
    assert reinspect("provisional", deadline, date(2014, 6, 1), "upheld", "fail") == Transition(
        State.final, "fail", "upheld"
    )
    with pytest.raises(NotReinspectable, match="window closed"):
        reinspect("provisional", deadline, date(2014, 6, 10), "upheld", "fail")
    with pytest.raises(NotReinspectable, match="only a provisional fail"):
        reinspect("final", deadline, date(2014, 6, 1), "upheld", "fail")


def test_bulk_snapshot_matches_the_registered_event_model() -> None:
    row = {
        "id": "01a2",
        "version": 1,
        "agency_code": "A",
        "report_no": "R",
        "level": "national",
        "sector": "food",
        "key_product": True,
        "product_category": "c",
        "product_name": "p",
        "brand": None,
        "uscc": "91370200163562681G",
        "enterprise_name": "e",
        "district_code": "370202",
        "sampling_date": date(2014, 5, 10),
        "report_date": date(2014, 5, 25),
        "conclusion": "fail",
        "original_conclusion": "fail",
        "state": "provisional",
        "objection_deadline": date(2014, 6, 9),
        "reinspection": None,
        "nonconforming_items": orjson.dumps([{"item": "x"}]).decode(),
        "recorded_at": datetime(2014, 5, 25, tzinfo=UTC),
    }
    data = orjson.loads(orjson.dumps({"result": snapshot(row)}))  # as it travels
    parsed = ResultRecorded.model_validate(data)
    assert parsed.result.nonconforming_count == 1
    assert set(data["result"]) == set(ResultSnapshot.model_fields)
