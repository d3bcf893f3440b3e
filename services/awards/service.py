"""Awards use cases. They write in the caller's unit of work (the state change and its outbox
events in one transaction) and never commit: routes, the consumer and the scheduler do."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson
import structlog
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.awards import repository
from services.awards.domain import (
    Catalog,
    DuplicateCertificateNo,
    GrantRefused,
    HolderBlacklisted,
    HonourAlreadyRevoked,
    HonourNotFound,
    HonourType,
    RevokedOnOutOfRange,
    State,
    check_dates,
    check_holder,
    check_subject,
    default_valid_until,
    load_catalog,
    transition,
)
from services.awards.models import honours, outbox
from services.awards.schemas import GrantIn, RevokeIn, RowOutcome, RowProblem
from shared.audit import note_resource
from shared.clock import Clock, as_utc
from shared.context import Context as RequestContext
from shared.contracts.awards import (
    HONOUR_EXPIRED,
    HONOUR_GRANTED,
    HONOUR_REVOKED,
    HONOUR_SUSPENDED,
    SOURCE,
)
from shared.errors import ValidationFailed, field_error
from shared.events import Envelope
from shared.outbox import add_to_outbox
from shared.preconditions import check_if_match, etag, update_row
from shared.problems import problem_type, validation_errors
from shared.regions import RegionTable, load_regions
from shared.uuid7 import new_ids

log = structlog.get_logger("awards")


@dataclass(frozen=True, kw_only=True)
class Context(RequestContext):
    catalog: Catalog
    regions: RegionTable


def default_context(actor: str, clock: Clock) -> Context:
    """The context of the service's own jobs and consumers (no request)."""
    return Context(actor=actor, clock=clock, catalog=load_catalog(), regions=load_regions())


def request_context(base: RequestContext) -> Context:
    return Context.extend(base, catalog=load_catalog(), regions=load_regions())


# ------------------------------------------------------------------------------ snapshots


