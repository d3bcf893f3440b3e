"""Credit rules: pure functions over plain values, no I/O.

The rule sets (rating weights and windows, publication periods, the automatic-proposal threshold,
repair waiting periods, reason categories) are versioned data in `rules/*.json`, loaded once at
start-up; the set in force on a date is the one with the latest `effective_from` on or before it.
A version that corrects an earlier one names it in `supersedes`: the corrected version then answers
for no date, but stays loadable by name (`RuleBook.version`) for the entries decided under it.
"""

from __future__ import annotations

import calendar
import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from services.credit.working_days import WorkingDays
from shared.clock import as_date
from shared.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationFailed,
    field_error,
)

RULES_DIR = Path(__file__).parent / "rules"

AUTO_PROPOSER = "system:auto-proposal"
EXPIRY_ACTOR = "system:expiry"
NOTICE_ACTOR = "system:notice-period"


class Status(StrEnum):
    proposed = "proposed"
    noticed = "noticed"  # approved; the enterprise told and its statement period running (告知)
    in_review = "in_review"  # the enterprise made a statement or asked for a hearing (陈述申辩): a reviewer decides
    listed = "listed"
    rejected = "rejected"
    removed = "removed"


class RemovalReason(StrEnum):
    expired = "expired"
    repaired = "repaired"
    wrongful = "wrongful"


class Kind(StrEnum):
    negative = "negative"
    positive = "positive"
    neutral = "neutral"  # a record that once counted and was overturned, retracted, revoked or lapsed


#: Which action each status admits: anything else is an invalid transition (a 409 problem).
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.proposed: frozenset({"approve", "reject"}),
    Status.noticed: frozenset({"record_statement", "list_after_notice", "withdraw_proposal"}),
    Status.in_review: frozenset({"decide_statement", "withdraw_proposal"}),
    Status.listed: frozenset({"apply_repair", "review_repair", "remove", "expire"}),
    Status.rejected: frozenset(),
    Status.removed: frozenset(),
}


#: An open entry (one per enterprise): pending a decision, in its statement period, or listed.
OPEN_STATUSES = (Status.proposed.value, Status.noticed.value, Status.in_review.value, Status.listed.value)
#: An automatic proposal still undecided: closed by the system when its trigger records are withdrawn.
UNDECIDED_STATUSES = (Status.proposed.value, Status.noticed.value, Status.in_review.value)


def allowed(status: str, action: str) -> bool:
    return action in TRANSITIONS.get(status, frozenset())


