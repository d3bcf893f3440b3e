"""Sampling use cases. They add and flush in the caller's unit of work; they never commit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.sampling import repository
from services.sampling.domain import (
    CONTENT_FIELDS,
    AgencyTokenRequired,
    ArchivedStep,
    NothingToCorrect,
    NotOwningAgency,
    ReportConflict,
    ResultNotFound,
    ResultRetracted,
    Rules,
    State,
    check_archived_outcome,
    check_result,
    content_key,
    initial_state,
    objection_deadline,
    reinspect,
)
from services.sampling.models import outbox, results
from services.sampling.schemas import (
    ArchiveResultIn,
    Correction,
    ReinspectionIn,
    ResultFields,
    ResultIn,
    RowProblem,
)
from shared.audit import note_resource
from shared.clock import Clock
from shared.context import Context as RequestContext
from shared.contracts.sampling import (
    BATCH_SIZE,
    RESULT_BATCH_RECORDED,
    RESULT_CORRECTED,
    RESULT_FINALISED,
    RESULT_RECORDED,
    RESULT_REINSPECTED,
    RESULT_RETRACTED,
    SOURCE,
)
from shared.errors import ValidationFailed, field_error
from shared.events import Envelope
from shared.outbox import add_to_outbox
from shared.preconditions import check_if_match, update_if_version
from shared.problems import invalid_fields, validation_errors
from shared.regions import RegionTable
from shared.uuid7 import new_ids


@dataclass(frozen=True, kw_only=True)
class Context(RequestContext):
    """What every use case needs besides the session: who acts, when, and the rules in force."""

    rules: Rules
    regions: RegionTable
    #: Whether a bulk request's new results may travel as batch events (see `_recorded_events`).
    batch_events: bool = False


def agency_of(ctx: Context) -> str:
    if not ctx.agency:
        raise AgencyTokenRequired()
    return ctx.agency


def snapshot(row: dict[str, Any]) -> dict[str, Any]:
    """The event payload's `result` (see events.ResultSnapshot), built without a model on the bulk path;
    a unit test holds it to the model."""
    items = row["nonconforming_items"]
    return {
        "result_id": row["id"],
        "version": row["version"],
        "agency_code": row["agency_code"],
        "report_no": row["report_no"],
        "level": row["level"],
        "sector": row["sector"],
        "key_product": row["key_product"],
        "product_category": row["product_category"],
        "product_name": row["product_name"],
        "brand": row["brand"],
        "uscc": row["uscc"],
        "enterprise_name": row["enterprise_name"],
        "district_code": row["district_code"],
        "sampling_date": row["sampling_date"],
        "report_date": row["report_date"],
        "conclusion": row["conclusion"],
        "original_conclusion": row["original_conclusion"],
        "state": row["state"],
        "objection_deadline": row["objection_deadline"],
        "reinspection": row["reinspection"],
        "nonconforming_count": (0 if items == "[]" else len(orjson.loads(items)))
        if isinstance(items, str)
        else len(items),
        "recorded_at": row["recorded_at"],
    }


def _event(
    type_: str, row: dict[str, Any], event_id: str | None = None, at: datetime | None = None, **extra: Any
) -> Envelope:
    # orjson (in the outbox writer) serialises the dates; the payload matches the registered model.
    data = {"result": snapshot(row), **extra}
    if event_id is None or at is None:
        return Envelope(type=type_, source=SOURCE, subject=row["uscc"], data=data)
    return Envelope(type=type_, source=SOURCE, subject=row["uscc"], data=data, id=event_id, time=at)


def _recorded_events(agency: str, rows: Sequence[dict[str, Any]], now: datetime, *, batch: bool) -> list[Envelope]:
    """One `ResultRecorded` per result; with `batch`, several go out as batch events of up to
    `BATCH_SIZE` snapshots (shared/contracts/sampling.py): one outbox row and inbox row per batch.

    Batches are only for a bus that hands each consumer the outbox's rows in order (the embedded
    suite's in-process bus). Over Kafka a result's later events are keyed by its enterprise, and a
    batch mixing enterprises would sit in another partition: two gateway replicas would then apply
    one result's versions at once (counted twice) and its versions could arrive out of order.
    """
    if len(rows) == 1 or not batch:
        return [_event(RESULT_RECORDED, r, eid, now) for r, eid in zip(rows, new_ids(len(rows)), strict=True)]
    chunks = [rows[i : i + BATCH_SIZE] for i in range(0, len(rows), BATCH_SIZE)]
    return [
        Envelope(
            type=RESULT_BATCH_RECORDED,
            source=SOURCE,
            subject=agency,
            data={"results": [snapshot(r) for r in chunk]},
            id=eid,
            time=now,
        )
        for chunk, eid in zip(chunks, new_ids(len(chunks)), strict=True)
    ]


def _new_row(agency: str, actor: str, data: ResultIn, rid: str, now: datetime, rules: Rules) -> dict[str, Any]:
    # `_value_` rather than `.value`: the enum property costs more than the rest of the row here.
    conclusion = data.conclusion._value_
    items = data.nonconforming_items
    return {
        "id": rid,
        "version": 1,
        "agency_code": agency,
        "report_no": data.report_no,
        "level": data.level._value_,
        "sector": data.sector._value_,
        "key_product": data.key_product,
        "product_category": data.product_category,
        "product_name": data.product_name,
        "brand": data.brand,
        "model_spec": data.model_spec,
        "batch_no": data.batch_no,
        "production_date": data.production_date,
        "uscc": data.uscc,
        "enterprise_name": data.enterprise_name,
        "district_code": data.district_code,
        "sampled_unit": data.sampled_unit,
        "sampling_date": data.sampling_date,
        "report_date": data.report_date,
        "conclusion": conclusion,
        "original_conclusion": conclusion,
        "state": initial_state(conclusion)._value_,
        "objection_deadline": objection_deadline(conclusion, data.report_date, rules),
        "reinspection": None,
        "nonconforming_items": orjson.dumps([i.model_dump() for i in items]).decode() if items else "[]",
        "recorded_at": now,
        "updated_at": now,
        "recorded_by": actor,
    }


def _stored_content(row: dict[str, Any]) -> tuple[Any, ...]:
    return content_key(row)


def _incoming_content(data: ResultIn) -> tuple[Any, ...]:
    values = data.model_dump()
    values["original_conclusion"] = data.conclusion.value
    values["level"], values["sector"] = data.level.value, data.sector.value
    values["nonconforming_items"] = orjson.dumps([i.model_dump() for i in data.nonconforming_items]).decode()
    return tuple(values.get(f) for f in CONTENT_FIELDS)


def row_problems(data: ResultIn, ctx: Context, today: date) -> list[RowProblem]:
    facts = {
        "production_date": data.production_date,
        "sampling_date": data.sampling_date,
        "report_date": data.report_date,
        "district_code": data.district_code,
        "conclusion": data.conclusion,
        "nonconforming_items": data.nonconforming_items,
    }
    return [RowProblem(field=f, reason=why) for f, why in check_result(facts, today, ctx.regions)]


async def record_batch(
    session: AsyncSession, ctx: Context, rows: Sequence[ResultIn | list[RowProblem]], *, atomic: bool = False
) -> list[dict[str, Any]]:
    """Store the valid rows with their events in two bulk statements and report every row.

    With `atomic`, one rejected or conflicting row stores nothing (the caller then rolls back).
    """
    agency = agency_of(ctx)
    now, today = ctx.clock.now(), ctx.clock.today()
    valid = [r for r in rows if isinstance(r, ResultIn)]
    existing = await repository.find_by_reports(session, agency, [r.report_no for r in valid])
    ids = iter(new_ids(len(valid)))
    # Plain dicts, not RowOutcome models: ten thousand model instances cost more than storing the rows.
    outcomes: list[dict[str, Any]] = []
    new_rows: list[dict[str, Any]] = []
    for n, item in enumerate(rows, start=1):
        if not isinstance(item, ResultIn):
            outcomes.append({"row": n, "outcome": "rejected", "id": None, "problems": [p.model_dump() for p in item]})
            continue
        problems = row_problems(item, ctx, today)
        if problems:
            outcomes.append(
                {"row": n, "outcome": "rejected", "id": None, "problems": [p.model_dump() for p in problems]}
            )
            continue
        seen = existing.get(item.report_no)
        if seen is not None:
            if _stored_content(seen) == _incoming_content(item):
                outcomes.append({"row": n, "outcome": "duplicate", "id": seen["id"], "problems": []})
            else:
                reason = f"report {item.report_no} was already recorded with other content; correct it instead"
                outcomes.append(
                    {
                        "row": n,
                        "outcome": "conflict",
                        "id": seen["id"],
                        "problems": [{"field": "report_no", "reason": reason}],
                    }
                )
            continue
        row = _new_row(agency, ctx.actor, item, next(ids), now, ctx.rules)
        existing[item.report_no] = row  # a report repeated inside the batch is a duplicate of its first
        new_rows.append(row)
        outcomes.append({"row": n, "outcome": "created", "id": row["id"], "problems": []})
    tally = Counter(o["outcome"] for o in outcomes)
    if atomic and (tally["rejected"] or tally["conflict"]):
        return outcomes
    await repository.insert_results(session, new_rows)
    await add_to_outbox(session, outbox, _recorded_events(agency, new_rows, now, batch=ctx.batch_events))
    await repository.log_ingest(session, agency, now, len(rows), tally)
    return outcomes


async def record_result(session: AsyncSession, ctx: Context, data: ResultIn) -> tuple[str, bool]:
    """One result; answers (id, created). A re-sent identical report is not created twice."""
    (outcome,) = await record_batch(session, ctx, [data], atomic=True)
    if outcome["outcome"] == "rejected":
        errors = [field_error(p["field"], "body", p["reason"], "value_error") for p in outcome["problems"]]
        raise invalid_fields(errors)
    if outcome["outcome"] == "conflict":
        raise ReportConflict(outcome["problems"][0]["reason"], outcome["id"])
    return str(outcome["id"]), outcome["outcome"] == "created"


async def _load_owned(session: AsyncSession, ctx: Context, result_id: str, if_match: str | None) -> dict[str, Any]:
    row = await repository.get(session, result_id)
    if row is None:
        raise ResultNotFound(result_id)
    if row["agency_code"] != agency_of(ctx):
        raise NotOwningAgency(row["agency_code"])
    check_if_match(if_match, row["version"])
    if row["state"] == State.retracted:
        raise ResultRetracted()
    return row


async def _write_version(
    session: AsyncSession, ctx: Context, old: dict[str, Any], new: dict[str, Any], change: str, reason: str | None
) -> None:
    """Store the new current row and its history (the first change also saves version 1)."""
    frozen = ("id", "agency_code", "report_no", "recorded_at", "recorded_by", "version")
    values = {k: v for k, v in new.items() if k not in frozen}
    await update_if_version(session, results, results.c.id == old["id"], old["version"], values)
    history = []
    if old["version"] == 1:
        history.append(_version_row(old, "recorded", None, old["recorded_by"], old["recorded_at"], old["agency_code"]))
    history.append(_version_row(new, change, reason, ctx.actor, new["updated_at"], ctx.agency))
    await repository.insert_versions(session, history)


def _version_row(
    row: dict[str, Any], change: str, reason: str | None, actor: str, at: datetime, agency: str | None
) -> dict[str, Any]:
    """One history row: who (`actor`, and the `agency` of their token) made this version, when, why."""
    full = {k: row[k] for k in row if k != "recorded_by"}
    full["nonconforming_items"] = orjson.loads(row["nonconforming_items"])
    return {
        "result_id": row["id"],
        "version": row["version"],
        "change": change,
        "reason": reason,
        "actor": actor,
        "agency": agency,
        "at": at,
        "snapshot": orjson.dumps(full, option=orjson.OPT_NON_STR_KEYS).decode(),  # column names are quoted_name
    }


EDITABLE = tuple(f for f in ResultFields.model_fields)


async def correct(
    session: AsyncSession, ctx: Context, result_id: str, if_match: str | None, body: Correction
) -> dict[str, Any]:
    old = await _load_owned(session, ctx, result_id, if_match)
    unknown = sorted(set(body.changes) - set(EDITABLE))
    if unknown:
        raise ValidationFailed(
            f"Fields that cannot be corrected: {', '.join(unknown)}",
            [
                field_error(f"changes.{f}", "body", "unknown or not correctable field", "extra_forbidden")
                for f in unknown
            ],
        )
    current = {f: old[f] for f in EDITABLE if f not in ("conclusion", "nonconforming_items")}
    current["conclusion"] = old["original_conclusion"]
    current["nonconforming_items"] = orjson.loads(old["nonconforming_items"])
    merged = {**current, **body.changes}
    try:
        fields = ResultFields.model_validate(merged)
    except ValidationError as exc:
        errors = [{**e, "field": f"changes.{e['field']}"} for e in validation_errors([dict(x) for x in exc.errors()])]
        raise ValidationFailed("The corrected result is not valid", errors) from None
    problems = check_result(fields.model_dump(), ctx.clock.today(), ctx.regions)
    if problems:
        raise ValidationFailed(
            "The corrected result is not valid",
            [field_error(f"changes.{b.field}", "body", b.reason, "value_error") for b in problems],
        )
    data = ResultIn.model_validate({**fields.model_dump(), "report_no": old["report_no"]})
    new = _new_row(old["agency_code"], old["recorded_by"], data, old["id"], old["recorded_at"], ctx.rules)
    changed = [f for f in EDITABLE if _cmp(new, old, f)]
    if not changed:
        raise NothingToCorrect()
    if new["original_conclusion"] == old["original_conclusion"]:
        # The verdict stands: keep where the fail is in its lifecycle.
        for k in ("conclusion", "state", "objection_deadline", "reinspection"):
            new[k] = old[k]
    new["version"] = old["version"] + 1
    new["updated_at"] = ctx.clock.now()
    await _write_version(session, ctx, old, new, "corrected", body.reason)
    await add_to_outbox(session, outbox, [_event(RESULT_CORRECTED, new, reason=body.reason, changed_fields=changed)])
    return new


def _cmp(new: dict[str, Any], old: dict[str, Any], field: str) -> bool:
    if field == "conclusion":
        return bool(new["original_conclusion"] != old["original_conclusion"])
    return bool(new[field] != old[field])


async def retract(
    session: AsyncSession, ctx: Context, result_id: str, if_match: str | None, reason: str
) -> dict[str, Any]:
    old = await _load_owned(session, ctx, result_id, if_match)
    new = {**old, "state": State.retracted.value, "version": old["version"] + 1, "updated_at": ctx.clock.now()}
    await _write_version(session, ctx, old, new, "retracted", reason)
    await add_to_outbox(session, outbox, [_event(RESULT_RETRACTED, new, reason=reason)])
    return new


async def record_reinspection(
    session: AsyncSession, ctx: Context, result_id: str, if_match: str | None, body: ReinspectionIn
) -> dict[str, Any]:
    """Any agency may record the re-inspection it performed (by design: the re-inspecting agency is
    rarely the one that sampled); the owning agency's result changes, and the new version in the
    result's history names the recording agency (`agency`) and subject (`actor`)."""
    agency_of(ctx)
    old = await repository.get(session, result_id)
    if old is None:
        raise ResultNotFound(result_id)
    check_if_match(if_match, old["version"])
    today = ctx.clock.today()
    for field, value in (("requested_on", body.requested_on), ("decided_on", body.decided_on)):
        if value > today:
            raise ValidationFailed.one(field, "body", "in the future", f"{field} is in the future", "value_error")
    if body.decided_on < body.requested_on:
        raise ValidationFailed.one(
            "decided_on", "body", "before requested_on", "decided_on is before requested_on", "value_error"
        )
    outcome = reinspect(
        old["state"], old["objection_deadline"], body.requested_on, body.outcome, old["original_conclusion"]
    )
    new = {
        **old,
        "state": outcome.state.value,
        "conclusion": str(outcome.conclusion),
        "reinspection": outcome.reinspection,
        "version": old["version"] + 1,
        "updated_at": ctx.clock.now(),
    }
    await _write_version(
        session, ctx, old, new, "reinspected", f"re-inspection {body.reinspection_report_no}: {body.outcome}"
    )
    await add_to_outbox(
        session,
        outbox,
        [
            _event(
                RESULT_REINSPECTED,
                new,
                outcome=body.outcome,
                decided_on=body.decided_on,
                reinspection_report_no=body.reinspection_report_no,
            )
        ],
    )
    return new


