"""Every query of the sampling service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.sampling.models import results


async def get(session: AsyncSession, result_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(results).where(results.c.id == result_id))).mappings().first()
    return dict(row) if row else None


async def find_by_report(session: AsyncSession, agency: str, report_no: str) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                select(results).where(results.c.agency_code == agency, results.c.report_no == report_no)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def find_by_reports(session: AsyncSession, agency: str, report_nos: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(report_nos), 5000):
        chunk = list(report_nos[i : i + 5000])
        rows = (
            await session.execute(
                select(results).where(results.c.agency_code == agency, results.c.report_no.in_(chunk))
            )
        ).mappings()
        for row in rows:
            found[row["report_no"]] = dict(row)
    return found


async def insert_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany for the whole batch (the ORM would issue one INSERT per row on SQLite)."""
    if rows:
        await session.execute(insert(results), list(rows))
