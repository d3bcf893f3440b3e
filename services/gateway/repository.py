"""Every query of the gateway's read models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.models import rm_pass_counts, rm_results

CountKey = tuple[str, str, str, int, bool, bool]


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def current_results(session: AsyncSession, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 5000):
        rows = await session.execute(select(rm_results).where(rm_results.c.result_id.in_(ids[i : i + 5000])))
        out.update({r["result_id"]: dict(r) for r in rows.mappings()})
    return out


async def upsert_results(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    ins = _insert(session)(rm_results)
    cols = [c.name for c in rm_results.columns if c.name != "result_id"]
    stmt = ins.on_conflict_do_update(index_elements=[rm_results.c.result_id], set_={c: ins.excluded[c] for c in cols})
    await session.execute(stmt, list(rows))


async def add_pass_counts(session: AsyncSession, deltas: dict[CountKey, tuple[int, int]]) -> None:
    """Move the counters by (results, passed) for each key."""
    rows = [
        {
            "sector": k[0],
            "level": k[1],
            "district_code": k[2],
            "year": k[3],
            "key_product": k[4],
            "final": k[5],
            "n": n,
            "passed": p,
        }
        for k, (n, p) in sorted(deltas.items())
        if n or p
    ]
    if not rows:
        return
    ins = _insert(session)(rm_pass_counts)
    stmt = ins.on_conflict_do_update(
        index_elements=[c for c in rm_pass_counts.primary_key.columns],
        set_={"n": rm_pass_counts.c.n + ins.excluded.n, "passed": rm_pass_counts.c.passed + ins.excluded.passed},
    )
    await session.execute(stmt, rows)


async def pass_rates_by_sector(session: AsyncSession) -> list[dict[str, Any]]:
    c = rm_pass_counts.c
    rows = await session.execute(
        select(c.sector, func.sum(c.n).label("n"), func.sum(c.passed).label("passed"))
        .group_by(c.sector)
        .having(func.sum(c.n) > 0)
        .order_by(c.sector)
    )
    return [{"sector": r.sector, "n": int(r.n), "passed": int(r.passed)} for r in rows]
