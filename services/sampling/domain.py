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
from typing import Any, NamedTuple

from shared.errors import Conflict, Forbidden, NotFound, QualityCityError, ValidationFailed
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


# ---------------------------------------------------------------- errors


class AgencyTokenRequired(Forbidden, slug="agency-token-required", title="An agency token is required"):
    default_detail = "Results are recorded under the agency bound to the token; this token has none."


class NotOwningAgency(Forbidden, slug="not-owning-agency", title="Not your result"):
    def __init__(self, owner: str) -> None:
        super().__init__(f"Only agency {owner} may change this result.")


class ResultNotFound(NotFound, slug="result-not-found", title="Result not found"):
    def __init__(self, result_id: str) -> None:
        super().__init__(f"No result has id {result_id}")


class ResultRetracted(Conflict, slug="result-retracted", title="Result retracted"):
    default_detail = "A retracted result cannot change any more."


class ReportConflict(Conflict, slug="report-conflict", title="Report number already used"):
    def __init__(self, reason: str, existing_id: str) -> None:
        super().__init__(reason, existing_id=existing_id)


class NotReinspectable(Conflict, slug="not-reinspectable", title="Re-inspection not possible"): ...


class NothingToCorrect(ValidationFailed, slug="nothing-to-correct", title="Nothing changes"):
    default_detail = "The correction leaves every field as it is."


class BatchRejected(QualityCityError, status=422, slug="batch-rejected", title="The batch was not stored"):
    """`atomic=true` and some rows were refused: nothing stored, every refused row reported."""

    def __init__(self, rejected: int, received: int, rows: list[dict[str, Any]]) -> None:
        super().__init__(
            f"{rejected} of {received} rows have problems; with atomic=true nothing was stored.", rows=rows
        )


class NoticeNotFound(NotFound, slug="notice-not-found", title="Notice not found"):
    def __init__(self, notice_id: str) -> None:
        super().__init__(f"No notice has id {notice_id}")


class NoticeNumberTaken(Conflict, slug="notice-number-taken", title="Notice number already used"):
    def __init__(self, notice_no: str, existing_id: str) -> None:
        super().__init__(f"Notice {notice_no} was already published; correct it instead", existing_id=existing_id)


class NotNoticePublisher(Forbidden, slug="not-notice-publisher", title="Not your notice"):
    def __init__(self, publisher: str | None) -> None:
        super().__init__(f"Only {'agency ' + publisher if publisher else 'the bureau'} may correct this notice.")


class NotPublishable(ValidationFailed, slug="results-not-publishable", title="Results that cannot be published"):
    """A notice cites only final fails the publisher may publish: each other result is named with why."""


# ---------------------------------------------------------------- rules


class Breach(NamedTuple):
    """One rule a result breaks: the field it is reported on and why."""

    field: str
    reason: str


def check_result(row: dict[str, Any], today: date, regions: RegionTable) -> list[Breach]:
    """The rules across fields, the calendar and the region table: every breach, so a batch row
    reports all of them at once."""
    problems: list[Breach] = []
    items = row["nonconforming_items"]
    if row["conclusion"] == Conclusion.failed and not items:
        problems.append(Breach("nonconforming_items", "a fail needs at least one non-conforming item"))
    if row["conclusion"] == Conclusion.passed and items:
        problems.append(Breach("nonconforming_items", "a pass cannot have non-conforming items"))
    if row["production_date"] is not None and row["production_date"] > row["sampling_date"]:
        problems.append(Breach("production_date", "production_date is after sampling_date"))
    if row["sampling_date"] > row["report_date"]:
        problems.append(Breach("sampling_date", "sampling_date is after report_date"))
    for field in ("production_date", "sampling_date", "report_date"):
        value = row.get(field)
        if value is not None and value > today:
            problems.append(Breach(field, f"{value.isoformat()} is in the future"))
    why = regions.district_problem(row["district_code"], row["sampling_date"])
    if why:
        problems.append(Breach("district_code", why))
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


