"""ingest_distributed: bulk NDJSON into the sampling service on PostgreSQL, events to the gateway over Kafka.

Starts PostgreSQL/Kafka with deploy/local/*.sh if they are not running (and stops only what it
started), creates fresh databases and a fresh topic prefix, runs sampling and gateway as
uvicorn subprocesses, posts N rows to sampling directly and waits until the gateway's read model
counts them; then again with two sampling replicas (two processes on the same database and topics,
the bodies posted to both) on fresh databases and topics. Baselines: a raw aiokafka idempotent
producer (acks=all) sending N records of the size of one ResultRecorded event to a scratch topic;
and, for two replicas, the one-replica run.
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
GOAL_RATIO = 0.5  # issue 18: >= 0.5 x the raw idempotent producer of the same records, same run
GOAL_REPLICAS = 2.0  # and >= 2x with two sampling replicas vs one
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


def _ingest(
    rows: list[dict[str, Any]], bodies: list[bytes], token: str, replicas: int, concurrency: int, tmp: Path
) -> dict[str, Any]:
    """One ingest on fresh databases and a fresh topic prefix: `replicas` sampling processes (the same
    database, the same topics), each sent `concurrency` requests at once from one queue of bodies, and
    the gateway; returns ingest_and_wait's figures once the gateway's read model counts every row."""
    n = len(rows)
    rnd = f"{int(time.time()) % 10**6:06d}{random.randrange(16**4):04x}"
    prefix = f"bench{rnd}."
    dbs = [f"bench_sampling_{rnd}", f"bench_gateway_{rnd}"]
    r = _script("postgres.sh", "createdb", *dbs, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"createdb failed:\n{r.stdout}\n{r.stderr}")
    try:
        ports = [common.free_port() for _ in range(replicas)]
        gp = common.free_port()
        env = {
            "QC_BUS": "kafka",
            "QC_KAFKA_BOOTSTRAP": KAFKA,
            "QC_TOPIC_PREFIX": prefix,
            "QC_LOG_LEVEL": "WARNING",
            "QC_SAMPLING_DATABASE_URL": f"{PG}/{dbs[0]}",
            "QC_GATEWAY_DATABASE_URL": f"{PG}/{dbs[1]}",
            "QC_GATEWAY_SAMPLING_URL": f"http://127.0.0.1:{ports[0]}",
        }
        samplings = [
            common.Server(
                f"sampling{k}",
                common.uvicorn_argv("services.sampling.main:create_app", port),
                port,
                tmp / f"sampling{k}-{rnd}.log",
                env,
            )
            for k, port in enumerate(ports)
        ]
        gateway = common.Server(
            "gateway", common.uvicorn_argv("services.gateway.main:create_app", gp), gp, tmp / f"gateway-{rnd}.log", env
        )
        with common.servers(samplings[0], gateway):
            samplings[0].wait_ready()  # migrated by the first replica before the others start
            gateway.wait_ready()
            with common.servers(*samplings[1:]):
                for s in samplings[1:]:
                    s.wait_ready()
                urls = [s.url for s in samplings]
                print(f"[{NAME}] {replicas} sampling replica(s) on {urls}, gateway on {gateway.url}", flush=True)
                out = common.ingest_and_wait(NAME, urls, gateway.url, bodies, token, concurrency, n)
        out["catch_up"] = out["t_done"] - out["t_last"]
        out["events_rate"] = n / (out["t_done"] - out["t0"])
        print(
            f"[{NAME}] {replicas} replica(s): gateway read model complete {out['catch_up']:.2f}s after the last "
            f"write ({out['events_rate']:,.0f} events/s end to end)",
            flush=True,
        )
        return out
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(_delete_topics(prefix))
        with contextlib.suppress(Exception):
            asyncio.run(_drop_databases(dbs))


def run(args: Any) -> list[dict[str, Any]]:
    n = args.rows or (50_000 if args.quick else 1_000_000)
    concurrency = args.concurrency
    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-distributed-"))
    print(f"[{NAME}] {n:,} rows, {concurrency} requests in flight per sampling replica", flush=True)
    rows = common.make_rows(n, f"D{common.run_tag()}")
    bodies = common.ndjson_bodies(rows)
    token = common.bench_token()
    scratch = f"bench{common.run_tag()}.scratch"
    try:
        with infrastructure():
            try:
                base_rate, msg_size = asyncio.run(kafka_baseline(rows, scratch))
            finally:
                with contextlib.suppress(Exception):
                    asyncio.run(_delete_topics(scratch))
            print(f"[{NAME}] raw aiokafka producer: {base_rate:,.0f} messages/s ({msg_size} B each)", flush=True)
            one = _ingest(rows, bodies, token, 1, concurrency, tmp)
            two = _ingest(rows, bodies, token, 2, concurrency, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    extra = {"rows": n, "concurrency_per_replica": concurrency, "batch_rows": common.BATCH_ROWS}
    return [
        common.figure(
            NAME,
            f"ingest, {n:,} results (sampling /v1/results:batch, PostgreSQL + Kafka)",
            one["rate"],
            "results/s",
            baseline=base_rate,
            goal=f"ratio >= {GOAL_RATIO}",
            met=one["rate"] >= GOAL_RATIO * base_rate,
            baseline_what="raw aiokafka idempotent producer (acks=all) of records of the same size",
            message_bytes=msg_size,
            **common.request_extras(one),
            **extra,
        ),
        common.figure(
            NAME,
            "ingest with two sampling replicas (same PostgreSQL + Kafka)",
            two["rate"],
            "results/s",
            baseline=one["rate"],
            goal=f">= {GOAL_REPLICAS}x one replica",
            met=two["rate"] >= GOAL_REPLICAS * one["rate"],
            baseline_what="one replica, same run",
            **common.request_extras(two),
            **extra,
        ),
        common.figure(
            NAME, "gateway read model complete after the last write (one replica)", one["catch_up"], "s", **extra
        ),
        common.figure(
            NAME,
            "events projected, first write -> read model complete (one replica)",
            one["events_rate"],
            "events/s",
            **extra,
        ),
        common.figure(
            NAME, "gateway read model complete after the last write (two replicas)", two["catch_up"], "s", **extra
        ),
    ]
