"""peer_orm: what a team would write first — rows posted one by one to a plain FastAPI endpoint that
stores each with the SQLAlchemy ORM (one session, add, commit per request), on SQLite.

`python -m bench.peer_orm --db FILE --port P` serves the peer; `run()` posts a sample of the same
rows the embedded ingest posts (one JSON object per request, 3 in flight) and reports results/s.
A sample, not every row (5,000; 2,000 with --quick): at 100-400 rows a second a million would take
hours; the rate per row is what the table compares (`ingest_embedded` figure / this one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import Boolean, Date, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench import common

NAME = "peer_orm"


class Base(DeclarativeBase):
    pass


class Result(Base):
    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("agency_code", "report_no"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_code: Mapped[str] = mapped_column(String(32))
    report_no: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(12))
    sector: Mapped[str] = mapped_column(String(16))
    key_product: Mapped[bool] = mapped_column(Boolean)
    product_category: Mapped[str] = mapped_column(String(64))
    product_name: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str | None] = mapped_column(String(64))
    production_date: Mapped[date | None] = mapped_column(Date)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    enterprise_name: Mapped[str] = mapped_column(String(200))
    district_code: Mapped[str] = mapped_column(String(6))
    sampling_date: Mapped[date] = mapped_column(Date, index=True)
    report_date: Mapped[date] = mapped_column(Date)
    conclusion: Mapped[str] = mapped_column(String(4))
    nonconforming_items: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime)


class ResultIn(BaseModel):
    report_no: str
    level: str
    sector: str
    key_product: bool
    product_category: str
    product_name: str
    brand: str | None = None
    production_date: date | None = None
    uscc: str
    enterprise_name: str
    district_code: str
    sampling_date: date
    report_date: date
    conclusion: str
    nonconforming_items: list[dict[str, str]] = []


def create_app(db_path: Path) -> FastAPI:
    engine = create_async_engine(f"sqlite+aiosqlite:///{db_path}")
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            await conn.run_sync(Base.metadata.create_all)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/results", status_code=201)
    async def create(body: ResultIn) -> dict[str, int]:
        session: AsyncSession
        async with sessions() as session:
            row = Result(
                agency_code=common.AGENCY,
                **body.model_dump(exclude={"nonconforming_items"}),
                nonconforming_items=json.dumps(body.nonconforming_items, ensure_ascii=False),
                recorded_at=datetime.now(UTC),
            )
            session.add(row)
            await session.commit()
            return {"id": row.id}

    return app


async def _post_one_by_one(url: str, rows: list[dict[str, Any]], concurrency: int) -> float:
    next_i = 0
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:

        async def worker() -> None:
            nonlocal next_i
            while next_i < len(rows):
                row = rows[next_i]
                next_i += 1
                r = await c.post("/results", json=row)
                if r.status_code != 201:
                    raise RuntimeError(f"peer answered {r.status_code}: {r.text[:300]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


def run(args: Any) -> list[dict[str, Any]]:
    n = min(args.rows or 1_000_000, 2_000 if args.quick else 5_000)
    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-peer-"))
    print(f"[{NAME}] {n:,} rows posted one by one, {args.concurrency} in flight, data dir {tmp}", flush=True)
    try:
        rows = common.make_rows(n, f"P{common.run_tag()}")
        port = common.free_port()
        argv = [common.PYTHON, "-m", "bench.peer_orm", "--db", str(tmp / "peer.db"), "--port", str(port)]
        server = common.Server("peer", argv, port, tmp / "server.log")
        with common.servers(server):
            server.wait_ready(path="/healthz")
            elapsed = asyncio.run(_post_one_by_one(server.url, rows, args.concurrency))
        rate = n / elapsed
        print(f"[{NAME}] {rate:,.0f} results/s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        common.figure(
            NAME,
            f"peer: one row per POST, FastAPI + SQLAlchemy ORM ({n:,} rows)",
            rate,
            "results/s",
            rows=n,
            concurrency=args.concurrency,
            note="the suite's ingest rate over this one is its lead (see ingest_embedded)",
        )
    ]


def main() -> None:
    import uvicorn

    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    uvicorn.run(create_app(a.db), host="127.0.0.1", port=a.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
