"""ingest_distributed: bulk NDJSON into the sampling service on PostgreSQL, events to the gateway over Kafka.

Starts PostgreSQL/Kafka with deploy/local/*.sh if they are not running (and stops only what it
started), creates fresh databases and a fresh topic prefix, runs sampling and gateway as two
uvicorn subprocesses, posts N rows to sampling directly and waits until the gateway's read model
counts them. Baseline: a raw aiokafka idempotent producer (acks=all) sending N messages of the
size of one ResultRecorded event to a scratch topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common

NAME = "ingest_distributed"
GOAL_RATE = 30_000
PG = "postgresql+asyncpg://qc:qc@127.0.0.1:15432"
KAFKA = "127.0.0.1:19092"


def _script(name: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(common.ROOT / "deploy/local" / name), *argv],
        cwd=common.ROOT,
        capture_output=True,
        text=True,
        check=check,
    )


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def infrastructure() -> Iterator[None]:
    started: list[str] = []
    try:
        for script, port in (("postgres.sh", 15432), ("kafka.sh", 19092)):
            # A server already answering on the port is someone else's (shared by the machine's users):
            # use it, and never start or stop one of this checkout's own beside it.
            if _port_open(port):
                continue
            if _script(script, "status", check=False).returncode != 0:
                print(f"[{NAME}] starting {script} ...", flush=True)
                started.append(script)
                r = _script(script, "start", check=False)
                if r.returncode != 0:
                    raise RuntimeError(f"{script} start failed:\n{r.stdout}\n{r.stderr}")
        yield
    finally:
        for script in reversed(started):
            print(f"[{NAME}] stopping {script} (started by the bench)", flush=True)
            _script(script, "stop", check=False)


async def _drop_databases(names: list[str]) -> None:
    import asyncpg

    con = await asyncpg.connect("postgresql://qc:qc@127.0.0.1:15432/postgres")
    try:
        for db in names:
            await con.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        await con.close()


async def _delete_topics(prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA, request_timeout_ms=10000)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


def _sample_event(row: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of the Kafka record the sampling relay sends for one result: the same
    snapshot the service builds, so the baseline's records have the real size."""
    from datetime import date

    from services.sampling.service import snapshot
    from shared.contracts import registry
    from shared.contracts.sampling import RESULT_RECORDED, SOURCE, ResultRecorded
    from shared.events import to_kafka
    from shared.uuid7 import new_id

    stored = {
        **row,
        "id": new_id(),
        "version": 1,
        "agency_code": common.AGENCY,
        "sampling_date": date.fromisoformat(row["sampling_date"]),
        "report_date": date.fromisoformat(row["report_date"]),
        "original_conclusion": row["conclusion"],
        "state": "provisional" if row["conclusion"] == "fail" else "final",
        "objection_deadline": None,
        "reinspection": None,
        "nonconforming_items": row["nonconforming_items"],
        "recorded_at": datetime.now(UTC),
    }
    payload = ResultRecorded.model_validate({"result": snapshot(stored)})
    env = registry.make(RESULT_RECORDED, payload, subject=row["uscc"], source=SOURCE)
    rec = to_kafka(env)
    return rec.key, rec.value, list(rec.headers)


async def kafka_baseline(rows: list[dict[str, str]], topic: str) -> tuple[float, int]:
    """Messages/s of an idempotent aiokafka producer (acks=all), settings as in shared.bus.KafkaBus."""
    from aiokafka import AIOKafkaProducer

    from shared.bus import ensure_topics

    key, value, headers = _sample_event(rows[0])
    size = len(key) + len(value) + sum(len(k) + len(v) for k, v in headers)
    await ensure_topics(KAFKA, [topic], 6)
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=1024 * 1024,
        request_timeout_ms=15000,
    )
    await producer.start()
    try:
        keys = [r["uscc"].encode() for r in rows]
        t0 = time.perf_counter()
        for i in range(0, len(keys), 2000):  # like the relay: a batch of sends, then wait for all acks
            futures = [await producer.send(topic, value, key=k, headers=headers) for k in keys[i : i + 2000]]
            await asyncio.gather(*futures)
        elapsed = time.perf_counter() - t0
    finally:
        await producer.stop()
    return len(rows) / elapsed, size


