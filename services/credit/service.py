"""The credit service's use cases. Each flushes its writes and outbox events into the caller's
transaction; the route (or the consumer runner, or the scheduler) commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import repository as repo
from services.credit.domain import (
    AUTO_PROPOSER,
    EXPIRY_ACTOR,
    DecisionNoRequired,
    EntryAlreadyOpen,
    EntryNotFound,
    NoPendingRepair,
    OwnProposal,
    OwnRemovalRequest,
    OwnRepairApplication,
    RepairAlreadyPending,
    RepairTooEarly,
    RuleBook,
    Status,
    check_allowed,
    check_archived_listing,
    check_four_eyes,
    check_publication_years,
    check_reason_category,
    compute_rating,
    earliest_repair_on,
    final_fails_in_window,
    listed_on_date,
    publish_until,
)
from services.credit.models import blacklist_entries as E
from services.credit.models import outbox
from services.credit.schemas import (
    Approval,
    ArchivedListing,
    ArchivedListingOutcome,
    Proposal,
    Rejection,
    RepairApplication,
    RepairReview,
    WrongfulRemoval,
)
from shared.audit import note_resource
from shared.clock import Clock
from shared.consumer import latest_versions
from shared.context import Context as RequestContext
from shared.contracts import registry
from shared.contracts.credit import (
    ENTRY_LISTED,
    ENTRY_PROPOSED,
    ENTRY_REJECTED,
    ENTRY_REMOVED,
    RATING_CHANGED,
    REPAIR_APPLIED,
    SOURCE,
    EntryListed,
    EntryProposed,
    EntryRejected,
    EntryRemoved,
    EntrySnapshot,
    RatingChanged,
    RepairApplied,
)
from shared.errors import StaleVersion
from shared.events import Envelope
from shared.outbox import add_to_outbox
from shared.preconditions import check_if_match, update_if_version
from shared.uuid7 import new_id, new_ids


@dataclass(frozen=True, kw_only=True)
class Context(RequestContext):
    book: RuleBook


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
    return await _load(session, str(entry["entry_id"]))  # every column, as later reads will show it


async def _load(session: AsyncSession, entry_id: str) -> dict[str, Any]:
    entry = await repo.get_entry(session, entry_id)
    if entry is None:
        raise EntryNotFound(entry_id)
    return entry


async def _transition(
    session: AsyncSession,
    ctx: Context,
    entry: dict[str, Any],
    values: dict[str, Any],
    history: dict[str, Any],
    event_type: str,
    payload: Any,
) -> dict[str, Any]:
    """Write the change only if nobody changed the entry since it was read, with its history and event."""
    values = {**values, "updated_at": ctx.clock.now()}
    await update_if_version(session, E, E.c.entry_id == entry["entry_id"], entry["version"], values)
    new = {**entry, **values, "version": entry["version"] + 1}
    history.update(version=new["version"], status=new["status"])
    await repo.insert_history(session, [history])
    await add_to_outbox(session, outbox, [_event(event_type, payload(snapshot(new)), new["uscc"])])
    return new


async def _load_for(session: AsyncSession, entry_id: str, if_match: str | None, action: str) -> dict[str, Any]:
    """The entry, if the caller read its current version and `action` is allowed from its status."""
    entry = await _load(session, entry_id)
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
    entry = await _proposal_to_decide(session, ctx, entry_id, if_match, "approve", "approved")
    decision_no = body.decision_no or entry["decision_no"]
    if not decision_no:
        raise DecisionNoRequired()
    today = ctx.clock.today()
    rules = ctx.book.in_force(entry["proposed_at"].date())
    values = {
        "status": Status.listed.value,
        "decided_by": ctx.actor,
        "decided_at": ctx.clock.now(),
        "decision_comment": body.comment,
        "decision_no": decision_no,
        "listed_on": today,
        "publish_until": publish_until(today, entry["publication_years"]),
        "earliest_repair_on": earliest_repair_on(rules, entry["reason_category"], today),
    }
    new = await _transition(
        session,
        ctx,
        entry,
        values,
        _history(entry, "listed", ctx, body.comment, decision_no),
        ENTRY_LISTED,
        lambda s: EntryListed(entry=s),
    )
    await add_to_outbox(session, outbox, await refresh_ratings(session, [new["uscc"]], today, ctx.book))
    return new


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
    values = {"repair_status": "rejected", "updated_at": ctx.clock.now()}
    await update_if_version(session, E, E.c.entry_id == entry["entry_id"], entry["version"], values)
    new = {**entry, **values, "version": entry["version"] + 1}
    h = _history(new, "repair_rejected", ctx, body.reason, body.decision_no)
    await repo.insert_history(session, [h])
    return new


async def remove_wrongful(
    session: AsyncSession, ctx: Context, entry_id: str, if_match: str | None, body: WrongfulRemoval
) -> dict[str, Any]:
    """Two reviewers, like a listing: the first call records the request (the entry stays listed,
    its version moves on, no event: nothing published changed); a second reviewer's call removes it."""
    entry = await _load_for(session, entry_id, if_match, "remove")
    history = await repo.history_of(session, entry_id=entry_id)
    last = history[-1] if history else None
    if last is None or last["action"] != REMOVAL_REQUESTED or last["version"] != entry["version"]:
        values = {"updated_at": ctx.clock.now()}
        await update_if_version(session, E, E.c.entry_id == entry["entry_id"], entry["version"], values)
        new = {**entry, **values, "version": entry["version"] + 1}
        comment = body.comment or body.reason
        await repo.insert_history(session, [_history(new, REMOVAL_REQUESTED, ctx, comment, body.decision_no)])
        return new
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

    Then recompute the affected enterprises' ratings and, for those that gained a negative record,
    propose (never list) them when their final fails reach the threshold within the window.
    """
    latest = latest_versions(incoming, key=itemgetter("record_id"), version=itemgetter("source_version"))
    stored = await repo.record_versions(session, list(latest))
    now = clock.now()
    changed: list[dict[str, Any]] = []
    affected: set[str] = set()
    gained_negative: set[str] = set()
    for rid, row in latest.items():
        old = stored.get(rid)
        if old is not None and old.source_version >= row["source_version"]:
            continue  # an older or repeated snapshot
        if old is None and row["kind"] == "neutral" and row["source_version"] == 1:
            # A first version that does not count (a pass, a provisional fail: the bulk of the stream)
            # is not a credit fact and is not stored. Later neutral versions are kept, as tombstones,
            # so an older negative version arriving late cannot overtake them.
            continue
        row["updated_at"] = now
        changed.append(row)
        # Only a record that counts (or counted) can move a rating: a pass, the bulk of the
        # stream, costs no rating work at all.
        if row["kind"] != "neutral":
            affected.add(row["uscc"])
        if old is not None and old.kind != "neutral":
            affected.add(old.uscc)  # it counted before (perhaps under another, corrected, USCC)
        if row["kind"] == "negative" and (old is None or old.kind != "negative"):
            gained_negative.add(row["uscc"])
    if not changed:
        return 0
    await repo.upsert_records(session, changed)
    today = clock.today()
    recs = await repo.records_of(session, sorted(affected), counting_only=True)  # read once for both uses
    events = await refresh_ratings(session, sorted(affected), today, book, recs)
    events += await _auto_propose(session, sorted(gained_negative), clock, book, recs)
    await add_to_outbox(session, outbox, events)
    return len(changed)


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
        fails = final_fails_in_window(recs[u], today, rules.auto_window_days)
        if len(fails) >= rules.auto_threshold and u not in open_:
            due.append((u, fails))
    if not due:
        return []
    now = clock.now()
    ctx = Context(actor=AUTO_PROPOSER, clock=clock, book=book)
    entries, history, events = [], [], []
    for entry_id, (u, fails) in zip(new_ids(len(due)), due, strict=True):
        food = any(f.get("sector") == "food" for f in fails)
        category = auto["reason_category_when_food"] if food else auto["reason_category"]
        facts = (
            f"{len(fails)} final sampling-inspection fails within {rules.auto_window_days} days "
            f"(threshold {rules.auto_threshold}, rule set {rules.version}): "
            + "; ".join(f"{f['fact_date'].isoformat()} {f['level']} {f['sector']} {f['title']}" for f in fails)
        )
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


def status_on(entry: dict[str, Any] | None, on: date) -> bool:
    return entry is not None and listed_on_date(entry, on)


# ---------------------------------------------------------------- archives


def _archived_at(day: date) -> datetime:
    """An archived change's time: the start of its day in UTC (archives keep dates, not times)."""
    return datetime.combine(day, time(0), UTC)


