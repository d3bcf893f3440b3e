"""Optimistic concurrency over HTTP: ETag on reads, `If-Match` required on updates."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shared.audit import note_versions
from shared.errors import PreconditionRequired, StaleVersion, etag

__all__ = ["check_if_match", "etag"]


def check_if_match(if_match: str | None, current_version: int) -> None:
    """428 without `If-Match`, 412 when it names another version than the stored one."""
    if if_match is None:
        raise PreconditionRequired()
    wanted = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if "*" not in wanted and etag(current_version) not in wanted:
        raise StaleVersion(current_version)


async def update_if_version(
    session: AsyncSession, table: Table, where: ColumnElement[bool], version: int, values: dict[str, Any]
) -> int:
    """Compare-and-set on `version`: write `values` and version + 1 only if the row is still at `version`.

    Of two writers that read the same version exactly one succeeds; the other gets `StaleVersion` (412)
    with the current ETag.
    Returns the new version.
    """
    result = await session.execute(
        update(table).where(where, table.c.version == version).values({**values, "version": version + 1})
    )
    if getattr(result, "rowcount", 0) != 1:
        current = (await session.execute(select(table.c.version).where(where))).scalar()
        raise StaleVersion(current)
    note_versions(session, version, version + 1)
    return version + 1


async def update_row(
    session: AsyncSession, table: Table, key: str, row: Mapping[str, Any], values: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """`update_if_version` of a row as it was read (found by its `key` column), stamped `updated_at`:
    answers the row as it now stands (`values` on it, its version + 1)."""
    values = {**values, "updated_at": now}
    version = await update_if_version(session, table, table.c[key] == row[key], row["version"], values)
    return {**row, **values, "version": version}
