"""Thin routes of the credit service: validate, call the service, commit, answer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import matching, service
from services.credit import repository as repo
from services.credit.domain import NotYourRecord, RuleBook, compute_rating
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
from shared.db import UnitOfWork
from shared.idempotency import post_once
from shared.pagination import Page, decode_cursor, page
from shared.preconditions import etag
from shared.problems import PROBLEM_SCHEMA, validation_errors
from shared.ratelimit import public_rate_limit
from shared.routing import (
    ERRORS,
    WRITE_ERRORS,
    ArchiveSource,
    Cursor,
    IdempotencyKey,
    Limit,
    PublicLimit,
    Reader,
    Section,
    endpoint,
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
_blacklist = Section(router, "blacklist", ERRORS, WRITE_ERRORS)
_screening = Section(router, "screening", ERRORS)  # a screening reads: nothing to conflict with
_credit = Section(router, "credit", ERRORS)
_records = Section(router, "credit records", ERRORS, WRITE_ERRORS)
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
    summary="Propose a blacklist entry (credit officer)",
)
async def propose(body: Proposal, principal: Writer, creation: IdempotentCreation) -> Any:
    async def create() -> tuple[int, Any]:
        ctx = _ctx(creation.request, creation.ctx)
        return 201, _entry_out(await service.propose(creation.uow.session, ctx, body))

    out = await creation.once(idempotency_keys, principal, "/v1/blacklist-entries", body, create)
    creation.response.headers["Location"] = f"/v1/blacklist-entries/{out['entry_id']}"
    return out


@dataclass(frozen=True)
class EntryQuery:
    """What the officers' list of entries is asked: a status, an enterprise, and the page (query parameters)."""

    status: Annotated[str | None, Query(pattern="^(proposed|listed|rejected|removed)$")] = None
    uscc: OptionalUsccQuery = None
    cursor: Cursor = None
    limit: Limit = 100


@_blacklist.listing(
    "/blacklist-entries", EntryOut, summary="Entries for officers, oldest first, filtered by status or enterprise"
)
async def list_entries(_: Officer, uow: UoW, query: Annotated[EntryQuery, Depends()]) -> Any:
    after = decode_cursor(query.cursor, str)
    rows = await repo.list_entries(
        uow.session, status=query.status, uscc=query.uscc, after=after, limit=query.limit + 1
    )
    return page(rows, query.limit, lambda r: (r["entry_id"],))


