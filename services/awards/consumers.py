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
from services.awards.domain import Catalog, State, after_listing_removed, load_catalog, transition
from services.awards.models import outbox
from shared.consumer import Handler, Received
from shared.contracts.awards import HONOUR_EXPIRED, HONOUR_REINSTATED, HONOUR_SUSPENDED
from shared.contracts.credit import ENTRY_LISTED, ENTRY_REMOVED, EntryEvent, EntrySnapshot
from shared.events import Envelope
from shared.outbox import add_to_outbox


def _city_day(at: datetime) -> date:
    # The city's calendar day (China Standard Time, UTC+8 all year), as SystemClock.today() counts it.
    return (at + timedelta(hours=8)).date()


def _listing(entry: EntrySnapshot, version: int, listed_on: date, removed_on: date | None = None) -> dict[str, Any]:
    """The listing as awards keeps it: what suspends an enterprise's honours, from when to when."""
    return {
        "entry_id": entry.entry_id,
        "version": version,
        "uscc": entry.uscc.strip().upper(),
        "enterprise_name": entry.enterprise_name,
        "decision_no": entry.decision_no,
        "listed_on": listed_on,
        "publish_until": entry.publish_until,
        "removed_on": removed_on,
        "removal_reason": entry.removal_reason if removed_on else None,
    }


@dataclass
class _Writes:
    """What one listing or removal does to honours, written together at the end of its event."""

    catalog: Catalog
    entry: EntrySnapshot
    suspensions: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    events: list[Envelope] = field(default_factory=list)

    def suspend(self, row: dict[str, Any], on: date, *, announce: bool) -> None:
        """The honour is held by this listing from `on`; announced where its state or span changes."""
        self.suspensions.append(
            {"honour_id": row["honour_id"], "entry_id": self.entry.entry_id, "suspended_on": on, "reinstated_on": None}
        )
        if announce:
            extra = {"entry_id": self.entry.entry_id, "decision_no": self.entry.decision_no, "suspended_on": on}
            self.events.append(service._event(HONOUR_SUSPENDED, row, self.catalog, reason="blacklisted", **extra))

    def move(self, row: dict[str, Any], action: str) -> None:
        """A new version of the honour in the state `action` leads to."""
        new_state = transition(row["state"], action).value  # type: ignore[arg-type]
        self.changes.append({"honour_id": row["honour_id"], "version": row["version"], "state": new_state})
        service._step(row, action)

    def unchanged(self, row: dict[str, Any]) -> None:
        """A new version of the honour in the state it is in (its history gained a dated span)."""
        self.changes.append({"honour_id": row["honour_id"], "version": row["version"], "state": row["state"]})
        row["version"] += 1

    async def write(self, session: AsyncSession) -> None:
        await repository.add_suspensions(session, self.suspensions)
        await repository.bump_states(session, self.changes, datetime.now(UTC))
        await add_to_outbox(session, outbox, self.events)


async def on_listed(session: AsyncSession, events: Sequence[Received[EntryEvent]]) -> None:
    """The enterprise is blacklisted: remember the listing and suspend its active honours."""
    catalog = load_catalog()
    for event in events:
        entry = event.payload.entry
        listed_on = entry.listed_on or _city_day(event.time)
        stored = await repository.get_listing(session, entry.entry_id)
        if stored is not None and stored["version"] >= entry.version:
            continue  # the same listing again (a republished event with a new id): suspend once
        listing = _listing(entry, entry.version, listed_on)
        await repository.save_listing(session, listing)
        w = _Writes(catalog, entry)
        for row in await repository.honours_of(session, listing["uscc"], ("active", "suspended")):
            # Also recorded under an honour another listing already suspended, so it stays suspended
            # until the last standing listing is removed.
            active = row["state"] == State.ACTIVE.value
            suspended_on = max(listed_on, row["granted_on"])
            if active:
                w.move(row, "suspend")
            w.suspend(row, suspended_on, announce=active)
        await _suspend_in_the_past(session, w, listing["uscc"], listed_on)
        await w.write(session)


async def _suspend_in_the_past(session: AsyncSession, w: _Writes, uscc: str, listed_on: date) -> None:
    """A listing dated in the past (an imported archive) also suspended, from its listing day, the
    honours that were in force then and have expired or been revoked since: their span is recorded
    and announced (state unchanged) so counts as of past dates leave them out while it stood."""
    for row in await repository.honours_of(session, uscc, (State.EXPIRED.value, State.REVOKED.value)):
        until, revoked = row["valid_until"], row["revoked_on"]
        if row["granted_on"] > listed_on or (until is not None and until < listed_on):
            continue
        if revoked is not None and revoked <= listed_on:
            continue
        w.unchanged(row)
        w.suspend(row, listed_on, announce=True)


async def on_removed(session: AsyncSession, events: Sequence[Received[EntryEvent]]) -> None:
    """The listing is removed: honours it suspended come back if still valid, else they expire."""
    catalog = load_catalog()
    for event in events:
        entry = event.payload.entry
        removed_on = entry.removed_on or _city_day(event.time)
        stored = await repository.get_listing(session, entry.entry_id) or {}
        if stored.get("removed_on") is not None:
            continue  # already removed: a second removal changes nothing
        version, listed_on = max(entry.version, stored.get("version", 0)), entry.listed_on or stored.get("listed_on")
        await repository.save_listing(session, _listing(entry, version, listed_on or removed_on, removed_on))
        ids = await repository.open_suspensions_of_entry(session, entry.entry_id)
        await repository.close_suspensions(session, entry.entry_id, removed_on)
        held = await repository.still_suspended(session, ids)  # another listing still stands
        w = _Writes(catalog, entry)
        for row in await repository.get_many(session, ids):
            if row["honour_id"] in held:
                continue
            if row["state"] in (State.EXPIRED.value, State.REVOKED.value):
                # Its span ends here too (a listing of the past, see _suspend_in_the_past): announced
                # with the state unchanged, so counts as of past dates see when it ended.
                w.unchanged(row)
                action = "reinstate"
            elif row["state"] == State.SUSPENDED.value:
                action = after_listing_removed(row["valid_until"], removed_on)
                w.move(row, action)
            else:
                continue
            if action == "reinstate":
                extra = {"entry_id": entry.entry_id, "reinstated_on": removed_on}
                w.events.append(service._event(HONOUR_REINSTATED, row, catalog, reason="blacklist_removed", **extra))
            else:
                extra = {"entry_id": entry.entry_id}
                w.events.append(service._event(HONOUR_EXPIRED, row, catalog, reason="validity_ended", **extra))
        await w.write(session)


HANDLERS: dict[str, Handler] = {ENTRY_LISTED: on_listed, ENTRY_REMOVED: on_removed}
