"""What the benchmarks share: test data, tokens, server subprocesses, the bulk client, the table rows."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
from stdnum.cn import uscc

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
AGENCY = "QD-BENCH"
SECTORS = ("manufacturing", "agricultural", "food", "engineering")
BATCH_ROWS = 1000
RETRIES_503 = 8
T = TypeVar("T")


# ------------------------------------------------------------------------------------------ data
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUE = {c: v for v, c in enumerate(USCC_ALPHABET)}


def usccs(n: int, seed: int = 5) -> list[str]:
    """n distinct valid USCCs ("9137" + 4 digits + "MA" + 7 digits + the check character), a million in
    a few seconds: the check character is GB 32100's weighted sum (python-stdnum's calc_check_digit at
    a tenth of its cost, which matters at a million codes); the first thousand are held to python-stdnum."""
    rnd = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        body = f"9137{rnd.randrange(10**4):04d}MA{rnd.randrange(10**7):07d}"
        if body in seen:
            continue
        seen.add(body)
        total = sum(_USCC_VALUE[c] * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
        out.append(body + USCC_ALPHABET[(31 - total) % 31])
    bad = [c for c in out[:1000] if not uscc.is_valid(c)]
    if bad:
        raise RuntimeError(f"generated USCCs python-stdnum refuses: {bad[:3]}")
    return out


@functools.cache
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


def iter_rows(n: int, tag: str, seed: int = 11) -> Iterator[dict[str, Any]]:
    """n complete result rows (as agencies send them) with report numbers unique for this run; ~92 % pass.
    A generator, so that millions of rows need not be held as dicts at once (a national year is 7M)."""
    rnd = random.Random(seed)
    ents = enterprises()
    for i in range(n):
        fail = rnd.random() >= 0.92
        month, day = 1 + i % 12, 1 + i % 20
        yield {
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


def make_rows(n: int, tag: str, seed: int = 11) -> list[dict[str, Any]]:
    """iter_rows as a list."""
    return list(iter_rows(n, tag, seed))


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last one shorter)."""
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def ndjson_bodies(rows: Sequence[dict[str, Any]], size: int = BATCH_ROWS) -> list[bytes]:
    """The request bodies, encoded once before any clock starts."""
    return [b"\n".join(orjson.dumps(r) for r in rows[i : i + size]) + b"\n" for i in range(0, len(rows), size)]


def bench_token() -> str:
    from shared.auth import TokenService
    from shared.settings import PlatformSettings

    return TokenService(PlatformSettings()).mint("bench", ["sampling:write", "read"], agency=AGENCY, ttl_s=6 * 3600)


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
    except BaseException:
        for s in items:  # their data dirs are removed afterwards: the logs' ends say what went wrong
            print(f"[{s.name}] log's end:\n{s.log_tail()}", file=sys.stderr, flush=True)
        raise
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


def _status_kb(pid: int, field: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _family(pid: int) -> list[int]:
    """pid and its descendants (a worker process the suite may start counts into its memory)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in task.read_text().split()]
    return out


class PeakRss:
    """The peak resident memory of a process and its children while the block runs, in MB: RSS sampled
    every `every_s` (summed over the family), and the kernel's own high-water mark of the process
    (VmHWM, which catches a peak between two samples), the larger of the two."""

    def __init__(self, pid: int, every_s: float = 0.25):
        self.pid, self.every_s = pid, every_s
        self.sampled_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            total = sum(_status_kb(p, "VmRSS") for p in _family(self.pid))
            self.sampled_kb = max(self.sampled_kb, total)
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return max(self.sampled_kb, _status_kb(self.pid, "VmHWM")) / 1024


def machine() -> dict[str, Any]:
    """Cores, memory and the load average now (the run's JSON keeps them at its start and end)."""
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024**2, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


# ---------------------------------------------------------------------------------- the client
async def post_batches(
    base_url: str | Sequence[str], path: str, bodies: Sequence[bytes], token: str, concurrency: int
) -> dict[str, Any]:
    """POST every body with `concurrency` requests in flight (to each of several replicas' URLs, taking
    the bodies from one queue); returns totals and timings."""
    urls = [base_url] if isinstance(base_url, str) else list(base_url)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"}
    totals = {"received": 0, "created": 0, "duplicates": 0, "rejected": 0}
    latencies: list[float] = []
    retried = {"n": 0}
    next_i = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(600.0, connect=10.0)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=u, timeout=timeout, limits=limits)) for u in urls
        ]

        async def worker(c: httpx.AsyncClient) -> None:
            nonlocal next_i
            while next_i < len(bodies):
                body = bodies[next_i]
                next_i += 1
                t = time.perf_counter()
                r = await c.post(path, content=body, headers=headers)
                for attempt in range(RETRIES_503):
                    # 503: "nothing was stored, retry shortly" (e.g. SQLite's write lock not had in time): what
                    # an agency's client does; the retries are counted and reported beside the figure.
                    if r.status_code != 503:
                        break
                    retried["n"] += 1
                    print(f"[bench] 503 on a batch, retry {attempt + 1}: {r.text[:200]}", flush=True)
                    await asyncio.sleep(min(8.0, float(r.headers.get("retry-after") or 2**attempt)))
                    r = await c.post(path, content=body, headers=headers)
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    raise RuntimeError(f"POST {path} answered {r.status_code}: {r.text[:500]}")
                out = orjson.loads(r.content)
                for k in totals:
                    totals[k] += out[k]

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients for _ in range(concurrency)))
        t1 = time.perf_counter()
    latencies.sort()
    return {
        **totals,
        "retries_503": retried["n"],
        "t0": t0,
        "t_last": t1,
        "elapsed_s": t1 - t0,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else None,
    }


def ingest_and_wait(
    bench: str,
    post_url: str | Sequence[str],
    read_url: str,
    bodies: Sequence[bytes],
    token: str,
    concurrency: int,
    n: int,
) -> dict[str, Any]:
    """POST the bodies to `post_url`, then poll `read_url`'s pass rates until they count all n rows;
    returns post_batches' totals and timings with `rate` (results/s) and `t_done` (read model complete)."""
    out = asyncio.run(post_batches(post_url, "/v1/results:batch", bodies, token, concurrency))
    out["rate"] = n / out["elapsed_s"]
    print(
        f"[{bench}] posted in {out['elapsed_s']:.2f}s: {out['rate']:,.0f} results/s "
        f"(p50 {out['p50_ms']:.0f} ms, p99 {out['p99_ms']:.0f} ms per request; {out['retries_503']} retried after 503)",
        flush=True,
    )
    assert out["created"] == n, f"created {out['created']} of {n} ({out})"
    out["t_done"] = asyncio.run(wait_pass_rates(read_url, token, n, limit_s=max(900.0, n / 500)))
    return out


def request_extras(out: dict[str, Any]) -> dict[str, Any]:
    """What a figure of post_batches keeps beside its rate: elapsed time, p50/p99 per request, retries."""
    return {k: out[k] for k in ("elapsed_s", "p50_ms", "p99_ms", "retries_503")}


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
