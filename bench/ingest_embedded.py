"""ingest_embedded: bulk NDJSON through the embedded suite's gateway, vs raw sqlite3.executemany.

The suite runs in a uvicorn subprocess (uvloop, httptools) on a fresh temp data dir. The bench
posts N rows as 1,000-row requests to `/v1/results:batch` (bodies encoded before the clock
starts), then polls `/v1/pass-rates` until the read model counts all N.

Besides the rates (wall clock, which other load on the machine moves), it reports the CPU time the
server spent from the first write to the read model complete, per 1,000 results, beside the CPU
time of the raw executemany: a figure that a busy machine moves far less; and the suite's peak
resident memory while it ingests (sampled from /proc, the server and any child it starts).

A national year (issue 18: 7M results, <= 10 minutes end to end, a documented run, not in CI):
`python -m bench --national` (the same as `--only ingest_embedded --rows 7000000`); about 3.5 GB of
request bodies are made before the clock starts. Smaller runs report the 7M time extrapolated
from their own, marked as such.
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
GOAL_RSS_MB = 600  # peak memory of the embedded suite while ingesting 1M
NATIONAL_ROWS = 7_000_000  # a national year: `--rows 7000000` (or --national), <= 10 minutes end to end
GOAL_NATIONAL_S = 600


def _raw_tuples(rows: list[dict[str, Any]], now: str) -> list[tuple[Any, ...]]:
    """The rows as the results table's columns, in its order (what the raw baseline inserts)."""
    from shared.uuid7 import new_ids

    ids = new_ids(len(rows))
    return [
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


def prepare(n: int, tag: str, path: Path, batch: int = common.BATCH_ROWS) -> tuple[list[bytes], float, float]:
    """The request bodies of n generated rows, and the raw baseline on the same rows: plain
    sqlite3.executemany into the sampling service's own table (its DDL, compiled from its metadata), in
    a fresh WAL file, one commit per `batch` rows. Rows are made 100,000 at a time (a national year
    is 7M: never all as dicts at once); only the inserts are timed. Returns (bodies, rows/s, CPU s)."""
    from sqlalchemy.dialects import sqlite as sqlite_dialect
    from sqlalchemy.schema import CreateIndex, CreateTable

    from services.sampling.models import results

    dialect = sqlite_dialect.dialect()
    ddl = [str(CreateTable(results).compile(dialect=dialect))]
    ddl += [str(CreateIndex(ix).compile(dialect=dialect)) for ix in results.indexes]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    bodies: list[bytes] = []
    elapsed = cpu = 0.0
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")  # what the services use
        for stmt in ddl:
            con.execute(stmt)
        sql = ""
        for rows in common.chunks(common.iter_rows(n, tag), 100_000):
            bodies += common.ndjson_bodies(rows, batch)
            tuples = _raw_tuples(rows, now)
            sql = sql or f"INSERT INTO results VALUES ({', '.join('?' * len(tuples[0]))})"
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(0, len(tuples), batch):
                con.execute("BEGIN")
                con.executemany(sql, tuples[i : i + batch])
                con.execute("COMMIT")
            elapsed += time.perf_counter() - t0
            cpu += time.process_time() - c0
        (count,) = con.execute("SELECT count(*) FROM results").fetchone()
        assert count == n, count
    finally:
        con.close()
    return bodies, n / elapsed, cpu


def run(args: Any) -> list[dict[str, Any]]:
    n = NATIONAL_ROWS if getattr(args, "national", False) else args.rows or (100_000 if args.quick else 1_000_000)
    concurrency = args.concurrency
    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-embedded-"))
    print(f"[{NAME}] {n:,} rows, {concurrency} requests in flight, data dir {tmp}", flush=True)
    try:
        token = common.bench_token()
        bodies, base_rate, base_cpu = prepare(n, f"E{common.run_tag()}", tmp / "baseline.db")
        (tmp / "baseline.db").unlink()
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
            with common.py_spy(server.proc.pid, common.spy_path(args, NAME)), common.PeakRss(server.proc.pid) as rss:
                out = common.ingest_and_wait(NAME, server.url, server.url, bodies, token, concurrency, n)
            cpu = cpu_seconds(server.proc.pid) - cpu0
            rate, t_done = out["rate"], out["t_done"]
            catch_up = t_done - out["t_last"]
            end_to_end = t_done - out["t0"]
            events_rate = n / end_to_end
            print(
                f"[{NAME}] read model complete {catch_up:.2f}s after the last write "
                f"({events_rate:,.0f} events/s end to end; server CPU {cpu:.1f} s; peak RSS {rss.mb:,.0f} MB)",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    common_extra = {"rows": n, "concurrency": concurrency, "batch_rows": common.BATCH_ROWS}
    national = n >= NATIONAL_ROWS
    return [
        common.figure(
            NAME,
            f"ingest, {n:,} results (gateway /v1/results:batch)",
            rate,
            "results/s",
            baseline=base_rate,
            goal=f"ratio >= {GOAL_RATIO}",
            met=rate / base_rate >= GOAL_RATIO,
            baseline_what="raw sqlite3.executemany, WAL, commit per 1,000",
            **common.request_extras(out),
            **common_extra,
        ),
        common.figure(
            NAME,
            "read model complete after the last write",
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
            f"peak RSS of the suite while ingesting {n:,}",
            rss.mb,
            "MB",
            goal=f"<= {GOAL_RSS_MB} MB (1M)",
            met=rss.mb <= GOAL_RSS_MB,
            how="max of VmRSS sampled every 0.25 s (server and children) and the server's VmHWM",
            **common_extra,
        ),
        common.figure(
            NAME,
            "a national year, 7M results, end to end" if national else "7M results end to end, extrapolated",
            end_to_end if national else end_to_end * NATIONAL_ROWS / n,
            "s",
            goal=f"<= {GOAL_NATIONAL_S // 60} min" if national else None,
            met=end_to_end <= GOAL_NATIONAL_S if national else None,
            how="first write -> read model complete" if national else f"{n:,} rows' time x 7M / {n:,} (not a run)",
            **common_extra,
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
