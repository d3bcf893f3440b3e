"""Thin routes of the credit service: validate, call the service, commit, answer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ValidationError

from services.credit import matching, service
from services.credit import repository as repo
from services.credit.domain import EntryNotFound, NotYourRecord, RuleBook, compute_rating
from services.credit.models import idempotency_keys
from services.credit.schemas import (
    Approval,
    ArchivedListing,
    ArchivedListingOutcome,
    CandidateOut,
    CheckOut,
    ContributionOut,
    CreditOut,
    CreditRecordIn,
    CreditRecordOut,
    EnterpriseHistory,
    EntryOut,
    HistoryItem,
    ListingImportOut,
    MatchesOut,
    MatchIn,
    MatchResult,
    Proposal,
    PublicEntry,
    RecordBatchOut,
    RecordCorrection,
    RecordOutcome,
    RecordVersionOut,
    RecordWithdrawal,
    Rejection,
    RepairApplication,
    RepairReview,
    ScreeningIn,
    ScreeningOut,
    Statement,
    StatementDecision,
    WrongfulRemoval,
)
from shared.auth import Principal, require, require_any
from shared.context import Change, Context, IdempotentCreation, RequestContext, VersionedChange
from shared.idempotency import post_once
from shared.pagination import Page, decode_cursor, page
from shared.preconditions import etag
from shared.problems import PROBLEM_SCHEMA, validation_errors
from shared.ratelimit import public_rate_limit
from shared.routing import (
    ERRORS,
    WRITE_ERRORS,
    ArchiveImporter,
    Cursor,
    IdempotencyKey,
    Limit,
    PublicLimit,
    Reader,
    Section,
    SourceFile,
    problems,
)
from shared.runtime import UoW
from shared.strict import Day
from shared.tabular import body_format, json_array, ndjson_lines, tally
from shared.uscc import OptionalUsccQuery, UsccPath, UsccQuery, parse_usccs

router = APIRouter(prefix="/v1")
M = TypeVar("M", bound=BaseModel)
Writer = Annotated[Principal, require("credit:write")]
Reviewer = Annotated[Principal, require("credit:review")]
#: The sections of the document, each with the errors its routes answer (writes name theirs).
_blacklist = Section(router, "blacklist", ERRORS)
_screening = Section(router, "screening", ERRORS)
_credit = Section(router, "credit", ERRORS)
_records = Section(router, "credit records", WRITE_ERRORS)
#: Credit officers and reviewers both see the full records and histories.
Officer = Annotated[Principal, require_any("credit:write", "credit:review")]
#: Another authority's system sending its records (one token per system; its agency names it).
Authority = Annotated[Principal, require("credit:records")]
#: Who reads authority records: officers, and each authority its own.
RecordReader = Annotated[Principal, require_any("credit:records", "credit:write", "credit:review")]


def _book(request: Request) -> RuleBook:
    book: RuleBook = request.app.state.rules
    return book


#: Rows per archive import request.
IMPORT_MAX_ROWS = 10_000


async def _json_rows(
    request: Request, model: type[M], max_rows: int
) -> tuple[int, list[M], dict[int, list[dict[str, str]]]]:
    """A JSON array or NDJSON body's rows: how many, those valid as `model`, the others' problems by row
    (from 1)."""
    body = await request.body()
    fmt = body_format(request.headers.get("content-type", ""), ("json", "ndjson"))
    items = json_array(body, max_rows) if fmt == "json" else ndjson_lines(body, max_rows)
    valid: list[M] = []
    refused: dict[int, list[dict[str, str]]] = {}
    for n, item in enumerate(items, start=1):
        try:
            valid.append(model.model_validate_json(item) if isinstance(item, bytes) else model.model_validate(item))
        except ValidationError as exc:
            errors = validation_errors([dict(x) for x in exc.errors()])
            refused[n] = [{"field": e["field"], "reason": e["reason"]} for e in errors]
    return len(items), valid, refused


def _ctx(request: Request, base: Context) -> service.Context:
    return service.Context.extend(base, book=_book(request), names=request.app.state.register_index)


_PUBLIC_FIELDS = tuple(k for k in PublicEntry.model_fields if k != "reason_category_zh")


def _public_dict(book: RuleBook, e: Any) -> dict[str, Any]:
    """The publishable fields of an entry (PublicEntry's shape), as a plain dict."""
    row: dict[str, Any] = e if isinstance(e, dict) else dict(e._mapping)
    cat = row["reason_category"]
    names = [s.reason_categories[cat].name_zh for s in reversed(book.sets) if cat in s.reason_categories]
    out = {k: row[k] for k in _PUBLIC_FIELDS}
    out["reason_category_zh"] = names[0] if names else None
    return out


def _public(book: RuleBook, e: Any) -> PublicEntry:
    return PublicEntry(**_public_dict(book, e))


def _entry_out(entry: dict[str, Any]) -> dict[str, Any]:
    return EntryOut.model_validate(entry).model_dump(mode="json")


def _answer(response: Response, entry: dict[str, Any]) -> dict[str, Any]:
    response.headers["ETag"] = etag(entry["version"])
    return _entry_out(entry)


# ---------------------------------------------------------------- rules


@router.get("/rating-rules", tags=["rules"], summary="The credit rule set in force (public), and every version")
async def rating_rules(
    request: Request,
    as_of: Annotated[Day | None, Query(description="The date; today when omitted")] = None,
) -> dict[str, Any]:
    book = _book(request)
    on = as_of or request.app.state.runtime.clock.today()
    rules = book.in_force(on)
    return {
        "as_of": on.isoformat(),
        "rule_set": rules.raw,
        "versions": [{"version": s.version, "effective_from": s.effective_from.isoformat()} for s in book.sets],
        "working_days": {
            "covered_through": book.working_days.covered_through(),
            "loaded_years": [{"year": y, "notice": a.notice} for y, a in sorted(book.working_days.loaded.items())],
        },
    }


# ---------------------------------------------------------------- the blacklist lifecycle


@_blacklist.create(
    "/blacklist-entries",
    EntryOut,
    responses=WRITE_ERRORS,
    summary="Propose a blacklist entry (credit officer)",
)
async def propose(body: Proposal, principal: Writer, creation: IdempotentCreation) -> Any:
    async def create() -> tuple[int, Any]:
        ctx = _ctx(creation.request, creation.ctx)
        return 201, _entry_out(await service.propose(creation.uow.session, ctx, body))

    out = await creation.once(idempotency_keys, principal, "/v1/blacklist-entries", body, create)
    creation.response.headers["Location"] = f"/v1/blacklist-entries/{out['entry_id']}"
    return out


@_blacklist.listing(
    "/blacklist-entries", EntryOut, summary="Entries for officers, oldest first, filtered by status or enterprise"
)
async def list_entries(
    _: Officer,
    uow: UoW,
    status_: Annotated[str | None, Query(alias="status", pattern="^(proposed|listed|rejected|removed)$")] = None,
    uscc: OptionalUsccQuery = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Any:
    after = decode_cursor(cursor, str)
    rows = await repo.list_entries(uow.session, status=status_, uscc=uscc, after=after, limit=limit + 1)
    return page(rows, limit, lambda r: (r["entry_id"],))


@_blacklist.get(
    "/blacklist-entries/{entry_id}", response_model=EntryOut, summary="One entry, with its ETag for the next transition"
)
async def get_entry(entry_id: str, _: Officer, uow: UoW, response: Response) -> Any:
    entry = await repo.get_entry(uow.session, entry_id)
    if entry is None:
        raise EntryNotFound(entry_id)
    return _answer(response, entry)


#: The routes that change one entry and answer it, If-Match and ETag.
_entry_change = partial(_blacklist.post, response_model=EntryOut, responses=WRITE_ERRORS)


async def _commit(
    render: Callable[[dict[str, Any]], dict[str, Any]],
    use_case: Callable[..., Awaitable[dict[str, Any]]],
    change: Change,
    key: str,
    body: Any,
) -> Any:
    """Run a change of one versioned row (an entry, a record), commit, and answer it as `render` shows it."""
    return render(await change.commit(use_case, _ctx(change.request, change.ctx), key, body))


_transition = partial(_commit, _entry_out)


@_entry_change(
    "/blacklist-entries/{entry_id}:approve",
    summary="Approve a proposal (a reviewer other than the proposer; If-Match): the enterprise is told and its "
    "statement period starts (noticed), or, where the rules give no notice, it is listed at once",
)
async def approve(entry_id: str, body: Approval, _: Reviewer, change: VersionedChange) -> Any:
    return await _transition(service.approve, change, entry_id, body)


@_entry_change(
    "/blacklist-entries/{entry_id}:reject", summary="Reject a proposal (a reviewer other than the proposer; If-Match)"
)
async def reject(entry_id: str, body: Rejection, _: Reviewer, change: VersionedChange) -> Any:
    return await _transition(service.reject, change, entry_id, body)


@_entry_change(
    "/blacklist-entries/{entry_id}:apply-repair",
    summary="File a credit-repair application with evidence (from the earliest repair date; If-Match)",
)
async def apply_repair(
    entry_id: str,
    body: RepairApplication,
    principal: Writer,
    change: VersionedChange,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    session, ctx = change.uow.session, _ctx(change.request, change.ctx)

    async def apply() -> tuple[int, Any]:
        return 200, _entry_out(await service.apply_repair(session, ctx, entry_id, change.if_match, body))

    path = f"/v1/blacklist-entries/{entry_id}:apply-repair"
    return await post_once(change.uow, change.response, idempotency_keys, principal, idempotency_key, path, body, apply)


@_entry_change(
    "/blacklist-entries/{entry_id}:review-repair",
    summary="Approve (removes the entry as repaired) or refuse a repair application (another reviewer; If-Match)",
)
async def review_repair(entry_id: str, body: RepairReview, _: Reviewer, change: VersionedChange) -> Any:
    return await _transition(service.review_repair, change, entry_id, body)


@_entry_change(
    "/blacklist-entries/{entry_id}:remove",
    summary="Remove a listing as wrongful: one reviewer requests (202), another confirms (200; If-Match)",
    responses=WRITE_ERRORS | {202: {"description": "Removal requested: a second reviewer confirms it"}},
)
async def remove(entry_id: str, body: WrongfulRemoval, _: Reviewer, change: VersionedChange) -> Any:
    out = await _transition(service.remove_wrongful, change, entry_id, body)
    if out["status"] == "listed":  # the first of the two reviewers: requested, not removed yet
        change.response.status_code = status.HTTP_202_ACCEPTED
    return out


@_entry_change(
    "/blacklist-entries/{entry_id}:record-statement",
    summary="Record the enterprise's statement or hearing request (陈述申辩) received by the deadline: the "
    "entry goes to a reviewer (If-Match)",
)
async def record_statement(entry_id: str, body: Statement, _: Writer, change: VersionedChange) -> Any:
    return await _transition(service.record_statement, change, entry_id, body)


@_entry_change(
    "/blacklist-entries/{entry_id}:decide-statement",
    summary="Decide on the statement: upheld lists the enterprise, accepted closes the proposal (a reviewer "
    "other than the proposer; If-Match)",
)
async def decide_statement(entry_id: str, body: StatementDecision, _: Reviewer, change: VersionedChange) -> Any:
    return await _transition(service.decide_statement, change, entry_id, body)


# ---------------------------------------------------------------- records from other authorities

#: Records per batch request.
RECORDS_MAX_ROWS = 10_000


def _record_out(rec: dict[str, Any], versions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = CreditRecordOut.model_validate(
        {**rec, "versions": [RecordVersionOut.model_validate(v) for v in versions] if versions is not None else None}
    )
    return out.model_dump(mode="json")


@_records.create(
    "/credit-records",
    CreditRecordOut,
    responses=WRITE_ERRORS | {200: {"description": "A resend of a record already held (same number and content)"}},
    summary="Send one record from another authority (penalty, upheld complaint, licence or certification "
    "action, positive record); idempotent by the authority's own record_no",
)
async def create_record(body: CreditRecordIn, _: Authority, ctx: RequestContext, uow: UoW, request: Request) -> Any:
    result = await service.record_one(uow.session, _ctx(request, ctx), body)
    await uow.commit()
    rec = result.record or {}
    headers = {"Location": f"/v1/credit-records/{rec['record_id']}", "ETag": etag(rec["version"])}
    code = status.HTTP_201_CREATED if result.outcome == "created" else status.HTTP_200_OK
    return Response(orjson.dumps(_record_out(rec)), status_code=code, media_type="application/json", headers=headers)


@_records.post(
    "/credit-records:batch",
    response_model=RecordBatchOut,
    responses=WRITE_ERRORS | problems(400, 413, 415),
    summary="Send up to 10,000 records (JSON array or NDJSON); every row's outcome is reported",
    description="Each row is a record as `POST /v1/credit-records` takes it. A row already held (same "
    "record_no and content) is a duplicate; the same record_no with other content a conflict (send a "
    "correction); a row that is not valid is rejected with its problems. The other rows are stored.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/CreditRecordIn"}}
                },
                "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def create_records_batch(request: Request, _: Authority, ctx: RequestContext, uow: UoW) -> Any:
    received, valid, refused = await _json_rows(request, CreditRecordIn, RECORDS_MAX_ROWS)
    stored = iter(await service.record_many(uow.session, _ctx(request, ctx), valid))
    await uow.commit()
    rows: list[RecordOutcome] = []
    for n in range(1, received + 1):
        if n in refused:
            rows.append(RecordOutcome(row=n, outcome="rejected", problems=refused[n]))
            continue
        r = next(stored)
        rec = r.record or {}
        rows.append(
            RecordOutcome(
                row=n,
                outcome=r.outcome,
                record_id=rec.get("record_id"),
                version=rec.get("version"),
                problems=r.problems or [],
                candidates=[CandidateOut(**service.candidate_json(c)) for c in r.candidates or []],
            )
        )
    return RecordBatchOut(received=received, **tally(RecordBatchOut, (o.outcome for o in rows)), rows=rows)


def _sees_all_records(principal: Principal) -> bool:
    return bool(principal.scopes & {"credit:write", "credit:review", "admin"})


@_records.listing(
    "/credit-records",
    CreditRecordOut,
    responses=ERRORS,
    summary="Records from other authorities, oldest first (officers: all; an authority: its own)",
)
async def list_records(
    principal: RecordReader,
    uow: UoW,
    uscc: OptionalUsccQuery = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Any:
    authority = None if _sees_all_records(principal) else (principal.agency or principal.subject)
    after = decode_cursor(cursor, str)
    rows = await repo.list_authority_records(uow.session, authority=authority, uscc=uscc, after=after, limit=limit + 1)
    return page(rows, limit, lambda r: (r["record_id"],), _record_out)


@_records.get(
    "/credit-records/{record_id}",
    response_model=CreditRecordOut,
    responses=ERRORS,
    summary="One record with every version, and its ETag for a correction or withdrawal",
)
async def get_record(record_id: str, principal: RecordReader, uow: UoW, response: Response) -> Any:
    rec = await service.load_record(uow.session, record_id)
    if not _sees_all_records(principal) and rec["authority"] != (principal.agency or principal.subject):
        raise NotYourRecord(rec["authority"])
    response.headers["ETag"] = etag(rec["version"])
    return _record_out(rec, await repo.record_history(uow.session, record_id))


_record_change = partial(_commit, _record_out)
#: The routes by which the sending authority changes one record (If-Match, ETag).
_record_version = partial(_records.post, response_model=CreditRecordOut)


@_record_version(
    "/credit-records/{record_id}:correct",
    summary="Correct a record: a new version of the whole record (the sending authority only; If-Match)",
)
async def correct_record(record_id: str, body: RecordCorrection, _: Authority, change: VersionedChange) -> Any:
    return await _record_change(service.correct_record, change, record_id, body)


@_record_version(
    "/credit-records/{record_id}:withdraw",
    summary="Withdraw a record: it stops counting, every version kept (the sending authority only; If-Match)",
)
async def withdraw_record(record_id: str, body: RecordWithdrawal, _: Authority, change: VersionedChange) -> Any:
    return await _record_change(service.withdraw_record, change, record_id, body)


@_credit.post(
    "/enterprises:match",
    response_model=MatchesOut,
    summary="Find enterprises by name (up to 1,000): scored, explained candidates; one USCC only when unambiguous",
    description="Names are compared by their core: full-width characters made half-width, traditional made "
    "simplified, the region prefix (青岛 / 青岛市 / (青岛) / a district) and the organisation form (有限公司, "
    "股份有限公司, 有限责任公司, 集团…) removed. A name is answered with a USCC only when its best candidate "
    "scores at least `threshold` and leads the next by `margin`; otherwise every candidate is listed for a "
    "person to choose (`ambiguous`). The district, given or named by the prefix, raises or lowers a score.",
)
async def match_enterprises(body: MatchIn, _: Reader, ctx: RequestContext, uow: UoW, request: Request) -> Any:
    found = await service.match_names(uow.session, _ctx(request, ctx), [(q.name, q.district_code) for q in body.names])
    results = [
        MatchResult(
            row=n,
            name=q.name,
            outcome=m.outcome,
            uscc=m.uscc,
            candidates=[CandidateOut(**service.candidate_json(c)) for c in m.candidates],
        )
        for n, (q, m) in enumerate(zip(body.names, found, strict=True), start=1)
    ]
    counts = Counter(r.outcome for r in results)
    return MatchesOut(
        count=len(results),
        matched=counts["matched"],
        ambiguous=counts["ambiguous"],
        not_found=counts["not_found"],
        threshold=matching.THRESHOLD,
        margin=matching.MARGIN,
        results=results,
    )


# ---------------------------------------------------------------- reading


@router.get(
    "/blacklist",
    response_model=Page[PublicEntry],
    responses={429: PROBLEM_SCHEMA, 422: PROBLEM_SCHEMA},
    tags=["public"],
    dependencies=[Depends(public_rate_limit)],
    summary="The published blacklist (公示): current entries, publishable fields only; no token, rate-limited",
)
async def public_blacklist(
    request: Request,
    uow: UoW,
    cursor: Cursor = None,
    limit: PublicLimit = 50,
    on: Annotated[
        date | None, Query(description="The list as published on this day, from what is recorded (default today)")
    ] = None,
) -> Any:
    today = request.app.state.runtime.clock.today()
    rows = await repo.public_list(uow.session, on or today, decode_cursor(cursor, date, str), limit + 1)
    book = _book(request)
    return page(rows, limit, lambda r: (r["listed_on"], r["entry_id"]), lambda r: _public(book, r))


@_screening.get(
    "/blacklist/check", response_model=CheckOut, summary="Is this enterprise blacklisted on a date (today by default)?"
)
async def check(request: Request, _: Reader, uow: UoW, code: UsccQuery, as_of: Day | None = None) -> Any:
    on = as_of or request.app.state.runtime.clock.today()
    found = (await repo.listed_entries(uow.session, [code], on)).get(code)
    return CheckOut(
        uscc=code, as_of=on, listed=found is not None, entry=_public(_book(request), found) if found else None
    )


@_screening.post(
    "/screenings",
    response_model=ScreeningOut,
    responses=WRITE_ERRORS,
    summary="Screen up to 1,000 enterprises at once (one query): each one's status on the date",
)
async def screen(body: ScreeningIn, request: Request, _: Reader, uow: UoW) -> Any:
    codes = parse_usccs(body.usccs, "usccs")
    on = body.as_of or request.app.state.runtime.clock.today()
    found = await repo.listed_entries(uow.session, list(dict.fromkeys(codes)), on)
    book = _book(request)
    # Plain dicts in ScreeningOut's shape, encoded once: a thousand pydantic models, validated again as
    # the response model, cost more than the query (measured: ~35 µs per listed enterprise). Each
    # enterprise's entry is made once, however often its code is repeated in the request.
    entries = {c: _public_dict(book, e) for c, e in found.items()}
    results = [{"uscc": c, "as_of": on, "listed": c in entries, "entry": entries.get(c)} for c in codes]
    out: dict[str, Any] = {
        "as_of": on,
        "count": len(results),
        "listed_count": sum(1 for r in results if r["listed"]),
        "results": results,
    }
    return Response(orjson.dumps(out), media_type="application/json")


def _contributions(records: list[dict[str, Any]], rating: Any) -> list[ContributionOut]:
    by_id = {r["record_id"]: r for r in records}
    out = []
    for c in rating.contributions:
        r = by_id[c.record_id]
        out.append(
            ContributionOut(
                record_id=c.record_id,
                kind=r["kind"],
                source=r["source"],
                title=r["title"],
                level=r["level"],
                sector=r["sector"],
                fact_date=r["fact_date"],
                valid_until=r["valid_until"],
                state=r["state"],
                note=r["note"],
                authority=r.get("authority"),
                counted=c.counted,
                points=c.points,
                why=c.why,
            )
        )
    return out


@_credit.get(
    "/enterprises/{uscc}/credit",
    response_model=CreditOut,
    summary="An enterprise's rating on a date, the rule set used, and every record's contribution",
)
async def credit(_: Reader, code: UsccPath, request: Request, uow: UoW, as_of: Day | None = None) -> Any:
    on = as_of or request.app.state.runtime.clock.today()
    book = _book(request)
    rules = book.in_force(on)
    records = (await repo.records_of(uow.session, [code]))[code]
    found = (await repo.listed_entries(uow.session, [code], on)).get(code)
    rating = compute_rating(rules, records, on, found is not None)
    names = {g["grade"]: g["name_zh"] for g in rules.rating["grades"] + rules.rating["forced"]}
    return CreditOut(
        uscc=code,
        as_of=on,
        rating=rating.grade,  # type: ignore[arg-type]
        rating_name_zh=names.get(rating.grade, ""),
        score=rating.score,
        rule_set_version=rules.version,
        forced_by=rating.forced_by,
        listed=found is not None,
        entry=_public(book, found) if found else None,
        records=_contributions(records, rating),
    )


@_credit.get(
    "/enterprises/{uscc}/history",
    response_model=EnterpriseHistory,
    summary="An enterprise's full blacklist history and credit records (officers)",
)
async def history(_: Officer, code: UsccPath, request: Request, uow: UoW) -> Any:
    today = request.app.state.runtime.clock.today()
    records = (await repo.records_of(uow.session, [code]))[code]
    rating = compute_rating(_book(request).in_force(today), records, today, False)
    return EnterpriseHistory(
        uscc=code,
        entries=[EntryOut.model_validate(e) for e in await repo.entries_of(uow.session, code)],
        transitions=[HistoryItem.model_validate(h) for h in await repo.history_of(uow.session, uscc=code)],
        records=_contributions(records, rating),
    )


@_blacklist.post(
    "/blacklist:import",
    response_model=ListingImportOut,
    responses=problems(400, 401, 403, 413, 415, 422),
    summary="Import archived blacklist decisions and removals with their own dates",
    description="A JSON array or NDJSON of archived listings (fields: the proposal's, and proposed_by, "
    "proposed_on, reviewed_by, decided_on, listed_from, removed_on, removal_reason, removal_decision_no, "
    "removal_note; docs/archive-import.md). Each is proposed, listed and (if so) removed on the "
    "archive's dates by the archive's proposer and reviewer (different people), with the events live operation "
    "emits; the public list shows the archive's listing dates. `X-Source-File` names the archive file; the "
    "history and the audit record keep it. See docs/archive-import.md.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def import_listings(
    request: Request, _: ArchiveImporter, source_file: SourceFile, ctx: RequestContext, uow: UoW
) -> Any:
    received, rows, refused = await _json_rows(request, ArchivedListing, IMPORT_MAX_ROWS)
    stored = await service.import_listings(uow.session, _ctx(request, ctx), rows, source_file)
    await uow.commit()
    valid = iter(stored)
    outcomes = [
        ArchivedListingOutcome(row=n, outcome="rejected", problems=refused[n])
        if n in refused
        else next(valid).model_copy(update={"row": n})
        for n in range(1, received + 1)
    ]
    counts = tally(ListingImportOut, (o.outcome for o in outcomes))
    return ListingImportOut(source_file=source_file, received=received, **counts, rows=outcomes)
