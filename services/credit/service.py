"""The credit service's use cases. Each flushes its writes and outbox events into the caller's
transaction; the route (or the consumer runner, or the scheduler) commits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from operator import itemgetter
from typing import Any, Literal

from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import repository as repo
from services.credit.domain import (
    AUTO_PROPOSER,
    EXPIRY_ACTOR,
    NOTICE_ACTOR,
    AuthorityRequired,
    DecisionNoRequired,
    EnterpriseNotMatched,
    EntryAlreadyOpen,
    EntryNotFound,
    NoPendingRepair,
    NotYourRecord,
    OwnProposal,
    OwnRemovalRequest,
    OwnRepairApplication,
    OwnStatementDecision,
    RecordAlreadyWithdrawn,
    RecordExists,
    RecordNotFound,
    RepairAlreadyPending,
    RepairTooEarly,
    RuleBook,
    RuleSet,
    StatementTooLate,
    Status,
    changed_fields,
    check_allowed,
    check_archived_listing,
    check_four_eyes,
    check_publication_years,
    check_reason_category,
    compute_rating,
    credit_row,
    earliest_repair_on,
    listed_on_date,
    publish_until,
    record_problems,
    statement_deadline,
    triggers_in_window,
)
from services.credit.matching import Candidate, EnterpriseIndex, Match
from services.credit.models import authority_records, outbox
from services.credit.models import blacklist_entries as E
from services.credit.schemas import (
    Approval,
    ArchivedListing,
    ArchivedListingOutcome,
    CandidateOut,
    CreditRecordIn,
    Proposal,
    RecordCorrection,
    RecordWithdrawal,
    Rejection,
    RepairApplication,
    RepairReview,
    Statement,
    StatementDecision,
    WrongfulRemoval,
)
from shared.audit import note_resource
from shared.clock import Clock
from shared.consumer import latest_versions
from shared.context import Context as RequestContext
from shared.contracts import registry
from shared.contracts.credit import (
    ENTRY_LISTED,
    ENTRY_NOTICED,
    ENTRY_PROPOSED,
    ENTRY_REJECTED,
    ENTRY_REMOVED,
    RATING_CHANGED,
    RECORD_CORRECTED,
    RECORD_RECORDED,
    RECORD_WITHDRAWN,
    REPAIR_APPLIED,
    SOURCE,
    STATEMENT_RECEIVED,
    EntryListed,
    EntryNoticed,
    EntryProposed,
    EntryRejected,
    EntryRemoved,
    EntrySnapshot,
    RatingChanged,
    RecordCorrected,
    RecordRecorded,
    RecordSnapshot,
    RecordWithdrawn,
    RepairApplied,
    StatementReceived,
)
from shared.errors import ConcurrentConflict, StaleVersion, ValidationFailed, field_error
from shared.events import Envelope
from shared.outbox import add_to_outbox
from shared.preconditions import check_if_match, update_row
from shared.uuid7 import new_id, new_ids


class RegisterIndex:
    """The enterprise register as a name index (services/credit/matching.py), rebuilt only when the
    register changed since it was built (its row count or latest change differ)."""

    def __init__(self) -> None:
        self._stamp: tuple[int, Any] | None = None
        self._index: EnterpriseIndex | None = None

    async def get(self, session: AsyncSession) -> EnterpriseIndex:
        stamp = await repo.register_stamp(session)
        if self._index is None or stamp != self._stamp:
            self._index, self._stamp = EnterpriseIndex(await repo.all_enterprises(session)), stamp
        return self._index


@dataclass(frozen=True, kw_only=True)
class Context(RequestContext):
    book: RuleBook
    names: RegisterIndex | None = None


async def remember(session: AsyncSession, names: Iterable[tuple[str, str, str | None]], now: datetime) -> None:
    """Keep the register of enterprises current: each one's latest name (and its district, once known)."""
    latest = {u: {"uscc": u, "name": n[:200], "district_code": d, "updated_at": now} for u, n, d in names if n}
    # Most events name an enterprise as it is already known: one read, and writes only for what changed.
    held = await repo.known_enterprises(session, sorted(latest))
    changed = [
        row
        for u, row in sorted(latest.items())
        if (h := held.get(u)) is None or h[0] != row["name"] or row["district_code"] not in (None, h[1])
    ]
    await repo.remember_enterprises(session, changed)


async def match_names(session: AsyncSession, ctx: Context, queries: Sequence[tuple[str, str | None]]) -> list[Match]:
    index = await (ctx.names or RegisterIndex()).get(session)
    return [index.match(name, district) for name, district in queries]


def snapshot(entry: dict[str, Any]) -> EntrySnapshot:
    return EntrySnapshot.model_validate({k: entry.get(k) for k in EntrySnapshot.model_fields})


def _event(type_: str, payload: Any, uscc: str) -> Envelope:
    return registry.make(type_, payload, subject=uscc, source=SOURCE)


def _history(
    entry: dict[str, Any], action: str, ctx: Context, reason: str | None, document_no: str | None, **details: Any
) -> dict[str, Any]:
    return {
        "entry_id": entry["entry_id"],
        "uscc": entry["uscc"],
        "version": entry["version"],
        "action": action,
        "status": entry["status"],
        "actor": ctx.actor,
        "at": ctx.clock.now(),
        "reason": reason,
        "document_no": document_no,
        "request_id": ctx.request_id or None,
        "details": details or None,
    }


# ---------------------------------------------------------------- proposals


