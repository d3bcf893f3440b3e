"""Inbound events: the credit service's blacklist listings suspend and reinstate honours.

The consumer runner passes the session of its unit of work and the events, parsed with the credit
contract's models; the handlers write honours and their outbox events in that transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.awards import repository, service
from services.awards.domain import State, after_listing_removed, load_catalog, transition
from services.awards.models import outbox
from shared.consumer import Handler, Received
from shared.contracts.awards import HONOUR_EXPIRED, HONOUR_REINSTATED, HONOUR_SUSPENDED
from shared.contracts.credit import ENTRY_LISTED, ENTRY_REMOVED, EntryEvent
from shared.events import Envelope
from shared.outbox import add_to_outbox


def _city_day(at: datetime) -> date:
    # The city's calendar day (China Standard Time, UTC+8 all year), as SystemClock.today() counts it.
    return (at + timedelta(hours=8)).date()


async def on_listed(session: AsyncSession, events: Sequence[Received[EntryEvent]]) -> None:
    """The enterprise is blacklisted: remember the listing and suspend its active honours."""
    catalog = load_catalog()
    for event in events:
        entry = event.payload.entry
        uscc = entry.uscc.strip().upper()
        listed_on = entry.listed_on or _city_day(event.time)
        stored = await repository.get_listing(session, entry.entry_id)
        if stored is not None and stored["version"] >= entry.version:
            continue  # the same listing again (a republished event with a new id): suspend once
        await repository.save_listing(
            session,
            {
                "entry_id": entry.entry_id,
                "version": entry.version,
                "uscc": uscc,
                "enterprise_name": entry.enterprise_name,
                "decision_no": entry.decision_no,
                "listed_on": listed_on,
                "publish_until": entry.publish_until,
                "removed_on": None,
                "removal_reason": None,
            },
        )
        rows = await repository.honours_of(session, uscc, ("active", "suspended"))
        changes, out, susp = [], [], []
        for row in rows:
            suspended_on = max(listed_on, row["granted_on"])
            # Also recorded under an honour another listing already suspended, so it stays suspended
            # until the last standing listing is removed.
            susp.append(
                {
                    "honour_id": row["honour_id"],
                    "entry_id": entry.entry_id,
                    "suspended_on": suspended_on,
                    "reinstated_on": None,
                }
            )
            if row["state"] != State.ACTIVE.value:
                continue
            changes.append({"honour_id": row["honour_id"], "version": row["version"], "state": "suspended"})
            service._step(row, "suspend")
            out.append(
                service._event(
                    HONOUR_SUSPENDED,
                    row,
                    catalog,
                    reason="blacklisted",
                    entry_id=entry.entry_id,
                    decision_no=entry.decision_no,
                    suspended_on=suspended_on,
                )
            )
        past = await _suspended_in_the_past(session, catalog, entry.entry_id, entry.decision_no, uscc, listed_on)
        susp += past.suspensions
        changes += past.changes
        out += past.events
        await repository.add_suspensions(session, susp)
        await repository.bump_states(session, changes, datetime.now(UTC))
        await add_to_outbox(session, outbox, out)


@dataclass
class _Writes:
    suspensions: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    events: list[Envelope] = field(default_factory=list)


def _unchanged(row: dict[str, Any], changes: list[dict[str, Any]]) -> None:
    """A new version of the honour in the state it is in (its history gained a dated span)."""
    changes.append({"honour_id": row["honour_id"], "version": row["version"], "state": row["state"]})
    row["version"] += 1


async def _suspended_in_the_past(
    session: AsyncSession, catalog: Any, entry_id: str, decision_no: str | None, uscc: str, listed_on: date
) -> _Writes:
    """A listing dated in the past (an imported archive) also suspended, from its listing day, the
    honours that were in force then and have expired or been revoked since: their span is recorded
    and announced (state unchanged) so counts as of past dates leave them out while it stood."""
    w = _Writes()
    for row in await repository.honours_of(session, uscc, (State.EXPIRED.value, State.REVOKED.value)):
        until, revoked = row["valid_until"], row["revoked_on"]
        if row["granted_on"] > listed_on or (until is not None and until < listed_on):
            continue
        if revoked is not None and revoked <= listed_on:
            continue
        w.suspensions.append(
            {"honour_id": row["honour_id"], "entry_id": entry_id, "suspended_on": listed_on, "reinstated_on": None}
        )
        _unchanged(row, w.changes)
        w.events.append(
            service._event(
                HONOUR_SUSPENDED,
                row,
                catalog,
                reason="blacklisted",
                entry_id=entry_id,
                decision_no=decision_no,
                suspended_on=listed_on,
            )
        )
    return w


async def on_removed(session: AsyncSession, events: Sequence[Received[EntryEvent]]) -> None:
    """The listing is removed: honours it suspended come back if still valid, else they expire."""
    catalog = load_catalog()
    for event in events:
        entry = event.payload.entry
        removed_on = entry.removed_on or _city_day(event.time)
        stored = await repository.get_listing(session, entry.entry_id)
        if stored is not None and stored["removed_on"] is not None:
            continue  # already removed: a second removal changes nothing
        await repository.save_listing(
            session,
            {
                "entry_id": entry.entry_id,
                "version": max(entry.version, (stored or {}).get("version", 0)),
                "uscc": entry.uscc.strip().upper(),
                "enterprise_name": entry.enterprise_name,
                "decision_no": entry.decision_no,
                "listed_on": entry.listed_on or (stored or {}).get("listed_on") or removed_on,
                "publish_until": entry.publish_until,
                "removed_on": removed_on,
                "removal_reason": entry.removal_reason,
            },
        )
        ids = await repository.open_suspensions_of_entry(session, entry.entry_id)
        await repository.close_suspensions(session, entry.entry_id, removed_on)
        held = await repository.still_suspended(session, ids)  # another listing still stands
        changes: list[dict[str, Any]] = []
        out: list[Envelope] = []
        for row in await repository.get_many(session, ids):
            if row["honour_id"] in held:
                continue
            if row["state"] in (State.EXPIRED.value, State.REVOKED.value):
                # Its span ends here too (a listing of the past, see _suspended_in_the_past): announced
                # with the state unchanged, so counts as of past dates see when it ended.
                _unchanged(row, changes)
                action = "reinstate"
            elif row["state"] == State.SUSPENDED.value:
                action = after_listing_removed(row["valid_until"], removed_on)
                changes.append(
                    {
                        "honour_id": row["honour_id"],
                        "version": row["version"],
                        "state": transition(row["state"], action).value,
                    }
                )
                service._step(row, action)
            else:
                continue
            if action == "reinstate":
                out.append(
                    service._event(
                        HONOUR_REINSTATED,
                        row,
                        catalog,
                        reason="blacklist_removed",
                        entry_id=entry.entry_id,
                        reinstated_on=removed_on,
                    )
                )
            else:
                out.append(
                    service._event(HONOUR_EXPIRED, row, catalog, reason="validity_ended", entry_id=entry.entry_id)
                )
        await repository.bump_states(session, changes, datetime.now(UTC))
        await add_to_outbox(session, outbox, out)


HANDLERS: dict[str, Handler] = {ENTRY_LISTED: on_listed, ENTRY_REMOVED: on_removed}