def add_months(day: date, months: int) -> date:
    """Calendar months, clamped to the month's last day (2014-08-31 + 6 months = 2015-02-28)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class ReasonCategory:
    code: str
    name_zh: str
    repair_group: str


@dataclass(frozen=True)
class RuleSet:
    version: str
    effective_from: date
    raw: dict[str, Any] = field(repr=False)

    # -- rating
    @property
    def rating(self) -> dict[str, Any]:
        return dict(self.raw["rating"])

    @property
    def blacklist(self) -> dict[str, Any]:
        return dict(self.raw["blacklist"])

    @cached_property
    def reason_categories(self) -> dict[str, ReasonCategory]:
        # Cached: screening names the category of every listed entry it returns.
        return {
            code: ReasonCategory(code, v["name_zh"], v["repair_group"])
            for code, v in self.blacklist["reason_categories"].items()
        }

    @property
    def auto_threshold(self) -> int:
        return int(self.blacklist["auto_proposal"]["threshold"])

    @property
    def auto_window_days(self) -> int:
        return int(self.blacklist["auto_proposal"]["window_days"])

    @property
    def publication_years(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.blacklist["publication_years"].items()}

    @property
    def records(self) -> dict[str, Any]:
        """Weights of other authorities' records (`rating.records`); empty before the rules had any."""
        return dict(self.rating.get("records") or {})

    def record_weight(self, kind: str, sector: str | None) -> float | None:
        """A negative authority record's points (kind weight × sector factor), None if the set weighs none."""
        w = (self.records.get("negative_weights") or {}).get(kind)
        if w is None:
            return None
        return float(w) * float(self.rating["negative"]["sector_factors"].get(sector or "", 1.0))

    @property
    def auto_record_kinds(self) -> frozenset[str]:
        """Kinds of authority records that count towards the automatic proposal like a final fail."""
        return frozenset(self.blacklist["auto_proposal"].get("record_kinds") or ())

    @property
    def due_process(self) -> dict[str, Any] | None:
        """Notice and statement period before listing (告知 · 陈述申辩); None: listed on approval."""
        dp = self.blacklist.get("due_process")
        return dict(dp) if dp else None

    def needs_notice(self, reason_category: str) -> bool:
        dp = self.due_process
        return dp is not None and reason_category not in set(dp.get("skip_notice_reason_categories") or ())

    def negative_weight(self, level: str | None, sector: str | None) -> float:
        neg = self.rating["negative"]
        return float(neg["level_weights"].get(level or "", 10)) * float(neg["sector_factors"].get(sector or "", 1.0))

    def positive_weight(self, type_code: str | None) -> float:
        pos = self.rating["positive"]
        return float(pos["type_weights"].get(type_code or "", pos["default_weight"]))

    def grade_for(self, score: float) -> str:
        for g in self.rating["grades"]:
            if g["min_score"] is None or score >= g["min_score"]:
                return str(g["grade"])
        return str(self.rating["grades"][-1]["grade"])


class RuleBook:
    """Every rule-set version, oldest first; answers which one was in force on a date."""

    def __init__(self, sets: list[RuleSet], working_days: WorkingDays | None = None) -> None:
        #: The working-day calendar of the due-process periods (the State Council's yearly arrangement).
        self.working_days = working_days or WorkingDays()
        if not sets:
            raise ValueError("no credit rule sets")
        self.versions = {s.version: s for s in sets}
        superseded = {str(s.raw["supersedes"]) for s in sets if s.raw.get("supersedes")}
        self.sets = sorted((s for s in sets if s.version not in superseded), key=lambda s: s.effective_from)
        for s in self.sets:
            check_honour_weights(s)

    def version(self, name: str) -> RuleSet:
        """A version by name, superseded or not: the one an entry was decided under."""
        return self.versions[name]

    @classmethod
    def load(cls, folder: Path = RULES_DIR, working_days: WorkingDays | None = None) -> RuleBook:
        sets = []
        for path in sorted(folder.glob("*.json")):
            raw = json.loads(path.read_text(encoding="utf-8"))
            sets.append(RuleSet(raw["version"], date.fromisoformat(raw["effective_from"]), raw))
        return cls(sets, working_days)

    def in_force(self, on: date) -> RuleSet:
        current = self.sets[0]  # before the first set took effect, the first set still answers
        for s in self.sets:
            if s.effective_from <= on:
                current = s
        return current


def check_honour_weights(rules: RuleSet) -> None:
    """Refuse, at start, honour weights keyed by anything but a catalog type code (`Q5`, not a name):
    a key that matches no honour record silently weighs nothing. The credit service does not read the
    awards catalog; the rule set ships the codes it knows (`honour_codes`, checked against the catalog
    by a test)."""
    pos = rules.rating["positive"]
    known = set(pos.get("honour_codes") or ())
    if unknown := sorted(set(pos["type_weights"]) - known):
        raise ValueError(f"rule set {rules.version}: honour weights keyed by unknown type codes {unknown}")


# ---------------------------------------------------------------- validation


class UnknownReasonCategory(ValidationFailed, slug="unknown-reason-category", title="Unknown reason category"): ...


class PublicationPeriodOutOfRange(
    ValidationFailed, slug="publication-period-out-of-range", title="Publication period outside the rules"
): ...


