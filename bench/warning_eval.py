"""Early-warning evaluation cost per event: the gateway's batch handler with the warning rules against
the same handler without them (the baseline), on the same generated result stream, embedded (SQLite).

Each run loads the stream into two fresh gateway databases in batches of 500, as the consumer
would, and reports microseconds per event for both; the difference is what the rules cost.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import common

NAME = "warning_eval"
BATCH = 500
DISTRICTS = ("370202", "370203", "370211", "370212", "370213", "370214", "370215", "370281", "370283", "370285")


def stream(n: int, seed: int = 3) -> list[Any]:
    """`n` recorded results over 2013–2014, 10 districts × 20 categories, 5 % fails, by sampling day."""
    from shared.contracts.sampling import RESULT_RECORDED, SOURCE
    from shared.events import Envelope

    rnd = random.Random(seed)
    start = date(2013, 1, 1)
    out = []
    for i in range(n):
        day = start + timedelta(days=rnd.randrange(730))
        failed = rnd.random() < 0.05
        rid = str(uuid.UUID(int=rnd.getrandbits(128)))
        snap = {
            "result_id": rid,
            "version": 1,
            "agency_code": "QD-BENCH",
            "report_no": f"B-{i}",
            "level": "municipal",
            "sector": "food",
            "key_product": False,
            "product_category": f"类别{rnd.randrange(20):02d}",
            "product_name": "产品",
            "brand": None,
            "uscc": f"91370200B{i:08d}X",
            "enterprise_name": f"企业{i}",
            "district_code": rnd.choice(DISTRICTS),
            "sampling_date": day.isoformat(),
            "report_date": (day + timedelta(days=5)).isoformat(),
            "conclusion": "fail" if failed else "pass",
            "original_conclusion": "fail" if failed else "pass",
            "state": "final",
            "objection_deadline": None,
            "reinspection": None,
            "nonconforming_count": int(failed),
            "recorded_at": datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat(),
        }
        out.append((day, Envelope(type=RESULT_RECORDED, source=SOURCE, subject=snap["uscc"], data={"result": snap})))
    return [e for _, e in sorted(out, key=lambda x: x[0])]


async def _load(url: str, events: list[Any], with_rules: bool) -> tuple[float, int]:
    from services.gateway.consumers import HANDLERS, apply_batch
    from services.gateway.early_warning.engine import with_warnings
    from services.gateway.early_warning.rules import load_rules
    from services.gateway.main import SPEC
    from shared.consumer import decode
    from shared.db import Database
    from shared.migrations import upgrade

    await upgrade(url, SPEC.package_dir)
    db = Database(url)
    handler = with_warnings(apply_batch, load_rules()) if with_rules else apply_batch
    raised = 0
    try:
        t = time.perf_counter()
        for i in range(0, len(events), BATCH):
            async with db.unit_of_work() as uow:
                await handler(uow.session, decode(events[i : i + BATCH], HANDLERS, NAME))
                await uow.commit()
        elapsed = time.perf_counter() - t
        async with db.unit_of_work() as uow:
            from sqlalchemy import func, select

            from services.gateway.models import ew_warnings

            raised = int(await uow.session.scalar(select(func.count()).select_from(ew_warnings)) or 0)
    finally:
        await db.dispose()
    return elapsed, raised


def run(args: Any) -> list[dict[str, Any]]:
    n = args.rows or (20_000 if args.quick else 100_000)
    events = stream(n)
    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-warn-"))
    print(f"[{NAME}] {n:,} result events, batches of {BATCH}, data in {tmp}", flush=True)
    base_s, _ = asyncio.run(_load(f"sqlite+aiosqlite:///{tmp}/base.db", events, with_rules=False))
    rules_s, raised = asyncio.run(_load(f"sqlite+aiosqlite:///{tmp}/rules.db", events, with_rules=True))
    per_base, per_rules = base_s / n * 1e6, rules_s / n * 1e6
    print(f"[{NAME}] {per_base:.1f} µs/event without rules, {per_rules:.1f} with ({raised} warnings)", flush=True)
    return [
        common.figure(NAME, "apply + warning rules, per event", per_rules, "µs", baseline=per_base),
        common.figure(NAME, "warning rules alone, per event", per_rules - per_base, "µs", warnings=raised),
    ]
