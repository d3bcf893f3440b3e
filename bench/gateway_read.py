"""Read models at full size: projection catch-up of the gateway and the credit service, attainment and
credit-profile p99 with 1M results on 1M enterprises.

In one process, on SQLite: result snapshots (and one honour per fifty results) are handed to the
gateway's and then the credit service's idempotent consumer in batches of 2,000, as the bus would (each
consumer gets envelopes of its own, made from the same seed, so neither reuses the other's parsing);
then the gateway's attainment and credit-profile endpoints are timed through the ASGI transport.
Baselines in the same run: raw `sqlite3.executemany` of the same result rows (catch-up: the goal is
>= 0.25x of it), and a bare FastAPI endpoint through the same transport (latencies).

Attainment is asked for a different (as-of date, district) on every request, so its answer cache
(per plan, day, district and data version) never serves one: each figure is evaluated.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from bench.common import DISTRICTS, LEVELS, SECTORS, figure, usccs
from services.credit.main import create_app as create_credit
from services.credit.settings import CreditSettings
from services.gateway.main import create_app
from services.gateway.settings import GatewaySettings
from shared.auth import TokenService
from shared.contracts.awards import HONOUR_GRANTED
from shared.contracts.sampling import RESULT_RECORDED
from shared.events import Envelope
from shared.settings import PlatformSettings

NAME = "gateway_read"
BATCH = 2000
GOAL_CATCH_UP_RATIO = 0.25  # issue 18: projection catch-up / rebuild >= 0.25 x raw executemany, same run
GOAL_PROFILE_MS = 5.0  # credit profile p99, 1M enterprises
GOAL_ATTAINMENT_MS = 30.0  # attainment p99, 1M results, any as-of date and district, uncached
PLAN_START, PLAN_DAYS = date(2011, 1, 1), 5 * 365  # the default plan's period (qingdao-2012: 2011-2015)


def _result(i: int, uscc: str, rnd: random.Random, t0: datetime) -> Envelope:
    day = PLAN_START + timedelta(days=rnd.randrange(PLAN_DAYS))
    conclusion = "pass" if rnd.random() < 0.92 else "fail"
    snap = {
        "result_id": str(uuid.UUID(int=rnd.getrandbits(128))),
        "version": 1,
        "agency_code": "QD-BENCH",
        "report_no": f"B-{i:08d}",
        "level": LEVELS[i % 4],
        "sector": SECTORS[(i // 4) % 4],
        "key_product": i % 3 == 0,
        "product_category": "c",
        "product_name": "p",
        "brand": None,
        "uscc": uscc,
        "enterprise_name": f"青岛企业{uscc[-6:]}",
        "district_code": DISTRICTS[i % len(DISTRICTS)],
        "sampling_date": day.isoformat(),
        "report_date": (day + timedelta(days=9)).isoformat(),
        "conclusion": conclusion,
        "original_conclusion": conclusion,
        "state": "final",
        "objection_deadline": None,
        "reinspection": None,
        "nonconforming_count": 0,
        "recorded_at": "2015-01-01T00:00:00Z",
    }
    return Envelope(
        type=RESULT_RECORDED, source="/bench", subject=uscc, data={"result": snap}, time=t0 + timedelta(milliseconds=i)
    )


def _honour(k: int, uscc: str, rnd: random.Random, t0: datetime) -> Envelope:
    granted = PLAN_START + timedelta(days=rnd.randrange(PLAN_DAYS))
    t = rnd.choice(("B3", "B5", "B6", "S2", "S6", "Q5"))
    honour = {
        "honour_id": str(uuid.UUID(int=rnd.getrandbits(128))),
        "version": 1,
        "type_code": t,
        "type_name_zh": t,
        "holder_kind": "enterprise",
        "holder_id": uscc,
        "holder_name": f"青岛企业{uscc[-6:]}",
        "district_code": DISTRICTS[k % len(DISTRICTS)],
        "subject": None,
        "granted_on": granted.isoformat(),
        "valid_until": None,
        "state": "active",
        "certificate_no": f"C{k}",
        "granting_authority": "a",
        "indicator_codes": [],
    }
    return Envelope(
        type=HONOUR_GRANTED, source="/bench", subject=uscc, data={"honour": honour, "source": "import"}, time=t0
    )


def event_batches(n: int, ents: list[str], seed: int = 5) -> Iterator[list[Envelope]]:
    """n result events in batches of BATCH (plus an honour per fifty results), made as they are
    consumed (a million envelopes are not held at once). Result i is of enterprise i (modulo their
    number): n results over n enterprises give every enterprise one. The same seed: the same events."""
    rnd = random.Random(seed)
    t0 = datetime(2015, 1, 1, tzinfo=UTC)
    batch: list[Envelope] = []
    for i in range(n):
        batch.append(_result(i, ents[i % len(ents)], rnd, t0))
        if i % 50 == 49:
            batch.append(_honour(i // 50, ents[rnd.randrange(len(ents))], rnd, t0))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _raw_rows(batch: list[Envelope]) -> list[tuple[str, ...]]:
    return [
        (
            r["result_id"],
            e.subject,
            r["sector"],
            r["level"],
            r["district_code"],
            r["sampling_date"],
            r["conclusion"],
            "{}",
        )
        for e in batch
        if e.type == RESULT_RECORDED
        for r in (e.data["result"],)
    ]


def raw_sqlite(n: int, ents: list[str], folder: Path) -> float:
    """Baseline: raw sqlite3 executemany of the same result rows (one table, no upsert logic), one
    commit per batch; rows/s over the inserts only."""
    con = sqlite3.connect(folder / "raw.db")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(
        "create table r (id text primary key, uscc text, sector text, level text, district text, day text,"
        " conclusion text, data text)"
    )
    elapsed, count = 0.0, 0
    for batch in event_batches(n, ents):
        rows = _raw_rows(batch)
        t = time.perf_counter()
        con.executemany("insert into r values (?,?,?,?,?,?,?,?)", rows)
        con.commit()
        elapsed += time.perf_counter() - t
        count += len(rows)
    con.close()
    (folder / "raw.db").unlink()
    return count / elapsed


async def catch_up(app: FastAPI, n: int, ents: list[str]) -> tuple[float, int]:
    """Hands every batch to the app's consumer; returns (result rows/s over the handling, events)."""
    consumer = app.state.runtime.consumer
    elapsed, events = 0.0, 0
    for batch in event_batches(n, ents):
        t = time.perf_counter()
        await consumer.handle_batch(batch)
        elapsed += time.perf_counter() - t
        events += len(batch)
    return n / elapsed, events