def snapshot(row: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """The event payload's `honour` (events.HonourSnapshot); a unit test holds it to the model."""
    t = catalog.find(row["type_code"])
    return {
        "honour_id": row["honour_id"],
        "version": row["version"],
        "type_code": row["type_code"],
        "type_name_zh": t.name_zh if t else row["type_code"],
        "holder_kind": row["holder_kind"],
        "holder_id": row["holder_id"],
        "holder_name": row["holder_name"],
        "district_code": row["district_code"],
        "subject": orjson.loads(row["subject"]) if row["subject"] else None,
        "granted_on": row["granted_on"],
        "valid_until": row["valid_until"],
        "state": row["state"],
        "certificate_no": row["certificate_no"],
        "granting_authority": row["granting_authority"],
        "indicator_codes": [t.indicator_code] if t else [],
    }


def honour_out(row: dict[str, Any], catalog: Catalog, suspensions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out = snapshot(row, catalog)
    out.update(
        revoked_on=row["revoked_on"],
        revoke_reason=row["revoke_reason"],
        source=row["source"],
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
        suspensions=[
            {
                "entry_id": s["entry_id"],
                "decision_no": s.get("decision_no"),
                "suspended_on": s["suspended_on"],
                "reinstated_on": s["reinstated_on"],
            }
            for s in suspensions
        ],
    )
    return out


def _event(type_: str, row: dict[str, Any], catalog: Catalog, **extra: Any) -> Envelope:
    # orjson (in the outbox writer) serialises the dates; the payload matches the registered model.
    return Envelope(
        type=type_, source=SOURCE, subject=row["holder_id"], data={"honour": snapshot(row, catalog), **extra}
    )


def _step(row: dict[str, Any], action: str) -> None:
    row["state"] = transition(row["state"], action).value  # type: ignore[arg-type]
    row["version"] += 1


# ------------------------------------------------------------------------------ granting


@dataclass(frozen=True)
class Checked:
    """A grant that passed every rule that needs no database."""

    honour_type: HonourType
    body: GrantIn
    holder_id: str
    district_code: str | None
    valid_until: date | None

    @property
    def certificate(self) -> tuple[str, str]:
        """(type, certificate number): unique among stored honours."""
        return self.honour_type.code, self.body.certificate_no.strip()

    @property
    def listable(self) -> bool:
        """Whether the holder is one the quality-credit blacklist can name."""
        return self.body.holder_kind in ("enterprise", "organisation")


def check_grant(ctx: Context, body: GrantIn) -> Checked:
    honour_type = ctx.catalog.get(body.type_code)
    holder = check_holder(
        honour_type, body.holder_kind, body.holder_id, body.district_code, body.granted_on, ctx.regions
    )
    check_subject(honour_type, body.subject)
    valid_until = body.valid_until or default_valid_until(honour_type, body.granted_on)
    check_dates(body.granted_on, valid_until, ctx.clock.today())
    return Checked(honour_type, body, holder.id, holder.district_code, valid_until)


def _build(
    ctx: Context, c: Checked, honour_id: str, source: str, listing: dict[str, Any] | None
) -> tuple[dict[str, Any], list[Envelope], dict[str, Any] | None]:
    """The honour's row in its state as of today, the events that led there, and the suspension
    row if a standing listing covers it (imports of honours granted before the listing)."""
    now, today = ctx.clock.now(), ctx.clock.today()
    b = c.body
    row: dict[str, Any] = {
        "honour_id": honour_id,
        "version": 1,
        "type_code": c.honour_type.code,
        "holder_kind": b.holder_kind,
        "holder_id": c.holder_id,
        "holder_name": b.holder_name.strip(),
        "district_code": c.district_code,
        "subject": b.subject.model_dump_json() if b.subject else None,
        "granted_on": b.granted_on,
        "valid_until": c.valid_until,
        "state": State.ACTIVE.value,
        "certificate_no": b.certificate_no.strip(),
        "granting_authority": (b.granting_authority or c.honour_type.default_authority).strip(),
        "revoked_on": None,
        "revoke_reason": None,
        "source": source,
        "granted_by": ctx.actor,
        "created_at": now,
        "updated_at": now,
    }
    events = [_event(HONOUR_GRANTED, row, ctx.catalog, source=source)]
    suspension: dict[str, Any] | None = None
    expired = c.valid_until is not None and c.valid_until < today
    if listing is not None and (c.valid_until is None or c.valid_until >= listing["listed_on"]):
        suspended_on = max(listing["listed_on"], b.granted_on)
        suspension = {
            "honour_id": honour_id,
            "entry_id": listing["entry_id"],
            "suspended_on": suspended_on,
            "reinstated_on": None,
        }
        if not expired:
            _step(row, "suspend")
            events.append(
                _event(
                    HONOUR_SUSPENDED,
                    row,
                    ctx.catalog,
                    reason="blacklisted",
                    entry_id=listing["entry_id"],
                    decision_no=listing["decision_no"],
                    suspended_on=suspended_on,
                )
            )
    if expired:
        _step(row, "expire")
        events.append(_event(HONOUR_EXPIRED, row, ctx.catalog, reason="validity_ended", entry_id=None))
    return row, events, suspension


@dataclass(frozen=True)
class Stored:
    """What the database holds that grants must respect: the certificates already registered and
    the holders' standing listings."""

    certificates: dict[tuple[str, str], dict[str, Any]]
    listings: dict[str, dict[str, Any]]


async def load_stored(session: AsyncSession, checked: Sequence[Checked]) -> Stored:
    certificates = await repository.existing_certificates(session, [c.certificate for c in checked])
    listings = await repository.current_listings(session, [c.holder_id for c in checked if c.listable])
    return Stored(certificates, listings)


@dataclass(frozen=True)
class Verdict:
    """A grant the database allows: `repeats` names the stored honour a re-imported row is;
    `listing` is the standing listing an honour granted before it is suspended by (imports)."""

    repeats: str | None = None
    listing: dict[str, Any] | None = None


def check_stored(stored: Stored, c: Checked, *, historical: bool) -> Verdict:
    """A grant against the database: a certificate already registered is a conflict (unless a
    historical row repeats the stored honour itself); a listed holder is refused, except, for a
    historical row, an honour granted before the listing (it is imported suspended)."""
    listing = stored.listings.get(c.holder_id) if c.listable else None
    if listing is not None and not historical:
        raise HolderBlacklisted(listing)
    existing = stored.certificates.get(c.certificate)
    if existing is not None:
        if historical and _same_honour(existing, c):
            return Verdict(repeats=existing["honour_id"])
        raise _duplicate_certificate(existing)
    if listing is not None and c.body.granted_on >= listing["listed_on"]:
        raise HolderBlacklisted(listing)  # granted while listed: refused as a single grant would be
    return Verdict(listing=listing)


def _same_honour(stored: dict[str, Any], c: Checked) -> bool:
    return bool(stored["holder_id"] == c.holder_id and stored["granted_on"] == c.body.granted_on)


async def grant(session: AsyncSession, ctx: Context, body: GrantIn) -> dict[str, Any]:
    """Grant one honour; every rule broken is a problem and nothing is written."""
    c = check_grant(ctx, body)
    check_stored(await load_stored(session, [c]), c, historical=False)
    row, events, _ = _build(ctx, c, new_ids(1)[0], "api", None)
    try:
        await repository.insert_honours(session, [row])
    except IntegrityError:  # a concurrent grant took the certificate number between check and insert
        raise DuplicateCertificateNo(
            f"{c.certificate[0]} certificate {c.certificate[1]} is already registered"
        ) from None
    await add_to_outbox(session, outbox, events)
    return row


def _duplicate_certificate(existing: dict[str, Any]) -> DuplicateCertificateNo:
    return DuplicateCertificateNo(
        f"{existing['type_code']} certificate {existing['certificate_no']} is already registered "
        f"(honour {existing['honour_id']}, holder {existing['holder_id']})",
        honour_id=existing["honour_id"],
    )


# ------------------------------------------------------------------------------ revoking


async def revoke(
    session: AsyncSession, ctx: Context, honour_id: str, if_match: str | None, body: RevokeIn
) -> dict[str, Any]:
    row = await repository.get(session, honour_id, for_update=True)
    if row is None:
        raise HonourNotFound(honour_id)
    # Revoking twice is a conflict whatever ETag is sent: say so before checking If-Match.
    if row["state"] == State.REVOKED.value:
        raise HonourAlreadyRevoked(
            f"Honour {honour_id} was revoked on {row['revoked_on']}: {row['revoke_reason']}",
            revoked_on=row["revoked_on"].isoformat() if row["revoked_on"] else None,
        )
    check_if_match(if_match, row["version"])
    today = ctx.clock.today()
    revoked_on = body.revoked_on or today
    if not row["granted_on"] <= revoked_on <= today:
        raise RevokedOnOutOfRange(
            f"revoked_on must lie between the grant ({row['granted_on']}) and today ({today})",
            [field_error("revoked_on", "body", "outside granted_on … today")],
        )
    new_state = transition(row["state"], "revoke")  # TransitionError is the 409 invalid-transition
    values = {"state": new_state.value, "revoked_on": revoked_on, "revoke_reason": body.reason}
    row = await update_row(session, honours, "honour_id", row, values, ctx.clock.now())
    await add_to_outbox(
        session, outbox, [_event(HONOUR_REVOKED, row, ctx.catalog, reason=body.reason, revoked_on=revoked_on)]
    )
    return row


# ------------------------------------------------------------------------------ expiry job


async def expire_due(session: AsyncSession, catalog: Catalog, today: date, now: datetime) -> int:
    """Expire every active or suspended honour whose last valid day is before `today`."""
    total = 0
    while True:
        rows = await repository.due_for_expiry(session, today, 1000)
        if not rows:
            return total
        changes, events = [], []
        for row in rows:
            changes.append({"honour_id": row["honour_id"], "version": row["version"], "state": "expired"})
            _step(row, "expire")
            events.append(_event(HONOUR_EXPIRED, row, catalog, reason="validity_ended", entry_id=None))
        await repository.bump_states(session, changes, now)
        await add_to_outbox(session, outbox, events)
        total += len(rows)


async def expiry_job(uow: Any, clock: Clock) -> int:
    """The scheduled job (ServiceSpec.jobs): runs in its own unit of work with the runtime's clock."""
    return await expire_due(uow.session, load_catalog(), clock.today(), clock.now())


# ------------------------------------------------------------------------------ bulk import

CSV_COLUMNS = (
    "type_code",
    "holder_kind",
    "holder_id",
    "holder_name",
    "district_code",
    "granted_on",
    "valid_until",
    "certificate_no",
    "granting_authority",
    "subject_kind",
    "subject_name",
    "subject_number",
    "subject_title",
    "subject_role",
)
CSV_REQUIRED = ("type_code", "holder_id", "holder_name", "granted_on", "certificate_no")
EXTRA_CELLS = "__extra_cells__"


def _row_to_grant(catalog: Catalog, raw: dict[str, str]) -> GrantIn:
    values: dict[str, Any] = {k: v.strip() for k, v in raw.items() if v is not None and v.strip() != ""}
    # A registry of one type often leaves the holder kind out: infer it when the type allows one kind.
    if "holder_kind" not in values and "type_code" in values:
        t = catalog.get(values["type_code"])  # an unknown type is the row's problem, not a missing kind
        if len(t.holder_kinds) == 1:
            values["holder_kind"] = t.holder_kinds[0]
    subject = {k.removeprefix("subject_"): values.pop(k) for k in list(values) if k.startswith("subject_")}
    if subject:
        values["subject"] = subject
    return GrantIn.model_validate(values)


def _pydantic_problems(exc: ValidationError) -> list[RowProblem]:
    out = []
    for e in validation_errors([dict(e) for e in exc.errors()]):
        name = e["field"].replace("subject.", "subject_") if e["field"].startswith("subject.") else e["field"]
        out.append(RowProblem(field=name, reason=e["reason"], type=problem_type(ValidationFailed.slug)))
    return out


def _rejected(row: int, *problems: RowProblem) -> RowOutcome:
    return RowOutcome(row=row, outcome="rejected", problems=list(problems))


def _refused(row: int, err: GrantRefused) -> RowOutcome:
    return _rejected(row, RowProblem(field=err.field, reason=err.reason, type=problem_type(err.slug)))


def _check_row(ctx: Context, row: int, raw: dict[str, str]) -> Checked | RowOutcome:
    """A row checked by every rule that needs no database, or its rejection."""
    if EXTRA_CELLS in raw:
        reason = f"more cells than columns: {raw[EXTRA_CELLS]!r}"
        return _rejected(row, RowProblem(field="row", reason=reason, type=problem_type(ValidationFailed.slug)))
    try:
        return check_grant(ctx, _row_to_grant(ctx.catalog, raw))
    except ValidationError as exc:
        return _rejected(row, *_pydantic_problems(exc))
    except GrantRefused as err:
        return _refused(row, err)


@dataclass
class _Batch:
    """The honours an import creates, checked against the database and against the earlier rows."""

    ctx: Context
    stored: Stored
    ids: Iterator[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[Envelope] = field(default_factory=list)
    suspensions: list[dict[str, Any]] = field(default_factory=list)
    # certificate -> (row number, honour id, the grant) of the row that created it
    seen: dict[tuple[str, str], tuple[int, str, Checked]] = field(default_factory=dict)

    def add(self, row: int, c: Checked) -> RowOutcome:
        try:
            repeats = self._repeats_earlier_row(c)
            verdict = Verdict(repeats=repeats) if repeats else check_stored(self.stored, c, historical=True)
        except GrantRefused as err:
            return _refused(row, err)
        if verdict.repeats is not None:
            return RowOutcome(row=row, outcome="duplicate", honour_id=verdict.repeats)
        honour_id = next(self.ids)
        new, events, suspension = _build(self.ctx, c, honour_id, "import", verdict.listing)
        self.rows.append(new)
        self.events.extend(events)
        if suspension:
            self.suspensions.append(suspension)
        self.seen[c.certificate] = (row, honour_id, c)
        return RowOutcome(row=row, outcome="created", honour_id=honour_id)

    def _repeats_earlier_row(self, c: Checked) -> str | None:
        """The honour an earlier row of the file created with this certificate, if this row is the
        same honour; a conflict if it is another."""
        if c.certificate not in self.seen:
            return None
        first_row, first_id, first = self.seen[c.certificate]
        if first.holder_id == c.holder_id and first.body.granted_on == c.body.granted_on:
            return first_id
        type_code, number = c.certificate
        raise DuplicateCertificateNo(f"{type_code} certificate {number} already appears in row {first_row}")

    async def write(self, session: AsyncSession) -> None:
        await repository.insert_honours(session, self.rows)
        await repository.add_suspensions(session, self.suspensions)
        await add_to_outbox(session, outbox, self.events)


async def import_rows(session: AsyncSession, ctx: Context, rows: Sequence[dict[str, str]]) -> list[RowOutcome]:
    """Import a historical registry: each row is created, a duplicate of a stored honour (same type,
    certificate, holder and date: a re-import changes nothing) or rejected with its problems.
    Valid rows are written with one executemany, whatever others are rejected."""
    outcomes: dict[int, RowOutcome] = {}
    checked: list[tuple[int, Checked]] = []
    for i, raw in enumerate(rows, start=1):
        result = _check_row(ctx, i, raw)
        if isinstance(result, RowOutcome):
            outcomes[i] = result
        else:
            checked.append((i, result))
    stored = await load_stored(session, [c for _, c in checked])
    batch = _Batch(ctx, stored, iter(new_ids(len(checked))))
    for i, c in checked:
        outcomes[i] = batch.add(i, c)
    await batch.write(session)
    return [outcomes[i] for i in sorted(outcomes)]


# ------------------------------------------------------------------------------ archives

#: An archive's further columns (POST /v1/honours:archive): a revocation with its own date.
ARCHIVE_COLUMNS = (*CSV_COLUMNS, "revoked_on", "revoke_reason")


def _revocation_of(on: str, why: str, raw: dict[str, str], today: date) -> tuple[RevokeIn | None, list[RowProblem]]:
    if not on and not why:
        return None, []
    slug = problem_type(ValidationFailed.slug)
    if not on or not why:
        missing = "revoked_on" if not on else "revoke_reason"
        return None, [RowProblem(field=missing, reason="a revocation needs revoked_on and revoke_reason", type=slug)]
    try:
        body = RevokeIn.model_validate({"reason": why, "revoked_on": on})
    except ValidationError as exc:
        return None, _pydantic_problems(exc)
    granted = (raw.get("granted_on") or "").strip()
    assert body.revoked_on is not None
    if body.revoked_on > today or (granted and granted[:10] > body.revoked_on.isoformat()):
        return None, [RowProblem(field="revoked_on", reason="outside granted_on … today", type=slug)]
    return body, []


async def import_archive(
    session: AsyncSession, ctx: Context, rows: Sequence[dict[str, str]], source_file: str
) -> list[RowOutcome]:
    """A registry from the archive: each honour granted on its date as `honours:import` does, then
    revoked on the archive's date when the row says so (the events of live operation, in order)."""
    note_resource(session, imported="true", source_file=source_file)
    today = ctx.clock.today()
    plain: list[dict[str, str]] = []
    revocations: list[RevokeIn | None] = []
    refused: dict[int, list[RowProblem]] = {}
    for i, raw in enumerate(rows):
        row = dict(raw)
        on, why = (row.pop("revoked_on", "") or "").strip(), (row.pop("revoke_reason", "") or "").strip()
        body, problems = _revocation_of(on, why, row, today)
        if problems:
            refused[i] = problems
        else:
            plain.append(row)
            revocations.append(body)
    stored = iter(await import_rows(session, ctx, plain))
    revoking = iter(revocations)
    out: list[RowOutcome] = []
    for i in range(len(rows)):
        if i in refused:
            out.append(RowOutcome(row=i + 1, outcome="rejected", problems=refused[i]))
            continue
        o, body = next(stored).model_copy(update={"row": i + 1}), next(revoking)
        if o.outcome == "created" and body is not None and o.honour_id is not None:
            current = await repository.get(session, o.honour_id)
            assert current is not None
            await revoke(session, ctx, o.honour_id, etag(current["version"]), body)
        out.append(o)
    return out