class DecisionNoRequired(ValidationFailed, slug="decision-no-required", title="Decision document number required"):
    def __init__(self) -> None:
        super().__init__(
            "This proposal has no decision document number: give one in decision_no.",
            [field_error("decision_no", "body", "field required")],
        )


class EntryNotFound(NotFound, slug="entry-not-found", title="Blacklist entry not found"):
    def __init__(self, entry_id: str) -> None:
        super().__init__(f"No blacklist entry has id {entry_id}")


class EntryAlreadyOpen(Conflict, slug="entry-already-open", title="The enterprise already has an open entry"):
    def __init__(self, uscc: str) -> None:
        super().__init__(f"{uscc} already has a pending proposal or a current listing", uscc=uscc)


class EntryNotPending(Conflict, slug="entry-not-pending", title="Not pending"): ...


class OwnProposal(Forbidden, slug="own-proposal", title="Four eyes: not your own proposal"):
    """Four eyes: the proposer cannot decide their own proposal."""


def same_person(first: str | None, second: str | None) -> bool:
    """Whether two token subjects name one person: compared casefolded and stripped, since identity
    providers differ in case (`OFFICER1` and `officer1` are one account in most directories)."""
    if first is None or second is None:
        return False
    return _person(first) == _person(second)


def _person(name: str) -> str:
    # Also names as archives write them (docs/archive-import.md): full-width letters and inner spaces.
    return "".join(unicodedata.normalize("NFKC", name).casefold().split())


def check_four_eyes(first: str | None, second: str, refusal: Forbidden) -> None:
    """The four-eyes rule, the one place it is checked: who decides a step (approve or reject a
    proposal, review a repair, confirm a wrongful removal) is not who started it."""
    if same_person(first, second):
        raise refusal


class OwnRemovalRequest(Forbidden, slug="own-removal-request", title="Four eyes: not your own removal request"):
    default_detail = "A removal as wrongful must be confirmed by a reviewer other than who requested it."


class OwnRepairApplication(Forbidden, slug="own-repair-application", title="Four eyes: not your own application"):
    default_detail = "A repair application must be reviewed by someone other than who filed it."


class RepairAlreadyPending(Conflict, slug="repair-already-pending", title="A repair application is pending"):
    default_detail = "This entry already has a credit-repair application awaiting review."


class RepairTooEarly(Conflict, slug="repair-too-early", title="Too early for credit repair"): ...


class NoPendingRepair(Conflict, slug="no-pending-repair", title="No repair application to review"):
    default_detail = "This entry has no credit-repair application awaiting review."


def check_allowed(status: str, action: str) -> None:
    """Refuse an action the entry's status does not allow (a decision on a decided entry is `entry-not-pending`)."""
    if allowed(status, action):
        return
    detail = f"Cannot {action.replace('_', ' ')} an entry whose status is {status}"
    cls = EntryNotPending if action in ("approve", "reject") else InvalidTransition
    raise cls(detail, status_now=status, action=action)


def check_reason_category(rules: RuleSet, code: str) -> ReasonCategory:
    cats = rules.reason_categories
    if code not in cats:
        raise UnknownReasonCategory(
            f"{code!r} is not a reason category of rule set {rules.version}", allowed=sorted(cats)
        )
    return cats[code]


def check_publication_years(rules: RuleSet, years: int | None) -> int:
    p = rules.publication_years
    if years is None:
        return p["default"]
    if not p["min"] <= years <= p["max"]:
        raise PublicationPeriodOutOfRange(
            f"The publication period must be {p['min']} to {p['max']} years (rule set {rules.version}); got {years}",
            min_years=p["min"],
            max_years=p["max"],
        )
    return years


def publish_until(listed_on: date, years: int) -> date:
    """The last day of publication: N years after listing, that day excluded."""
    return add_months(listed_on, 12 * years) - timedelta(days=1)


