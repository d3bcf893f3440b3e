"""Every query of the sampling service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.sampling.models import (
    ingest_log,
    notice_results,
    notice_versions,
    notices,
    result_versions,
    results,
)
from shared.db import chunks
from shared.executemany import insert_rows
from shared.pagination import keyset


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


async def get(session: AsyncSession, result_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(results).where(results.c.id == result_id))).mappings().first()
    return dict(row) if row else None


async def find_by_reports(session: AsyncSession, agency: str, report_nos: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunks(report_nos):
        rows = await session.execute(
            select(results).where(results.c.agency_code == agency, results.c.report_no.in_(chunk))
        )
        for row in rows.mappings():
            found[row["report_no"]] = dict(row)
    return found


async def insert_results(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany for the whole batch (the ORM would issue one INSERT per row on SQLite)."""
    await insert_rows(session, results, rows)


async def finalise_many(session: AsyncSession, rows: Sequence[dict[str, Any]], at: datetime) -> None:
    """Each row: {b_id, b_version} — only rows still at that version and provisional change."""
    if not rows:
        return
    stmt = (
        update(results)
        .where(
            results.c.id == bindparam("b_id"),
            results.c.version == bindparam("b_version"),
            results.c.state == "provisional",
        )
        .values(state="final", version=results.c.version + 1, updated_at=at)
    )
    await session.execute(stmt, list(rows))


async def insert_versions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(result_versions), list(rows))


async def versions(session: AsyncSession, result_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(result_versions).where(result_versions.c.result_id == result_id).order_by(result_versions.c.version)
    )
    return [dict(r) for r in rows.mappings()]


async def due_for_finalisation(session: AsyncSession, today: date, limit: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(results)
        .where(results.c.state == "provisional", results.c.objection_deadline < today)
        .order_by(results.c.objection_deadline, results.c.id)
        .limit(limit)
    )
    return [dict(r) for r in rows.mappings()]


#: The ingest log's column for each outcome a batch row can have.
_LOGGED_OUTCOMES = {"created": "created", "duplicates": "duplicate", "rejected": "rejected", "conflicts": "conflict"}


async def log_ingest(session: AsyncSession, agency: str, at: datetime, received: int, tally: Mapping[str, int]) -> None:
    """One batch's line in the ingest log: the rows received and how many had each outcome."""
    counts = {column: tally.get(outcome, 0) for column, outcome in _LOGGED_OUTCOMES.items()}
    await session.execute(insert(ingest_log).values(agency_code=agency, at=at, received=received, **counts))


# ---------------------------------------------------------------- reading


def filters_clause(f: dict[str, Any]) -> list[ColumnElement[bool]]:
    """SQL conditions for the list, export and statistics filters (keys as in the query string)."""
    r = results.c
    conds: list[ColumnElement[bool]] = []
    simple = {
        "uscc": r.uscc,
        "agency": r.agency_code,
        "sector": r.sector,
        "level": r.level,
        "district": r.district_code,
        "category": r.product_category,
        "conclusion": r.conclusion,
        "state": r.state,
        "key_product": r.key_product,
    }
    for key, column in simple.items():
        value = f.get(key)
        if value is not None:
            conds.append(column == value)
    if f.get("sampled_from") is not None:
        conds.append(r.sampling_date >= f["sampled_from"])
    if f.get("sampled_to") is not None:
        conds.append(r.sampling_date <= f["sampled_to"])
    if f.get("reported_from") is not None:
        conds.append(r.report_date >= f["reported_from"])
    if f.get("reported_to") is not None:
        conds.append(r.report_date <= f["reported_to"])
    if f.get("notice_no") is not None:
        conds.append(notices.c.notice_no == f["notice_no"])
    for key, column in (("name_like", r.enterprise_name), ("product_like", r.product_name)):
        if f.get(key):
            conds.append(column.like(_like(f[key]), escape="\\"))
    if not f.get("include_retracted") and f.get("state") is None:
        conds.append(r.state != "retracted")
    return conds


