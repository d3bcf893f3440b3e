"""credit_records: records from other authorities ingested in batches, and names matched to enterprises.

Ingest: the credit service in a subprocess (uvicorn, SQLite, its own migrations) takes penalties in
batches of 1,000 (`POST /v1/credit-records:batch`, an authority's token) over a few thousand enterprises:
records/s, each batch moving ratings and, past three per enterprise, proposing automatically. The
baseline is the same rows inserted into the same table with raw sqlite3 in one transaction: what the
HTTP service and the credit rules add.

Matching: 1,000 names (written as other systems write them) against a register of 1,000,000 generated
enterprises (`services/credit/matching.py`, in process): p50/p99 per name. The baseline is the exact
lookup of the normalised core (a dict): what the fuzzy comparison adds.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import common

NAME = "credit_records"


def penalties(n: int, usccs: list[str], seed: int = 3) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    today = date.today()
    return [
        {
            "record_no": f"BENCH-{i:08d}",
            "kind": "administrative_penalty",
            "uscc": rnd.choice(usccs),
            "enterprise_name": f"青岛测试{i % 997}有限公司",
            "occurred_on": (today - timedelta(days=rnd.randrange(1, 300))).isoformat(),
            "deciding_authority": "青岛市市场监督管理局",
            "category": "生产销售不合格产品",
            "decision_no": f"青市监罚〔2025〕{i}号",
            "legal_basis": "《中华人民共和国产品质量法》第四十九条",
            "amount_yuan": "20000.00",
        }
        for i in range(n)
    ]


def raw_insert_s(db: Path, rows: list[dict[str, Any]]) -> float:
    """The same rows into authority_records with sqlite3 executemany, one transaction: seconds."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    values = [
        (
            str(uuid.UUID(int=i + 1)),
            "QD-BENCH-RAW",
            r["record_no"],
            1,
            "active",
            r["kind"],
            r["uscc"],
            r["enterprise_name"],
            r["occurred_on"],
            json.dumps(r, ensure_ascii=False),
            now,
            now,
        )
        for i, r in enumerate(rows)
    ]
    con = sqlite3.connect(db, isolation_level=None)
    try:
        t = time.perf_counter()
        con.execute("BEGIN")
        con.executemany("INSERT INTO authority_records VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", values)
        con.execute("COMMIT")
        return time.perf_counter() - t
    finally:
        con.close()


async def _ingest(url: str, token: str, bodies: list[bytes]) -> tuple[float, int]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    created = 0
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        t = time.perf_counter()
        for body in bodies:
            r = await client.post("/v1/credit-records:batch", content=body, headers=headers)
            r.raise_for_status()
            created += int(r.json()["created"])
        return time.perf_counter() - t, created


def measure_ingest(n: int) -> dict[str, float]:
    from services.credit import main as credit_main
    from shared.auth import TokenService
    from shared.migrations import upgrade
    from shared.settings import PlatformSettings

    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-records-"))
    try:
        db, raw_db = tmp / "credit.db", tmp / "raw.db"
        for path in (db, raw_db):
            asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}", Path(credit_main.__file__).parent))
        rows = penalties(n, common.usccs(max(n // 5, 10)))
        baseline_s = raw_insert_s(raw_db, rows)
        bodies = [orjson.dumps(rows[i : i + common.BATCH_ROWS]) for i in range(0, n, common.BATCH_ROWS)]
        token = TokenService(PlatformSettings()).mint(
            "bench-authority", ["credit:records"], agency="QD-BENCH-AMR", ttl_s=6 * 3600
        )
        port = common.free_port()
        env = {"QC_CREDIT_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "QC_LOG_LEVEL": "WARNING"}
        env["QC_CREDIT_RUN_JOBS"] = "false"
        server = common.Server(
            "credit", common.uvicorn_argv("services.credit.main:create_app", port), port, tmp / "server.log", env
        )
        with common.servers(server):
            server.wait_ready()
            took, created = asyncio.run(_ingest(server.url, token, bodies))
        assert created == n, f"{created} of {n} records created"
        return {"rate": n / took, "baseline": n / baseline_s}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure_matching(n: int, queries: int = 1_000) -> dict[str, float]:
    from services.credit.matching import EnterpriseIndex, normalise
    from tests.enterprise_names import EXACT_VARIANTS, register, variant

    t = time.perf_counter()
    register_ = register(n, seed=23)
    index = EnterpriseIndex((e.uscc, e.name, e.district_code) for e in register_)
    cores = {normalise(e.name).core: e.uscc for e in register_}
    print(f"[{NAME}] {n:,} enterprises indexed in {time.perf_counter() - t:.1f}s", flush=True)
    rnd = random.Random(29)
    asked = [variant(e, rnd.choice((*EXACT_VARIANTS, "one_char_changed")), rnd) for e in rnd.sample(register_, queries)]
    times, exact = [], []
    for q in asked:
        t = time.perf_counter()
        index.match(q)
        times.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        cores.get(normalise(q).core)
        exact.append((time.perf_counter() - t) * 1000)
    q99 = lambda xs: statistics.quantiles(xs, n=100)[98]  # noqa: E731
    return {"p50": statistics.median(times), "p99": q99(times), "baseline_p99": q99(exact)}


def run(args: Any) -> list[dict[str, Any]]:
    n_records = args.rows or (10_000 if args.quick else 50_000)
    n_names = 100_000 if args.quick else 1_000_000
    print(f"[{NAME}] {n_records:,} records in batches of {common.BATCH_ROWS:,}", flush=True)
    ingest = measure_ingest(n_records)
    print(f"[{NAME}] ingest {ingest['rate']:,.0f} records/s (raw sqlite3 {ingest['baseline']:,.0f}/s)", flush=True)
    m = measure_matching(n_names)
    print(f"[{NAME}] matching p50 {m['p50']:.1f} ms p99 {m['p99']:.1f} ms (exact core p99 {m['baseline_p99']:.3f} ms)")
    return [
        common.figure(
            NAME,
            "records ingested per second (batches of 1,000)",
            ingest["rate"],
            "records/s",
            baseline=ingest["baseline"],
            records=n_records,
        ),
        common.figure(
            NAME,
            f"name matched against {n_names:,} enterprises, p99",
            m["p99"],
            "ms",
            baseline=m["baseline_p99"],
            p50_ms=m["p50"],
            enterprises=n_names,
        ),
    ]
