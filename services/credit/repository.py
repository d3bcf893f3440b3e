"""Every query of the credit service's tables (SQLAlchemy Core; bulk writes as executemany)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit.domain import OPEN_STATUSES, UNDECIDED_STATUSES, Status, listed_on_date
from services.credit.models import (
    authority_record_versions,
    authority_records,
    blacklist_entries,
    enterprises,
    entry_history,
    ratings,
    records,
)
from shared.db import chunks, dialect_insert, insert_all
from shared.executemany import excluded, upsert_rows
from shared.pagination import keyset, where_given

E = blacklist_entries


# ---------------------------------------------------------------- records


class HeldRecord(NamedTuple):
    """What apply_records needs of a record already held."""

    source_version: int
    kind: str
    uscc: str


async def record_versions(session: AsyncSession, record_ids: Sequence[str]) -> dict[str, HeldRecord]:
    """{record_id: HeldRecord} for the records already held."""
    out: dict[str, HeldRecord] = {}
    for chunk in chunks(record_ids):
        rows = await session.execute(
            select(records.c.record_id, records.c.source_version, records.c.kind, records.c.uscc).where(
                records.c.record_id.in_(chunk)
            )
        )
        out.update({r.record_id: HeldRecord(r.source_version, r.kind, r.uscc) for r in rows})
    return out


async def upsert_records(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany; the WHERE keeps a newer version already stored (a concurrent or reordered delivery)."""
    if not rows:
        return
    ins = dialect_insert(session)(records)
    cols = [c.name for c in records.columns if c.name != "record_id"]
    stmt = ins.on_conflict_do_update(
        index_elements=[records.c.record_id],
        set_={c: ins.excluded[c] for c in cols},
        where=records.c.source_version < ins.excluded.source_version,
    )
    await session.execute(stmt, list(rows))


_RATED = (
    records.c.record_id,
    records.c.uscc,
    records.c.kind,
    records.c.source,
    records.c.category,
    records.c.level,
    records.c.sector,
    records.c.title,
    records.c.enterprise_name,
    records.c.fact_date,
    records.c.valid_until,
    records.c.authority,
)