#: A use case changing one versioned row: `(session, ctx, key, if_match, body)` → the row as it now stands.
UseCase = Callable[..., Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class _Versioned:
    """The routes of one kind of versioned row (an entry, a record): `GET {path}`, and its actions `POST
    {path}:{action}` under If-Match, each answering the new version as `render` shows it, with its ETag.
    A call each registers the read or an action (its body, who may, the use case and the summary), in the
    document's order."""

    section: Section
    path: str
    key: str
    model: type[BaseModel]
    render: Callable[[dict[str, Any]], dict[str, Any]]
    suffix: str = ""

    def add(
        self,
        action: str,
        body: type[BaseModel],
        who: Any,
        use_case: UseCase,
        summary: str,
        *,
        accepted: tuple[str, Callable[[dict[str, Any]], bool]] | None = None,
        idempotent: bool = False,
    ) -> None:
        """`accepted`: the 202's description, and when an answer is only a request (202, not 200);
        `idempotent`: an Idempotency-Key makes a retry answer the first response again."""
        path = f"{self.path}:{action}"

        async def run(change: Change, body: BaseModel, principal: Principal, **more: Any) -> Any:
            key, ctx = more[self.key], _ctx(change.request, change.ctx)
            if idempotent:

                async def once() -> tuple[int, Any]:
                    return 200, self.render(await use_case(change.uow.session, ctx, key, change.if_match, body))

                at, retry_key = self.section.router.prefix + path.format(**{self.key: key}), more["idempotency_key"]
                return await post_once(
                    change.uow, change.response, idempotency_keys, principal, retry_key, at, body, once
                )
            out = self.render(await change.commit(use_case, ctx, key, body))
            if accepted is not None and accepted[1](out):
                change.response.status_code = status.HTTP_202_ACCEPTED
            return out

        params = {self.key: str, "body": body, "principal": who, "change": VersionedChange}
        if idempotent:
            params["idempotency_key"] = IdempotencyKey
        responses = WRITE_ERRORS | ({202: {"description": accepted[0]}} if accepted else {})
        name = action.replace("-", "_") + self.suffix
        route = endpoint(name, run, params, {"idempotency_key": None})
        self.section.post(path, response_model=self.model, responses=responses, summary=summary)(route)

    def read(
        self, name: str, who: Any, show: Callable[[AsyncSession, Principal, str], Awaitable[Any]], summary: str
    ) -> None:
        """`GET {path}`: the row as `show(session, principal, key)` answers it, with its ETag for the next action."""

        async def run(principal: Principal, uow: UnitOfWork, response: Response, **more: Any) -> Any:
            out = await show(uow.session, principal, more[self.key])
            response.headers["ETag"] = etag(out["version"])
            return out

        params = {self.key: str, "principal": who, "uow": UoW, "response": Response}
        self.section.get(self.path, response_model=self.model, summary=summary)(endpoint(name, run, params))


async def _entry_shown(session: AsyncSession, _: Principal, entry_id: str) -> dict[str, Any]:
    return _entry_out(await service.load_entry(session, entry_id))


#: One entry: its read, and the steps of its lifecycle.
_entry = _Versioned(_blacklist, "/blacklist-entries/{entry_id}", "entry_id", EntryOut, _entry_out)
_entry.read("get_entry", Officer, _entry_shown, "One entry, with its ETag for the next transition")
_entry.add(
    "approve",
    Approval,
    Reviewer,
    service.approve,
    "Approve a proposal (a reviewer other than the proposer; If-Match): the enterprise is told and its "
    "statement period starts (noticed), or, where the rules give no notice, it is listed at once",
)
_entry.add(
    "reject", Rejection, Reviewer, service.reject, "Reject a proposal (a reviewer other than the proposer; If-Match)"
)
_entry.add(
    "apply-repair",
    RepairApplication,
    Writer,
    service.apply_repair,
    "File a credit-repair application with evidence (from the earliest repair date; If-Match)",
    idempotent=True,
)
_entry.add(
    "review-repair",
    RepairReview,
    Reviewer,
    service.review_repair,
    "Approve (removes the entry as repaired) or refuse a repair application (another reviewer; If-Match)",
)
_entry.add(
    "remove",
    WrongfulRemoval,
    Reviewer,
    service.remove_wrongful,
    "Remove a listing as wrongful: one reviewer requests (202), another confirms (200; If-Match)",
    # Still listed after the first of the two reviewers: requested, not removed yet.
    accepted=("Removal requested: a second reviewer confirms it", lambda out: out["status"] == "listed"),
)
_entry.add(
    "record-statement",
    Statement,
    Writer,
    service.record_statement,
    "Record the enterprise's statement or hearing request (陈述申辩) received by the deadline: the "
    "entry goes to a reviewer (If-Match)",
)
_entry.add(
    "decide-statement",
    StatementDecision,
    Reviewer,
    service.decide_statement,
    "Decide on the statement: upheld lists the enterprise, accepted closes the proposal (a reviewer "
    "other than the proposer; If-Match)",
)


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


@dataclass(frozen=True)
class RecordQuery:
    """What a list of records is asked: an enterprise, and the page (query parameters)."""

    uscc: OptionalUsccQuery = None
    cursor: Cursor = None
    limit: Limit = 100


@_records.listing(
    "/credit-records",
    CreditRecordOut,
    summary="Records from other authorities, oldest first (officers: all; an authority: its own)",
)
async def list_records(principal: RecordReader, uow: UoW, query: Annotated[RecordQuery, Depends()]) -> Any:
    authority = None if _sees_all_records(principal) else (principal.agency or principal.subject)
    after, limit = decode_cursor(query.cursor, str), query.limit
    rows = await repo.list_authority_records(
        uow.session, authority=authority, uscc=query.uscc, after=after, limit=limit + 1
    )
    return page(rows, limit, lambda r: (r["record_id"],), _record_out)


async def _record_shown(session: AsyncSession, reader: Principal, record_id: str) -> dict[str, Any]:
    """One record with every version: an authority sees only its own."""
    rec = await service.load_record(session, record_id)
    if not _sees_all_records(reader) and rec["authority"] != (reader.agency or reader.subject):
        raise NotYourRecord(rec["authority"])
    return _record_out(rec, await repo.record_history(session, record_id))


#: One record: its read, and the sending authority's changes.
_record = _Versioned(_records, "/credit-records/{record_id}", "record_id", CreditRecordOut, _record_out, "_record")
_record.read(
    "get_record",
    RecordReader,
    _record_shown,
    "One record with every version, and its ETag for a correction or withdrawal",
)
_record.add(
    "correct",
    RecordCorrection,
    Authority,
    service.correct_record,
    "Correct a record: a new version of the whole record (the sending authority only; If-Match)",
)
_record.add(
    "withdraw",
    RecordWithdrawal,
    Authority,
    service.withdraw_record,
    "Withdraw a record: it stops counting, every version kept (the sending authority only; If-Match)",
)


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
async def import_listings(request: Request, source_file: ArchiveSource, ctx: RequestContext, uow: UoW) -> Any:
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