def earliest_repair_on(rules: RuleSet, reason_category: str, listed_on: date) -> date:
    """From the listing date plus the waiting period of the category's group (food, special equipment: longer)."""
    group = check_reason_category(rules, reason_category).repair_group
    waits = rules.blacklist["repair_waiting_months"]
    return add_months(listed_on, int(waits.get(group, waits["general"])))


def listed_on_date(entry: dict[str, Any], on: date) -> bool:
    """Whether an entry was on the published list on `on` (listing day to last publication day, unless removed)."""
    listed_on, until, removed_on = entry.get("listed_on"), entry.get("publish_until"), entry.get("removed_on")
    if listed_on is None or until is None or entry.get("status") not in (Status.listed, Status.removed):
        return False
    return bool(listed_on <= on <= until and (removed_on is None or on < removed_on))


# ---------------------------------------------------------------- ratings


@dataclass(frozen=True)
class Contribution:
    record_id: str
    kind: str
    points: float
    counted: bool
    why: str


@dataclass(frozen=True)
class Rating:
    grade: str
    score: float
    rule_set_version: str
    as_of: date
    forced_by: str | None
    contributions: list[Contribution]


def compute_rating(rules: RuleSet, records: list[dict[str, Any]], as_of: date, listed: bool) -> Rating:
    """The rating on `as_of`, and each record's contribution to it.

    A negative record counts for `window_days` from its fact date; a positive one while the
    honour was valid. Positives are capped so honours cannot buy back repeated fails. Being
    listed on the blacklist forces D whatever the score.
    """
    r = rules.rating
    window = timedelta(days=int(r["negative"]["window_days"]))
    cap = float(r["positive"]["cap"])
    score = float(r["base_score"])
    positive_total = 0.0
    out: list[Contribution] = []
    for rec in sorted(records, key=lambda x: (x["fact_date"], x["record_id"])):
        fact: date = rec["fact_date"]
        if rec.get("source") == AUTHORITY_SOURCE and rec["kind"] != Kind.neutral:
            c = _authority_contribution(rules, rec, as_of, max(cap - positive_total, 0.0))
            score += c.points
            positive_total += max(c.points, 0.0)
            out.append(c)
        elif rec["kind"] == Kind.negative:
            if fact > as_of:
                out.append(Contribution(rec["record_id"], rec["kind"], 0.0, False, "after the date asked"))
            elif fact + window <= as_of:
                out.append(Contribution(rec["record_id"], rec["kind"], 0.0, False, "outside the window"))
            else:
                pts = -rules.negative_weight(rec.get("level"), rec.get("sector"))
                score += pts
                out.append(Contribution(rec["record_id"], rec["kind"], pts, True, f"{rec.get('level')} fail"))
        elif rec["kind"] == Kind.positive:
            until: date | None = rec.get("valid_until")
            if fact > as_of or (until is not None and until < as_of):
                out.append(Contribution(rec["record_id"], rec["kind"], 0.0, False, "not valid on the date asked"))
                continue
            pts = min(rules.positive_weight(rec.get("category")), max(cap - positive_total, 0.0))
            positive_total += pts
            score += pts
            why = "active honour" if pts else "active honour (positive cap reached)"
            out.append(Contribution(rec["record_id"], rec["kind"], pts, pts > 0, why))
        else:
            out.append(Contribution(rec["record_id"], rec["kind"], 0.0, False, rec.get("note") or "neutralised"))
    score = round(score, 2)
    if listed:
        return Rating("D", score, rules.version, as_of, "listed", out)
    return Rating(rules.grade_for(score), score, rules.version, as_of, None, out)


