"""One handler per inbound event type; each writes only the gateway's read models.

Every event carries its aggregate's whole state with a version, so each read model keeps the
highest version seen whatever arrives late or twice. Each applied event is also appended to the
change feed (`rm_changes`), which is the log a rebuild replays in embedded mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import repository
from services.gateway.repository import CountKey, DayKey
from shared.consumer import Handler, Received, latest_versions
from shared.contracts.awards import HONOUR_EVENTS, HonourEvent, HonourReinstated, HonourRevoked, HonourSuspended
from shared.contracts.credit import ENTRY_EVENTS, RATING_CHANGED, RECORD_EVENTS, EntryEvent, RatingChanged, RecordEvent
from shared.contracts.sampling import RESULT_EVENTS, ResultEvent, ResultSnapshot

# ------------------------------------------------------------------------------------------ results


def _count_key(r: dict[str, Any]) -> CountKey:
    year = r["sampling_date"].year if isinstance(r["sampling_date"], date) else int(str(r["sampling_date"])[:4])
    return (r["sector"], r["level"], r["district_code"], year, bool(r["key_product"]), r["state"] == "final")


def _day_key(r: dict[str, Any]) -> DayKey:
    return (r["sampling_date"], r["sector"], r["level"], r["district_code"], bool(r["key_product"]))


def _as_row(s: ResultSnapshot, at: datetime) -> dict[str, Any]:
    return {
        "result_id": s.result_id,
        "version": s.version,
        "uscc": s.uscc,
        "enterprise_name": s.enterprise_name,
        "agency_code": s.agency_code,
        "report_no": s.report_no,
        "level": s.level,
        "sector": s.sector,
        "key_product": s.key_product,
        "product_category": s.product_category,
        "product_name": s.product_name,
        "district_code": s.district_code,
        "sampling_date": s.sampling_date,
        "report_date": s.report_date,
        "conclusion": s.conclusion,
        "state": s.state,
        "reinspection": s.reinspection,
        "updated_at": at,
    }


async def apply_results(session: AsyncSession, events: Sequence[Received[ResultEvent]]) -> None:
    """Keep each result's latest version and move the yearly and daily counters by the difference."""
    latest = latest_versions(
        events, key=lambda e: e.payload.result.result_id, version=lambda e: e.payload.result.version
    )
    current = await repository.current_results(session, list(latest))
    deltas: dict[CountKey, tuple[int, int]] = {}
    daily: dict[DayKey, tuple[int, int]] = {}

    def move(row: dict[str, Any], sign: int) -> None:
        if row["state"] == "retracted":
            return  # a retracted result counts nowhere
        passed = sign * (row["conclusion"] == "pass")
        key = _count_key(row)
        n, p = deltas.get(key, (0, 0))
        deltas[key] = (n + sign, p + passed)
        dkey = _day_key(row)
        n, p = daily.get(dkey, (0, 0))
        daily[dkey] = (n + sign, p + passed)

    changed = []
    for rid, e in latest.items():
        snap = e.payload.result
        old = current.get(rid)
        if old is not None and old["version"] >= snap.version:
            continue  # an older version arriving late changes nothing
        new = _as_row(snap, e.time)
        if old is not None:
            move(old, -1)
        move(new, +1)
        changed.append(new)
    await repository.upsert_results(session, changed)
    await repository.add_pass_counts(session, deltas)
    await repository.add_pass_daily(session, daily)


# ------------------------------------------------------------------------------------------ honours


