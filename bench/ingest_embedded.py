"""ingest_embedded: bulk NDJSON through the embedded suite's gateway, vs raw sqlite3.executemany.

The suite runs in a uvicorn subprocess (uvloop, httptools) on a fresh temp data dir. The bench
posts N rows as 1,000-row requests to `/v1/results:batch` (bodies encoded before the clock
starts), then polls `/v1/pass-rates` until the read model counts all N.

Besides the rates (wall clock, which other load on the machine moves), it reports the CPU time the
server spent from the first write to the read model complete, per 1,000 results, beside the CPU
time of the raw executemany: a figure that a busy machine moves far less.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common
from bench.idle_embedded import cpu_seconds

NAME = "ingest_embedded"
GOAL_RATIO = 0.6  # issue 18: >= 0.6 x raw sqlite3 executemany, same run
GOAL_CATCH_UP_S = 2.0  # and the read model complete <= 2 s after the last write


def sqlite_baseline(rows: list[dict[str, Any]], path: Path, batch: int = common.BATCH_ROWS) -> tuple[float, float]:
    """Rows/s of plain sqlite3.executemany of the same rows into the sampling service's own table
    (its DDL, compiled from its metadata), in a fresh WAL file, one commit per `batch` rows; and the
    CPU seconds it took."""
    from sqlalchemy.dialects import sqlite as sqlite_dialect
    from sqlalchemy.schema import CreateIndex, CreateTable

    from services.sampling.models import results
    from shared.uuid7 import new_ids

    dialect = sqlite_dialect.dialect()
    ddl = [str(CreateTable(results).compile(dialect=dialect))]
    ddl += [str(CreateIndex(ix).compile(dialect=dialect)) for ix in results.indexes]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    ids = new_ids(len(rows))
    tuples = [
        (
            ids[k],
            1,
            common.AGENCY,
            r["report_no"],
            r["level"],
            r["sector"],
            int(r["key_product"]),
            r["product_category"],
            r["product_name"],
            r["brand"],
            None,
            None,
            r["production_date"],
            r["uscc"],
            r["enterprise_name"],
            r["district_code"],
            None,
            r["sampling_date"],
            r["report_date"],
            r["conclusion"],
            r["conclusion"],
            "provisional" if r["conclusion"] == "fail" else "final",
            None,
            None,
            json.dumps(r["nonconforming_items"], ensure_ascii=False),
            now,
            now,
            "bench",
        )
        for k, r in enumerate(rows)
    ]
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")  # what the services use
        for stmt in ddl:
            con.execute(stmt)
        sql = f"INSERT INTO results VALUES ({', '.join('?' * len(tuples[0]))})"
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(tuples), batch):
            con.execute("BEGIN")
            con.executemany(sql, tuples[i : i + batch])
            con.execute("COMMIT")
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        (count,) = con.execute("SELECT count(*) FROM results").fetchone()
        assert count == len(rows), count
    finally:
        con.close()
    return len(rows) / elapsed, cpu


def run(args: Any) -> list[dict[str, Any]]:
    n = args.rows or (100_000 if args.quick else 1_000_000)
    concurrency = args.concurrency
    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-embedded-"))
    print(f"[{NAME}] {n:,} rows, {concurrency} requests in flight, data dir {tmp}", flush=True)
    try:
        rows = common.make_rows(n, f"E{common.run_tag()}")
        bodies = common.ndjson_bodies(rows)
        token = common.bench_token()

        base_rate, base_cpu = sqlite_baseline(rows, tmp / "baseline.db")
        print(f"[{NAME}] raw sqlite3 executemany: {base_rate:,.0f} rows/s, {base_cpu:.2f} s CPU", flush=True)

        port = common.free_port()
        argv = [common.PYTHON, "-m", "bench.serve_embedded", "--data-dir", str(tmp / "data"), "--port", str(port)]
        if args.profile not in ("none", "py-spy"):
            argv += ["--profile", args.profile, "--profile-out", str(Path(args.profile_out).resolve())]
        server = common.Server("embedded", argv, port, tmp / "server.log", env={"QC_LOG_LEVEL": "WARNING"})
        with common.servers(server):
            server.wait_ready()
            print(f"[{NAME}] server ready on {server.url} (pid {server.proc.pid if server.proc else '?'})", flush=True)
            assert server.proc is not None
            cpu0 = cpu_seconds(server.proc.pid)
            with common.py_spy(server.proc.pid, common.spy_path(args, NAME)):
                out = common.ingest_and_wait(NAME, server.url, server.url, bodies, token, concurrency, n)
            cpu = cpu_seconds(server.proc.pid) - cpu0
            rate, t_done = out["rate"], out["t_done"]
            catch_up = t_done - out["t_last"]
            events_rate = n / (t_done - out["t0"])
            print(
                f"[{NAME}] read model complete {catch_up:.2f}s after the last write "
                f"({events_rate:,.0f} events/s end to end; server CPU {cpu:.1f} s)",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    common_extra = {"rows": n, "concurrency": concurrency, "batch_rows": common.BATCH_ROWS}
    return [
        common.figure(
            NAME,
            "ingest (gateway /v1/results:batch)",
            rate,
            "results/s",
            baseline=base_rate,
            goal=f"ratio >= {GOAL_RATIO}",
            met=rate / base_rate >= GOAL_RATIO,
            baseline_what="raw sqlite3.executemany, WAL, commit per 1,000",
            elapsed_s=out["elapsed_s"],
            p50_ms=out["p50_ms"],
            p99_ms=out["p99_ms"],
            **common_extra,
        ),
        common.figure(
            NAME,
            "projection catch-up after last write",
            catch_up,
            "s",
            goal=f"<= {GOAL_CATCH_UP_S:.0f} s",
            met=catch_up <= GOAL_CATCH_UP_S,
            **common_extra,
        ),
        common.figure(
            NAME, "events projected (first write -> read model complete)", events_rate, "events/s", **common_extra
        ),
        common.figure(
            NAME,
            "server CPU, first write -> read model complete, per 1,000 results",
            1e6 * cpu / n,
            "CPU ms",
            baseline=1e6 * base_cpu / n,
            baseline_what="raw sqlite3.executemany's CPU per 1,000 rows",
            **common_extra,
        ),
    ]
