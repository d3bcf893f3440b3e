"""Every query of the awards tables (SQLAlchemy Core; SQLite and PostgreSQL alike)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.awards.models import honours, listings, suspensions
from shared.db import chunks, dialect_insert, insert_all
from shared.executemany import upsert_rows
from shared.pagination import keyset

h = honours
s = suspensions


async def insert_honours(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany for the whole batch (never an INSERT per row through the ORM)."""
    await insert_all(session, h, rows)


async def get(session: AsyncSession, honour_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    stmt = select(h).where(h.c.honour_id == honour_id)
    if for_update:
        stmt = stmt.with_for_update()  # PostgreSQL: serialise concurrent revokes; SQLite has one writer
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row else None


async def get_many(session: AsyncSession, honour_ids: Sequence[str]) -> list[dict[str, Any]]:
    if not honour_ids:
        return []
    rows = await session.execute(select(h).where(h.c.honour_id.in_(list(honour_ids))).order_by(h.c.honour_id))
    return [dict(r) for r in rows.mappings()]


async def existing_certificates(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """(type_code, certificate_no) → the stored honour, for the keys that exist."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for chunk in chunks(keys, 2000):  # two parameters a key
        rows = await session.execute(select(h).where(tuple_(h.c.type_code, h.c.certificate_no).in_(chunk)))
        for r in rows.mappings():
            out[(r["type_code"], r["certificate_no"])] = dict(r)
    return out


async def bump_states(session: AsyncSession, changes: Sequence[dict[str, Any]], now: datetime) -> None:
    """Many honours moved at once (a listing, a removal, the expiry job): one executemany."""
    if not changes:
        return
    stmt = (
        update(h)
        .where(h.c.honour_id == bindparam("b_id"), h.c.version == bindparam("b_version"))
        .values(version=bindparam("b_new_version"), state=bindparam("b_state"), updated_at=now)
    )
    await session.execute(
        stmt,
        [
            {
                "b_id": c["honour_id"],
                "b_version": c["version"],
                "b_new_version": c["version"] + 1,
                "b_state": c["state"],
            }
            for c in changes
        ],
    )


# ------------------------------------------------------------------------------ suspensions


async def suspensions_of(session: AsyncSession, honour_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in honour_ids}
    if not honour_ids:
        return out
    rows = await session.execute(
        select(s, listings.c.decision_no)
        .select_from(s.outerjoin(listings, listings.c.entry_id == s.c.entry_id))
        .where(s.c.honour_id.in_(list(honour_ids)))
        .order_by(s.c.suspended_on, s.c.entry_id)
    )
    for r in rows.mappings():
        out[r["honour_id"]].append(dict(r))
    return out


async def add_suspensions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        stmt = dialect_insert(session)(s).on_conflict_do_nothing(index_elements=[s.c.honour_id, s.c.entry_id])
        await session.execute(stmt, list(rows))


async def open_suspensions_of_entry(session: AsyncSession, entry_id: str) -> list[str]:
    rows = await session.scalars(
        select(s.c.honour_id).where(s.c.entry_id == entry_id, s.c.reinstated_on.is_(None)).order_by(s.c.honour_id)
    )
    return list(rows)


async def close_suspensions(session: AsyncSession, entry_id: str, on: date) -> None:
    await session.execute(
        update(s).where(s.c.entry_id == entry_id, s.c.reinstated_on.is_(None)).values(reinstated_on=on)
    )


async def still_suspended(session: AsyncSession, honour_ids: Sequence[str]) -> set[str]:
    """Of these honours, those another listing still holds suspended."""
    if not honour_ids:
        return set()
    rows = await session.scalars(
        select(s.c.honour_id).where(s.c.honour_id.in_(list(honour_ids)), s.c.reinstated_on.is_(None)).distinct()
    )
    return set(rows)


# ------------------------------------------------------------------------------ listings


async def get_listing(session: AsyncSession, entry_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(listings).where(listings.c.entry_id == entry_id))).mappings().first()
    return dict(row) if row else None


async def save_listing(session: AsyncSession, row: dict[str, Any]) -> None:
    await upsert_rows(session, listings, [row], ["entry_id"])


async def current_listings(session: AsyncSession, usccs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The standing listing of each of these USCCs that is listed now (not removed)."""
    if not usccs:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for chunk in chunks(usccs):
        rows = await session.execute(
            select(listings)
            .where(listings.c.uscc.in_(chunk), listings.c.removed_on.is_(None))
            .order_by(listings.c.listed_on)
        )
        for r in rows.mappings():
            out.setdefault(r["uscc"], dict(r))
    return out


async def honours_of(session: AsyncSession, uscc: str, states: Sequence[str]) -> list[dict[str, Any]]:
    """The honours a USCC holds (as an enterprise or an organisation) in these states."""
    rows = await session.execute(
        select(h)
        .where(h.c.holder_id == uscc, h.c.holder_kind.in_(("enterprise", "organisation")), h.c.state.in_(states))
        .order_by(h.c.honour_id)
    )
    return [dict(r) for r in rows.mappings()]


async def due_for_expiry(session: AsyncSession, today: date, limit: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(h)
        .where(h.c.state.in_(("active", "suspended")), h.c.valid_until.is_not(None), h.c.valid_until < today)
        .order_by(h.c.honour_id)
        .limit(limit)
    )
    return [dict(r) for r in rows.mappings()]


# ------------------------------------------------------------------------------ reading


def active_on_clause(day: date) -> ColumnElement[bool]:
    """The SQL form of domain.active_on."""
    suspended = exists().where(
        s.c.honour_id == h.c.honour_id,
        s.c.suspended_on <= day,
        or_(s.c.reinstated_on.is_(None), s.c.reinstated_on > day),
    )
    return and_(
        h.c.granted_on <= day,
        or_(h.c.valid_until.is_(None), h.c.valid_until >= day),
        or_(h.c.revoked_on.is_(None), h.c.revoked_on > day),
        ~suspended,
    )


def granted_during_clause(start: date, end: date) -> ColumnElement[bool]:
    """The SQL form of domain.granted_during."""
    return and_(h.c.granted_on >= start, h.c.granted_on <= end, or_(h.c.revoked_on.is_(None), h.c.revoked_on > end))


@dataclass(frozen=True)
class HonourFilter:
    """Which honours a list holds: columns equal to a value (an empty value: no condition), and dates."""

    equal: Mapping[str, str | None] = field(default_factory=dict)
    active_on: date | None = None
    granted_from: date | None = None
    granted_to: date | None = None


async def list_honours(
    session: AsyncSession, f: HonourFilter, after: tuple[str] | None, limit: int
) -> list[dict[str, Any]]:
    conds = [h.c[column] == value for column, value in f.equal.items() if value]
    if f.active_on:
        conds.append(active_on_clause(f.active_on))
    if f.granted_from:
        conds.append(h.c.granted_on >= f.granted_from)
    if f.granted_to:
        conds.append(h.c.granted_on <= f.granted_to)
    rows = await session.execute(keyset(select(h).where(*conds), [h.c.honour_id], after, limit))
    return [dict(r) for r in rows.mappings()]


async def counts_by_type(
    session: AsyncSession, start: date, end: date, district_code: str | None
) -> dict[str, tuple[int, int]]:
    granted = func.sum(case((granted_during_clause(start, end), 1), else_=0))
    active = func.sum(case((active_on_clause(end), 1), else_=0))
    stmt = select(h.c.type_code, granted, active).where(h.c.granted_on <= end).group_by(h.c.type_code)
    if district_code:
        stmt = stmt.where(h.c.district_code == district_code)
    out: dict[str, tuple[int, int]] = {}
    for code, g, a in (await session.execute(stmt)).all():
        if g or a:
            out[code] = (int(g or 0), int(a or 0))
    return out
