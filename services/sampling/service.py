"""Sampling use cases. They add and flush in the caller's unit of work; they never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.sampling import repository
from services.sampling.domain import same_content
from services.sampling.events import RESULT_RECORDED, SOURCE, ResultRecorded
from services.sampling.models import outbox
from services.sampling.schemas import ResultIn, RowOutcome, RowProblem
from shared.auth import Principal
from shared.events import Envelope, registry
from shared.outbox import add_to_outbox
from shared.problems import Problem


def _agency_of(principal: Principal) -> str:
    if not principal.agency:
        raise Problem(
            403,
            "agency-token-required",
            "An agency token is required",
            "Results are recorded under the agency bound to the token; this token has none.",
        )
    return principal.agency


def _new_row(agency: str, actor: str, data: ResultIn, now: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "agency_code": agency,
        "report_no": data.report_no,
        "uscc": data.uscc,
        "sector": data.sector.value,
        "conclusion": data.conclusion.value,
        "retracted": False,
        "recorded_at": now,
        "recorded_by": actor,
    }


def _recorded_event(row: dict[str, Any]) -> Envelope:
    payload = ResultRecorded(
        result_id=row["id"],
        agency_code=row["agency_code"],
        report_no=row["report_no"],
        uscc=row["uscc"],
        sector=row["sector"],
        conclusion=row["conclusion"],
        recorded_at=row["recorded_at"],
    )
    return registry.make(RESULT_RECORDED, payload, subject=row["uscc"], source=SOURCE)


async def record_result(session: AsyncSession, principal: Principal, data: ResultIn) -> tuple[dict[str, Any], bool]:
    """Record one result with its event; a re-sent identical report returns the first one."""
    agency = _agency_of(principal)
    existing = await repository.find_by_report(session, agency, data.report_no)
    if existing is not None:
        if same_content(existing, data.model_dump(mode="json")):
            return existing, False
        raise Problem(
            409,
            "report-conflict",
            "Report number already used",
            f"Agency {agency} already recorded report {data.report_no} with other content; "
            "correct it instead of sending it again.",
            existing_id=existing["id"],
        )
    row = _new_row(agency, principal.subject, data, datetime.now(UTC))
    await repository.insert_many(session, [row])
    await add_to_outbox(session, outbox, [_recorded_event(row)])
    return row, True


async def record_batch(
    session: AsyncSession, principal: Principal, rows: Sequence[ResultIn | list[RowProblem]]
) -> list[RowOutcome]:
    """Store the valid rows of a batch with their events, in two bulk statements; report every row."""
    agency = _agency_of(principal)
    valid = [r for r in rows if isinstance(r, ResultIn)]
    existing = await repository.find_by_reports(session, agency, [r.report_no for r in valid])
    now = datetime.now(UTC)
    outcomes: list[RowOutcome] = []
    new_rows: list[dict[str, Any]] = []
    for n, item in enumerate(rows, start=1):
        if not isinstance(item, ResultIn):
            outcomes.append(RowOutcome(row=n, outcome="rejected", problems=item))
            continue
        seen = existing.get(item.report_no)
        if seen is not None:
            if same_content(seen, item.model_dump(mode="json")):
                outcomes.append(RowOutcome(row=n, outcome="duplicate", id=seen["id"]))
            else:
                outcomes.append(
                    RowOutcome(
                        row=n,
                        outcome="conflict",
                        id=seen["id"],
                        problems=[RowProblem(field="report_no", reason="already recorded with other content")],
                    )
                )
            continue
        row = _new_row(agency, principal.subject, item, now)
        existing[item.report_no] = row  # a report repeated inside the batch is a duplicate of its first
        new_rows.append(row)
        outcomes.append(RowOutcome(row=n, outcome="created", id=row["id"]))
    await repository.insert_many(session, new_rows)
    await add_to_outbox(session, outbox, [_recorded_event(r) for r in new_rows])
    return outcomes