def _authority_contribution(rules: RuleSet, rec: dict[str, Any], as_of: date, room: float) -> Contribution:
    """An authority record's points on `as_of`: negative ones for `rating.records.window_days` from their
    date, positive ones while valid and within what the positive cap leaves (`room`)."""
    rid, kind, what = rec["record_id"], rec["kind"], rec.get("category") or ""
    weights = rules.records
    if rec["fact_date"] > as_of:
        return Contribution(rid, kind, 0.0, False, "after the date asked")
    if kind == Kind.negative:
        w = rules.record_weight(what, rec.get("sector"))
        if w is None:
            return Contribution(rid, kind, 0.0, False, f"rule set {rules.version} gives {what} no weight")
        if rec["fact_date"] + timedelta(days=int(weights["window_days"])) <= as_of:
            return Contribution(rid, kind, 0.0, False, "outside the window")
        return Contribution(rid, kind, -w, True, f"{what} ({rec.get('authority') or 'authority'})")
    until: date | None = rec.get("valid_until")
    if until is not None and until < as_of:
        return Contribution(rid, kind, 0.0, False, "not valid on the date asked")
    weight = (weights.get("positive_weights") or {}).get(what)
    if weight is None:
        return Contribution(rid, kind, 0.0, False, f"rule set {rules.version} gives {what} no weight")
    pts = min(float(weight), room)
    why = f"{what} ({rec.get('authority') or 'authority'})" + ("" if pts else " (positive cap reached)")
    return Contribution(rid, kind, pts, pts > 0, why)


def triggers_in_window(rules: RuleSet, records: Iterable[dict[str, Any]], today: date) -> list[dict[str, Any]]:
    """What counts towards the automatic proposal within the window ending today: final (or upheld)
    sampling fails, and the authority records of the kinds the rules name (`auto_proposal.record_kinds`)."""
    start = today - timedelta(days=rules.auto_window_days)
    kinds = rules.auto_record_kinds
    return [
        r
        for r in records
        if r["kind"] == Kind.negative
        and (r["source"] == "sampling" or (r["source"] == AUTHORITY_SOURCE and r.get("category") in kinds))
        and start < r["fact_date"] <= today
    ]


# ---------------------------------------------------------------- records from events


def record_from_result(result: dict[str, Any]) -> dict[str, Any]:
    """A sampling snapshot as a credit record: negative only when its standing conclusion is a final fail."""
    conclusion, state, reinspection = result.get("conclusion"), result.get("state"), result.get("reinspection")
    if state == "retracted":
        kind, note = Kind.neutral, "retracted by the agency"
    elif reinspection == "overturned":
        kind, note = Kind.neutral, "overturned on re-inspection"
    elif conclusion == "fail" and state == "final":
        kind, note = Kind.negative, "upheld on re-inspection" if reinspection == "upheld" else "final fail"
    elif conclusion == "fail":
        kind, note = Kind.neutral, "provisional fail (objection window open)"
    else:
        kind, note = Kind.neutral, "pass"
    return {
        "record_id": f"sampling:{result['result_id']}",
        "uscc": result["uscc"],
        "enterprise_name": result.get("enterprise_name") or "",
        "source": "sampling",
        "source_id": str(result["result_id"]),
        "source_version": int(result["version"]),
        "kind": kind.value,
        "category": "sampling_fail" if result.get("original_conclusion", conclusion) == "fail" else "sampling_pass",
        "level": result.get("level"),
        "sector": result.get("sector"),
        "title": result.get("product_name") or result.get("report_no") or "",
        "fact_date": as_date(result.get("report_date") or result.get("sampling_date")),
        "valid_until": None,
        "state": str(state),
        "note": note,
    }


def record_from_honour(honour: dict[str, Any]) -> dict[str, Any] | None:
    """An enterprise's honour as a credit record: positive while active. Other holders are not enterprises."""
    if honour.get("holder_kind") != "enterprise":
        return None
    state = honour.get("state")
    kind = Kind.positive if state == "active" else Kind.neutral
    until = honour.get("valid_until")
    return {
        "record_id": f"honour:{honour['honour_id']}",
        "uscc": str(honour["holder_id"]).upper(),
        "enterprise_name": honour.get("holder_name") or "",
        "source": "awards",
        "source_id": str(honour["honour_id"]),
        "source_version": int(honour["version"]),
        "kind": kind.value,
        "category": honour.get("type_code"),
        "level": None,
        "sector": None,
        "title": honour.get("type_name_zh") or honour.get("type_code") or "",
        "fact_date": as_date(honour["granted_on"]),
        "valid_until": as_date(until) if until else None,
        "state": str(state),
        "note": "active honour" if kind == Kind.positive else f"honour {state}",
    }