async def propose(session: AsyncSession, ctx: Context, body: Proposal) -> dict[str, Any]:
    rules = ctx.book.in_force(ctx.clock.today())
    check_reason_category(rules, body.reason_category)
    years = check_publication_years(rules, body.publication_years)
    if await repo.open_entry_usccs(session, [body.uscc]):
        raise EntryAlreadyOpen(body.uscc)
    now = ctx.clock.now()
    entry = {
        "entry_id": new_id(),
        "version": 1,
        "uscc": body.uscc,
        "enterprise_name": body.enterprise_name,
        "reason_category": body.reason_category,
        "facts": body.facts,
        "legal_basis": body.legal_basis,
        "deciding_authority": body.deciding_authority,
        "decision_no": body.decision_no,
        "appeal_route": body.appeal_route,
        "appeal_deadline": body.appeal_deadline,
        "publication_years": years,
        "rule_set_version": rules.version,
        "status": Status.proposed.value,
        "automatic": False,
        "trigger_records": None,
        "proposed_by": ctx.actor,
        "proposed_at": now,
        "updated_at": now,
    }
    try:
        await repo.insert_entries(session, [entry])
    except IntegrityError:  # another proposal for the enterprise committed since the check above
        raise EntryAlreadyOpen(body.uscc) from None
    await repo.insert_history(session, [_history(entry, "proposed", ctx, body.facts, body.decision_no)])
    await add_to_outbox(session, outbox, [_event(ENTRY_PROPOSED, EntryProposed(entry=snapshot(entry)), body.uscc)])
    await remember(session, [(body.uscc, body.enterprise_name, None)], now)
    return await load_entry(session, str(entry["entry_id"]))  # every column, as later reads will show it


async def load_entry(session: AsyncSession, entry_id: str) -> dict[str, Any]:
    entry = await repo.get_entry(session, entry_id)
    if entry is None:
        raise EntryNotFound(entry_id)
    return entry


@dataclass(frozen=True)
class Versioned:
    """Rows that change by versions (the blacklist entries, the authority records): a change is written only
    if nobody changed the row since it was read, the new version kept in the row's history (`keep`), its
    event in the outbox, all in the caller's transaction."""

    table: Table
    key: str
    keep: Callable[[AsyncSession, Sequence[dict[str, Any]]], Awaitable[None]]

    async def change(
        self,
        session: AsyncSession,
        ctx: Context,
        row: dict[str, Any],
        values: dict[str, Any],
        kept: Callable[[dict[str, Any]], dict[str, Any]],
        event: Callable[[dict[str, Any]], Envelope] | None = None,
    ) -> dict[str, Any]:
        """The row as it now stands; `kept(new)` is its history row, `event(new)` its event (none: nothing
        published changed)."""
        new = await update_row(session, self.table, self.key, row, values, ctx.clock.now())
        await self.keep(session, [kept(new)])
        if event is not None:
            await add_to_outbox(session, outbox, [event(new)])
        return new


_ENTRIES = Versioned(E, "entry_id", repo.insert_history)
_RECORDS = Versioned(authority_records, "record_id", repo.insert_record_versions)


async def _transition(
    session: AsyncSession,
    ctx: Context,
    entry: dict[str, Any],
    values: dict[str, Any],
    history: dict[str, Any],
    event_type: str,
    payload: Any,
) -> dict[str, Any]:
    """An entry's change with its history row (`history`, at the new version and status) and its event."""
    return await _ENTRIES.change(
        session,
        ctx,
        entry,
        values,
        lambda new: {**history, "version": new["version"], "status": new["status"]},
        lambda new: _event(event_type, payload(snapshot(new)), new["uscc"]),
    )


async def _load_for(session: AsyncSession, entry_id: str, if_match: str | None, action: str) -> dict[str, Any]:
    """The entry, if the caller read its current version and `action` is allowed from its status."""
    entry = await load_entry(session, entry_id)
    check_if_match(if_match, entry["version"])
    check_allowed(entry["status"], action)
    return entry


async def _proposal_to_decide(
    session: AsyncSession, ctx: Context, entry_id: str, if_match: str | None, action: str, verb: str
) -> dict[str, Any]:
    """A proposal is approved or rejected by a reviewer other than its proposer (four eyes)."""
    entry = await _load_for(session, entry_id, if_match, action)
    message = f"The proposal must be {verb} by a different reviewer than its proposer."
    check_four_eyes(entry["proposed_by"], ctx.actor, OwnProposal(message))
    return entry


async def approve(
    session: AsyncSession, ctx: Context, entry_id: str, if_match: str | None, body: Approval
) -> dict[str, Any]:
    """The second reviewer's approval: the enterprise is told and its statement period starts (告知),
    or, where the rules in force give no notice for the reason, it is listed at once."""
    entry = await _proposal_to_decide(session, ctx, entry_id, if_match, "approve", "approved")
    decision_no = body.decision_no or entry["decision_no"]
    if not decision_no:
        raise DecisionNoRequired()
    today = ctx.clock.today()
    decided = {
        "decided_by": ctx.actor,
        "decided_at": ctx.clock.now(),
        "decision_comment": body.comment,
        "decision_no": decision_no,
    }
    rules = ctx.book.in_force(today)  # due process is procedure: the rules of the day it is given
    if rules.needs_notice(entry["reason_category"]):
        deadline = statement_deadline(rules, today, ctx.book.working_days)
        values = {**decided, "status": Status.noticed.value, "noticed_on": today, "statement_deadline": deadline}
        return await _transition(
            session,
            ctx,
            entry,
            values,
            _history(entry, "noticed", ctx, body.comment, decision_no, statement_deadline=deadline.isoformat()),
            ENTRY_NOTICED,
            lambda s: EntryNoticed(entry=s),
        )
    return await _list(session, ctx, entry, decided, today, body.comment, decision_no)


def _listing(entry: dict[str, Any], book: RuleBook, listed_on: date) -> dict[str, Any]:
    """The listing's dates: publication from `listed_on`, and the earliest repair by the proposal's rules."""
    rules = book.in_force(entry["proposed_at"].date())
    return {
        "status": Status.listed.value,
        "listed_on": listed_on,
        "publish_until": publish_until(listed_on, entry["publication_years"]),
        "earliest_repair_on": earliest_repair_on(rules, entry["reason_category"], listed_on),
    }


async def _list(
    session: AsyncSession,
    ctx: Context,
    entry: dict[str, Any],
    values: dict[str, Any],
    listed_on: date,
    reason: str | None,
    decision_no: str | None,
    **details: Any,
) -> dict[str, Any]:
    """List an entry from `listed_on`: the entry, its history, the event and the enterprise's rating."""
    new = await _transition(
        session,
        ctx,
        entry,
        {**values, **_listing(entry, ctx.book, listed_on)},
        _history(entry, "listed", ctx, reason, decision_no, **details),
        ENTRY_LISTED,
        lambda s: EntryListed(entry=s),
    )
    await add_to_outbox(session, outbox, await refresh_ratings(session, [new["uscc"]], ctx.clock.today(), ctx.book))
    return new