async def apply_honours(session: AsyncSession, events: Sequence[Received[HonourEvent]]) -> None:
    """Latest honour state per honour_id, plus the suspension spans the counting rules need.

    Events of one holder arrive in order (one partition key); an event whose version is not newer
    than what is held was already applied (or superseded) and is skipped entirely.
    """
    ids = list({e.payload.honour.honour_id for e in events})
    held = await repository.current_honours(session, ids)
    spans = await repository.suspensions_of(session, ids)
    touched_honours: dict[str, dict[str, Any]] = {}
    touched_spans: set[tuple[str, str]] = set()
    for e in events:
        p = e.payload
        snap = p.honour
        hid = snap.honour_id
        old = touched_honours.get(hid) or held.get(hid)
        if old is not None and old["version"] >= snap.version:
            continue
        revoked_on = old["revoked_on"] if old else None
        if isinstance(p, HonourRevoked):
            revoked_on = p.revoked_on
        elif isinstance(p, HonourSuspended):
            key = (hid, p.entry_id)
            spans[key] = {
                "honour_id": hid,
                "entry_id": p.entry_id,
                "suspended_on": p.suspended_on,
                "reinstated_on": None,
            }
            touched_spans.add(key)
        elif isinstance(p, HonourReinstated):
            # The awards service reinstates when the last standing listing is removed: every open span ends.
            for key, span in spans.items():
                if key[0] == hid and span["reinstated_on"] is None:
                    span["reinstated_on"] = p.reinstated_on
                    touched_spans.add(key)
        touched_honours[hid] = {
            "honour_id": hid,
            "version": snap.version,
            "type_code": snap.type_code,
            "type_name_zh": snap.type_name_zh,
            "holder_kind": snap.holder_kind,
            "holder_id": snap.holder_id,
            "holder_name": snap.holder_name,
            "district_code": snap.district_code,
            "granted_on": snap.granted_on,
            "valid_until": snap.valid_until,
            "revoked_on": revoked_on,
            "state": snap.state,
            "certificate_no": snap.certificate_no,
            "granting_authority": snap.granting_authority,
            "indicator_codes": orjson.dumps(snap.indicator_codes).decode(),
            "updated_at": e.time,
        }
    await repository.upsert_honours(session, sorted(touched_honours.values(), key=lambda r: r["honour_id"]))
    await repository.upsert_suspensions(session, [spans[k] for k in sorted(touched_spans)])


# ------------------------------------------------------------------------------------------ credit


async def apply_blacklist(session: AsyncSession, events: Sequence[Received[EntryEvent]]) -> None:
    latest = latest_versions(events, key=lambda e: e.payload.entry.entry_id, version=lambda e: e.payload.entry.version)
    current = await repository.current_entries(session, list(latest))
    rows = []
    for eid, e in sorted(latest.items()):
        entry = e.payload.entry
        old = current.get(eid)
        if old is not None and old["version"] >= entry.version:
            continue
        rows.append(
            {
                "entry_id": eid,
                "version": entry.version,
                "uscc": entry.uscc,
                "enterprise_name": entry.enterprise_name,
                "reason_category": entry.reason_category,
                "status": entry.status,
                "listed_on": entry.listed_on,
                "publish_until": entry.publish_until,
                "removed_on": entry.removed_on,
                "removal_reason": entry.removal_reason,
                "decision_no": entry.decision_no,
                "deciding_authority": entry.deciding_authority,
                "updated_at": e.time,
            }
        )
    await repository.upsert_entries(session, rows)


async def apply_ratings(session: AsyncSession, events: Sequence[Received[RatingChanged]]) -> None:
    rows: dict[tuple[str, date], dict[str, Any]] = {}
    for e in events:
        d = e.payload
        rows[(d.uscc, d.as_of)] = {
            "uscc": d.uscc,
            "as_of": d.as_of,
            "rating": d.rating,
            "previous": d.previous,
            "score": d.score,
            "rule_set_version": d.rule_set_version,
        }
    await repository.upsert_ratings(session, [rows[k] for k in sorted(rows)])


async def apply_credit_records(session: AsyncSession, events: Sequence[Received[RecordEvent]]) -> None:
    """Records from other authorities have no table of their own: the change feed (which every applied
    event joins) is their read model, folded per enterprise by `profile.credit_records` (a handful of
    records per enterprise, read through the feed's subject index)."""