# ---------------------------------------------------------------- archives


def check_archived_listing(row: dict[str, Any], rules: RuleSet, today: date) -> list[tuple[str, str]]:
    """Every (field, reason) an archived listing breaks: the live rules, on its own dates."""
    problems: list[tuple[str, str]] = []
    if same_person(row["proposed_by"], row["reviewed_by"]):
        problems.append(("reviewed_by", "the reviewer must be another person than the proposer (four eyes)"))
    if row["reason_category"] not in rules.reason_categories:
        problems.append(("reason_category", f"not a reason category of rule set {rules.version}"))
    years = row.get("publication_years")
    p = rules.publication_years
    if years is not None and not p["min"] <= years <= p["max"]:
        problems.append(("publication_years", f"must be {p['min']} to {p['max']} years (rule set {rules.version})"))
    proposed = row.get("proposed_on") or row["decided_on"]
    order = [
        ("proposed_on", proposed),
        ("decided_on", row["decided_on"]),
        ("listed_from", row["listed_from"]),
    ]
    for (_, before), (field_, after) in zip(order, order[1:], strict=False):
        if after < before:
            problems.append((field_, f"{after.isoformat()} is before {before.isoformat()}"))
    removed = row.get("removed_on")
    for field_, value in [*order, ("removed_on", removed)]:
        if value is not None and value > today:
            problems.append((field_, f"{value.isoformat()} is in the future"))
    given = [f for f in ("removed_on", "removal_reason") if row.get(f) is not None]
    if len(given) == 1:
        missing = "removal_reason" if given == ["removed_on"] else "removed_on"
        problems.append((missing, "a removal needs removed_on and removal_reason"))
    if removed is not None:
        if removed <= row["listed_from"]:
            problems.append(("removed_on", "not after listed_from"))
        elif years is None or p["min"] <= years <= p["max"]:
            until = publish_until(row["listed_from"], years or p["default"])
            if removed > until:
                problems.append(("removed_on", f"after the publication period ended ({until.isoformat()})"))
    return problems


# ---------------------------------------------------------------- due process (告知 · 陈述申辩)


def statement_deadline(rules: RuleSet, noticed_on: date, calendar: WorkingDays) -> date:
    dp = rules.due_process or {}
    return calendar.add(noticed_on, int(dp.get("statement_working_days", 5)))


class StatementTooLate(Conflict, slug="statement-too-late", title="The statement period has ended"): ...


class OwnStatementDecision(Forbidden, slug="own-statement-decision", title="Four eyes: not your own proposal"):
    default_detail = "A statement must be decided by a reviewer other than the entry's proposer."


# ---------------------------------------------------------------- records from other authorities

#: `credit_records.source` of a record another authority sent (POST /v1/credit-records).
AUTHORITY_SOURCE = "authority"


class RecordKind(StrEnum):
    administrative_penalty = "administrative_penalty"  # 行政处罚
    upheld_complaint = "upheld_complaint"  # 投诉举报查实 (12315 / 12345)
    licence_suspension = "licence_suspension"  # 暂扣许可证
    licence_revocation = "licence_revocation"  # 吊销许可证
    certification_withdrawal = "certification_withdrawal"  # 撤销认证证书
    positive_record = "positive_record"  # 守信表彰等


POSITIVE_KINDS = frozenset({RecordKind.positive_record.value})

