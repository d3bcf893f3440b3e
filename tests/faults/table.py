"""The fault table: one row per fault run, printed at the end of the run (conftest.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass

#: `make soak` promises at least this many acknowledged writes in all.
SOAK_MINIMUM = 100_000


@dataclass
class Row:
    fault: str
    acknowledged: int
    stored: int
    lost: int
    doubled: int
    recovery_s: float


ROWS: list[Row] = []


def writes_per_fault() -> int:
    """`QC_FAULT_WRITES`: 2,000 in `make test`; `make soak` sets enough for 100,000 in all."""
    return int(os.environ.get("QC_FAULT_WRITES", "2000"))


def render(rows: list[Row]) -> list[str]:
    lines = [f"{'fault':<36} {'acknowledged':>12} {'stored':>8} {'lost':>5} {'doubled':>8} {'recovery s':>10}"]
    for r in rows:
        lines.append(
            f"{r.fault:<36} {r.acknowledged:>12} {r.stored:>8} {r.lost:>5} {r.doubled:>8} {r.recovery_s:>10.1f}"
        )
    lines.append(
        f"{'all':<36} {sum(r.acknowledged for r in rows):>12} {sum(r.stored for r in rows):>8} "
        f"{sum(r.lost for r in rows):>5} {sum(r.doubled for r in rows):>8}"
    )
    return lines