def _like(fragment: str) -> str:
    """A LIKE pattern matching the fragment anywhere, its own % and _ taken literally."""
    return "%" + fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def public_fails(
    session: AsyncSession, f: dict[str, Any], after: tuple[date, str] | None, limit: int
) -> list[dict[str, Any]]:
    """The published list (`f` holds state=final, conclusion=fail): newest report first."""
    r = results.c
    cited = results.outerjoin(notice_results, notice_results.c.result_id == r.id).outerjoin(
        notices, notices.c.id == notice_results.c.notice_id
    )
    columns = (results, notices.c.id.label("notice_id"), notices.c.notice_no, notices.c.notice_date)
    stmt = select(*columns).select_from(cited).where(and_(*filters_clause(f)))
    stmt = keyset(stmt, [r.report_date, r.id], after, limit, descending=True)
    return [dict(x) for x in (await session.execute(stmt)).mappings()]


# ---------------------------------------------------------------- notices


async def get_notice(session: AsyncSession, notice_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(notices).where(notices.c.id == notice_id))).mappings().first()
    return dict(row) if row else None


async def notice_by_no(session: AsyncSession, notice_no: str) -> dict[str, Any] | None:
    row = (await session.execute(select(notices).where(notices.c.notice_no == notice_no))).mappings().first()
    return dict(row) if row else None