async def record_statement(
    session: AsyncSession, ctx: Context, entry_id: str, if_match: str | None, body: Statement
) -> dict[str, Any]:
    """The enterprise's statement or hearing request (陈述申辩), received by the deadline: to a reviewer."""
    entry = await _load_for(session, entry_id, if_match, "record_statement")
    deadline: date = entry["statement_deadline"]
    if body.received_on > deadline:
        raise StatementTooLate(
            f"The statement period ended on {deadline.isoformat()}; a statement received on "
            f"{body.received_on.isoformat()} is late.",
            statement_deadline=deadline.isoformat(),
        )
    if body.received_on < entry["noticed_on"] or body.received_on > ctx.clock.today():
        raise ValidationFailed.one(
            "received_on", "body", f"must be from the notice ({entry['noticed_on'].isoformat()}) to today"
        )
    statement = {**body.model_dump(mode="json"), "recorded_by": ctx.actor}
    values = {"status": Status.in_review.value, "statement": statement}
    return await _transition(
        session,
        ctx,
        entry,
        values,
        _history(
            entry, "statement_received", ctx, body.text, None, kind=body.kind, received_on=statement["received_on"]
        ),
        STATEMENT_RECEIVED,
        lambda s: StatementReceived(entry=s, kind=body.kind, received_on=body.received_on),
    )


async def decide_statement(
    session: AsyncSession, ctx: Context, entry_id: str, if_match: str | None, body: StatementDecision
) -> dict[str, Any]:
    """A reviewer (not the proposer) decides on the statement: upheld lists the enterprise from today,
    accepted closes the proposal unlisted."""
    entry = await _load_for(session, entry_id, if_match, "decide_statement")
    check_four_eyes(entry["proposed_by"], ctx.actor, OwnStatementDecision())
    decision_no = body.decision_no or entry["decision_no"]
    decided = {"decided_by": ctx.actor, "decided_at": ctx.clock.now(), "decision_comment": body.reason}
    if body.outcome == "upheld":
        return await _list(session, ctx, entry, decided, ctx.clock.today(), body.reason, decision_no, outcome="upheld")
    return await _transition(
        session,
        ctx,
        entry,
        {**decided, "status": Status.rejected.value},
        _history(entry, "rejected", ctx, body.reason, decision_no, outcome="accepted"),
        ENTRY_REJECTED,
        lambda s: EntryRejected(entry=s, reason=body.reason),
    )


async def list_after_notice(session: AsyncSession, clock: Clock, book: RuleBook) -> int:
    """List every entry whose statement period ended without a statement (the scheduled job): from the
    day after the deadline, whenever the job runs."""
    ctx = Context(actor=NOTICE_ACTOR, clock=clock, book=book)
    listed = 0
    for entry in await repo.due_after_notice(session, clock.today()):
        day_after: date = entry["statement_deadline"] + timedelta(days=1)
        try:
            await _list(session, ctx, entry, {}, day_after, "statement period ended without a statement", None)
        except StaleVersion:  # a statement recorded concurrently: the reviewer decides
            continue
        listed += 1
    return listed


async def reject(
    session: AsyncSession, ctx: Context, entry_id: str, if_match: str | None, body: Rejection
) -> dict[str, Any]:
    entry = await _proposal_to_decide(session, ctx, entry_id, if_match, "reject", "decided")
    values = {
        "status": Status.rejected.value,
        "decided_by": ctx.actor,
        "decided_at": ctx.clock.now(),
        "decision_comment": body.reason,
    }
    return await _transition(
        session,
        ctx,
        entry,
        values,
        _history(entry, "rejected", ctx, body.reason, body.decision_no),
        ENTRY_REJECTED,
        lambda s: EntryRejected(entry=s, reason=body.reason),
    )


async def apply_repair(
    session: AsyncSession, ctx: Context, entry_id: str, if_match: str | None, body: RepairApplication
) -> dict[str, Any]:
    entry = await _load_for(session, entry_id, if_match, "apply_repair")
    if entry["repair_status"] == "applied":
        raise RepairAlreadyPending()
    today = ctx.clock.today()
    if today < entry["earliest_repair_on"]:
        raise RepairTooEarly(
            f"Credit repair may be applied for from {entry['earliest_repair_on'].isoformat()} "
            f"(rule set {entry['rule_set_version']}, category {entry['reason_category']}).",
            earliest_repair_on=entry["earliest_repair_on"].isoformat(),
        )
    evidence = [e.model_dump(mode="json") for e in body.evidence]
    values = {
        "repair_status": "applied",
        "repair_applied_by": ctx.actor,
        "repair_applied_at": ctx.clock.now(),
        "repair_statement": body.statement,
        "repair_evidence": {"applicant": body.applicant, "items": evidence},
    }
    return await _transition(
        session,
        ctx,
        entry,
        values,
        _history(entry, "repair_applied", ctx, body.statement, None, applicant=body.applicant, evidence=evidence),
        REPAIR_APPLIED,
        lambda s: RepairApplied(entry=s, applied_by=ctx.actor, evidence_count=len(evidence)),
    )


async def review_repair(
    session: AsyncSession, ctx: Context, entry_id: str, if_match: str | None, body: RepairReview
) -> dict[str, Any]:
    entry = await _load_for(session, entry_id, if_match, "review_repair")
    if entry["repair_status"] != "applied":
        raise NoPendingRepair()
    check_four_eyes(entry["repair_applied_by"], ctx.actor, OwnRepairApplication())
    if body.outcome == "rejected":
        return await _reject_repair(session, ctx, entry, body)
    return await _remove(session, ctx, entry, "repaired", body.reason, body.decision_no, repair_status="approved")


async def _reject_repair(
    session: AsyncSession, ctx: Context, entry: dict[str, Any], body: RepairReview
) -> dict[str, Any]:
    """A refused repair leaves the entry listed; no event, since nothing published changed."""
    values = {"repair_status": "rejected"}
    kept = partial(_history, action="repair_rejected", ctx=ctx, reason=body.reason, document_no=body.decision_no)
    return await _ENTRIES.change(session, ctx, entry, values, kept)


