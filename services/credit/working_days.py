"""Working days (工作日) by the State Council's yearly holiday arrangement, 调休 working weekends included.

The arrangement is data published once a year, in November or December, for the next year. The
chinese-calendar package ships every year up to its release; a year it does not know yet is loaded by
the operator from a file (`QC_CREDIT_HOLIDAY_FILE`), so a new year's deadlines do not wait for a package
upgrade. A year in the file replaces the package's (a correction); a year neither knows is refused
with `503 holiday-calendar-missing`, never guessed from weekdays (that would put a deadline inside the
Spring Festival).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Self

import chinese_calendar
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.errors import ServiceUnavailable


class HolidayCalendarMissing(
    ServiceUnavailable, slug="holiday-calendar-missing", title="No holiday calendar for the year"
):
    def __init__(self, day: date) -> None:
        super().__init__(
            f"Working days after {day.isoformat()} cannot be counted: no holiday arrangement is known for "
            f"{day.year}. Load the State Council's arrangement for that year (QC_CREDIT_HOLIDAY_FILE, see "
            "docs/credit-rules.md) or upgrade chinese-calendar.",
            year=day.year,
        )


class YearArrangement(BaseModel):
    """One year's arrangement, as the State Council's notice gives it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    year: Annotated[int, Field(ge=2004, le=2100)]
    notice: Annotated[str, Field(min_length=1, max_length=200, description="The notice, e.g. its document number")]
    holidays: list[date] = Field(description="Every day off of the year's holidays that is not a plain weekend")
    workdays: list[date] = Field(description="Weekend days worked in lieu (调休上班)")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name, days in (("holidays", self.holidays), ("workdays", self.workdays)):
            if stray := [d.isoformat() for d in days if d.year != self.year]:
                raise ValueError(f"{name} outside {self.year}: {', '.join(stray)}")
        if weekdays := [d.isoformat() for d in self.workdays if d.weekday() < 5]:
            raise ValueError(f"workdays must be weekend days worked in lieu, not {', '.join(weekdays)}")
        if both := sorted(set(self.holidays) & set(self.workdays)):
            raise ValueError(f"both a holiday and a workday: {', '.join(d.isoformat() for d in both)}")
        return self


class HolidayFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    years: list[YearArrangement] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_per_year(self) -> Self:
        seen = [a.year for a in self.years]
        if len(seen) != len(set(seen)):
            raise ValueError("a year is given twice")
        return self


def _package_years() -> range:
    """The years chinese-calendar knows: 2004 to the last year of its release."""
    return range(min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year + 1)


class WorkingDays:
    """The working-day calendar: the operator's years first, then the package's."""

    def __init__(self, loaded: Mapping[int, YearArrangement] | None = None) -> None:
        self.loaded = dict(loaded or {})
        self._off = {d for a in self.loaded.values() for d in a.holidays}
        self._on = {d for a in self.loaded.values() for d in a.workdays}

    @classmethod
    def from_file(cls, path: Path | None) -> WorkingDays:
        """The calendar with the years of an operator's file (none without one); a bad file stops the start."""
        if path is None:
            return cls()
        try:
            parsed = HolidayFile.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            raise ValueError(f"holiday file {path}: {exc}") from exc
        return cls({a.year: a for a in parsed.years})

    def covered_through(self) -> int:
        """The last year whose working days can be counted."""
        return max([*self.loaded, _package_years()[-1]])

    def is_workday(self, day: date) -> bool:
        if day.year in self.loaded:
            return day in self._on or (day.weekday() < 5 and day not in self._off)
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            raise HolidayCalendarMissing(day) from None

    def add(self, start: date, days: int) -> date:
        """The `days`-th working day after `start` (the day of notice not counted). Counted day by day:
        chinese-calendar's `find_workday` starts from the next working day *including* the start, one
        day more when a notice is given on a holiday."""
        day, left = start, days
        while left > 0:
            day += timedelta(days=1)
            left -= self.is_workday(day)
        return day
