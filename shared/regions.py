"""Qingdao's administrative divisions as data with validity dates, for every service that checks one.

The table (data/regions.json) is reference data, not code: 2012 results may name 四方区, 2020
results may not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from pydantic import BaseModel

DEFAULT_PATH = Path(__file__).parent / "data" / "regions.json"


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name_zh: str
    name_en: str
    level: str  # city | district | county_city
    valid_from: date | None
    valid_to: date | None

    def in_force_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)

    @property
    def is_district(self) -> bool:
        """A district or county-level city (区、市): what `district_code` means; the city itself is not one."""
        return self.level != "city"

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "level": self.level,
            "valid_from": self.valid_from,
            "valid_to": self.valid_to,
        }


class RegionTable:
    def __init__(self, regions: tuple[Region, ...]) -> None:
        self.regions = regions
        self.by_code = {r.code: r for r in regions}

    def find(self, code: str) -> Region | None:
        return self.by_code.get(code)

    def span(self, region: Region) -> str:
        return f"{region.valid_from or '…'} to {region.valid_to or '…'}"

    def district_problem(self, code: str, on: date) -> str | None:
        """Why `code` is not a district on `on`, or None when it is."""
        region = self.by_code.get(code)
        if region is None:
            return f"unknown district code {code}; see GET /v1/regions"
        if not region.is_district:
            return f"{code} {region.name_zh} is the city, not a district"
        if not region.in_force_on(on):
            return f"{code} {region.name_zh} was not a district on {on.isoformat()} (valid {self.span(region)})"
        return None


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@lru_cache(maxsize=4)
def load_regions(path: Path = DEFAULT_PATH) -> RegionTable:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return RegionTable(
        tuple(
            Region(r["code"], r["name_zh"], r["name_en"], r["level"], _d(r["valid_from"]), _d(r["valid_to"]))
            for r in raw["regions"]
        )
    )


class RegionOut(BaseModel):
    code: str
    name_zh: str
    name_en: str
    level: str
    valid_from: date | None
    valid_to: date | None


def add_regions_route(router: APIRouter, tag: str) -> None:
    """`GET /regions` (public): every division code with its validity dates, the same in every service."""

    async def regions() -> list[dict[str, object]]:
        return [r.as_dict() for r in load_regions().regions]

    router.add_api_route(
        "/regions",
        regions,
        methods=["GET"],
        response_model=list[RegionOut],
        tags=[tag],
        summary="Qingdao's division codes with their validity dates (no token)",
    )
