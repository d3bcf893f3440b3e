"""One handler per inbound event type; each writes only the gateway's read models."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import repository
from services.gateway.repository import CountKey
from shared.consumer import Handler
from shared.events import Envelope

RESULT_EVENTS = (
    "sampling.result.recorded.v1",
    "sampling.result.corrected.v1",
    "sampling.result.retracted.v1",
    "sampling.result.reinspected.v1",
    "sampling.result.finalised.v1",
)
#: Kept for the tests and the event catalog: the type most results arrive with.
RESULT_RECORDED = RESULT_EVENTS[0]


def _count_key(r: dict[str, Any]) -> CountKey:
    year = r["sampling_date"].year if isinstance(r["sampling_date"], date) else int(str(r["sampling_date"])[:4])
    return (r["sector"], r["level"], r["district_code"], year, bool(r["key_product"]), r["state"] == "final")


def _as_row(s: dict[str, Any], at: Any) -> dict[str, Any]:
    return {
        "result_id": s["result_id"],
        "version": s["version"],
        "uscc": s["uscc"],
        "enterprise_name": s["enterprise_name"],
        "agency_code": s["agency_code"],
        "report_no": s["report_no"],
        "level": s["level"],
        "sector": s["sector"],
        "key_product": s["key_product"],
        "product_category": s["product_category"],
        "product_name": s["product_name"],
        "district_code": s["district_code"],
        "sampling_date": date.fromisoformat(str(s["sampling_date"])),
        "report_date": date.fromisoformat(str(s["report_date"])),
        "conclusion": s["conclusion"],
        "state": s["state"],
        "reinspection": s.get("reinspection"),
        "updated_at": at,
    }


async def on_result_changed(session: AsyncSession, events: Sequence[Envelope]) -> None:
    """Keep each result's latest version and move the pass counters by the difference it makes."""
    latest: dict[str, tuple[dict[str, Any], Any]] = {}
    for e in events:
        snap = e.data["result"]
        held = latest.get(snap["result_id"])
        if held is None or snap["version"] > held[0]["version"]:
            latest[snap["result_id"]] = (snap, e.time)
    current = await repository.current_results(session, list(latest))
    deltas: dict[CountKey, tuple[int, int]] = {}

    def move(row: dict[str, Any], sign: int) -> None:
        if row["state"] == "retracted":
            return
        key = _count_key(row)
        n, p = deltas.get(key, (0, 0))
        deltas[key] = (n + sign, p + sign * (row["conclusion"] == "pass"))

    changed = []
    for rid, (snap, at) in latest.items():
        old = current.get(rid)
        if old is not None and old["version"] >= snap["version"]:
            continue  # an older version arriving late changes nothing
        new = _as_row(snap, at)
        if old is not None:
            move(old, -1)
        move(new, +1)
        changed.append(new)
    await repository.upsert_results(session, changed)
    await repository.add_pass_counts(session, deltas)


HANDLERS: dict[str, Handler] = {t: on_result_changed for t in RESULT_EVENTS}