async def remove_wrongful(
    session: AsyncSession, ctx: Context, entry_id: str, if_match: str | None, body: WrongfulRemoval
) -> dict[str, Any]:
    """Two reviewers, like a listing: the first call records the request (the entry stays listed,
    its version moves on, no event: nothing published changed); a second reviewer's call removes it."""
    entry = await _load_for(session, entry_id, if_match, "remove")
    history = await repo.history_of(session, entry_id=entry_id)
    last = history[-1] if history else None
    if last is None or last["action"] != REMOVAL_REQUESTED or last["version"] != entry["version"]:
        comment = body.comment or body.reason
        kept = partial(_history, action=REMOVAL_REQUESTED, ctx=ctx, reason=comment, document_no=body.decision_no)
        return await _ENTRIES.change(session, ctx, entry, {}, kept)
    check_four_eyes(last["actor"], ctx.actor, OwnRemovalRequest())
    return await _remove(session, ctx, entry, "wrongful", body.reason, body.decision_no)


#: The history action of a wrongful removal's first step (awaiting a second reviewer).
REMOVAL_REQUESTED = "removal_requested"


async def _remove(
    session: AsyncSession,
    ctx: Context,
    entry: dict[str, Any],
    cause: Literal["repaired", "wrongful"],
    reason: str,
    decision_no: str | None,
    **extra: Any,
) -> dict[str, Any]:
    """Take a listing off the blacklist (repaired or wrongful): the entry, its history, the event, the rating."""
    today = ctx.clock.today()
    values = {
        "status": Status.removed.value,
        **extra,
        "removed_on": today,
        "removal_reason": cause,
        "removed_by": ctx.actor,
        "removal_decision_no": decision_no,
    }
    new = await _transition(
        session,
        ctx,
        entry,
        values,
        _history(entry, "removed", ctx, reason, decision_no, cause=cause),
        ENTRY_REMOVED,
        lambda s: EntryRemoved(entry=s, reason=cause),
    )
    await add_to_outbox(session, outbox, await refresh_ratings(session, [new["uscc"]], today, ctx.book))
    return new


async def expire_due(session: AsyncSession, clock: Clock, book: RuleBook) -> int:
    """Remove every listing whose publication period ended before today (the scheduled job)."""
    today = clock.today()
    ctx = Context(actor=EXPIRY_ACTOR, clock=clock, book=book)
    changed: list[str] = []
    for entry in await repo.due_for_expiry(session, today):
        values = {
            "status": Status.removed.value,
            "removed_on": entry["publish_until"] + timedelta(days=1),
            "removal_reason": "expired",
            "removed_by": EXPIRY_ACTOR,
        }
        try:
            await _transition(
                session,
                ctx,
                entry,
                values,
                _history(entry, "removed", ctx, "publication period ended", None, cause="expired"),
                ENTRY_REMOVED,
                lambda s: EntryRemoved(entry=s, reason="expired"),
            )
        except StaleVersion:  # decided concurrently by a reviewer: theirs stands
            continue
        changed.append(entry["uscc"])
    if changed:
        await add_to_outbox(session, outbox, await refresh_ratings(session, changed, today, book))
    return len(changed)


# ---------------------------------------------------------------- ratings and records


async def refresh_ratings(
    session: AsyncSession,
    usccs: Sequence[str],
    today: date,
    book: RuleBook,
    recs: dict[str, list[dict[str, Any]]] | None = None,
) -> list[Envelope]:
    """Recompute today's rating of each enterprise; store and announce only the ones that changed."""
    usccs = sorted(set(usccs))
    if not usccs:
        return []
    rules = book.in_force(today)
    if recs is None:
        recs = await repo.records_of(session, usccs, counting_only=True)
    listed = await repo.listed_entries(session, usccs, today)
    before = await repo.current_ratings(session, usccs)
    rows: list[dict[str, Any]] = []
    events: list[Envelope] = []
    for u in usccs:
        r = compute_rating(rules, recs[u], today, u in listed)
        prev = before.get(u)
        if prev == r.grade:
            continue
        rows.append(
            {
                "uscc": u,
                "rating": r.grade,
                "score": r.score,
                "rule_set_version": rules.version,
                "as_of": today,
                "updated_at": datetime.now(UTC),
            }
        )
        payload = RatingChanged(
            uscc=u,
            rating=r.grade,  # type: ignore[arg-type]
            previous=prev,  # type: ignore[arg-type]
            rule_set_version=rules.version,
            as_of=today,
            score=r.score,
        )
        events.append(_event(RATING_CHANGED, payload, u))
    await repo.upsert_ratings(session, rows)
    return events


async def apply_records(session: AsyncSession, incoming: Sequence[dict[str, Any]], clock: Clock, book: RuleBook) -> int:
    """Fold a batch of record snapshots in: newest version per record wins, older ones are ignored.

    Then recompute the affected enterprises' ratings; for those that gained a negative record,
    propose (never list) them when what counts reaches the threshold within the window; for those that
    lost one, close the automatic proposals it triggered that no longer reach it.
    """
    latest = latest_versions(incoming, key=itemgetter("record_id"), version=itemgetter("source_version"))
    stored = await repo.record_versions(session, list(latest))
    now = clock.now()
    changed: list[dict[str, Any]] = []
    affected: set[str] = set()
    gained_negative: set[str] = set()
    lost_negative: dict[str, set[str]] = {}
    for rid, row in latest.items():
        old = stored.get(rid)
        if old is not None and old.source_version >= row["source_version"]:
            continue  # an older or repeated snapshot
        if old is None and row["kind"] == "neutral" and row["source_version"] == 1:
            # A first version that does not count (a pass, a provisional fail: the bulk of the stream)
            # is not a credit fact and is not stored. Later neutral versions are kept, as tombstones,
            # so an older negative version arriving late cannot overtake them.
            continue
        row.setdefault("authority", None)
        row["updated_at"] = now
        changed.append(row)
        # Only a record that counts (or counted) can move a rating: a pass, the bulk of the
        # stream, costs no rating work at all.
        if row["kind"] != "neutral":
            affected.add(row["uscc"])
        if old is not None and old.kind != "neutral":
            affected.add(old.uscc)  # it counted before (perhaps under another, corrected, USCC)
        if row["kind"] == "negative" and (old is None or old.kind != "negative" or old.uscc != row["uscc"]):
            gained_negative.add(row["uscc"])
        if old is not None and old.kind == "negative" and (row["kind"] != "negative" or old.uscc != row["uscc"]):
            lost_negative.setdefault(old.uscc, set()).add(rid)
    if not changed:
        return 0
    await repo.upsert_records(session, changed)
    today = clock.today()
    recs = await repo.records_of(session, sorted(affected), counting_only=True)  # read once for both uses
    events = await refresh_ratings(session, sorted(affected), today, book, recs)
    events += await _close_untriggered(session, lost_negative, clock, book, recs)
    events += await _auto_propose(session, sorted(gained_negative), clock, book, recs)
    await add_to_outbox(session, outbox, events)
    return len(changed)


