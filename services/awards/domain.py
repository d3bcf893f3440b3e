"""Awards rules: the honour-type catalog, the region table, holder and date checks, state
transitions and the counting rules. Pure functions over data; no I/O besides loading the two
data files at start."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.contracts.awards import Subject
from shared.errors import (
    Conflict,
    InvalidTransition,
    InvalidUscc,
    NotFound,
    QualityCityError,
    ValidationFailed,
    field_error,
)
from shared.regions import Region, RegionTable
from shared.uscc import validate_uscc

DATA_DIR = Path(__file__).parent / "data"

HolderKind = Literal["enterprise", "region", "person", "organisation"]
HOLDER_KINDS: tuple[str, ...] = ("enterprise", "region", "person", "organisation")
GrantingLevel = Literal["international", "national", "provincial", "municipal"]


class State(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


class GrantRefused(QualityCityError, abstract=True):
    """A rule broken by one grant, named by the field it is about. A single grant answers it as a
    problem; the import reports it on its row: both paths give the same slug and reason.

    Each condition below pairs this with the generic class giving its status (422 or 409)."""

    def __init__(self, field: str, reason: str, **extensions: Any) -> None:
        super().__init__(reason, errors=[field_error(field, "body", reason)], **extensions)
        self.field = field
        self.reason = reason


class GrantInvalid(GrantRefused, ValidationFailed, abstract=True):
    """A grant whose values break a rule (422)."""


class UnknownHonourType(GrantInvalid, slug="unknown-honour-type", title="Unknown honour type"): ...


class InvalidDivisionCode(GrantInvalid, slug="invalid-division-code", title="Unknown division code"): ...


class DivisionNotInForce(InvalidDivisionCode, title="Division code not in force on that date"): ...


class NotADistrict(InvalidDivisionCode, title="Not a district"): ...


class HolderKindNotAllowed(
    GrantInvalid, slug="holder-kind-not-allowed", title="Holder of the wrong kind for this honour type"
): ...


class HolderUsccInvalid(GrantRefused, InvalidUscc):
    """The shared `invalid-uscc` problem, reported on `holder_id` like every grant rule."""


class InvalidPersonId(GrantInvalid, slug="invalid-person-id", title="Invalid person id"): ...


class SubjectRequired(GrantInvalid, slug="subject-required", title="Subject required"): ...


class SubjectKindMismatch(GrantInvalid, slug="subject-kind-mismatch", title="Subject of the wrong kind"): ...


class SubjectIncomplete(GrantInvalid, slug="subject-incomplete", title="Subject incomplete"): ...


class StandardNumberMismatch(
    GrantInvalid, slug="standard-number-mismatch", title="Standard number of another level"
): ...


class GrantedInFuture(GrantInvalid, slug="granted-in-future", title="Granted date in the future"): ...


class ValidUntilBeforeGranted(GrantInvalid, slug="valid-until-before-granted", title="Valid-until before granted"): ...


class HolderBlacklisted(
    GrantRefused, Conflict, slug="holder-blacklisted", title="The holder is on the quality-credit blacklist"
):
    def __init__(self, listing: dict[str, Any]) -> None:
        super().__init__(
            "holder_id",
            f"{listing['uscc']} has been listed since {listing['listed_on']} (entry {listing['entry_id']}, "
            f"decision {listing['decision_no']}): a blacklisted enterprise cannot be granted an honour",
            entry_id=listing["entry_id"],
            decision_no=listing["decision_no"],
            listed_on=listing["listed_on"].isoformat(),
        )


class DuplicateCertificateNo(
    GrantRefused, Conflict, slug="duplicate-certificate-no", title="Duplicate certificate number"
):
    def __init__(self, reason: str, **extensions: Any) -> None:
        super().__init__("certificate_no", reason, **extensions)


class HonourNotFound(NotFound, slug="honour-not-found", title="Honour not found"):
    def __init__(self, honour_id: str) -> None:
        super().__init__(f"No honour has id {honour_id}")


class HonourAlreadyRevoked(Conflict, slug="honour-already-revoked", title="Honour already revoked"): ...


class RevokedOnOutOfRange(ValidationFailed, slug="revoked-on-out-of-range", title="Revocation date out of range"): ...


class UnknownHonourTypeCode(UnknownHonourType, status=404):
    """The same condition named in a path: 404, not 422, and no field to point at."""

    def __init__(self, code: str) -> None:
        QualityCityError.__init__(self, f"No honour type {code!r}")


class PeriodReversed(ValidationFailed, slug="period-reversed", title="Period ends before it starts"): ...


# --------------------------------------------------------------------------------------------
# The catalog


class HonourType(BaseModel):
    """An entry of the catalog (data/catalog.json), read as the API shows it (schemas.HonourTypeOut)."""

    model_config = ConfigDict(frozen=True)

    code: str
    name_zh: str
    name_en: str
    holder_kinds: tuple[str, ...]
    granting_level: str
    validity_years: int | None
    indicator_code: str
    seed_section: str
    subject_kind: str | None
    subject_required: bool
    subject_number_pattern: str | None
    default_authority: str

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class Catalog:
    version: str
    types: tuple[HonourType, ...]
    _by_code: dict[str, HonourType] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_code.update({t.code: t for t in self.types})

    def find(self, code: str) -> HonourType | None:
        return self._by_code.get(code)

    def get(self, code: str) -> HonourType:
        t = self._by_code.get(code)
        if t is None:
            raise UnknownHonourType(
                "type_code",
                f"no honour type {code!r}; see GET /v1/honour-types",
                type_code=code,
            )
        return t

    @property
    def codes(self) -> list[str]:
        return [t.code for t in self.types]


def parse_catalog(raw: dict[str, Any]) -> Catalog:
    types: list[HonourType] = []
    seen: set[str] = set()
    for entry in raw["types"]:
        t = HonourType.model_validate(entry)
        # A malformed catalog must stop the service at start, not surface at the first grant.
        if t.code in seen:
            raise ValueError(f"honour type {t.code} appears twice in the catalog")
        if not t.holder_kinds or set(t.holder_kinds) - set(HOLDER_KINDS):
            raise ValueError(f"honour type {t.code} has bad holder kinds {t.holder_kinds}")
        if t.validity_years is not None and t.validity_years <= 0:
            raise ValueError(f"honour type {t.code} has a non-positive validity")
        if t.subject_number_pattern:
            re.compile(t.subject_number_pattern)
        seen.add(t.code)
        types.append(t)
    return Catalog(version=str(raw["version"]), types=tuple(types))


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    return parse_catalog(json.loads((DATA_DIR / "catalog.json").read_text(encoding="utf-8")))


# --------------------------------------------------------------------------------------------
# Regions


def check_region(regions: RegionTable, code: str, on: date, field_name: str) -> Region:
    """The division `code` names, in force on `on`, or the problem naming the field."""
    region = regions.find(code)
    if region is None:
        raise InvalidDivisionCode(
            field_name,
            f"{code!r} is not a Qingdao administrative division code; see GET /v1/regions",
        )
    if not region.in_force_on(on):
        raise DivisionNotInForce(
            field_name,
            f"{code} {region.name_zh} was in force {regions.span(region)}, not on {on}",
        )
    return region


# --------------------------------------------------------------------------------------------
# Holders, subjects, dates

PERSON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,39}$")


@dataclass(frozen=True)
class Holder:
    kind: str
    id: str
    district_code: str | None


def check_holder(
    honour_type: HonourType,
    kind: str,
    holder_id: str,
    district_code: str | None,
    on: date,
    regions: RegionTable,
) -> Holder:
    """Validate the holder against the type and normalise its id; find its district if known.

    Enterprises and organisations are identified by USCC (public institutions and associations
    have one too), regions by division code, persons by the registry's own id (never a national
    ID number: the public list shows it)."""
    if kind not in honour_type.holder_kinds:
        raise HolderKindNotAllowed(
            "holder_kind",
            f"{honour_type.code} {honour_type.name_zh} is held by {' or '.join(honour_type.holder_kinds)}, "
            f"not by a {kind}",
            allowed_holder_kinds=list(honour_type.holder_kinds),
        )
    district: str | None = None
    if kind in ("enterprise", "organisation"):
        try:
            holder_id = validate_uscc(holder_id.strip())
        except ValueError as exc:
            raise HolderUsccInvalid("holder_id", str(exc)) from None
        # Characters 3–8 are the registering region; use it when it names one of our districts.
        registered = regions.find(holder_id[2:8])
        if registered is not None and registered.is_district and registered.in_force_on(on):
            district = registered.code
    elif kind == "region":
        holder_id = holder_id.strip()
        region = check_region(regions, holder_id, on, "holder_id")
        district = region.code if region.is_district else None
    else:
        holder_id = holder_id.strip()
        if not PERSON_ID.match(holder_id):
            raise InvalidPersonId(
                "holder_id",
                "a person is identified by the registry's id: 3–40 letters, digits, '-' or '_'",
            )
    if district_code:
        region = check_region(regions, district_code, on, "district_code")
        if not region.is_district:
            raise NotADistrict(
                "district_code",
                f"{district_code} is the city, not a district or county-level city",
            )
        district = region.code
    return Holder(kind, holder_id, district)


def check_subject(honour_type: HonourType, subject: Subject | None) -> None:
    if subject is None:
        if honour_type.subject_required:
            raise SubjectRequired(
                "subject",
                f"{honour_type.code} {honour_type.name_zh} is granted for a {honour_type.subject_kind}: give it",
            )
        return
    if subject.kind != honour_type.subject_kind:
        expected = honour_type.subject_kind or "nothing (this type has no subject)"
        raise SubjectKindMismatch(
            "subject.kind",
            f"{honour_type.code} is granted for {expected}, not a {subject.kind}",
        )

    def missing(name: str) -> SubjectIncomplete:
        return SubjectIncomplete(f"subject.{name}", f"a {subject.kind} needs its {name}")

    if subject.kind == "standard":
        for name in ("number", "title", "role"):
            if not getattr(subject, name):
                raise missing(name)
    elif subject.kind == "committee":
        for name in ("number", "title"):
            if not getattr(subject, name):
                raise missing(name)
    elif not subject.name:
        raise missing("name")
    pattern = honour_type.subject_number_pattern
    if pattern and subject.number and not re.match(pattern, subject.number.strip()):
        raise StandardNumberMismatch(
            "subject.number",
            f"{subject.number!r} is not a number of the kind {honour_type.name_zh} covers (pattern {pattern})",
        )


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def default_valid_until(honour_type: HonourType, granted_on: date) -> date | None:
    """The last day of validity: N years from the grant, the day before the anniversary
    (a 山东名牌 granted 2012-12-20 for 3 years holds through 2015-12-19)."""
    if honour_type.validity_years is None:
        return None
    return add_years(granted_on, honour_type.validity_years) - timedelta(days=1)


def check_dates(granted_on: date, valid_until: date | None, today: date) -> None:
    if granted_on > today:
        raise GrantedInFuture(
            "granted_on",
            f"{granted_on} is after today, {today}",
        )
    if valid_until is not None and valid_until < granted_on:
        raise ValidUntilBeforeGranted(
            "valid_until",
            f"valid_until {valid_until} is before granted_on {granted_on}",
        )


def initial_state(valid_until: date | None, today: date) -> State:
    return State.EXPIRED if valid_until is not None and valid_until < today else State.ACTIVE


# --------------------------------------------------------------------------------------------
# State transitions

Action = Literal["suspend", "reinstate", "expire", "revoke"]

_TRANSITIONS: dict[tuple[State, str], State] = {
    (State.ACTIVE, "suspend"): State.SUSPENDED,
    (State.ACTIVE, "expire"): State.EXPIRED,
    (State.ACTIVE, "revoke"): State.REVOKED,
    (State.SUSPENDED, "reinstate"): State.ACTIVE,
    (State.SUSPENDED, "expire"): State.EXPIRED,
    (State.SUSPENDED, "revoke"): State.REVOKED,
    # An expired honour may still be revoked (e.g. obtained by fraud): the record must say so.
    (State.EXPIRED, "revoke"): State.REVOKED,
}


class TransitionError(InvalidTransition):
    def __init__(self, state: State, action: str) -> None:
        super().__init__(f"cannot {action} an honour that is {state.value}")
        self.state = state
        self.action = action


def transition(state: State | str, action: Action) -> State:
    current = State(state)
    try:
        return _TRANSITIONS[(current, action)]
    except KeyError:
        raise TransitionError(current, action) from None


def after_listing_removed(valid_until: date | None, removed_on: date) -> Action:
    """A suspension ends: reinstate if the honour is still within validity, else it expires."""
    return "reinstate" if valid_until is None or removed_on <= valid_until else "expire"


# --------------------------------------------------------------------------------------------
# Counting (the SQL in repository.py implements the same rules; a test holds them together)


@dataclass(frozen=True)
class Suspension:
    entry_id: str
    suspended_on: date
    reinstated_on: date | None


@dataclass(frozen=True)
class HonourFacts:
    type_code: str
    granted_on: date
    valid_until: date | None
    revoked_on: date | None
    suspensions: Sequence[Suspension] = ()
    district_code: str | None = None


def active_on(h: HonourFacts, day: date) -> bool:
    """Active on `day`: granted by then, still within validity, not yet revoked, and not
    suspended that day (a suspension covers suspended_on up to the day before reinstatement).
    An honour suspended at a period's end is therefore *not* active at its end."""
    if h.granted_on > day:
        return False
    if h.valid_until is not None and day > h.valid_until:
        return False
    if h.revoked_on is not None and h.revoked_on <= day:
        return False
    return not any(s.suspended_on <= day and (s.reinstated_on is None or day < s.reinstated_on) for s in h.suspensions)


def granted_during(h: HonourFacts, start: date, end: date) -> bool:
    """Granted within [start, end] and not revoked by the end: revocation annuls a grant, while
    expiry or a suspension after the grant does not undo it."""
    return start <= h.granted_on <= end and (h.revoked_on is None or h.revoked_on > end)


def count_by_type(honours: Iterable[HonourFacts], start: date, end: date) -> dict[str, tuple[int, int]]:
    """type_code -> (granted during [start, end], active at end)."""
    out: dict[str, tuple[int, int]] = {}
    for h in honours:
        g, a = out.get(h.type_code, (0, 0))
        out[h.type_code] = (g + granted_during(h, start, end), a + active_on(h, end))
    return {k: v for k, v in out.items() if v != (0, 0)}
