"""Thin routes of the credit service: validate, call the service, commit, answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from services.credit import repository as repo
from services.credit import service
from services.credit.domain import EntryNotFound, RuleBook, compute_rating
from services.credit.models import idempotency_keys
from services.credit.schemas import (
    Approval,
    CheckOut,
    ContributionOut,
    CreditOut,
    EnterpriseHistory,
    EntryOut,
    HistoryItem,
    Proposal,
    PublicEntry,
    Rejection,
    RepairApplication,
    RepairReview,
    ScreeningIn,
    ScreeningOut,
    WrongfulRemoval,
)
from shared.auth import Principal, current_principal, require
from shared.errors import InsufficientScope, InvalidCursor, InvalidUscc
from shared.idempotency import remember, replay, request_hash
from shared.pagination import Page, decode_cursor, encode_cursor
from shared.preconditions import etag
from shared.problems import PROBLEM_SCHEMA
from shared.ratelimit import TokenBuckets, rate_limited
from shared.runtime import UoW
from shared.service_app import request_id
from shared.uscc import validate_uscc

router = APIRouter(prefix="/v1")
Writer = Annotated[Principal, require("credit:write")]
Reviewer = Annotated[Principal, require("credit:review")]
Reader = Annotated[Principal, require("read")]
_errors: dict[int | str, dict[str, Any]] = {s: PROBLEM_SCHEMA for s in (401, 403, 404, 409, 412, 422, 428)}
IdempotencyKey = Annotated[
    str | None, Header(description="Retries with the same key and body answer the first response again")
]
IfMatch = Annotated[str | None, Header(description="The ETag read from the entry")]
ANY_OFFICER = ("credit:write", "credit:review")


async def _officer(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """Credit officers and reviewers both see the full records and histories."""
    if not any(principal.has(s) for s in ANY_OFFICER):
        raise InsufficientScope(*ANY_OFFICER, detail="This operation needs 'credit:write' or 'credit:review'")
    return principal


Officer = Annotated[Principal, Depends(_officer)]


def _book(request: Request) -> RuleBook:
    book: RuleBook = request.app.state.rules
    return book


def _ctx(request: Request, principal: Principal) -> service.Context:
    return service.Context(principal.subject, request.app.state.runtime.clock, _book(request), request_id(request))


def _uscc(value: str, field: str = "uscc", where: str = "query") -> str:
    try:
        return validate_uscc(value.strip())
    except ValueError as exc:
        raise InvalidUscc.of(value, str(exc), field, where) from None


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


def _answer(response: Response, entry: dict[str, Any]) -> dict[str, Any]:
    response.headers["ETag"] = etag(entry["version"])
    return EntryOut.model_validate(entry).model_dump(mode="json")


# ---------------------------------------------------------------- rules


@router.get("/rating-rules", tags=["rules"], summary="The credit rule set in force (public), and every version")
async def rating_rules(
    request: Request,
    as_of: Annotated[date | None, Query(description="The date; today when omitted")] = None,
) -> dict[str, Any]:
    book = _book(request)
    on = as_of or request.app.state.runtime.clock.today()
    rules = book.in_force(on)
    return {
        "as_of": on.isoformat(),
        "rule_set": rules.raw,
        "versions": [{"version": s.version, "effective_from": s.effective_from.isoformat()} for s in book.sets],
    }


# ---------------------------------------------------------------- the blacklist lifecycle


@router.post(
    "/blacklist-entries",
    status_code=status.HTTP_201_CREATED,
    response_model=EntryOut,
    responses=_errors,
    tags=["blacklist"],
    summary="Propose a blacklist entry (credit officer)",
)
async def propose(
    body: Proposal,
    principal: Writer,
    uow: UoW,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    fingerprint = request_hash("POST", "/v1/blacklist-entries", body.model_dump(mode="json"))
    stored = await replay(uow.session, idempotency_keys, principal.subject, idempotency_key, fingerprint)
    if stored is not None:
        response.status_code = stored.status
        response.headers["Location"] = f"/v1/blacklist-entries/{stored.body['entry_id']}"
        response.headers["ETag"] = etag(stored.body["version"])
        return stored.body
    entry = await service.propose(uow.session, _ctx(request, principal), body)
    answer = _answer(response, entry)
    await remember(uow.session, idempotency_keys, principal.subject, idempotency_key, fingerprint, 201, answer)
    await uow.commit()
    response.headers["Location"] = f"/v1/blacklist-entries/{entry['entry_id']}"
    return answer


@router.get(
    "/blacklist-entries",
    response_model=Page[EntryOut],
    responses=_errors,
    tags=["blacklist"],
    summary="Entries for officers, oldest first, filtered by status or enterprise",
)
async def list_entries(
    _: Officer,
    uow: UoW,
    status_: Annotated[str | None, Query(alias="status", pattern="^(proposed|listed|rejected|removed)$")] = None,
    uscc: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    key = decode_cursor(cursor)
    rows = await repo.list_entries(
        uow.session,
        status=status_,
        uscc=_uscc(uscc) if uscc else None,
        after=str(key[0]) if key else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": encode_cursor([rows[-1]["entry_id"]]) if more else None}


@router.get(
    "/blacklist-entries/{entry_id}",
    response_model=EntryOut,
    responses=_errors,
    tags=["blacklist"],
    summary="One entry, with its ETag for the next transition",
)
async def get_entry(entry_id: str, _: Officer, uow: UoW, response: Response) -> Any:
    entry = await repo.get_entry(uow.session, entry_id)
    if entry is None:
        raise EntryNotFound(entry_id)
    return _answer(response, entry)


Transition = Callable[..., Awaitable[dict[str, Any]]]


async def _transition(
    fn: Transition,
    request: Request,
    principal: Principal,
    uow: UoW,
    response: Response,
    entry_id: str,
    if_match: str | None,
    body: Any,
) -> Any:
    entry = await fn(uow.session, _ctx(request, principal), entry_id, if_match, body)
    await uow.commit()
    return _answer(response, entry)


@router.post(
    "/blacklist-entries/{entry_id}:approve",
    response_model=EntryOut,
    responses=_errors,
    tags=["blacklist"],
    summary="Approve a proposal: lists and publishes the enterprise (a reviewer other than the proposer; If-Match)",
)
async def approve(
    entry_id: str,
    body: Approval,
    principal: Reviewer,
    uow: UoW,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> Any:
    return await _transition(service.approve, request, principal, uow, response, entry_id, if_match, body)


@router.post(
    "/blacklist-entries/{entry_id}:reject",
    response_model=EntryOut,
    responses=_errors,
    tags=["blacklist"],
    summary="Reject a proposal (a reviewer other than the proposer; If-Match)",
)
async def reject(
    entry_id: str,
    body: Rejection,
    principal: Reviewer,
    uow: UoW,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> Any:
    return await _transition(service.reject, request, principal, uow, response, entry_id, if_match, body)


@router.post(
    "/blacklist-entries/{entry_id}:apply-repair",
    response_model=EntryOut,
    responses=_errors,
    tags=["blacklist"],
    summary="File a credit-repair application with evidence (from the earliest repair date; If-Match)",
)
async def apply_repair(
    entry_id: str,
    body: RepairApplication,
    principal: Writer,
    uow: UoW,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    path = f"/v1/blacklist-entries/{entry_id}:apply-repair"
    fingerprint = request_hash("POST", path, body.model_dump(mode="json"))
    stored = await replay(uow.session, idempotency_keys, principal.subject, idempotency_key, fingerprint)
    if stored is not None:
        response.headers["ETag"] = etag(stored.body["version"])
        return stored.body
    entry = await service.apply_repair(uow.session, _ctx(request, principal), entry_id, if_match, body)
    answer = _answer(response, entry)
    await remember(uow.session, idempotency_keys, principal.subject, idempotency_key, fingerprint, 200, answer)
    await uow.commit()
    return answer


@router.post(
    "/blacklist-entries/{entry_id}:review-repair",
    response_model=EntryOut,
    responses=_errors,
    tags=["blacklist"],
    summary="Approve (removes the entry as repaired) or refuse a repair application (another reviewer; If-Match)",
)
async def review_repair(
    entry_id: str,
    body: RepairReview,
    principal: Reviewer,
    uow: UoW,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> Any:
    return await _transition(service.review_repair, request, principal, uow, response, entry_id, if_match, body)


@router.post(
    "/blacklist-entries/{entry_id}:remove",
    response_model=EntryOut,
    responses=_errors,
    tags=["blacklist"],
    summary="Remove a listing as wrongful (reviewer; If-Match)",
)
async def remove(
    entry_id: str,
    body: WrongfulRemoval,
    principal: Reviewer,
    uow: UoW,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> Any:
    return await _transition(service.remove_wrongful, request, principal, uow, response, entry_id, if_match, body)


# ---------------------------------------------------------------- reading


def _public_buckets(request: Request) -> TokenBuckets:
    buckets: TokenBuckets = request.app.state.public_limiter
    return buckets


_rate_limited = rate_limited(_public_buckets)


@router.get(
    "/blacklist",
    response_model=Page[PublicEntry],
    responses={429: PROBLEM_SCHEMA, 422: PROBLEM_SCHEMA},
    tags=["public"],
    dependencies=[Depends(_rate_limited)],
    summary="The published blacklist (公示): current entries, publishable fields only; no token, rate-limited",
)
async def public_blacklist(
    request: Request,
    uow: UoW,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    key = decode_cursor(cursor)
    if key is not None and len(key) != 2:
        raise InvalidCursor()
    today = request.app.state.runtime.clock.today()
    rows = await repo.public_list(uow.session, today, (str(key[0]), str(key[1])) if key else None, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    book = _book(request)
    items = [_public(book, r) for r in rows]
    nxt = encode_cursor([rows[-1].listed_on.isoformat(), rows[-1].entry_id]) if more else None
    return {"items": items, "next_cursor": nxt}


@router.get(
    "/blacklist/check",
    response_model=CheckOut,
    responses=_errors,
    tags=["screening"],
    summary="Is this enterprise blacklisted on a date (today by default)?",
)
async def check(
    request: Request,
    _: Reader,
    uow: UoW,
    uscc: str,
    as_of: date | None = None,
) -> Any:
    code = _uscc(uscc)
    on = as_of or request.app.state.runtime.clock.today()
    found = (await repo.listed_entries(uow.session, [code], on)).get(code)
    return CheckOut(
        uscc=code, as_of=on, listed=found is not None, entry=_public(_book(request), found) if found else None
    )


@router.post(
    "/screenings",
    response_model=ScreeningOut,
    responses=_errors,
    tags=["screening"],
    summary="Screen up to 1,000 enterprises at once (one query): each one's status on the date",
)
async def screen(body: ScreeningIn, request: Request, _: Reader, uow: UoW) -> Any:
    errors, codes = [], []
    for i, raw in enumerate(body.usccs):
        try:
            codes.append(validate_uscc(raw.strip()))
        except ValueError as exc:
            errors.append({"field": f"usccs[{i}]", "in": "body", "reason": str(exc)})
    if errors:
        raise InvalidUscc(f"{len(errors)} USCCs are not valid", errors)
    on = body.as_of or request.app.state.runtime.clock.today()
    found = await repo.listed_entries(uow.session, list(dict.fromkeys(codes)), on)
    book = _book(request)
    # Plain dicts in ScreeningOut's shape, encoded once: a thousand pydantic models, validated again as
    # the response model, cost more than the query (measured: ~35 µs per listed enterprise).
    results = [
        {"uscc": c, "as_of": on, "listed": c in found, "entry": _public_dict(book, found[c]) if c in found else None}
        for c in codes
    ]
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
                counted=c.counted,
                points=c.points,
                why=c.why,
            )
        )
    return out


@router.get(
    "/enterprises/{uscc}/credit",
    response_model=CreditOut,
    responses=_errors,
    tags=["credit"],
    summary="An enterprise's rating on a date, the rule set used, and every record's contribution",
)
async def credit(uscc: str, request: Request, _: Reader, uow: UoW, as_of: date | None = None) -> Any:
    code = _uscc(uscc, where="path")
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


@router.get(
    "/enterprises/{uscc}/history",
    response_model=EnterpriseHistory,
    responses=_errors,
    tags=["credit"],
    summary="An enterprise's full blacklist history and credit records (officers)",
)
async def history(uscc: str, request: Request, _: Officer, uow: UoW) -> Any:
    code = _uscc(uscc, where="path")
    today = request.app.state.runtime.clock.today()
    records = (await repo.records_of(uow.session, [code]))[code]
    rating = compute_rating(_book(request).in_force(today), records, today, False)
    return EnterpriseHistory(
        uscc=code,
        entries=[EntryOut.model_validate(e) for e in await repo.entries_of(uow.session, code)],
        transitions=[HistoryItem.model_validate(h) for h in await repo.history_of(uow.session, uscc=code)],
        records=_contributions(records, rating),
    )
