"""Working days from an operator's holiday file: the same answers as chinese-calendar for a year it ships,
a year it does not know counted from the file, and a bad file refused at start."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar
import pytest

from services.credit.working_days import HolidayCalendarMissing, WorkingDays

YEAR_2026 = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]


def arrangement_2026() -> dict[str, Any]:
    """2026 as the State Council's notice gives it, taken from chinese-calendar's data."""
    holidays = chinese_calendar.get_holidays(date(2026, 1, 1), date(2026, 12, 31), include_weekends=False)
    workdays = [d for d in YEAR_2026 if d.weekday() >= 5 and chinese_calendar.is_workday(d)]
    return {
        "year": 2026,
        "notice": "国务院办公厅关于2026年部分节假日安排的通知",
        "holidays": [d.isoformat() for d in holidays],
        "workdays": [d.isoformat() for d in workdays],
    }


def write(tmp_path: Path, *years: dict[str, Any]) -> Path:
    path = tmp_path / "holidays.json"
    path.write_text(json.dumps({"years": list(years)}, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_year_from_the_file_answers_as_the_package_does_for_every_day(tmp_path: Path) -> None:
    arrangement = arrangement_2026()
    assert arrangement["holidays"] and arrangement["workdays"]  # the year has both, or the check proves little
    loaded = WorkingDays.from_file(write(tmp_path, arrangement))
    assert loaded.loaded.keys() == {2026}
    assert [loaded.is_workday(d) for d in YEAR_2026] == [bool(chinese_calendar.is_workday(d)) for d in YEAR_2026]


def test_a_year_the_package_does_not_know_is_counted_from_the_file(tmp_path: Path) -> None:
    # A made-up arrangement for a year no release covers: Friday 2099-01-02 off, Saturday 2099-01-10 worked.
    calendar = WorkingDays.from_file(
        write(tmp_path, {"year": 2099, "notice": "test", "holidays": ["2099-01-02"], "workdays": ["2099-01-10"]})
    )
    assert calendar.covered_through() == 2099
    # From Wednesday 2098-12-31 (a year nobody knows) the count would be refused; from 2099-01-01 (Thursday):
    # 01-05 Mon, 01-06, 01-07, 01-08, 01-09 Fri: 5 working days, with Friday 01-02 off.
    assert calendar.add(date(2099, 1, 1), 5) == date(2099, 1, 9)
    # Saturday 01-10 is worked: the sixth working day.
    assert calendar.add(date(2099, 1, 1), 6) == date(2099, 1, 10)
    with pytest.raises(HolidayCalendarMissing) as exc:
        calendar.add(date(2099, 12, 28), 5)
    assert exc.value.extensions["year"] == 2100
    # Without the file the same count is refused, never guessed.
    with pytest.raises(HolidayCalendarMissing):
        WorkingDays().add(date(2099, 1, 1), 5)


@pytest.mark.parametrize(
    ("year", "why"),
    [
        ({"year": 2099, "notice": "t", "holidays": ["2098-12-31"], "workdays": []}, "outside 2099"),
        ({"year": 2099, "notice": "t", "holidays": [], "workdays": ["2099-01-05"]}, "weekend days"),
        ({"year": 2099, "notice": "t", "holidays": ["2099-01-10"], "workdays": ["2099-01-10"]}, "both"),
        ({"year": 2099, "holidays": [], "workdays": []}, "notice"),
        ({"year": 2099, "notice": "t", "holidays": ["2099-13-01"], "workdays": []}, "holidays"),
    ],
    ids=["date-outside-year", "weekday-workday", "both", "no-notice", "bad-date"],
)
def test_a_bad_file_stops_the_start_saying_why(tmp_path: Path, year: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        WorkingDays.from_file(write(tmp_path, year))


def test_a_year_given_twice_is_refused(tmp_path: Path) -> None:
    one = {"year": 2099, "notice": "t", "holidays": [], "workdays": []}
    with pytest.raises(ValueError, match="twice"):
        WorkingDays.from_file(write(tmp_path, one, one))