async def records_of(
    session: AsyncSession, usccs: Sequence[str], *, counting_only: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """Each enterprise's records; `counting_only` skips neutral ones (passes, overturned…) and the
    display columns, which is all a rating or the automatic proposal needs on the consumer's hot path."""
    out: dict[str, list[dict[str, Any]]] = {u: [] for u in usccs}
    for chunk in chunks(usccs):
        if counting_only:
            q = select(*_RATED).where(records.c.uscc.in_(chunk), records.c.kind != "neutral")
        else:
            q = select(records).where(records.c.uscc.in_(chunk))
        for r in (await session.execute(q)).mappings():
            out[r["uscc"]].append(dict(r))
    return out


# ---------------------------------------------------------------- ratings


async def current_ratings(session: AsyncSession, usccs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk in chunks(usccs):
        rows = await session.execute(select(ratings.c.uscc, ratings.c.rating).where(ratings.c.uscc.in_(chunk)))
        out.update({r.uscc: r.rating for r in rows})
    return out


async def upsert_ratings(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Each enterprise's current rating replaced (one executemany)."""
    await upsert_rows(session, ratings, rows, ["uscc"])


# ---------------------------------------------------------------- blacklist entries


def _listed_on(on: date) -> Any:
    """Entries on the published list on `on`: listed by then, within publication, not yet removed."""
    return and_(
        E.c.status.in_(("listed", "removed")),
        E.c.listed_on <= on,
        E.c.publish_until >= on,
        or_(E.c.removed_on.is_(None), E.c.removed_on > on),
    )


#: An entry's publishable fields (the public list's).
_PUBLIC = (
    E.c.entry_id,
    E.c.uscc,
    E.c.enterprise_name,
    E.c.reason_category,
    E.c.legal_basis,
    E.c.deciding_authority,
    E.c.decision_no,
    E.c.listed_on,
    E.c.publish_until,
)
#: What the answers about a listing need (its public fields, and what decides whether it is on the list):
#: a thousand full rows cost screening twice the query itself in row processing (measured, bench/credit_screening).
_LISTING = (*_PUBLIC, E.c.status, E.c.removed_on)
_LISTING_KEYS = tuple(c.name for c in _LISTING)


async def listed_entries(session: AsyncSession, usccs: Sequence[str], on: date) -> dict[str, dict[str, Any]]:
    """The entry each enterprise was listed under on `on` (its public fields): one query per 5,000 USCCs.

    The dates go to the database, the status does not: with a status term SQLite preferred the status
    index and scanned; without it every planner walks the (uscc, listed_on) index. An enterprise has a
    handful of entries at most, and `listed_on_date` decides on those.
    """
    out: dict[str, dict[str, Any]] = {}
    for chunk in chunks(usccs):
        rows = await session.execute(
            select(*_LISTING)
            .where(
                E.c.uscc.in_(chunk),
                E.c.listed_on <= on,
                E.c.publish_until >= on,
                or_(E.c.removed_on.is_(None), E.c.removed_on > on),
            )
            .order_by(E.c.listed_on, E.c.entry_id)
        )
        # Plain tuples zipped with the names: RowMapping views cost more than the query on 1,000 rows.
        for t in rows:
            row = dict(zip(_LISTING_KEYS, t, strict=True))
            if listed_on_date(row, on):
                out[row["uscc"]] = row
    return out


async def open_entry_usccs(session: AsyncSession, usccs: Sequence[str]) -> set[str]:
    """Enterprises with a pending proposal or a current listing: no second one is opened beside it."""
    out: set[str] = set()
    for chunk in chunks(usccs):
        out.update(
            await session.scalars(select(E.c.uscc).where(E.c.uscc.in_(chunk), E.c.status.in_(OPEN_STATUSES)).distinct())
        )
    return out


async def insert_entries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_all(session, E, rows)


async def insert_history(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_all(session, entry_history, rows)


async def get_entry(session: AsyncSession, entry_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(E).where(E.c.entry_id == entry_id))).mappings().first()
    return dict(row) if row else None


async def list_entries(
    session: AsyncSession, *, status: str | None, uscc: str | None, after: tuple[str] | None, limit: int
) -> list[dict[str, Any]]:
    q = where_given(select(E), (E.c.status, status), (E.c.uscc, uscc))
    return [dict(r) for r in (await session.execute(keyset(q, [E.c.entry_id], after, limit))).mappings()]


async def public_list(
    session: AsyncSession, on: date, after: tuple[date, str] | None, limit: int
) -> list[dict[str, Any]]:
    """The current list, newest listings first, keyed by (listed_on, entry_id) for the cursor."""
    q = keyset(select(*_PUBLIC).where(_listed_on(on)), [E.c.listed_on, E.c.entry_id], after, limit, descending=True)
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def entries_of(session: AsyncSession, uscc: str) -> list[dict[str, Any]]:
    q = select(E).where(E.c.uscc == uscc).order_by(E.c.entry_id)
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def history_of(session: AsyncSession, *, entry_id: str | None = None, uscc: str | None = None) -> list[Any]:
    H = entry_history
    q = where_given(select(H), (H.c.entry_id, entry_id), (H.c.uscc, uscc)).order_by(H.c.id)
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def due_for_expiry(session: AsyncSession, today: date, limit: int = 1000) -> list[dict[str, Any]]:
    q = select(E).where(E.c.status == "listed", E.c.publish_until < today).order_by(E.c.entry_id).limit(limit)
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def entries_of_many(session: AsyncSession, usccs: Sequence[str]) -> list[dict[str, Any]]:
    """Every blacklist entry of these enterprises (an archive import checks against them)."""
    out: list[dict[str, Any]] = []
    for chunk in chunks(usccs):
        out += [dict(r) for r in (await session.execute(select(E).where(E.c.uscc.in_(chunk)))).mappings()]
    return out


async def undecided_automatic(session: AsyncSession, usccs: Sequence[str]) -> list[dict[str, Any]]:
    """Automatic proposals not decided yet (pending, in notice or in review) of these enterprises."""
    out: list[dict[str, Any]] = []
    for chunk in chunks(usccs):
        q = select(E).where(E.c.uscc.in_(chunk), E.c.automatic.is_(True), E.c.status.in_(UNDECIDED_STATUSES))
        out += [dict(r) for r in (await session.execute(q)).mappings()]
    return out


async def due_after_notice(session: AsyncSession, today: date, limit: int = 1000) -> list[dict[str, Any]]:
    """Entries whose statement period ended before today without a statement: to be listed."""
    q = (
        select(E)
        .where(E.c.status == Status.noticed.value, E.c.statement_deadline < today)
        .order_by(E.c.entry_id)
        .limit(limit)
    )
    return [dict(r) for r in (await session.execute(q)).mappings()]


# ---------------------------------------------------------------- records from other authorities

A = authority_records


async def authority_records_by_no(
    session: AsyncSession, authority: str, record_nos: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """{record_no: record} of one authority's records already held."""
    out: dict[str, dict[str, Any]] = {}
    for chunk in chunks(record_nos):
        q = select(A).where(A.c.authority == authority, A.c.record_no.in_(chunk))
        out.update({r["record_no"]: dict(r) for r in (await session.execute(q)).mappings()})
    return out


async def get_authority_record(session: AsyncSession, record_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(A).where(A.c.record_id == record_id))).mappings().first()
    return dict(row) if row else None


async def insert_authority_records(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_all(session, A, rows)


async def insert_record_versions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_all(session, authority_record_versions, rows)


async def record_history(session: AsyncSession, record_id: str) -> list[dict[str, Any]]:
    V = authority_record_versions
    q = select(V).where(V.c.record_id == record_id).order_by(V.c.version)
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def list_authority_records(
    session: AsyncSession, *, authority: str | None, uscc: str | None, after: tuple[str] | None, limit: int
) -> list[dict[str, Any]]:
    q = where_given(select(A), (A.c.authority, authority), (A.c.uscc, uscc))
    return [dict(r) for r in (await session.execute(keyset(q, [A.c.record_id], after, limit))).mappings()]


# ---------------------------------------------------------------- the enterprise register


async def remember_enterprises(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert names (one executemany): the latest name wins; a district once known is kept."""
    x = excluded(enterprises)
    await upsert_rows(
        session,
        enterprises,
        rows,
        ["uscc"],
        set_={"district_code": func.coalesce(x.district_code, enterprises.c.district_code)},
    )


async def known_enterprises(session: AsyncSession, usccs: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """{uscc: (name, district_code)} of these enterprises as the register holds them."""
    out: dict[str, tuple[str, str | None]] = {}
    for chunk in chunks(usccs):
        q = select(enterprises.c.uscc, enterprises.c.name, enterprises.c.district_code).where(
            enterprises.c.uscc.in_(chunk)
        )
        out.update({r.uscc: (r.name, r.district_code) for r in await session.execute(q)})
    return out


async def register_stamp(session: AsyncSession) -> tuple[int, Any]:
    """How many enterprises, and the latest change: a cached index is current while this is the same."""
    row = (await session.execute(select(func.count(), func.max(enterprises.c.updated_at)))).one()
    return int(row[0]), row[1]


async def all_enterprises(session: AsyncSession) -> list[tuple[str, str, str | None]]:
    q = select(enterprises.c.uscc, enterprises.c.name, enterprises.c.district_code)
    return [(r.uscc, r.name, r.district_code) for r in await session.execute(q)]
