"""Strict types at the edge: a request means what its JSON says, and nothing else.

Pydantic's lax mode would read `20140101` or `"1700000000"` as a date, `false` as the number 0 and
`1` as true; each of these stored something the client never meant (`"value": false` overwrote a
published indicator figure). Request models and query parameters use these types instead.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Strict, StrictBool, StrictInt

from shared.clock import as_utc

__all__ = ["Day", "Flag", "Instant", "Number", "Stamp", "Whole"]


def _written_as(form: re.Pattern[str], kind: type, reason: str) -> BeforeValidator:
    """A value already of `kind`, or a string of exactly this form: never a number or a boolean."""

    def check(value: Any) -> Any:
        if isinstance(value, kind) or (isinstance(value, str) and form.fullmatch(value)):
            return value
        raise ValueError(reason)

    return BeforeValidator(check)


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)

#: A calendar day written `YYYY-MM-DD` (never a number, never a timestamp).
Day = Annotated[date, _written_as(_ISO_DAY, date, "a date is written YYYY-MM-DD")]
#: A JSON number (an integer is a number too); never a boolean or a string.
Number = Annotated[float, Strict()]
#: A JSON integer; never a boolean, a string or a float.
Whole = StrictInt
#: `true` or `false`; never `1`, `0` or a string.
Flag = StrictBool

#: A timestamp in a request: RFC 3339 with its offset (`format: date-time`), never a number.
Stamp = Annotated[
    datetime, _written_as(_RFC3339, datetime, "a timestamp is RFC 3339 with its offset, e.g. 2015-06-01T04:00:00Z")
]
#: A timestamp in an answer, always with its offset (`format: date-time`): SQLite hands timestamps
#: back naive, and they were written in UTC.
Instant = Annotated[datetime, AfterValidator(as_utc)]
