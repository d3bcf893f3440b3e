"""Whether an enterprise held an honour or stood on the blacklist on a given day, and what that
means for procurement: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from shared.errors import NotFound


class EnterpriseNotFound(NotFound, slug="enterprise-not-found", title="Enterprise not found"):
    def __init__(self, uscc: str) -> None:
        super().__init__(f"No event has named {uscc} yet", uscc=uscc)


# ------------------------------------------------------------------------------------------ honours


@dataclass(frozen=True)
class Suspension:
    suspended_on: date
    reinstated_on: date | None


@dataclass(frozen=True)
class HonourFacts:
    granted_on: date
    valid_until: date | None
    revoked_on: date | None
    suspensions: Sequence[Suspension] = ()


Standing = Literal["active", "suspended", "other"]


def _covers(s: Suspension, day: date) -> bool:
    """The awards service's rule: a suspension covers suspended_on up to the day before reinstatement."""
    return s.suspended_on <= day and (s.reinstated_on is None or day < s.reinstated_on)


def active_on(h: HonourFacts, day: date) -> bool:
    """Granted by `day`, within validity, not revoked, and not suspended that day.
    (repository.active_clause is its SQL form, for counts and lists.)"""
    if h.granted_on > day or (h.valid_until is not None and day > h.valid_until):
        return False
    if h.revoked_on is not None and h.revoked_on <= day:
        return False
    return not any(_covers(s, day) for s in h.suspensions)


def standing_on(h: HonourFacts, day: date) -> Standing:
    """How a holder's profile lists the honour on `day`: active, suspended (granted, and a suspension
    covers the day), or other (revoked, expired or not yet granted)."""
    if active_on(h, day):
        return "active"
    if h.granted_on <= day and any(_covers(s, day) for s in h.suspensions):
        return "suspended"
    return "other"


def granted_during(h: HonourFacts, start: date, end: date) -> bool:
    """Granted within [start, end] and not revoked by its end: revocation annuls the grant."""
    return start <= h.granted_on <= end and (h.revoked_on is None or h.revoked_on > end)


# ------------------------------------------------------------------------------------------ credit


def listed_on(entry: Mapping[str, object], day: date) -> bool:
    """Was the enterprise on the published list that day by this entry? (repository.listed_clause is
    its SQL form, for the priority list.)"""
    start = entry.get("listed_on")
    end = entry.get("removed_on")
    if entry.get("status") not in ("listed", "removed") or not isinstance(start, date):
        return False
    return start <= day and (not isinstance(end, date) or day < end)


def procurement_eligibility(brand_honours: Sequence[str], listings: Sequence[str]) -> tuple[bool, list[str]]:
    """Procurement priority (品牌产品优先列入政府采购目录): an active brand honour and no standing
    listing (激励守信、惩戒失信). Returns the decision and every reason behind it."""
    reasons = []
    if brand_honours:
        reasons.append("holds an active brand honour: " + ", ".join(brand_honours))
    else:
        reasons.append("holds no active brand honour")
    if listings:
        reasons.append("is on the quality blacklist: " + ", ".join(listings))
    else:
        reasons.append("is not on the quality blacklist")
    return bool(brand_honours) and not listings, reasons
