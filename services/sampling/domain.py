"""Sampling rules: pure functions over plain values, no I/O.

The region table (shared/data/regions.json) and the objection window (data/rules.json) are data, loaded
once at start-up and passed in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from shared.regions import RegionTable

DATA = Path(__file__).parent / "data"


class Level(StrEnum):
    national = "national"
    provincial = "provincial"
    municipal = "municipal"
    district = "district"


class Sector(StrEnum):
    manufacturing = "manufacturing"
    agricultural = "agricultural"
    food = "food"
    engineering = "engineering"


class Conclusion(StrEnum):
    passed = "pass"
    failed = "fail"


class State(StrEnum):
    provisional = "provisional"
    final = "final"
    retracted = "retracted"


@dataclass(frozen=True, slots=True)
class Rules:
    version: str
    objection_window_days: int
    batch_max_rows: int

    @classmethod
    def load(cls, path: Path = DATA / "rules.json") -> Rules:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(raw["version"], int(raw["objection_window_days"]), int(raw["batch_max_rows"]))


def objection_deadline(conclusion: str, report_date: date, rules: Rules) -> date | None:
    return report_date + timedelta(days=rules.objection_window_days) if conclusion == Conclusion.failed else None


def initial_state(conclusion: str) -> State:
    """A fail starts provisional (its objection window is open); a pass is final at once."""
    return State.provisional if conclusion == Conclusion.failed else State.final


def check_result(row: dict[str, Any], today: date, regions: RegionTable) -> list[tuple[str, str]]:
    """The rules across fields, the calendar and the region table: (field, reason) for each breach."""
    problems: list[tuple[str, str]] = []
    items = row["nonconforming_items"]
    if row["conclusion"] == Conclusion.failed and not items:
        problems.append(("nonconforming_items", "a fail needs at least one non-conforming item"))
    if row["conclusion"] == Conclusion.passed and items:
        problems.append(("nonconforming_items", "a pass cannot have non-conforming items"))
    if row["production_date"] is not None and row["production_date"] > row["sampling_date"]:
        problems.append(("production_date", "production_date is after sampling_date"))
    if row["sampling_date"] > row["report_date"]:
        problems.append(("sampling_date", "sampling_date is after report_date"))
    for field in ("production_date", "sampling_date", "report_date"):
        value = row.get(field)
        if value is not None and value > today:
            problems.append((field, f"{value.isoformat()} is in the future"))
    why = regions.district_problem(row["district_code"], row["sampling_date"])
    if why:
        problems.append(("district_code", why))
    return problems


#: The fields that make a result's content; a re-sent report with the same content is a duplicate.
CONTENT_FIELDS = (
    "level",
    "sector",
    "key_product",
    "product_category",
    "product_name",
    "brand",
    "model_spec",
    "batch_no",
    "production_date",
    "uscc",
    "enterprise_name",
    "district_code",
    "sampled_unit",
    "sampling_date",
    "report_date",
    "original_conclusion",
    "nonconforming_items",
)


def content_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(f) for f in CONTENT_FIELDS)


@dataclass(frozen=True, slots=True)
class Transition:
    state: State
    conclusion: str
    reinspection: str | None


def reinspect(state: str, deadline: date | None, requested_on: date, outcome: str, original: str) -> Transition | str:
    """A re-inspection upholds or overturns a provisional fail requested within its window."""
    if state != State.provisional:
        return f"only a provisional fail can be re-inspected; this result is {state}"
    if deadline is not None and requested_on > deadline:
        return f"the objection window closed on {deadline.isoformat()}; requested on {requested_on.isoformat()}"
    if outcome == "upheld":
        return Transition(State.final, original, "upheld")
    return Transition(State.final, Conclusion.passed, "overturned")