async def _close_untriggered(
    session: AsyncSession,
    lost: dict[str, set[str]],
    clock: Clock,
    book: RuleBook,
    recs: dict[str, list[dict[str, Any]]],
) -> list[Envelope]:
    """An undecided automatic proposal stands on its trigger records: when one of them no longer counts
    (withdrawn, retracted, overturned) and what remains is below the threshold, the system rejects it."""
    if not lost:
        return []
    today = clock.today()
    rules = book.in_force(today)
    ctx = Context(actor=AUTO_PROPOSER, clock=clock, book=book)
    events: list[Envelope] = []
    for entry in await repo.undecided_automatic(session, sorted(lost)):
        gone = set(entry["trigger_records"] or ()) & lost[entry["uscc"]]
        if not gone or len(triggers_in_window(rules, recs.get(entry["uscc"], []), today)) >= rules.auto_threshold:
            continue
        reason = f"triggering records no longer count: {', '.join(sorted(gone))}"
        values = {
            "status": Status.rejected.value,
            "decided_by": AUTO_PROPOSER,
            "decided_at": clock.now(),
            "decision_comment": reason,
        }
        kept = partial(
            _history, action="rejected", ctx=ctx, reason=reason, document_no=None, withdrawn_triggers=sorted(gone)
        )
        new = await _ENTRIES.change(session, ctx, entry, values, kept)  # its event goes with the others
        events.append(_event(ENTRY_REJECTED, EntryRejected(entry=snapshot(new), reason=reason), new["uscc"]))
    return events


async def _auto_propose(
    session: AsyncSession, usccs: list[str], clock: Clock, book: RuleBook, recs: dict[str, list[dict[str, Any]]]
) -> list[Envelope]:
    if not usccs:
        return []
    today = clock.today()
    rules = book.in_force(today)
    auto = rules.blacklist["auto_proposal"]
    open_ = await repo.open_entry_usccs(session, usccs)
    due = []
    for u in usccs:
        fails = triggers_in_window(rules, recs[u], today)
        if len(fails) >= rules.auto_threshold and u not in open_:
            due.append((u, fails))
    if not due:
        return []
    now = clock.now()
    ctx = Context(actor=AUTO_PROPOSER, clock=clock, book=book)
    entries, history, events = [], [], []
    for entry_id, (u, fails) in zip(new_ids(len(due)), due, strict=True):
        fails.sort(key=lambda f: (f["fact_date"], f["record_id"]))
        category, facts = _auto_reason(rules, fails)
        entry = {
            "entry_id": entry_id,
            "version": 1,
            "uscc": u,
            "enterprise_name": max(fails, key=lambda f: f["fact_date"])["enterprise_name"],
            "reason_category": category,
            "facts": facts,
            "legal_basis": auto["legal_basis"],
            "deciding_authority": auto["deciding_authority"],
            "decision_no": None,
            "appeal_route": None,
            "appeal_deadline": None,
            "publication_years": rules.publication_years["default"],
            "rule_set_version": rules.version,
            "status": Status.proposed.value,
            "automatic": True,
            "trigger_records": [f["record_id"] for f in fails],
            "proposed_by": AUTO_PROPOSER,
            "proposed_at": now,
            "updated_at": now,
        }
        entries.append(entry)
        history.append(_history(entry, "proposed", ctx, facts, None, trigger_records=entry["trigger_records"]))
        payload = EntryProposed(entry=snapshot(entry), trigger_records=entry["trigger_records"])
        events.append(_event(ENTRY_PROPOSED, payload, u))
    await repo.insert_entries(session, entries)
    await repo.insert_history(session, history)
    return events


def _auto_reason(rules: RuleSet, fails: list[dict[str, Any]]) -> tuple[str, str]:
    """An automatic proposal's reason category and facts: from its triggers, as the rules in force name them."""
    auto = rules.blacklist["auto_proposal"]
    if any(f["source"] != "sampling" for f in fails):
        what, triggers = "final sampling-inspection fails or authority records", "; ".join(map(_trigger_text, fails))
        category = auto["reason_category_with_records"]
    else:
        what = "final sampling-inspection fails"
        triggers = "; ".join(f"{f['fact_date'].isoformat()} {f['level']} {f['sector']} {f['title']}" for f in fails)
        food = any(f.get("sector") == "food" for f in fails)
        category = auto["reason_category_when_food"] if food else auto["reason_category"]
    window = f"within {rules.auto_window_days} days (threshold {rules.auto_threshold}, rule set {rules.version})"
    return category, f"{len(fails)} {what} {window}: {triggers}"


def _trigger_text(f: dict[str, Any]) -> str:
    """One trigger in an automatic proposal's facts, with its source."""
    if f["source"] == "sampling":
        return f"{f['fact_date'].isoformat()} sampling {f['level']} {f['sector']} {f['title']}"
    return f"{f['fact_date'].isoformat()} {f['category']} {f['title']} ({f.get('authority')})"


def status_on(entry: dict[str, Any] | None, on: date) -> bool:
    return entry is not None and listed_on_date(entry, on)


# ---------------------------------------------------------------- archives


