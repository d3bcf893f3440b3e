"""Time as a dependency, so scheduled rules (objection windows, expiry) can be tested by moving it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from fastapi import Request


def as_utc(value: datetime) -> datetime:
    """A timestamp with its zone: SQLite hands timestamps back naive, and they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def as_date(value: Any) -> date:
    """A date from an event payload field: a date, a datetime, or an ISO string (date or timestamp)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


class Clock(Protocol):
    def now(self) -> datetime: ...
    def today(self) -> date: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        # The city's calendar day: China Standard Time has no daylight saving, UTC+8 all year.
        return (datetime.now(UTC) + timedelta(hours=8)).date()


class FixedClock:
    """A clock tests set and move."""

    def __init__(self, at: datetime) -> None:
        self._at = as_utc(at)

    def now(self) -> datetime:
        return self._at

    def today(self) -> date:
        return (self._at + timedelta(hours=8)).date()

    def set(self, at: datetime) -> None:
        self._at = as_utc(at)

    def advance(self, **delta: float) -> None:
        self._at += timedelta(**delta)


def clock_of(request: Request) -> Clock:
    clock: Clock = request.app.state.runtime.clock
    return clock
