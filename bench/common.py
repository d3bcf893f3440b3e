"""What the benchmarks share: test data, tokens, server subprocesses, the bulk client, the table rows."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
from stdnum.cn import uscc

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
AGENCY = "QD-BENCH"
SECTORS = ("manufacturing", "agricultural", "food", "engineering")
BATCH_ROWS = 1000


# ------------------------------------------------------------------------------------------ data
def enterprises(n: int = 50_000, seed: int = 7) -> list[str]:
    """n distinct valid USCCs: "91370200MA3C" + 5 digits + the check character."""
    rnd = random.Random(seed)
    out: list[str] = []
    for k in rnd.sample(range(100_000), n):
        base = f"91370200MA3C{k:05d}"
        code = base + uscc.calc_check_digit(base)
        if uscc.is_valid(code):
            out.append(code)
    if len(out) < n // 2:
        raise RuntimeError("could not generate valid USCCs")
    return out


DISTRICTS = ("370202", "370203", "370211", "370212", "370213", "370214", "370281", "370283", "370285")
LEVELS = ("national", "provincial", "municipal", "district")
ITEM = {
    "item": "菌落总数",
    "requirement": "≤100 CFU/mL",
    "measured": "350",
    "unit": "CFU/mL",
    "standard": "GB 19298-2014",
}


def make_rows(n: int, tag: str, seed: int = 11) -> list[dict[str, Any]]:
    """n complete result rows (as agencies send them) with report numbers unique for this run; ~92 % pass."""
    rnd = random.Random(seed)
    ents = enterprises()
    rows = []
    for i in range(n):
        fail = rnd.random() >= 0.92
        month, day = 1 + i % 12, 1 + i % 20
        rows.append(
            {
                "report_no": f"{tag}-{i:08d}",
                "level": LEVELS[i % 4],
                "sector": SECTORS[i % 4],
                "key_product": i % 7 == 0,
                "product_category": "饮料",
                "product_name": "矿泉水",
                "brand": "崂山",
                "production_date": f"2014-{month:02d}-{day:02d}",
                "uscc": ents[rnd.randrange(len(ents))],
                "enterprise_name": "青岛某饮品有限公司",
                "district_code": DISTRICTS[i % len(DISTRICTS)],
                "sampling_date": f"2014-{month:02d}-{day + 1:02d}",
                "report_date": f"2014-{month:02d}-{day + 5:02d}",
                "conclusion": "fail" if fail else "pass",
                "nonconforming_items": [ITEM] if fail else [],
            }
        )
    return rows


def ndjson_bodies(rows: Sequence[dict[str, Any]], size: int = BATCH_ROWS) -> list[bytes]:
    """The request bodies, encoded once before any clock starts."""
    return [b"\n".join(orjson.dumps(r) for r in rows[i : i + size]) + b"\n" for i in range(0, len(rows), size)]


def bench_token() -> str:
    from shared.auth import TokenService
    from shared.settings import PlatformSettings

    return TokenService.from_settings(PlatformSettings()).mint(
        "bench", ["sampling:write", "read"], agency=AGENCY, ttl_s=6 * 3600
    )


def run_tag() -> str:
    return f"{int(time.time()) % 10**6:06d}{random.randrange(16**4):04x}"


# ------------------------------------------------------------------------------------ processes
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_live: list[Server] = []


class Server:
    """A server subprocess in its own session (Ctrl-C in the terminal does not reach it: we stop it)."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = argv
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115  (kept open by the child)
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        _live.append(self)
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 90.0, path: str = "/readyz") -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                r = httpx.get(f"{self.url}{path}", timeout=2.0)
                if r.status_code == 200:
                    return
                last = r.text[:300]
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s ({last}):\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGINT (uvicorn shuts down gracefully, profilers dump), then SIGTERM, then SIGKILL."""
        proc = self.proc
        if proc is None:
            return
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait)
        self.proc = None
        if self in _live:
            _live.remove(self)


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_live):
        server.stop(timeout=5.0)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP behave like Ctrl-C: the finally blocks stop the servers."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):
            signal.signal(sig, _sigterm)


@contextlib.contextmanager
def servers(*items: Server) -> Iterator[tuple[Server, ...]]:
    try:
        for s in items:
            s.start()
        yield items
    finally:
        for s in reversed(items):
            s.stop()


@contextlib.contextmanager
def py_spy(pid: int | None, out: Path | None, rate: int = 100) -> Iterator[None]:
    """Sample `pid` with py-spy (a dev dependency) while the block runs; the raw (collapsed) stacks
    go to `out` (read them with `python -m bench.topframes OUT`). Nothing happens when out is None."""
    if pid is None or out is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = Path(PYTHON).with_name("py-spy")
    # --nonblocking: the process is never paused to be sampled, so the figures measured meanwhile hold.
    argv = [str(spy), "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking", "--format", "raw"]
    argv += ["-o", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print(f"[py-spy] {out}", flush=True)


def uvicorn_argv(target: str, port: int, *, factory: bool = True) -> list[str]:
    argv = [
        PYTHON,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return argv + (["--factory"] if factory else [])


# ---------------------------------------------------------------------------------- the client
async def post_batches(
    base_url: str, path: str, bodies: Sequence[bytes], token: str, concurrency: int
) -> dict[str, Any]:
    """POST every body with `concurrency` requests in flight; returns totals and timings."""
    headers = {"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"}
    totals = {"received": 0, "created": 0, "duplicates": 0, "rejected": 0}
    latencies: list[float] = []
    next_i = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(600.0, connect=10.0), limits=limits) as c:

        async def worker() -> None:
            nonlocal next_i
            while next_i < len(bodies):
                body = bodies[next_i]
                next_i += 1
                t = time.perf_counter()
                r = await c.post(path, content=body, headers=headers)
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    raise RuntimeError(f"POST {path} answered {r.status_code}: {r.text[:500]}")
                out = orjson.loads(r.content)
                for k in totals:
                    totals[k] += out[k]

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        t1 = time.perf_counter()
    latencies.sort()
    return {
        **totals,
        "t0": t0,
        "t_last": t1,
        "elapsed_s": t1 - t0,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else None,
    }


def ingest_and_wait(
    bench: str, post_url: str, read_url: str, bodies: Sequence[bytes], token: str, concurrency: int, n: int
) -> dict[str, Any]:
    """POST the bodies to `post_url`, then poll `read_url`'s pass rates until they count all n rows;
    returns post_batches' totals and timings with `rate` (results/s) and `t_done` (read model complete)."""
    out = asyncio.run(post_batches(post_url, "/v1/results:batch", bodies, token, concurrency))
    out["rate"] = n / out["elapsed_s"]
    print(
        f"[{bench}] posted in {out['elapsed_s']:.2f}s: {out['rate']:,.0f} results/s "
        f"(p50 {out['p50_ms']:.0f} ms, p99 {out['p99_ms']:.0f} ms per request)",
        flush=True,
    )
    assert out["created"] == n, f"created {out['created']} of {n} ({out})"
    out["t_done"] = asyncio.run(wait_pass_rates(read_url, token, n))
    return out


