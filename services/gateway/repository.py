"""Every query of the gateway's read models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.models import rm_pass_counts, rm_results


async def upsert_results(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    ins = _insert(session)(rm_results)
    stmt = ins.on_conflict_do_update(
        index_elements=[rm_results.c.result_id],
        set_={c: ins.excluded[c] for c in ("uscc", "agency_code", "sector", "conclusion", "recorded_at")},
    )
    await session.execute(stmt, list(rows))


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def add_pass_counts(session: AsyncSession, deltas: dict[str, tuple[int, int]]) -> None:
    """Move the per-sector counters by (results, passed) for each sector."""
    if not deltas:
        return
    ins = _insert(session)(rm_pass_counts)
    stmt = ins.on_conflict_do_update(
        index_elements=[rm_pass_counts.c.sector],
        set_={"n": rm_pass_counts.c.n + ins.excluded.n, "passed": rm_pass_counts.c.passed + ins.excluded.passed},
    )
    await session.execute(stmt, [{"sector": k, "n": n, "passed": p} for k, (n, p) in sorted(deltas.items())])


async def pass_rates_by_sector(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(select(rm_pass_counts).order_by(rm_pass_counts.c.sector))
    return [{"sector": r.sector, "n": int(r.n), "passed": int(r.passed)} for r in rows]
