"""One handler per inbound event type; each writes only the gateway's read models."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import repository
from shared.consumer import Handler
from shared.events import Envelope

RESULT_RECORDED = "sampling.result.recorded.v1"


async def on_result_recorded(session: AsyncSession, events: Sequence[Envelope]) -> None:
    deltas: dict[str, tuple[int, int]] = {}
    for e in events:
        n, passed = deltas.get(e.data["sector"], (0, 0))
        deltas[e.data["sector"]] = (n + 1, passed + (e.data["conclusion"] == "pass"))
    await repository.add_pass_counts(session, deltas)
    await repository.upsert_results(
        session,
        [
            {
                "result_id": e.data["result_id"],
                "uscc": e.data["uscc"],
                "agency_code": e.data["agency_code"],
                "sector": e.data["sector"],
                "conclusion": e.data["conclusion"],
                "recorded_at": e.time,
            }
            for e in events
        ],
    )


HANDLERS: dict[str, Handler] = {RESULT_RECORDED: on_result_recorded}
