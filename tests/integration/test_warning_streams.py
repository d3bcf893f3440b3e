"""Early warnings on generated sampling streams, through the gateway's own batch handler and a real
database: an injected outbreak (one category's fail rate tripled in one district for a quarter) is
raised within that quarter; a stream without one raises no more false alarms than
docs/warnings.md states."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.gateway.consumers import HANDLERS, apply_batch
from services.gateway.early_warning.domain import quarter_of
from services.gateway.early_warning.engine import with_warnings
from services.gateway.early_warning.rules import FailRateRule, load_rules
from services.gateway.main import SPEC
from services.gateway.models import ew_warnings, outbox, rm_changes
from shared.consumer import decode
from shared.contracts.gateway import WARNING_RAISED
from shared.contracts.sampling import RESULT_RECORDED, SOURCE
from shared.db import Database
from shared.events import Envelope
from shared.migrations import upgrade
from tests.factories import snapshot

DISTRICTS = ("370202", "370203", "370211", "370212")
CATEGORIES = ("饮料", "乳制品")
QUARTERS = [date(2013, m, 1) for m in (1, 4, 7, 10)] + [date(2014, m, 1) for m in (1, 4, 7, 10)]
OUTBREAK = ("饮料", "370212", date(2014, 7, 1))


@dataclass(frozen=True)
class Stream:
    events: list[Envelope]
    groups_quarters: int  # (rule, group, quarter) combinations a rate rule can test


def generate(seed: int, *, outbreak: bool, base: float = 0.05, per_quarter: int = 60, hot_n: int = 240) -> Stream:
    """Results of 2 categories × 4 districts over 8 quarters, in sampling-date order; each result by
    its own enterprise (so only the rate rules can fire). The outbreak group has `hot_n` results per
    quarter, and with `outbreak` its fail rate is tripled in its quarter."""
    rng = random.Random(seed)
    rows: list[tuple[date, dict[str, Any]]] = []
    for category in CATEGORIES:
        for district in DISTRICTS:
            hot = (category, district) == OUTBREAK[:2]
            for start in QUARTERS:
                end = quarter_of(start)[1]
                rate = base * 3 if outbreak and hot and start == OUTBREAK[2] else base
                for _ in range(hot_n if hot else per_quarter):
                    day = start + timedelta(days=rng.randrange((end - start).days + 1))
                    failed = rng.random() < rate
                    rid = str(uuid.UUID(int=rng.getrandbits(128)))
                    rows.append(
                        (
                            day,
                            snapshot(
                                rid,
                                product_category=category,
                                district_code=district,
                                uscc=f"91370200{rid[:9].upper().replace('-', '0')}X"[:18],
                                sampling_date=day.isoformat(),
                                report_date=(day + timedelta(days=5)).isoformat(),
                                conclusion="fail" if failed else "pass",
                                original_conclusion="fail" if failed else "pass",
                                nonconforming_count=int(failed),
                            ),
                        )
                    )
    rows.sort(key=lambda r: (r[0], r[1]["result_id"]))
    events = [
        Envelope(
            type=RESULT_RECORDED,
            source=SOURCE,
            subject=s["uscc"],
            data={"result": s},
            time=datetime(d.year, d.month, d.day, tzinfo=UTC),
        )
        for d, s in rows
    ]
    rules = [r for r in load_rules().rules if isinstance(r, FailRateRule)]
    per_rule = {
        ("product_category", "district_code"): len(CATEGORIES) * len(DISTRICTS),
        ("product_category",): len(CATEGORIES),
        ("district_code",): len(DISTRICTS),
    }
    # Every quarter after the first has a baseline of at least one quarter (>= min_baseline_n here).
    tested = sum(per_rule[tuple(r.group_by)] for r in rules) * (len(QUARTERS) - 1)
    return Stream(events, tested)


async def run(db: Database, stream: Stream, batch: int = 400) -> list[tuple[date, dict[str, Any]]]:
    """Feed the stream in batches; returns each warning with the last sampling day applied when it came."""
    handler = with_warnings(apply_batch, load_rules())
    raised: list[tuple[date, dict[str, Any]]] = []
    for i in range(0, len(stream.events), batch):
        chunk = stream.events[i : i + batch]
        async with db.unit_of_work() as uow:
            await handler(uow.session, decode(chunk, HANDLERS, "test"))
            await uow.commit()
        async with db.unit_of_work() as uow:
            rows = (await uow.session.execute(select(ew_warnings))).mappings().all()
        seen = {w["warning_id"] for _, w in raised}
        last_day = date.fromisoformat(chunk[-1].data["result"]["sampling_date"])
        raised += [(last_day, dict(r)) for r in rows if r["warning_id"] not in seen]
    return raised


async def _db(sqlite_url: Callable[[str], str], label: str) -> Database:
    url = sqlite_url(label)
    await upgrade(url, SPEC.package_dir)
    return Database(url)


async def test_an_injected_outbreak_is_raised_within_its_quarter(sqlite_url: Callable[[str], str]) -> None:
    db = await _db(sqlite_url, "outbreak")
    try:
        stream = generate(11, outbreak=True)
        raised = await run(db, stream)
        category, district, start = OUTBREAK
        end = quarter_of(start)[1]
        hits = [
            (day, w)
            for day, w in raised
            if w["rule_id"] == "fail-rate-category-district"
            and (w["product_category"], w["district_code"], w["window_start"]) == (category, district, start)
        ]
        assert len(hits) == 1, raised
        day, w = hits[0]
        assert start <= day <= end, f"raised after the quarter, with results of {day}"
        assert '"p_value"' in w["evidence"] and w["summary"].startswith(f"{category} / {district}")
        # Each warning is also an event: on the outbox (Kafka) and on the change feed (webhooks).
        async with db.unit_of_work() as uow:
            feed = (
                (await uow.session.execute(select(rm_changes.c.event_id).where(rm_changes.c.type == WARNING_RAISED)))
                .scalars()
                .all()
            )
            sent = (
                (await uow.session.execute(select(outbox.c.event_id).where(outbox.c.type == WARNING_RAISED)))
                .scalars()
                .all()
            )
        assert sorted(feed) == sorted(sent) == sorted(w["warning_id"] for _, w in raised)
        unrelated = [w for _, w in raised if w["window_start"] != start or w["district_code"] not in (None, district)]
        print(f"outbreak raised on {day} (quarter {start}..{end}); other warnings: {len(unrelated)}")
    finally:
        await db.dispose()


async def test_a_stream_without_outbreak_stays_within_the_stated_false_alarms(sqlite_url: Callable[[str], str]) -> None:
    """docs/warnings.md: at most alpha false alarms per group and quarter tested. Over this stream's
    tested groups and quarters the expected count is at most alpha × n; the test allows the Poisson
    99.9 % quantile of that mean."""
    db = await _db(sqlite_url, "quiet")
    try:
        stream = generate(12, outbreak=False)
        raised = await run(db, stream)
        alpha = max(r.alpha for r in load_rules().rules if isinstance(r, FailRateRule))
        mean = alpha * stream.groups_quarters
        bound, cdf, k = 0, 0.0, 0
        while cdf < 0.999:
            cdf += math.exp(-mean) * mean**k / math.factorial(k)
            bound, k = k, k + 1
        print(f"false alarms: {len(raised)} over {stream.groups_quarters} group-quarters (mean bound {mean:.2f})")
        assert len(raised) <= bound, [w["summary"] for _, w in raised]
    finally:
        await db.dispose()