async def finalise_due(session: AsyncSession, clock: Clock, limit: int = 5000) -> int:
    """Make final every provisional fail whose objection window closed before today (the scheduled job)."""
    today, now = clock.today(), clock.now()
    total = 0
    while True:
        due = await repository.due_for_finalisation(session, today, limit)
        if not due:
            return total
        await repository.finalise_many(session, [{"b_id": r["id"], "b_version": r["version"]} for r in due], now)
        finals = [{**r, "state": State.final.value, "version": r["version"] + 1, "updated_at": now} for r in due]
        history = [
            _version_row(r, "recorded", None, r["recorded_by"], r["recorded_at"], r["agency_code"])
            for r in due
            if r["version"] == 1
        ]
        history += [_version_row(r, "finalised", "objection window closed", "system", now, None) for r in finals]
        await repository.insert_versions(session, history)
        await add_to_outbox(session, outbox, [_event(RESULT_FINALISED, r) for r in finals])
        total += len(due)
        if len(due) < limit:
            return total


# ---------------------------------------------------------------- archives


def archived_at(day: date) -> datetime:
    """An archived change's time: the start of its day in UTC (archives keep dates, not times)."""
    return datetime.combine(day, time(0), UTC)


async def import_archive(
    session: AsyncSession, ctx: Context, rows: Sequence[ArchiveResultIn | list[RowProblem]], source_file: str
) -> list[dict[str, Any]]:
    """Record archived results as they happened: each one recorded on its report date, then
    re-inspected or finalised on the archive's dates, with the same events as live operation.

    The history's reasons and the audit row say it was imported, by whom (the actor) and from which
    file. A re-imported row with the same content is a duplicate; other content is a conflict.
    """
    today = ctx.clock.today()
    note_resource(session, imported="true", source_file=source_file)
    existing = await _archived_already(session, ctx, rows)
    outcomes: list[dict[str, Any]] = []
    new_rows: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    events: list[Envelope] = []
    imported = f"imported from {source_file}"
    for n, item in enumerate(rows, start=1):
        if not isinstance(item, ArchiveResultIn):
            outcomes.append(_rejected(n, item))
            continue
        breaches = row_problems(item, ctx, today)
        more, steps = check_archived_outcome(item.model_dump(), today, ctx.rules)
        breaches += [RowProblem(field=b.field, reason=b.reason) for b in more]
        if breaches:
            outcomes.append(_rejected(n, breaches))
            continue
        agency = item.agency_code or agency_of(ctx)
        seen = existing.get((agency, item.report_no))
        if seen is not None:
            outcomes.append(_archived_again(n, item, seen, agency))
            continue
        (rid,) = new_ids(1)
        row = _new_row(agency, ctx.actor, item, rid, archived_at(item.report_date), ctx.rules)
        existing[(agency, item.report_no)] = row
        history.append(_version_row(row, "recorded", imported, ctx.actor, row["recorded_at"], ctx.agency))
        events.append(_event(RESULT_RECORDED, row, new_ids(1)[0], row["recorded_at"]))
        for step in steps:
            row = _archived_step(row, item, step, ctx, imported, history, events)
        new_rows.append(row)
        outcomes.append({"row": n, "outcome": "created", "id": rid, "problems": []})
    await repository.insert_results(session, new_rows)
    await repository.insert_versions(session, history)
    await add_to_outbox(session, outbox, events)
    return outcomes


