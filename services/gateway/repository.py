"""Every query of the gateway's read models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.models import rm_results


async def upsert_results(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(rm_results)
    stmt = ins.on_conflict_do_update(
        index_elements=[rm_results.c.result_id],
        set_={c: ins.excluded[c] for c in ("uscc", "agency_code", "sector", "conclusion", "recorded_at")},
    )
    await session.execute(stmt, list(rows))


async def pass_rates_by_sector(session: AsyncSession) -> list[dict[str, Any]]:
    passed = func.sum(case((rm_results.c.conclusion == "pass", 1), else_=0))
    rows = await session.execute(
        select(rm_results.c.sector, func.count().label("n"), passed.label("passed"))
        .group_by(rm_results.c.sector)
        .order_by(rm_results.c.sector)
    )
    return [{"sector": r.sector, "n": int(r.n), "passed": int(r.passed or 0)} for r in rows]