async def _named_rows(
    session: AsyncSession, ctx: Context, rows: Sequence[ArchivedListing]
) -> list[ArchivedListing | Match]:
    """Each row with its USCC: as given, or found by its name when one enterprise matches unambiguously;
    otherwise the match (its candidates) in the row's place."""
    named = [r for r in rows if r.uscc is None]
    if not named:
        return list(rows)
    found = iter(await match_names(session, ctx, [(r.enterprise_name, r.district_code) for r in named]))
    out: list[ArchivedListing | Match] = []
    for r in rows:
        if r.uscc is None:
            m = next(found)
            out.append(r.model_copy(update={"uscc": m.uscc}) if m.uscc else m)
        else:
            out.append(r)
    return out


def _archived_at(day: date) -> datetime:
    """An archived change's time: the start of its day in UTC (archives keep dates, not times)."""
    return datetime.combine(day, time(0), UTC)


def _span(entry: dict[str, Any]) -> tuple[date, date] | None:
    """The days [first, end) an entry was on the published list."""
    if entry.get("listed_on") is None or entry.get("publish_until") is None:
        return None
    end = entry.get("removed_on") or entry["publish_until"] + timedelta(days=1)
    return entry["listed_on"], end


@dataclass(frozen=True)
class _ArchivedPeriod:
    """When an archived listing was on the list: its period, and its removal (an ended period is an expiry)."""

    years: int
    until: date
    removed_on: date | None
    cause: Literal["expired", "repaired", "wrongful"] | None

    @classmethod
    def of(cls, r: ArchivedListing, rules: RuleSet, today: date) -> _ArchivedPeriod:
        years = r.publication_years or rules.publication_years["default"]
        until = publish_until(r.listed_from, years)
        if r.removed_on is None and until < today:
            return cls(years, until, until + timedelta(days=1), "expired")
        return cls(years, until, r.removed_on, r.removal_reason)

    def overlaps(self, r: ArchivedListing, entry: dict[str, Any]) -> bool:
        """Whether a stored entry of the same enterprise was listed on any of these days, or is open beside
        a listing that is still open."""
        if self.removed_on is None and entry["status"] in (Status.proposed, Status.listed):
            return True
        span = _span(entry)
        return (
            span is not None
            and span[0] < (self.removed_on or self.until + timedelta(days=1))
            and r.listed_from < span[1]
        )


def _unmatched(n: int, m: Match) -> ArchivedListingOutcome:
    why = f"{m.outcome}: no enterprise matches the name unambiguously; give the USCC"
    return ArchivedListingOutcome(
        row=n,
        outcome="unmatched",
        problems=[{"field": "uscc", "reason": why}],
        candidates=[CandidateOut(**candidate_json(c)) for c in m.candidates],
    )


def _refusal(
    n: int, r: ArchivedListing, period: _ArchivedPeriod, mine: list[dict[str, Any]]
) -> ArchivedListingOutcome | None:
    """Why a valid archived row is not recorded (a duplicate, a conflict), or None when it is."""
    same = next((e for e in mine if e["decision_no"] == r.decision_no), None)
    if same is not None:
        return ArchivedListingOutcome(row=n, outcome="duplicate", entry_id=same["entry_id"], status=same["status"])
    clash = next((e for e in mine if period.overlaps(r, e)), None)
    if clash is not None:
        why = f"overlaps entry {clash['entry_id']} ({clash['decision_no']}) of the same enterprise"
        return ArchivedListingOutcome(
            row=n, outcome="conflict", entry_id=clash["entry_id"], problems=[{"field": "listed_from", "reason": why}]
        )
    return None


@dataclass
class _ArchiveReplay:
    """Archived decisions replayed as they happened: each step's history row and event, on the archive's
    dates and by the archive's officers, as live operation writes them."""

    ctx: Context
    source_file: str
    history: list[dict[str, Any]] = field(default_factory=list)
    events: list[Envelope] = field(default_factory=list)

    @property
    def imported(self) -> str:
        return f"imported from {self.source_file} by {self.ctx.actor}"

    def step(
        self, entry: dict[str, Any], action: str, at: date, actor: str, reason: str | None, doc: str | None
    ) -> None:
        self.history.append(
            {
                "entry_id": entry["entry_id"],
                "uscc": entry["uscc"],
                "version": entry["version"],
                "action": action,
                "status": entry["status"],
                "actor": actor,
                "at": _archived_at(at),
                "reason": reason,
                "document_no": doc,
                "request_id": self.ctx.request_id or None,
                "details": {"imported": True, "source_file": self.source_file, "imported_by": self.ctx.actor},
            }
        )

    def emit(self, type_: str, payload: Any, entry: dict[str, Any], at: date) -> None:
        self.events.append(replace(_event(type_, payload, entry["uscc"]), time=_archived_at(at)))

    def listing(self, r: ArchivedListing, rules: RuleSet, period: _ArchivedPeriod) -> dict[str, Any]:
        """The entry of one archived listing: proposed, listed and (if so) removed, each step recorded."""
        assert r.uscc is not None  # resolved by _named_rows
        proposed_on = r.proposed_on or r.decided_on
        entry: dict[str, Any] = {
            "entry_id": new_id(),
            "version": 1,
            "uscc": r.uscc,
            "enterprise_name": r.enterprise_name,
            "reason_category": r.reason_category,
            "facts": r.facts,
            "legal_basis": r.legal_basis,
            "deciding_authority": r.deciding_authority,
            "decision_no": r.decision_no,
            "appeal_route": r.appeal_route,
            "appeal_deadline": r.appeal_deadline,
            "publication_years": period.years,
            "rule_set_version": rules.version,
            "status": Status.proposed.value,
            "automatic": False,
            "trigger_records": None,
            "proposed_by": r.proposed_by,
            "proposed_at": _archived_at(proposed_on),
            "updated_at": _archived_at(proposed_on),
        }
        self.step(entry, "proposed", proposed_on, r.proposed_by, f"{r.facts} ({self.imported})", r.decision_no)
        self.emit(ENTRY_PROPOSED, EntryProposed(entry=snapshot(entry)), entry, proposed_on)
        entry |= {
            "version": 2,
            "status": Status.listed.value,
            "decided_by": r.reviewed_by,
            "decided_at": _archived_at(r.decided_on),
            "decision_comment": self.imported,
            "listed_on": r.listed_from,
            "publish_until": period.until,
            "earliest_repair_on": earliest_repair_on(rules, r.reason_category, r.listed_from),
            "updated_at": _archived_at(r.decided_on),
        }
        self.step(entry, "listed", r.decided_on, r.reviewed_by, self.imported, r.decision_no)
        self.emit(ENTRY_LISTED, EntryListed(entry=snapshot(entry)), entry, r.decided_on)
        removed_on, cause = period.removed_on, period.cause
        if removed_on is not None and cause is not None:
            by = EXPIRY_ACTOR if cause == "expired" else r.reviewed_by
            doc = r.removal_decision_no if cause != "expired" else None
            entry |= {
                "version": 3,
                "status": Status.removed.value,
                "removed_on": removed_on,
                "removal_reason": cause,
                "removed_by": by,
                "removal_decision_no": doc,
                "updated_at": _archived_at(removed_on),
            }
            if cause == "repaired":
                entry["repair_status"] = "approved"
            note = r.removal_note or ("publication period ended" if cause == "expired" else cause)
            self.step(entry, "removed", removed_on, by, f"{note} ({self.imported})", doc)
            self.emit(ENTRY_REMOVED, EntryRemoved(entry=snapshot(entry), reason=cause), entry, removed_on)
        return entry