def publish_problem(
    row: dict[str, Any] | None, notice_date: date, publisher: str | None, cited_by: str | None
) -> str | None:
    """Why a result cannot be cited by a notice of `publisher` (an agency, or None for the bureau)
    dated `notice_date`, or None when it can: only a final fail stands for certain, and an agency
    publishes only its own results. `cited_by`: the number of another notice already citing it."""
    if row is None:
        return "no result has this id"
    if publisher is not None and row["agency_code"] != publisher:
        return f"a result of agency {row['agency_code']}: an agency publishes its own results"
    if row["state"] == State.retracted:
        return "retracted: it no longer stands"
    if row["conclusion"] == Conclusion.passed:
        if row["reinspection"] == "overturned":
            return "overturned on re-inspection: it reads pass"
        return "a pass: a notice publishes fails"
    if row["state"] == State.provisional:
        deadline = row["objection_deadline"]
        return f"provisional: its objection window is open until {deadline.isoformat() if deadline else '?'}"
    if row["report_date"] > notice_date:
        return f"reported on {row['report_date'].isoformat()}, after the notice's date"
    if cited_by is not None:
        return f"already published in notice {cited_by}"
    return None


@dataclass(frozen=True, slots=True)
class Transition:
    state: State
    conclusion: str
    reinspection: str | None


def reinspect(state: str, deadline: date | None, requested_on: date, outcome: str, original: str) -> Transition:
    """A re-inspection upholds or overturns a provisional fail requested within its window."""
    if state != State.provisional:
        raise NotReinspectable(f"only a provisional fail can be re-inspected; this result is {state}")
    if deadline is not None and requested_on > deadline:
        raise NotReinspectable(
            f"the objection window closed on {deadline.isoformat()}; requested on {requested_on.isoformat()}"
        )
    if outcome == "upheld":
        return Transition(State.final, original, "upheld")
    return Transition(State.final, Conclusion.passed, "overturned")


# ---------------------------------------------------------------- archives


class ArchivedStep(NamedTuple):
    """A change an archived result went through after it was recorded, and the day it happened."""

    change: str  # reinspected | finalised
    on: date


def check_archived_outcome(row: dict[str, Any], today: date, rules: Rules) -> tuple[list[Breach], list[ArchivedStep]]:
    """What became of an archived result, held to the live rules with the window of its own dates.

    A re-inspection needs all four of its fields, a fail, and a request between the report and the
    objection deadline computed from the row's report_date (not today). Without one, a fail whose
    window closed before `today` was finalised the day after its deadline (as the finalisation job
    would have done); a stated `state` must agree with that.
    """
    problems: list[Breach] = []
    fields = ("reinspection_outcome", "reinspection_report_no", "reinspection_requested_on", "reinspection_decided_on")
    given = [f for f in fields if row.get(f) is not None]
    deadline = objection_deadline(row["conclusion"], row["report_date"], rules)
    steps: list[ArchivedStep] = []
    if given:
        problems += [Breach(f, f"a re-inspection needs {f} too") for f in fields if f not in given]
        if row["conclusion"] != Conclusion.failed:
            problems.append(Breach("reinspection_outcome", "only a fail can be re-inspected"))
        requested, decided = row.get("reinspection_requested_on"), row.get("reinspection_decided_on")
        if requested is not None:
            if requested < row["report_date"]:
                problems.append(Breach("reinspection_requested_on", "before report_date"))
            elif deadline is not None and requested > deadline:
                problems.append(
                    Breach(
                        "reinspection_requested_on",
                        f"the objection window closed on {deadline.isoformat()}; requested on {requested.isoformat()}",
                    )
                )
        for f, value in (("reinspection_requested_on", requested), ("reinspection_decided_on", decided)):
            if value is not None and value > today:
                problems.append(Breach(f, f"{value.isoformat()} is in the future"))
        if requested is not None and decided is not None and decided < requested:
            problems.append(Breach("reinspection_decided_on", "before reinspection_requested_on"))
        if decided is not None:
            steps.append(ArchivedStep("reinspected", decided))
    elif deadline is not None and deadline < today:
        steps.append(ArchivedStep("finalised", deadline + timedelta(days=1)))
    implied = State.final if steps or row["conclusion"] != Conclusion.failed else State.provisional
    stated = row.get("state")
    if stated is not None and stated != implied and not problems:
        why = (
            f"the objection window is open until {deadline.isoformat()} and no re-inspection is given"
            if implied == State.provisional and deadline is not None
            else f"its dates make it {implied.value}"
        )
        problems.append(Breach("state", f"{stated} contradicts the record: {why}"))
    return problems, steps
