"""Gateway: projection catch-up (events/s), attainment p99 and credit-profile p99 with many results loaded.

In one process, on SQLite: result snapshots (and some honours) are handed to the gateway's idempotent
consumer in batches of 2,000, as the bus would; then the attainment and credit-profile endpoints are
timed through the ASGI transport. Baselines in the same run: raw `sqlite3.executemany` of the same
rows (catch-up), and a bare FastAPI endpoint through the same transport (latencies).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from bench.common import DISTRICTS, LEVELS, SECTORS, enterprises, figure
from services.gateway.main import create_app
from services.gateway.settings import GatewaySettings
from shared.auth import TokenService
from shared.contracts.awards import HONOUR_GRANTED
from shared.contracts.sampling import RESULT_RECORDED
from shared.events import Envelope
from shared.settings import PlatformSettings

NAME = "gateway_read"
BATCH = 2000


def _events(n: int, usccs: list[str], seed: int = 5) -> list[Envelope]:
    rnd = random.Random(seed)
    t0 = datetime(2015, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        day = date(2011, 1, 1) + timedelta(days=rnd.randrange(5 * 365))
        conclusion = "pass" if rnd.random() < 0.92 else "fail"
        uscc = usccs[rnd.randrange(len(usccs))]
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
        out.append(
            Envelope(
                type=RESULT_RECORDED,
                source="/bench",
                subject=uscc,
                data={"result": snap},
                time=t0 + timedelta(milliseconds=i),
            )
        )
    for k in range(n // 50):  # honours: one per fifty results
        uscc = usccs[rnd.randrange(len(usccs))]
        granted = date(2011, 1, 1) + timedelta(days=rnd.randrange(5 * 365))
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
        out.append(
            Envelope(
                type=HONOUR_GRANTED,
                source="/bench",
                subject=uscc,
                data={"honour": honour, "source": "import"},
                time=t0,
            )
        )
    return out


def _raw_sqlite(events: list[Envelope], folder: Path) -> float:
    """Baseline: raw sqlite3 executemany of the same result rows (one table, no upsert logic)."""
    con = sqlite3.connect(folder / "raw.db")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(
        "create table r (id text primary key, uscc text, sector text, level text, district text, day text,"
        " conclusion text, data text)"
    )
    rows = [
        (
            e.data["result"]["result_id"],
            e.subject,
            e.data["result"]["sector"],
            e.data["result"]["level"],
            e.data["result"]["district_code"],
            e.data["result"]["sampling_date"],
            e.data["result"]["conclusion"],
            "{}",
        )
        for e in events
        if e.type.startswith("sampling")
    ]
    t = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        con.executemany("insert into r values (?,?,?,?,?,?,?,?)", rows[i : i + BATCH])
        con.commit()
    elapsed = time.perf_counter() - t
    con.close()
    return len(rows) / elapsed


async def _p99(client: httpx.AsyncClient, path: str, params: Any, headers: dict[str, str], n: int) -> float:
    samples = []
    for i in range(n):
        p = params(i) if callable(params) else params
        t = time.perf_counter()
        r = await client.get(path, params=p, headers=headers)
        samples.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
    samples.sort()
    return samples[int(0.99 * (len(samples) - 1))] * 1000


async def _run(rows: int, requests: int) -> list[dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix="qc-bench-gw-"))
    platform = PlatformSettings(log_json=False, log_level="WARNING")
    app = create_app(GatewaySettings(database_url=f"sqlite+aiosqlite:///{folder}/gateway.db", platform=platform))
    usccs = enterprises(50_000)
    events = _events(rows, usccs)
    out: list[dict[str, Any]] = []
    async with LifespanManager(app, startup_timeout=60) as manager:
        consumer = app.state.runtime.consumer
        t = time.perf_counter()
        for i in range(0, len(events), BATCH):
            await consumer.handle_batch(events[i : i + BATCH])
        rate = len(events) / (time.perf_counter() - t)
        raw = _raw_sqlite(events, folder)
        out.append(
            figure(
                NAME,
                f"projection catch-up ({len(events):,} events)",
                rate,
                "events/s",
                baseline=raw,
                goal=">= 50,000 events/s",
                met=rate >= 50_000,
                baseline_is="raw sqlite3 executemany",
            )
        )

        bare = FastAPI()

        @bare.get("/ping")
        async def ping() -> dict[str, str]:
            return {"status": "ok"}

        token = TokenService.from_settings(platform).mint("bench", ["read"])
        h = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bare), base_url="http://b") as b:
            baseline = await _p99(b, "/ping", {}, {}, requests)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://g") as c:
            await c.get("/v1/attainment")
            att = await _p99(c, "/v1/attainment", {}, {}, requests)
            att_mid = await _p99(c, "/v1/attainment", {"as_of": "2015-06-30"}, {}, requests)
            rnd = random.Random(3)
            named = sorted({e.subject for e in events})
            picks = [rnd.choice(named) for _ in range(requests)]
            samples = []
            for u in picks:
                t = time.perf_counter()
                r = await c.get(f"/v1/credit/{u}", headers=h)
                samples.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
            samples.sort()
            prof = samples[int(0.99 * (len(samples) - 1))] * 1000
        out.append(
            figure(
                NAME,
                f"attainment p99 ({rows:,} results, as_of plan end)",
                att,
                "ms",
                baseline=baseline,
                goal="<= 20 ms",
                met=att <= 20,
                baseline_is="bare FastAPI endpoint p99 (ms)",
            )
        )
        out.append(
            figure(
                NAME,
                "attainment p99 (as_of mid-year: daily counters)",
                att_mid,
                "ms",
                baseline=baseline,
                goal="<= 20 ms",
                met=att_mid <= 20,
                baseline_is="bare FastAPI endpoint p99 (ms)",
            )
        )
        out.append(
            figure(
                NAME,
                "credit profile p99 (50,000 enterprises)",
                prof,
                "ms",
                baseline=baseline,
                goal="<= 10 ms",
                met=prof <= 10,
                baseline_is="bare FastAPI endpoint p99 (ms)",
            )
        )
    return out


def run(args: Any) -> list[dict[str, Any]]:
    rows = args.rows or (20_000 if args.quick else 200_000)
    return asyncio.run(_run(rows, 300 if args.quick else 1000))