async def import_listings(
    session: AsyncSession, ctx: Context, rows: Sequence[ArchivedListing], source_file: str
) -> list[ArchivedListingOutcome]:
    """Record archived blacklist decisions as they happened: proposed, listed and (if so) removed on
    the archive's dates by the archive's officers, with the events live operation emits; a listing
    whose publication period ended was removed as expired the day after, as the expiry job does.

    Same enterprise and decision number as a stored entry: a duplicate. A listing whose days overlap
    another of the enterprise, or still open beside an open one: a conflict. Ratings are then
    recomputed as of today.
    """
    today = ctx.clock.today()
    note_resource(session, imported="true", source_file=source_file)
    resolved = await _named_rows(session, ctx, rows)
    stored: dict[str, list[dict[str, Any]]] = {}
    usccs = {r.uscc for r in resolved if isinstance(r, ArchivedListing) and r.uscc is not None}
    for e in await repo.entries_of_many(session, sorted(usccs)):
        stored.setdefault(e["uscc"], []).append(e)
    outcomes: list[ArchivedListingOutcome] = []
    entries: list[dict[str, Any]] = []
    replay = _ArchiveReplay(ctx, source_file)
    for n, r in enumerate(resolved, start=1):
        if not isinstance(r, ArchivedListing):  # named without a USCC, and not one enterprise
            outcomes.append(_unmatched(n, r))
            continue
        assert r.uscc is not None  # resolved by _named_rows
        rules = ctx.book.in_force(r.decided_on)
        problems = check_archived_listing(r.model_dump(), rules, today)
        if problems:
            reasons = [{"field": f, "reason": why} for f, why in problems]
            outcomes.append(ArchivedListingOutcome(row=n, outcome="rejected", problems=reasons))
            continue
        period = _ArchivedPeriod.of(r, rules, today)
        mine = stored.setdefault(r.uscc, [])
        refused = _refusal(n, r, period, mine)
        if refused is not None:
            outcomes.append(refused)
            continue
        entry = replay.listing(r, rules, period)
        entries.append(entry)
        mine.append(entry)
        outcomes.append(
            ArchivedListingOutcome(row=n, outcome="created", entry_id=entry["entry_id"], status=entry["status"])
        )
    # One executemany: every row with every column.
    await repo.insert_entries(session, [{c.name: e.get(c.name) for c in E.columns} for e in entries])
    await repo.insert_history(session, replay.history)
    await add_to_outbox(session, outbox, replay.events)
    await add_to_outbox(session, outbox, await refresh_ratings(session, [e["uscc"] for e in entries], today, ctx.book))
    return outcomes


# ---------------------------------------------------------------- records from other authorities


def _authority(ctx: Context) -> str:
    """The sending system: one token per authority system, named by its agency claim."""
    if not ctx.agency:
        raise AuthorityRequired()
    return ctx.agency


def record_snapshot(rec: dict[str, Any]) -> RecordSnapshot:
    return RecordSnapshot(
        record_id=rec["record_id"],
        version=rec["version"],
        authority=rec["authority"],
        record_no=rec["record_no"],
        kind=rec["kind"],
        status=rec["status"],
        uscc=rec["uscc"],
        enterprise_name=rec["enterprise_name"],
        occurred_on=rec["occurred_on"],
        details=rec["body"],
    )


def _version(rec: dict[str, Any], action: str, ctx: Context, reason: str | None) -> dict[str, Any]:
    return {
        "record_id": rec["record_id"],
        "version": rec["version"],
        "action": action,
        "status": rec["status"],
        "body": rec["body"],
        "reason": reason,
        "actor": ctx.actor,
        "at": ctx.clock.now(),
        "request_id": ctx.request_id or None,
    }


@dataclass(frozen=True)
class RecordResult:
    outcome: Literal["created", "duplicate", "conflict", "rejected", "unmatched"]
    record: dict[str, Any] | None = None
    problems: list[dict[str, str]] | None = None
    candidates: list[Candidate] | None = None


def _problems(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"field": f, "reason": why} for f, why in pairs]