KIND_NAMES_ZH = {
    "administrative_penalty": "行政处罚",
    "upheld_complaint": "投诉举报查实",
    "licence_suspension": "暂扣许可证",
    "licence_revocation": "吊销许可证",
    "certification_withdrawal": "撤销认证",
    "positive_record": "守信表彰",
}


class RecordNotFound(NotFound, slug="credit-record-not-found", title="Credit record not found"):
    def __init__(self, record_id: str) -> None:
        super().__init__(f"No credit record has id {record_id}")


class NotYourRecord(
    Forbidden, slug="not-your-record", title="Only the sending authority corrects or withdraws a record"
):
    def __init__(self, owner: str) -> None:
        super().__init__(f"This record was sent by {owner}; only that authority may correct or withdraw it.")


class RecordExists(
    Conflict, slug="credit-record-exists", title="The authority's record number is already used by another record"
): ...


class RecordAlreadyWithdrawn(InvalidTransition, slug="credit-record-withdrawn", title="The record was withdrawn"):
    default_detail = "A withdrawn record cannot be corrected or withdrawn again."


class EnterpriseNotMatched(
    ValidationFailed, slug="enterprise-not-matched", title="No enterprise matches the name unambiguously"
): ...


class AuthorityRequired(Forbidden, slug="authority-required", title="The token names no authority"):
    default_detail = "A credit:records token names its authority system in the agency claim."


def record_title(kind: str, body: dict[str, Any]) -> str:
    ref = body.get("decision_no") or body.get("case_no") or body.get("document_no") or body.get("record_no")
    return f"{KIND_NAMES_ZH.get(kind, kind)} {ref}"[:200]


def credit_row(record: dict[str, Any]) -> dict[str, Any]:
    """An authority record (its current version) as the rating's input row: withdrawn ones are kept
    neutral, as tombstones, like an overturned sampling result."""
    body: dict[str, Any] = record["body"]
    withdrawn = record["status"] == "withdrawn"
    kind = Kind.neutral if withdrawn else Kind.positive if record["kind"] in POSITIVE_KINDS else Kind.negative
    return {
        "record_id": f"record:{record['record_id']}",
        "uscc": record["uscc"],
        "enterprise_name": record["enterprise_name"],
        "source": AUTHORITY_SOURCE,
        "source_id": record["record_id"],
        "source_version": record["version"],
        "kind": kind.value,
        "category": record["kind"],
        "level": None,
        "sector": body.get("sector"),
        "title": record_title(record["kind"], body),
        "fact_date": record["occurred_on"],
        "valid_until": as_date(body["valid_until"]) if body.get("valid_until") else None,
        "state": record["status"],
        "note": f"withdrawn by {record['authority']}" if withdrawn else f"sent by {record['authority']}",
        "authority": record["authority"],
    }


#: What each kind of record needs besides the common fields (the schema's description says the same).
REQUIRED_BY_KIND: dict[str, tuple[str, ...]] = {
    "administrative_penalty": ("decision_no", "legal_basis", "category"),
    "upheld_complaint": ("case_no", "channel", "category"),
    "licence_suspension": ("decision_no", "document_no"),
    "licence_revocation": ("decision_no", "document_no"),
    "certification_withdrawal": ("document_no",),
    "positive_record": ("title",),
}


def record_problems(body: dict[str, Any], today: date) -> list[tuple[str, str]]:
    """Every (field, reason) a record (as sent, JSON values) breaks beyond its schema."""
    kind = str(body["kind"])
    problems = [(f, f"required for a record of kind {kind}") for f in REQUIRED_BY_KIND[kind] if body.get(f) is None]
    occurred = date.fromisoformat(body["occurred_on"])
    if occurred > today:
        problems.append(("occurred_on", f"{occurred.isoformat()} is in the future"))
    until = body.get("valid_until")
    if until is not None and date.fromisoformat(until) < occurred:
        problems.append(("valid_until", "before occurred_on"))
    return problems


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
