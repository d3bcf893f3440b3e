"""Thin routes of the gateway: read models it owns, and writes forwarded to their owners."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from services.gateway import repository
from services.gateway.domain import wilson_interval
from shared.problems import PROBLEM_SCHEMA
from shared.runtime import UoW

router = APIRouter(prefix="/v1")
_errors: dict[int | str, dict[str, Any]] = {s: PROBLEM_SCHEMA for s in (401, 403, 422, 502, 504)}


class SectorPassRate(BaseModel):
    sector: str
    n: int
    passed: int
    rate: float | None
    wilson_95: tuple[float, float] | None


class PassRates(BaseModel):
    groups: list[SectorPassRate]


@router.get(
    "/pass-rates",
    response_model=PassRates,
    tags=["attainment"],
    summary="Pass rates by sector, from the gateway's read model (each result counted once)",
)
async def pass_rates(uow: UoW) -> Any:
    groups = await repository.pass_rates_by_sector(uow.session)
    return PassRates(
        groups=[
            SectorPassRate(
                sector=g["sector"],
                n=g["n"],
                passed=g["passed"],
                rate=g["passed"] / g["n"] if g["n"] else None,
                wilson_95=wilson_interval(g["passed"], g["n"]),
            )
            for g in groups
        ]
    )