async def results_by_ids(session: AsyncSession, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunks(ids):
        for row in (await session.execute(select(results).where(results.c.id.in_(chunk)))).mappings():
            found[row["id"]] = dict(row)
    return found


async def citing_notices(session: AsyncSession, result_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """result id -> (notice id, notice number) of the notice citing it now."""
    found: dict[str, tuple[str, str]] = {}
    for chunk in chunks(result_ids):
        stmt = (
            select(notice_results.c.result_id, notices.c.id, notices.c.notice_no)
            .join(notices, notices.c.id == notice_results.c.notice_id)
            .where(notice_results.c.result_id.in_(chunk))
        )
        for rid, nid, no in (await session.execute(stmt)).all():
            found[rid] = (nid, no)
    return found


async def notice_result_ids(session: AsyncSession, notice_ids: Sequence[str]) -> dict[str, list[str]]:
    """notice id -> the ids of the results it cites, in id order."""
    out: dict[str, list[str]] = {n: [] for n in notice_ids}
    for chunk in chunks(notice_ids):
        stmt = (
            select(notice_results.c.notice_id, notice_results.c.result_id)
            .where(notice_results.c.notice_id.in_(chunk))
            .order_by(notice_results.c.result_id)
        )
        for nid, rid in (await session.execute(stmt)).all():
            out[nid].append(rid)
    return out


async def insert_notice(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(insert(notices).values(row))


async def set_notice_results(session: AsyncSession, notice_id: str, result_ids: Sequence[str]) -> None:
    """The notice cites exactly these results from now on (its earlier list lives in its history)."""
    await session.execute(delete(notice_results).where(notice_results.c.notice_id == notice_id))
    await session.execute(insert(notice_results), [{"notice_id": notice_id, "result_id": r} for r in result_ids])


async def insert_notice_version(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(insert(notice_versions).values(row))


async def notice_history(session: AsyncSession, notice_id: str) -> list[dict[str, Any]]:
    stmt = select(notice_versions).where(notice_versions.c.notice_id == notice_id).order_by(notice_versions.c.version)
    return [dict(r) for r in (await session.execute(stmt)).mappings()]


async def list_notices(session: AsyncSession, after: tuple[str] | None, limit: int) -> list[dict[str, Any]]:
    """Newest first (ids are UUIDv7: creation order)."""
    stmt = keyset(select(notices), [notices.c.id], after, limit, descending=True)
    return [dict(r) for r in (await session.execute(stmt)).mappings()]


async def list_results(
    session: AsyncSession, f: dict[str, Any], after: tuple[str] | None, limit: int
) -> list[dict[str, Any]]:
    conds = filters_clause(f)
    rows = await session.execute(keyset(select(results).where(and_(*conds)), [results.c.id], after, limit))
    return [dict(r) for r in rows.mappings()]


async def stream_results(session: AsyncSession, f: dict[str, Any], page: int = 5000) -> AsyncIterator[dict[str, Any]]:
    """Every result matching `f`, in id order, fetched a page at a time (keyset, not OFFSET)."""
    after: tuple[str] | None = None
    while True:
        rows = await list_results(session, f, after, page)
        for row in rows:
            yield row
        if len(rows) < page:
            return
        after = (rows[-1]["id"],)


GROUPS = ("sector", "level", "district", "year", "quarter", "category", "key_product", "agency")


def _group_expr(name: str) -> Any:
    r = results.c
    if name == "year":
        return cast(func.extract("year", r.sampling_date), Integer)
    if name == "quarter":
        # Integer division on both dialects once the month is an INTEGER.
        return (cast(func.extract("month", r.sampling_date), Integer) + 2) // 3  # floor division in SQLAlchemy 2
    return {
        "sector": r.sector,
        "level": r.level,
        "district": r.district_code,
        "category": r.product_category,
        "key_product": r.key_product,
        "agency": r.agency_code,
    }[name]


async def pass_rates(
    session: AsyncSession, group_by: Sequence[str], f: dict[str, Any], include_provisional: bool
) -> list[dict[str, Any]]:
    """n and passed per group, each result's current state counted once; retracted never counts."""
    conds = filters_clause({**f, "include_retracted": False})
    if not include_provisional:
        conds.append(results.c.state == "final")
    exprs = [_group_expr(g).label(g) for g in group_by]
    passed = func.sum(case((results.c.conclusion == "pass", 1), else_=0))
    stmt = select(*exprs, func.count().label("n"), passed.label("passed")).where(and_(*conds))
    if exprs:
        stmt = stmt.group_by(*exprs).order_by(*exprs)
    rows = await session.execute(stmt)
    out = []
    for row in rows.mappings():
        key = {g: row[g] for g in group_by}
        for g in ("year", "quarter"):
            if g in key and key[g] is not None:
                key[g] = int(key[g])
        if "key_product" in key and key["key_product"] is not None:
            key["key_product"] = bool(key["key_product"])
        if int(row["n"]):
            out.append({"key": key, "n": int(row["n"]), "passed": int(row["passed"] or 0)})
    return out


def _days_between() -> Any:
    r = results.c
    return func.julianday(r.report_date) - func.julianday(r.sampling_date)


async def scorecard(session: AsyncSession, agency: str) -> dict[str, Any]:
    r = results.c
    log = (
        await session.execute(
            select(
                func.coalesce(func.sum(ingest_log.c.received), 0),
                func.coalesce(func.sum(ingest_log.c.rejected), 0),
                func.coalesce(func.sum(ingest_log.c.duplicates), 0),
                func.coalesce(func.sum(ingest_log.c.conflicts), 0),
            ).where(ingest_log.c.agency_code == agency)
        )
    ).one()
    counts = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((r.original_conclusion == "fail", 1), else_=0)), 0),
                func.coalesce(func.sum(case((r.reinspection == "overturned", 1), else_=0)), 0),
            ).where(r.agency_code == agency)
        )
    ).one()
    changes: dict[str, int] = dict(
        (
            await session.execute(
                select(result_versions.c.change, func.count())
                .select_from(result_versions.join(results, results.c.id == result_versions.c.result_id))
                .where(r.agency_code == agency, result_versions.c.change.in_(("corrected", "retracted")))
                .group_by(result_versions.c.change)
            )
        ).all()
    )
    days = ((r.report_date - r.sampling_date) if _dialect(session) == "postgresql" else _days_between()).label("days")
    n = int(counts[0])
    median: float | None = None
    if n:
        # The median without a dialect-specific aggregate: the middle one or two values by keyset.
        ordered = select(days).where(r.agency_code == agency).order_by(days)
        mid = list((await session.execute(ordered.offset((n - 1) // 2).limit(2 - n % 2))).scalars())
        median = float(sum(float(x) for x in mid) / len(mid))
    return {
        "agency_code": agency,
        "submissions": int(log[0]),
        "results": n,
        "rejected_rows": int(log[1]),
        "duplicates": int(log[2]),
        "conflict_rows": int(log[3]),
        "corrections": int(changes.get("corrected", 0)),
        "retractions": int(changes.get("retracted", 0)),
        "fails": int(counts[1]),
        "overturned_fails": int(counts[2]),
        "median_days_sampling_to_report": median,
    }
