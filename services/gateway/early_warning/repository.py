"""Every query of the early warnings: the counts a rule looks at, the looks made, the warnings kept."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.early_warning.domain import RateCounts
from services.gateway.models import ew_looks, ew_warnings, rm_blacklist, rm_honours, rm_results
from shared.db import chunks, dialect_insert
from shared.executemany import insert_rows
from shared.pagination import keyset
from shared.preconditions import update_if_version


async def rate_counts(
    session: AsyncSession, where: dict[str, str], baseline_start: date, window_start: date, window_end: date
) -> RateCounts:
    """Results (latest state, not retracted) of one group: in the window and in the baseline before it."""
    r = rm_results.c
    in_window = r.sampling_date >= window_start
    failed = r.conclusion == "fail"
    stmt = select(
        func.count().filter(in_window),
        func.count().filter(and_(in_window, failed)),
        func.count().filter(~in_window),
        func.count().filter(and_(~in_window, failed)),
    ).where(
        r.sampling_date >= baseline_start,
        r.sampling_date <= window_end,
        r.state != "retracted",
        *(getattr(r, name) == value for name, value in where.items()),
    )
    n_w, f_w, n_b, f_b = (await session.execute(stmt)).one()
    return RateCounts(int(n_w), int(f_w), int(n_b), int(f_b))


async def looked(
    session: AsyncSession, rule_id: str, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (group key, period) of one rule: the checkpoint last looked at, and the events seen."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    lk = ew_looks.c
    for part in chunks(sorted(keys)):
        groups = {g for g, _ in part}
        rows = await session.execute(
            select(lk.group_key, lk.period, lk.looked_n, lk.seen).where(lk.rule_id == rule_id, lk.group_key.in_(groups))
        )
        out.update({(g, p): (n, seen) for g, p, n, seen in rows if (g, p) in keys})
    return out


async def record_looks(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        stmt = dialect_insert(session)(ew_looks)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[ew_looks.c.rule_id, ew_looks.c.group_key, ew_looks.c.period],
                set_={"looked_n": stmt.excluded.looked_n, "seen": stmt.excluded.seen},
            ),
            list(rows),
        )


async def final_fails(session: AsyncSession, uscc: str, category: str, start: date, end: date) -> list[dict[str, Any]]:
    r = rm_results.c
    stmt = (
        select(r.result_id, r.report_no, r.sampling_date)
        .where(
            r.uscc == uscc,
            r.product_category == category,
            r.state == "final",
            r.conclusion == "fail",
            r.sampling_date >= start,
            r.sampling_date <= end,
        )
        .order_by(r.sampling_date, r.result_id)
    )
    return [dict(x) for x in (await session.execute(stmt)).mappings()]


async def standing_of(session: AsyncSession, usccs: Collection[str], honours: bool) -> dict[str, dict[str, Any]]:
    """Per enterprise among `usccs`: its listed entries' decision numbers and (with `honours`) its
    suspended honours' certificate numbers; enterprises with neither are left out."""
    out: dict[str, dict[str, Any]] = {}
    b, h = rm_blacklist.c, rm_honours.c
    for part in chunks(sorted(usccs)):
        rows = await session.execute(
            select(b.uscc, b.entry_id, b.decision_no).where(b.uscc.in_(part), b.status == "listed")
        )
        for uscc, entry_id, decision_no in rows:
            out.setdefault(uscc, {"listed": [], "suspended_honours": []})["listed"].append(
                {"entry_id": entry_id, "decision_no": decision_no}
            )
        if honours:
            rows = await session.execute(
                select(h.holder_id, h.honour_id, h.type_code).where(h.holder_id.in_(part), h.state == "suspended")
            )
            for holder, honour_id, type_code in rows:
                out.setdefault(holder, {"listed": [], "suspended_honours": []})["suspended_honours"].append(
                    {"honour_id": honour_id, "type_code": type_code}
                )
    return out


async def known_keys(session: AsyncSession, dedup_keys: Collection[str], *, closed_too: bool = False) -> set[str]:
    """The conditions among `dedup_keys` with a warning not closed (with `closed_too`: with any warning)."""
    w = ew_warnings.c
    found: set[str] = set()
    for part in chunks(sorted(dedup_keys)):
        stmt = select(w.dedup_key).where(w.dedup_key.in_(part))
        if not closed_too:
            stmt = stmt.where(w.state != "closed")
        found.update((await session.execute(stmt)).scalars())
    return found


async def last_occurrences(session: AsyncSession, dedup_keys: Collection[str]) -> dict[str, int]:
    """Per condition among `dedup_keys` that raised before (all closed now): its last warning's occurrence."""
    w = ew_warnings.c
    out: dict[str, int] = {}
    for part in chunks(sorted(dedup_keys)):
        rows = await session.execute(
            select(w.dedup_key, func.max(w.occurrence)).where(w.dedup_key.in_(part)).group_by(w.dedup_key)
        )
        out.update({key: int(n) for key, n in rows})
    return out


async def add_warnings(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(session, ew_warnings, list(rows))


async def list_warnings(
    session: AsyncSession,
    filters: dict[str, str | None],
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first, by the filters that are set (kind, state, district, category, uscc)."""
    w = ew_warnings.c
    stmt = select(ew_warnings)
    for name, value in filters.items():
        if value is not None:
            stmt = stmt.where(getattr(w, name) == value)
    stmt = keyset(stmt, [w.raised_at, w.warning_id], after, limit, descending=True)
    return [dict(x) for x in (await session.execute(stmt)).mappings()]


async def warning(session: AsyncSession, warning_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(ew_warnings).where(ew_warnings.c.warning_id == warning_id))).mappings()
    found = row.first()
    return dict(found) if found else None


async def update_warning(session: AsyncSession, warning_id: str, version: int, values: dict[str, Any]) -> int:
    """Compare-and-set on the warning's version (412 if someone changed it since it was read)."""
    return await update_if_version(session, ew_warnings, ew_warnings.c.warning_id == warning_id, version, values)
