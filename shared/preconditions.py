"""Optimistic concurrency over HTTP: ETag on reads, `If-Match` required on updates."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shared.problems import Problem


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(if_match: str | None, current_version: int) -> None:
    """428 without `If-Match`, 412 when it names another version than the stored one."""
    if if_match is None:
        raise Problem(
            428,
            "precondition-required",
            "If-Match required",
            "Send the ETag you read in If-Match, so a concurrent change is not overwritten.",
        )
    wanted = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if "*" not in wanted and etag(current_version) not in wanted:
        raise Problem(
            412,
            "precondition-failed",
            "Stale If-Match",
            f"The resource changed: its current ETag is {etag(current_version)}.",
            current_etag=etag(current_version),
        )


def stale_version() -> Problem:
    return Problem(
        412,
        "precondition-failed",
        "Stale If-Match",
        "Another change was saved first; read the resource again and retry.",
    )


async def update_if_version(
    session: AsyncSession, table: Table, where: ColumnElement[bool], version: int, values: dict[str, Any]
) -> int:
    """Compare-and-set on `version`: write `values` and version + 1 only if the row is still at `version`.

    Of two writers that read the same version exactly one succeeds; the other gets the 412 problem.
    Returns the new version.
    """
    result = await session.execute(
        update(table).where(where, table.c.version == version).values({**values, "version": version + 1})
    )
    if getattr(result, "rowcount", 0) != 1:
        raise stale_version()
    return version + 1