def catch_up_figure(service: str, rate: float, raw: float, rows: int, events: int) -> dict[str, Any]:
    return figure(
        NAME,
        f"{service} projection catch-up ({rows:,} results)",
        rate,
        "results/s",
        baseline=raw,
        goal=f"ratio >= {GOAL_CATCH_UP_RATIO}",
        met=rate >= GOAL_CATCH_UP_RATIO * raw,
        baseline_what=f"raw sqlite3 executemany of the same {rows:,} result rows, same run",
        events=events,
    )


@dataclass(frozen=True)
class Latency:
    """Wall-clock p50/p99 of sequential requests, and the process's CPU time per request (all its
    threads: the SQLite driver's too). With nothing else in flight the CPU time is the request's own
    work; the machine's load moves it far less than the wall clock."""

    p50: float
    p99: float
    cpu_p50: float
    cpu_p99: float

    def extra(self) -> dict[str, float]:
        return {"p50_ms": self.p50, "cpu_p50_ms": self.cpu_p50, "cpu_p99_ms": self.cpu_p99}

    def __str__(self) -> str:
        return f"p50/p99 {self.p50:.1f}/{self.p99:.1f} ms (CPU {self.cpu_p50:.1f}/{self.cpu_p99:.1f} ms)"


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[int(q * (len(ordered) - 1))] * 1000


async def _p99(client: httpx.AsyncClient, path: Any, params: Any, headers: dict[str, str], n: int) -> Latency:
    """Latencies in ms of n GETs, one at a time; `path` and `params` may be functions of the request's number."""
    wall, cpu = [], []
    for i in range(n):
        p = params(i) if callable(params) else params
        url = path(i) if callable(path) else path
        t, c = time.perf_counter(), time.process_time()
        r = await client.get(url, params=p, headers=headers)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        if r.status_code != 200:
            raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")
    return Latency(_pct(wall, 0.5), _pct(wall, 0.99), _pct(cpu, 0.5), _pct(cpu, 0.99))


