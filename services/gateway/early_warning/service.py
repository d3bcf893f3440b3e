"""The warning workflow's use cases: acknowledge and close, each with who, when and a note.

The actor is the token's subject, the time the service clock; the change is a compare-and-set on the
warning's version (If-Match), written with its event to the outbox and the change feed in the same
transaction, like the raising of the warning.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.early_warning import repository
from services.gateway.early_warning.domain import WarningNotFound, next_state
from services.gateway.early_warning.engine import publish, warning_event
from shared.context import Context
from shared.contracts.gateway import WARNING_ACKNOWLEDGED, WARNING_CLOSED, WarningSnapshot
from shared.preconditions import check_if_match

#: The action, the event it writes, and the columns it fills (who, when, note).
_ACTIONS = {
    "acknowledge": (WARNING_ACKNOWLEDGED, "acknowledged"),
    "close": (WARNING_CLOSED, "closed"),
}


def snapshot(row: dict[str, Any]) -> WarningSnapshot:
    """A stored warning as its contract (evidence parsed; the condition key is internal)."""
    return WarningSnapshot.model_validate(
        {**{k: v for k, v in row.items() if k != "dedup_key"}, "evidence": orjson.loads(row["evidence"])}
    )


async def _transition(
    session: AsyncSession, ctx: Context, warning_id: str, if_match: str | None, action: str, note: str | None
) -> dict[str, Any]:
    row = await repository.warning(session, warning_id)
    if row is None:
        raise WarningNotFound(f"No warning {warning_id!r}")
    check_if_match(if_match, row["version"])
    state = next_state(row["state"], action)
    event_type, prefix = _ACTIONS[action]
    now = ctx.clock.now()
    values = {"state": state, f"{prefix}_by": ctx.actor, f"{prefix}_at": now, f"{prefix}_note": note}
    version = await repository.update_warning(session, warning_id, row["version"], values)
    new = {**row, **values, "version": version}
    # The feed's applied_at is wall-clock time, like every applied event's (the freshness figures).
    await publish(session, [warning_event(event_type, snapshot(new))], datetime.now(UTC))
    return new


async def acknowledge(
    session: AsyncSession, ctx: Context, warning_id: str, if_match: str | None, note: str | None
) -> dict[str, Any]:
    """Someone takes an open warning in hand; it stays deduplicated (the condition raises nothing new)."""
    return await _transition(session, ctx, warning_id, if_match, "acknowledge", note)


async def close(
    session: AsyncSession, ctx: Context, warning_id: str, if_match: str | None, note: str | None
) -> dict[str, Any]:
    """Close an open or acknowledged warning: its condition may raise a new warning from now on."""
    return await _transition(session, ctx, warning_id, if_match, "close", note)