def run(args: Any) -> list[dict[str, Any]]:
    n = args.rows or (50_000 if args.quick else 300_000)
    concurrency = args.concurrency
    rnd = f"{int(time.time()) % 10**6:06d}{random.randrange(16**4):04x}"
    prefix = f"bench{rnd}."
    dbs = [f"bench_sampling_{rnd}", f"bench_gateway_{rnd}"]
    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-distributed-"))
    print(f"[{NAME}] {n:,} rows, {concurrency} requests in flight, topic prefix {prefix}", flush=True)
    rows = common.make_rows(n, f"D{rnd}")
    bodies = common.ndjson_bodies(rows)
    token = common.bench_token()
    try:
        with infrastructure():
            r = _script("postgres.sh", "createdb", *dbs, check=False)
            if r.returncode != 0:
                raise RuntimeError(f"createdb failed:\n{r.stdout}\n{r.stderr}")
            try:
                base_rate, msg_size = asyncio.run(kafka_baseline(rows, f"{prefix}scratch"))
                print(f"[{NAME}] raw aiokafka producer: {base_rate:,.0f} messages/s ({msg_size} B each)", flush=True)

                sp, gp = common.free_port(), common.free_port()
                env = {
                    "QC_BUS": "kafka",
                    "QC_KAFKA_BOOTSTRAP": KAFKA,
                    "QC_TOPIC_PREFIX": prefix,
                    "QC_LOG_LEVEL": "WARNING",
                    "QC_SAMPLING_DATABASE_URL": f"{PG}/{dbs[0]}",
                    "QC_GATEWAY_DATABASE_URL": f"{PG}/{dbs[1]}",
                    "QC_GATEWAY_SAMPLING_URL": f"http://127.0.0.1:{sp}",
                }
                sampling = common.Server(
                    "sampling",
                    common.uvicorn_argv("services.sampling.main:create_app", sp),
                    sp,
                    tmp / "sampling.log",
                    env,
                )
                gateway = common.Server(
                    "gateway", common.uvicorn_argv("services.gateway.main:create_app", gp), gp, tmp / "gateway.log", env
                )
                with common.servers(sampling, gateway):
                    sampling.wait_ready()
                    gateway.wait_ready()
                    print(f"[{NAME}] sampling on {sampling.url}, gateway on {gateway.url}", flush=True)
                    out = common.ingest_and_wait(NAME, sampling.url, gateway.url, bodies, token, concurrency, n)
                    rate, t_done = out["rate"], out["t_done"]
                    catch_up = t_done - out["t_last"]
                    events_rate = n / (t_done - out["t0"])
                    print(
                        f"[{NAME}] gateway read model complete {catch_up:.2f}s after the last write "
                        f"({events_rate:,.0f} events/s end to end)",
                        flush=True,
                    )
            finally:
                with contextlib.suppress(Exception):
                    asyncio.run(_delete_topics(prefix))
                with contextlib.suppress(Exception):
                    asyncio.run(_drop_databases(dbs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    extra = {"rows": n, "concurrency": concurrency, "batch_rows": common.BATCH_ROWS}
    return [
        common.figure(
            NAME,
            "ingest (sampling /v1/results:batch, PostgreSQL)",
            rate,
            "results/s",
            goal=f">= {GOAL_RATE:,}/s",
            met=rate >= GOAL_RATE,
            elapsed_s=out["elapsed_s"],
            p50_ms=out["p50_ms"],
            p99_ms=out["p99_ms"],
            **extra,
        ),
        common.figure(
            NAME,
            "raw aiokafka producer (acks=all, idempotent)",
            base_rate,
            "messages/s",
            message_bytes=msg_size,
            **extra,
        ),
        common.figure(NAME, "ingest vs raw Kafka producer", rate, "results/s", baseline=base_rate, **extra),
        common.figure(NAME, "gateway read-model catch-up after last write", catch_up, "s", **extra),
        common.figure(NAME, "events projected (first write -> read model complete)", events_rate, "events/s", **extra),
    ]
