"""Sampling's pass-rate SQL (`repository.pass_rates`) on a migrated SQLite and PostgreSQL: for every
grouping and filter, the counts equal the ones this test computes itself from the rows it stored."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import services.sampling
from services.sampling import repository
from shared.db import Database

SERVICE_DIR = Path(services.sampling.__file__).parent
AT = datetime(2015, 1, 1, tzinfo=UTC)
SECTORS = ("food", "manufacturing", "construction")
LEVELS = ("national", "provincial", "municipal")
DISTRICTS = ("370202", "370203", "370212")
STATES = ("final", "final", "final", "provisional", "retracted")


def make_rows(n: int, seed: int = 2012) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        sampled = date(2012, 1, 1) + timedelta(days=rnd.randrange(3 * 365))
        conclusion = "pass" if rnd.random() < 0.8 else "fail"
        rows.append(
            {
                "id": f"r{i:05d}",
                "version": 1,
                "agency_code": rnd.choice(("QD-A", "QD-B")),
                "report_no": f"R-{i}",
                "level": rnd.choice(LEVELS),
                "sector": rnd.choice(SECTORS),
                "key_product": rnd.random() < 0.3,
                "product_category": rnd.choice(("饮料", "电器")),
                "product_name": "p",
                "brand": None,
                "model_spec": None,
                "batch_no": None,
                "production_date": None,
                "uscc": "91370200163562681G",
                "enterprise_name": "企业",
                "district_code": rnd.choice(DISTRICTS),
                "sampled_unit": None,
                "sampling_date": sampled,
                "report_date": sampled + timedelta(days=10),
                "conclusion": conclusion,
                "original_conclusion": conclusion,
                "state": rnd.choice(STATES),
                "objection_deadline": None,
                "reinspection": None,
                "nonconforming_items": "[]",
                "recorded_at": AT,
                "updated_at": AT,
                "recorded_by": "t",
            }
        )
    return rows


def key_of(row: dict[str, Any], group: str) -> Any:
    return {
        "year": lambda: row["sampling_date"].year,
        "quarter": lambda: (row["sampling_date"].month - 1) // 3 + 1,
        "district": lambda: row["district_code"],
        "category": lambda: row["product_category"],
        "agency": lambda: row["agency_code"],
    }.get(group, lambda: row[group])()


def expected(
    rows: Sequence[dict[str, Any]],
    group_by: Sequence[str],
    keep: Callable[[dict[str, Any]], bool],
    include_provisional: bool,
) -> dict[tuple[Any, ...], tuple[int, int]]:
    n: Counter[tuple[Any, ...]] = Counter()
    passed: Counter[tuple[Any, ...]] = Counter()
    for r in rows:
        if r["state"] == "retracted" or (r["state"] == "provisional" and not include_provisional) or not keep(r):
            continue
        key = tuple(key_of(r, g) for g in group_by)
        n[key] += 1
        passed[key] += r["conclusion"] == "pass"
    return {k: (n[k], passed[k]) for k in n}


def got(out: list[dict[str, Any]], group_by: Sequence[str]) -> dict[tuple[Any, ...], tuple[int, int]]:
    return {tuple(o["key"][g] for g in group_by): (o["n"], o["passed"]) for o in out}


CASES: list[tuple[tuple[str, ...], dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ((), {}, lambda r: True),
    (("sector",), {}, lambda r: True),
    (("year", "quarter"), {}, lambda r: True),
    (("district", "level"), {"sector": "food"}, lambda r: r["sector"] == "food"),
    (("key_product",), {"agency": "QD-B"}, lambda r: r["agency_code"] == "QD-B"),
    (
        ("category", "year"),
        {"sampled_from": date(2013, 1, 1), "sampled_to": date(2013, 12, 31)},
        lambda r: r["sampling_date"].year == 2013,
    ),
]


@pytest.mark.parametrize("include_provisional", [False, True])
async def test_pass_rates_match_independent_counts(migrated: Callable[..., Any], include_provisional: bool) -> None:
    db: Database = await migrated(SERVICE_DIR, "sampling")
    rows = make_rows(600)
    async with db.unit_of_work() as uow:
        await repository.insert_results(uow.session, rows)
        await uow.commit()
    async with db.unit_of_work() as uow:
        for group_by, filters, keep in CASES:
            want = expected(rows, group_by, keep, include_provisional)
            assert sum(n for n, _ in want.values()) > 20, group_by  # the case counts something
            out = await repository.pass_rates(uow.session, group_by, filters, include_provisional)
            assert got(out, group_by) == want, (group_by, filters)
            # Groups come back in key order, each key's types as the API shows them.
            assert [tuple(o["key"][g] for g in group_by) for o in out] == sorted(want)