def _readings(requests: int, seed: int = 3) -> list[dict[str, str]]:
    """`requests` distinct (as-of date, district or the city) pairs within the plan: none asked twice."""
    rnd = random.Random(seed)
    pairs = rnd.sample(range(PLAN_DAYS * (len(DISTRICTS) + 1)), requests)
    out = []
    for k in pairs:
        day, d = divmod(k, len(DISTRICTS) + 1)
        reading = {"as_of": (PLAN_START + timedelta(days=day)).isoformat()}
        if d < len(DISTRICTS):
            reading["district"] = DISTRICTS[d]
        out.append(reading)
    return out


async def _run(rows: int, n_ents: int, requests: int) -> list[dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix="qc-bench-gw-"))
    platform = PlatformSettings(log_json=False, log_level="WARNING")
    t = time.perf_counter()
    ents = usccs(n_ents)
    print(f"[{NAME}] {n_ents:,} enterprises made in {time.perf_counter() - t:.1f}s", flush=True)
    raw = raw_sqlite(rows, ents, folder)
    print(f"[{NAME}] raw sqlite3 executemany: {raw:,.0f} rows/s", flush=True)
    out: list[dict[str, Any]] = []

    credit = create_credit(
        CreditSettings(database_url=f"sqlite+aiosqlite:///{folder}/credit.db", platform=platform, run_jobs=False)
    )
    async with LifespanManager(credit, startup_timeout=120):
        rate, events = await catch_up(credit, rows, ents)
    print(f"[{NAME}] credit projection: {rate:,.0f} results/s ({events:,} events)", flush=True)
    out.append(catch_up_figure("credit", rate, raw, rows, events))

    app = create_app(GatewaySettings(database_url=f"sqlite+aiosqlite:///{folder}/gateway.db", platform=platform))
    async with LifespanManager(app, startup_timeout=120) as manager:
        rate, events = await catch_up(app, rows, ents)
        print(f"[{NAME}] gateway projection: {rate:,.0f} results/s ({events:,} events)", flush=True)
        out.append(catch_up_figure("gateway", rate, raw, rows, events))

        bare = FastAPI()

        @bare.get("/ping")
        async def ping() -> dict[str, str]:
            return {"status": "ok"}

        token = TokenService(platform).mint("bench", ["read"])
        h = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bare), base_url="http://b") as b:
            baseline = await _p99(b, "/ping", {}, {}, requests)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://g") as c:
            (await c.get("/v1/attainment")).raise_for_status()  # warm: the plan, the connections
            readings = _readings(requests)
            att = await _p99(c, "/v1/attainment", readings.__getitem__, {}, requests)
            named = random.Random(3).sample(ents[: min(rows, len(ents))], requests)
            prof = await _p99(c, lambda i: f"/v1/credit/{named[i]}", {}, h, requests)
        print(f"[{NAME}] attainment {att}, credit profile {prof}, bare endpoint {baseline}")
        bare_what = "bare FastAPI endpoint p99 through the same transport, same run"
        out.append(
            figure(
                NAME,
                f"attainment p99 ({rows:,} results, a different as-of date and district each request, uncached)",
                att.p99,
                "ms",
                baseline=baseline.p99,
                goal=f"<= {GOAL_ATTAINMENT_MS:.0f} ms",
                met=att.p99 <= GOAL_ATTAINMENT_MS,
                baseline_what=bare_what,
                requests=requests,
                **att.extra(),
            )
        )
        out.append(
            figure(
                NAME,
                f"credit profile p99 ({n_ents:,} enterprises)",
                prof.p99,
                "ms",
                baseline=baseline.p99,
                goal=f"<= {GOAL_PROFILE_MS:.0f} ms",
                met=prof.p99 <= GOAL_PROFILE_MS,
                baseline_what=bare_what,
                requests=requests,
                **prof.extra(),
            )
        )
    return out


def run(args: Any) -> list[dict[str, Any]]:
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    return asyncio.run(_run(rows, rows, 300 if args.quick else 1000))