def _span(entry: dict[str, Any]) -> tuple[date, date] | None:
    """The days [first, end) an entry was on the published list."""
    if entry.get("listed_on") is None or entry.get("publish_until") is None:
        return None
    end = entry.get("removed_on") or entry["publish_until"] + timedelta(days=1)
    return entry["listed_on"], end


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
    stored: dict[str, list[dict[str, Any]]] = {}
    for e in await repo.entries_of_many(session, sorted({r.uscc for r in rows})):
        stored.setdefault(e["uscc"], []).append(e)
    outcomes: list[ArchivedListingOutcome] = []
    entries: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    events: list[Envelope] = []
    imported = f"imported from {source_file} by {ctx.actor}"

    def step(entry: dict[str, Any], action: str, at: date, actor: str, reason: str | None, doc: str | None) -> None:
        history.append(
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
                "request_id": ctx.request_id or None,
                "details": {"imported": True, "source_file": source_file, "imported_by": ctx.actor},
            }
        )

    def emit(type_: str, payload: Any, entry: dict[str, Any], at: date) -> None:
        events.append(replace(_event(type_, payload, entry["uscc"]), time=_archived_at(at)))

    for n, r in enumerate(rows, start=1):
        rules = ctx.book.in_force(r.decided_on)
        problems = check_archived_listing(r.model_dump(), rules, today)
        if problems:
            outcomes.append(
                ArchivedListingOutcome(
                    row=n, outcome="rejected", problems=[{"field": f, "reason": why} for f, why in problems]
                )
            )
            continue
        years = r.publication_years or rules.publication_years["default"]
        until = publish_until(r.listed_from, years)
        removed_on: date | None = r.removed_on
        cause: Literal["expired", "repaired", "wrongful"] | None = r.removal_reason
        if removed_on is None and until < today:
            removed_on, cause = until + timedelta(days=1), "expired"
        mine = stored.setdefault(r.uscc, [])
        same = next((e for e in mine if e["decision_no"] == r.decision_no), None)
        if same is not None:
            outcomes.append(
                ArchivedListingOutcome(row=n, outcome="duplicate", entry_id=same["entry_id"], status=same["status"])
            )
            continue
        first, end = r.listed_from, removed_on or until + timedelta(days=1)
        clash = next(
            (
                e
                for e in mine
                if (removed_on is None and e["status"] in (Status.proposed, Status.listed))
                or ((sp := _span(e)) is not None and sp[0] < end and first < sp[1])
            ),
            None,
        )
        if clash is not None:
            why = f"overlaps entry {clash['entry_id']} ({clash['decision_no']}) of the same enterprise"
            outcomes.append(
                ArchivedListingOutcome(
                    row=n,
                    outcome="conflict",
                    entry_id=clash["entry_id"],
                    problems=[{"field": "listed_from", "reason": why}],
                )
            )
            continue
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
            "publication_years": years,
            "rule_set_version": rules.version,
            "status": Status.proposed.value,
            "automatic": False,
            "trigger_records": None,
            "proposed_by": r.proposed_by,
            "proposed_at": _archived_at(proposed_on),
            "updated_at": _archived_at(proposed_on),
        }
        step(entry, "proposed", proposed_on, r.proposed_by, f"{r.facts} ({imported})", r.decision_no)
        emit(ENTRY_PROPOSED, EntryProposed(entry=snapshot(entry)), entry, proposed_on)
        entry |= {
            "version": 2,
            "status": Status.listed.value,
            "decided_by": r.reviewed_by,
            "decided_at": _archived_at(r.decided_on),
            "decision_comment": imported,
            "listed_on": r.listed_from,
            "publish_until": until,
            "earliest_repair_on": earliest_repair_on(rules, r.reason_category, r.listed_from),
            "updated_at": _archived_at(r.decided_on),
        }
        step(entry, "listed", r.decided_on, r.reviewed_by, imported, r.decision_no)
        emit(ENTRY_LISTED, EntryListed(entry=snapshot(entry)), entry, r.decided_on)
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
            step(entry, "removed", removed_on, by, f"{note} ({imported})", doc)
            emit(ENTRY_REMOVED, EntryRemoved(entry=snapshot(entry), reason=cause), entry, removed_on)
        entries.append(entry)
        mine.append(entry)
        outcomes.append(
            ArchivedListingOutcome(row=n, outcome="created", entry_id=entry["entry_id"], status=entry["status"])
        )
    # One executemany: every row with every column.
    await repo.insert_entries(session, [{c.name: e.get(c.name) for c in E.columns} for e in entries])
    await repo.insert_history(session, history)
    await add_to_outbox(session, outbox, events)
    await add_to_outbox(session, outbox, await refresh_ratings(session, [e["uscc"] for e in entries], today, ctx.book))
    return outcomes