#: The gateway's appliers by event type: each family of types is applied in a few set-based statements.
APPLIERS: dict[str, Handler] = {
    **dict.fromkeys(RESULT_EVENTS, apply_results),
    **dict.fromkeys(HONOUR_EVENTS, apply_honours),
    **dict.fromkeys(ENTRY_EVENTS, apply_blacklist),
    **dict.fromkeys(RECORD_EVENTS, apply_credit_records),
    RATING_CHANGED: apply_ratings,
}


def feed_rows(events: Sequence[Received[Any]], applied_at: datetime) -> list[dict[str, Any]]:
    """The change feed keeps each envelope as it arrived (its payload as sent, not as parsed)."""
    return [
        {
            "event_id": e.envelope.id,
            "type": e.envelope.type,
            "source": e.envelope.source,
            "subject": e.envelope.subject,
            "time": e.envelope.time,
            "data": orjson.dumps(e.envelope.data).decode(),
            "applied_at": applied_at,
        }
        for e in events
    ]


async def apply_all(session: AsyncSession, events: Sequence[Received[Any]]) -> None:
    """Apply a batch of any types: one applier call per family (results, honours, blacklist, ratings).

    Within a family the batch's order is kept, which is all the versions need; across families no
    answer depends on the order.
    """
    families: dict[Handler, list[Received[Any]]] = {}
    named: dict[str, dict[str, Any]] = {}
    for e in events:
        apply = APPLIERS.get(e.type)
        if apply is not None:
            families.setdefault(apply, []).append(e)
            # The latest event naming an enterprise (by its time, not its arrival: topics interleave in
            # any order) gives its name, so a rebuild from Kafka or in other batch sizes learns the same.
            found = _enterprise_of(e)
            if found is not None:
                held = named.get(found["uscc"])
                if held is None or found["updated_at"] >= held["updated_at"]:
                    if held is not None and found["district_code"] is None:
                        found["district_code"] = held["district_code"]
                    named[found["uscc"]] = found
                elif held["district_code"] is None:
                    held["district_code"] = found["district_code"]
    for apply, run in families.items():
        await apply(session, run)
    await repository.upsert_enterprises(session, sorted(named.values(), key=lambda r: r["uscc"]))


def _enterprise_of(e: Received[Any]) -> dict[str, Any] | None:
    p = e.payload
    if isinstance(p, ResultEvent):
        r = p.result
        return {"uscc": r.uscc, "name": r.enterprise_name, "district_code": r.district_code, "updated_at": e.time}
    if isinstance(p, HonourEvent):
        h = p.honour
        if h.holder_kind not in ("enterprise", "organisation"):
            return None
        return {"uscc": h.holder_id, "name": h.holder_name, "district_code": h.district_code, "updated_at": e.time}
    if isinstance(p, EntryEvent) and p.entry.enterprise_name:
        return {"uscc": p.entry.uscc, "name": p.entry.enterprise_name, "district_code": None, "updated_at": e.time}
    if isinstance(p, RecordEvent):
        return {"uscc": p.record.uscc, "name": p.record.enterprise_name, "district_code": None, "updated_at": e.time}
    return None


async def apply_batch(session: AsyncSession, events: Sequence[Received[Any]]) -> None:
    """The consumer's batch handler: append to the change feed and apply, in its transaction."""
    await repository.append_changes(session, feed_rows(events, datetime.now(UTC)))
    await apply_all(session, events)
    await repository.count_applied(session, len(events))


async def _unused(session: AsyncSession, events: Sequence[Received[Any]]) -> None:
    raise AssertionError("the gateway applies whole batches (apply_batch)")


#: The event types the gateway consumes; with `batch_handler=apply_batch` the consumer hands each batch's
#: new events of these types to `apply_batch` at once.
HANDLERS: dict[str, Handler] = dict.fromkeys(APPLIERS, _unused)
