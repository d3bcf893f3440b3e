"""Sampling rules: pure functions, no I/O."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Sector(StrEnum):
    manufacturing = "manufacturing"
    agricultural = "agricultural"
    food = "food"
    engineering = "engineering"


class Conclusion(StrEnum):
    passed = "pass"
    failed = "fail"


#: The fields that make a result's content; a re-sent report with the same content is a duplicate.
CONTENT_FIELDS = ("uscc", "sector", "conclusion")


def same_content(stored: dict[str, Any], incoming: dict[str, Any]) -> bool:
    return all(str(stored[f]) == str(incoming[f]) for f in CONTENT_FIELDS)