async def record_many(session: AsyncSession, ctx: Context, bodies: Sequence[CreditRecordIn]) -> list[RecordResult]:
    """Store an authority's records: each new record number once (a resend of the same record is a
    duplicate, the same number with other content a conflict: that is a correction), with its first
    version, its event, and what it does to ratings and automatic proposals."""
    authority = _authority(ctx)
    today, now = ctx.clock.today(), ctx.clock.now()
    held = await repo.authority_records_by_no(session, authority, [b.record_no for b in bodies])
    results: list[RecordResult] = []
    created: list[dict[str, Any]] = []
    for b in bodies:
        body = b.model_dump(mode="json", exclude_none=True)
        if problems := record_problems(body, today):
            results.append(RecordResult("rejected", problems=_problems(problems)))
            continue
        old = held.get(b.record_no)
        if old is not None:
            if old["status"] == "active" and old["body"] == body:
                results.append(RecordResult("duplicate", old))
            else:
                why = f"record {old['record_id']} holds this number with other content or was withdrawn: correct it"
                results.append(RecordResult("conflict", old, _problems([("record_no", why)])))
            continue
        uscc = b.uscc
        if uscc is None:  # found by its name, only when one enterprise matches unambiguously
            (found,) = await match_names(session, ctx, [(b.enterprise_name, b.district_code)])
            if found.uscc is None:
                why = f"{found.outcome}: no enterprise matches the name unambiguously; give the USCC"
                results.append(RecordResult("unmatched", None, _problems([("uscc", why)]), found.candidates))
                continue
            uscc = found.uscc
        rec = {
            "record_id": new_id(),
            "authority": authority,
            "record_no": b.record_no,
            "version": 1,
            "status": "active",
            "kind": b.kind,
            "uscc": uscc,
            "enterprise_name": b.enterprise_name,
            "occurred_on": b.occurred_on,
            "body": body,
            "created_at": now,
            "updated_at": now,
        }
        held[b.record_no] = rec  # the same number again in this batch is a duplicate or a conflict
        created.append(rec)
        results.append(RecordResult("created", rec))
    try:
        await repo.insert_authority_records(session, created)
    except IntegrityError:  # the same number stored by a concurrent request since the read above
        raise ConcurrentConflict() from None
    await repo.insert_record_versions(session, [_version(r, "recorded", ctx, None) for r in created])
    events = [_event(RECORD_RECORDED, RecordRecorded(record=record_snapshot(r)), r["uscc"]) for r in created]
    await add_to_outbox(session, outbox, events)
    await apply_records(session, [credit_row(r) for r in created], ctx.clock, ctx.book)
    await remember(session, [(r["uscc"], r["enterprise_name"], r["body"].get("district_code")) for r in created], now)
    return results


async def record_one(session: AsyncSession, ctx: Context, body: CreditRecordIn) -> RecordResult:
    """One record: refused (422) or conflicting (409) as a problem, else created or a duplicate."""
    (result,) = await record_many(session, ctx, [body])
    if result.outcome == "rejected":
        raise ValidationFailed(
            "The record is not complete for its kind",
            [field_error(p["field"], "body", p["reason"]) for p in result.problems or []],
        )
    if result.outcome == "unmatched":
        raise EnterpriseNotMatched(
            "No enterprise matches the name unambiguously: give the USCC (the candidates are listed).",
            [field_error("uscc", "body", "required when the name does not match one enterprise unambiguously")],
            candidates=[candidate_json(c) for c in result.candidates or []],
        )
    if result.outcome == "conflict" and result.record is not None:
        raise RecordExists(
            f"Record {result.record['record_id']} already holds number {body.record_no} with other content "
            "(or was withdrawn); send a correction to change it.",
            record_id=result.record["record_id"],
        )
    return result


async def load_record(session: AsyncSession, record_id: str) -> dict[str, Any]:
    rec = await repo.get_authority_record(session, record_id)
    if rec is None:
        raise RecordNotFound(record_id)
    return rec


async def _own_record(session: AsyncSession, ctx: Context, record_id: str, if_match: str | None) -> dict[str, Any]:
    rec = await load_record(session, record_id)
    if rec["authority"] != _authority(ctx):
        raise NotYourRecord(rec["authority"])
    check_if_match(if_match, rec["version"])
    if rec["status"] == "withdrawn":
        raise RecordAlreadyWithdrawn()
    return rec


async def correct_record(
    session: AsyncSession, ctx: Context, record_id: str, if_match: str | None, body: RecordCorrection
) -> dict[str, Any]:
    """The sending authority's correction: a new version of the whole record (the earlier ones kept)."""
    rec = await _own_record(session, ctx, record_id, if_match)
    new_body = body.record.model_dump(mode="json", exclude_none=True)
    problems = record_problems(new_body, ctx.clock.today())
    if body.record.record_no != rec["record_no"]:
        problems.append(("record_no", f"a correction keeps the record's number ({rec['record_no']})"))
    if body.record.uscc is not None and body.record.uscc != rec["uscc"]:
        # Its events are keyed by the enterprise: a record about the wrong one is withdrawn and sent anew.
        problems.append(("uscc", "a correction keeps the enterprise: withdraw the record and send a new one"))
    if problems:
        raise ValidationFailed(
            "The correction is not valid", [field_error(f"record.{f}", "body", why) for f, why in problems]
        )
    changed = changed_fields(rec["body"], new_body)
    if not changed:
        return rec  # nothing to correct (a retry of a correction already made)
    values = {
        "kind": body.record.kind,
        "enterprise_name": body.record.enterprise_name,
        "occurred_on": body.record.occurred_on,
        "body": new_body,
    }
    new = await _RECORDS.change(
        session,
        ctx,
        rec,
        values,
        partial(_version, action="corrected", ctx=ctx, reason=body.reason),
        lambda new: _event(
            RECORD_CORRECTED,
            RecordCorrected(record=record_snapshot(new), reason=body.reason, changed_fields=changed),
            new["uscc"],
        ),
    )
    await apply_records(session, [credit_row(new)], ctx.clock, ctx.book)  # what the new version does to credit
    return new


async def withdraw_record(
    session: AsyncSession, ctx: Context, record_id: str, if_match: str | None, body: RecordWithdrawal
) -> dict[str, Any]:
    """The sending authority's withdrawal: the record stops counting (kept, with every version)."""
    rec = await _own_record(session, ctx, record_id, if_match)
    new = await _RECORDS.change(
        session,
        ctx,
        rec,
        {"status": "withdrawn"},
        partial(_version, action="withdrawn", ctx=ctx, reason=body.reason),
        lambda new: _event(
            RECORD_WITHDRAWN, RecordWithdrawn(record=record_snapshot(new), reason=body.reason), new["uscc"]
        ),
    )
    await apply_records(session, [credit_row(new)], ctx.clock, ctx.book)  # it stops counting
    return new


def candidate_json(c: Candidate) -> dict[str, Any]:
    return {
        "uscc": c.uscc,
        "name": c.name,
        "district_code": c.district_code,
        "score": c.score,
        "explanation": c.explanation,
    }