async def _archived_already(
    session: AsyncSession, ctx: Context, rows: Sequence[ArchiveResultIn | list[RowProblem]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The stored results an archive's rows name, by (agency, report no.): one query per agency."""
    by_agency: dict[str, list[str]] = {}
    for r in rows:
        if isinstance(r, ArchiveResultIn):
            by_agency.setdefault(r.agency_code or agency_of(ctx), []).append(r.report_no)
    return {
        (agency, no): row
        for agency, nos in by_agency.items()
        for no, row in (await repository.find_by_reports(session, agency, nos)).items()
    }


def _rejected(n: int, problems: list[RowProblem]) -> dict[str, Any]:
    return {"row": n, "outcome": "rejected", "id": None, "problems": [p.model_dump() for p in problems]}


def _archived_again(n: int, item: ArchiveResultIn, seen: dict[str, Any], agency: str) -> dict[str, Any]:
    """A row whose report is already stored: a duplicate if the content is the same, else a conflict."""
    if _stored_content(seen) == _incoming_content(item):
        return {"row": n, "outcome": "duplicate", "id": seen["id"], "problems": []}
    reason = f"report {item.report_no} of {agency} was already recorded with other content"
    return {"row": n, "outcome": "conflict", "id": seen["id"], "problems": [{"field": "report_no", "reason": reason}]}


def _archived_step(
    row: dict[str, Any],
    item: ArchiveResultIn,
    step: ArchivedStep,
    ctx: Context,
    imported: str,
    history: list[dict[str, Any]],
    events: list[Envelope],
) -> dict[str, Any]:
    """One archived change after the recording (a re-inspection or the window closing), on its own
    date: the row as it stands after it, with its history row and event appended."""
    at = archived_at(step.on)
    row = {**row, "state": State.final.value, "version": row["version"] + 1, "updated_at": at}
    if step.change == "reinspected":
        outcome = item.reinspection_outcome
        row |= {"reinspection": outcome, "conclusion": "pass" if outcome == "overturned" else row["conclusion"]}
        extra = {
            "outcome": outcome,
            "decided_on": item.reinspection_decided_on,
            "reinspection_report_no": item.reinspection_report_no,
        }
        events.append(_event(RESULT_REINSPECTED, row, new_ids(1)[0], at, **extra))
        why = f"re-inspection {item.reinspection_report_no}: {outcome} ({imported})"
        history.append(_version_row(row, step.change, why, ctx.actor, at, ctx.agency))
    else:
        events.append(_event(RESULT_FINALISED, row, new_ids(1)[0], at))
        history.append(_version_row(row, step.change, f"objection window closed ({imported})", "system", at, None))
    return row