def spy_path(args: Any, bench: str) -> Path | None:
    """Where `--profile py-spy` writes this benchmark's samples (None: not profiling)."""
    return Path(f"{args.profile_out}-{bench}.txt").resolve() if args.profile == "py-spy" else None


async def wait_pass_rates(base_url: str, token: str, n: int, limit_s: float = 900.0, poll_s: float = 0.1) -> float:
    """Poll GET /v1/pass-rates until the sector totals reach n; returns the perf_counter when they did."""
    headers = {"authorization": f"Bearer {token}"}
    deadline = time.perf_counter() + limit_s
    seen = -1
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as c:
        while True:
            r = await c.get("/v1/pass-rates", headers=headers)
            now = time.perf_counter()
            if r.status_code == 200:
                seen = sum(g["n"] for g in orjson.loads(r.content)["groups"])
                if seen >= n:
                    if seen > n:
                        raise AssertionError(f"read model counts {seen} results, expected {n}")
                    return now
            if now > deadline:
                raise TimeoutError(f"read model shows {seen} of {n} results after {limit_s}s")
            await asyncio.sleep(poll_s)


# -------------------------------------------------------------------------------- table rows
def figure(
    bench: str,
    name: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    goal: str | None = None,
    met: bool | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "benchmark": bench,
        "figure": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "ratio": (value / baseline) if baseline else None,
        "goal": goal,
        "met": met,
        **extra,
    }
