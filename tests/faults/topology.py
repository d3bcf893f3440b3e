"""The distributed topology as real processes, so a test can kill them: each replica is `qcity serve`
on its own port, with the test's databases and topic prefix (never another test's), and the checks
every fault ends with.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from shared.settings import PlatformSettings
from tests.e2e.awards_helpers import make_uscc
from tests.factories import result_body
from tests.helpers import eventually, free_port

QCITY = str(Path(sys.executable).with_name("qcity"))
#: Start order: the gateway reads the others' OpenAPI documents when it starts.
SERVICES = ("sampling", "credit", "awards", "gateway")


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@dataclass
class Replica:
    """One `qcity serve` process of a service."""

    service: str
    index: int
    port: int
    env: dict[str, str]
    log: Path
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return f"{self.service}-{self.index}"

    async def start(self, timeout: float = 120.0) -> Replica:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                QCITY, "serve", self.service, "--port", str(self.port), env=self.env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"{self.name} exited during start-up:\n{self.tail()}")
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.tail()}")
                await asyncio.sleep(0.2)

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no offset commit, no transaction finished."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            await self.kill()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


@dataclass
class Topology:
    """Every service as `replicas[service]` processes over the test's PostgreSQL databases and topics."""

    platform: PlatformSettings
    databases: dict[str, str]
    workdir: Path
    counts: dict[str, int]
    services: tuple[str, ...] = SERVICES
    replicas: dict[str, list[Replica]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Ports first: the gateway is given every replica's URL of every service.
        for service in self.services:
            self.replicas[service] = [self._replica(service, i) for i in range(self.counts.get(service, 1))]

    def _replica(self, service: str, index: int) -> Replica:
        port = free_port()
        return Replica(service, index, port, {}, self.workdir / f"{service}-{index}.log")

    def _env(self, replica: Replica) -> dict[str, str]:
        prefix = f"QC_{replica.service.upper()}_"
        env = {k: v for k, v in os.environ.items() if not k.startswith("QC_")}
        env.update(
            {
                "QC_BUS": "kafka",
                "QC_KAFKA_BOOTSTRAP": self.platform.kafka_bootstrap,
                "QC_TOPIC_PREFIX": self.platform.topic_prefix,
                "QC_TOPIC_PARTITIONS": str(self.platform.topic_partitions),
                "QC_JWT_SECRET": self.platform.jwt_secret,
                "QC_LOG_LEVEL": "INFO",  # few lines, among them the partitions each member holds
                f"{prefix}DATABASE_URL": self.databases[replica.service],
                f"{prefix}RELAY_INTERVAL_S": "0.1",
                # Scheduled jobs in the first replica only, as `make up REPLICAS=2` runs them.
                f"{prefix}RUN_JOBS": "true" if replica.index == 0 else "false",
            }
        )
        if replica.service == "gateway":
            for upstream in ("sampling", "credit", "awards"):
                env[f"QC_GATEWAY_{upstream.upper()}_URL"] = ",".join(r.url for r in self.replicas[upstream])
        return env

    async def start(self) -> Topology:
        for service in self.services:
            # One after the other: the first replica migrates the database, the next finds it done.
            for replica in self.replicas[service]:
                replica.env = self._env(replica)
                await replica.start()
        return self

    async def add(self, service: str) -> Replica:
        """One more replica of a service (a gateway one joins the consumer group: a rebalance)."""
        replica = self._replica(service, len(self.replicas[service]))
        self.replicas[service].append(replica)
        replica.env = self._env(replica)
        return await replica.start()

    async def restart(self, replica: Replica) -> None:
        await replica.kill()
        await replica.start()

    async def stop(self) -> None:
        for service in reversed(self.services):
            for replica in self.replicas[service]:
                await replica.stop()

    def urls(self, service: str) -> list[str]:
        return [r.url for r in self.replicas[service] if r.proc is not None and r.proc.returncode is None]

    def logs(self) -> str:
        return "\n".join(f"--- {r.name}\n{r.tail(15)}" for rs in self.replicas.values() for r in rs)

    def assigned(self, replica: Replica, topic: str) -> set[int]:
        """The partitions of `topic` the replica's consumer was last given (its JSON log)."""
        partitions: set[int] = set()
        for line in replica.log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "partitions assigned":
                partitions = {
                    int(m.group(2)) for m in _PARTITION.finditer(" ".join(record["partitions"])) if m.group(1) == topic
                }
        return partitions


_PARTITION = re.compile(r"topic='([^']+)', partition=(\d+)")


@dataclass
class Load:
    """A bounded steady writer: batches of results through the gateway replicas, retried (same report
    numbers, so a retry is answered `duplicate`) until the service answers; only 127.0.0.1."""

    client: httpx.AsyncClient
    urls: Sequence[str]
    headers: dict[str, str]
    label: str
    batch: int = 50
    rate_per_s: float = 800.0
    acknowledged: set[str] = field(default_factory=set)
    failed_requests: int = 0
    _turn: int = 0

    enterprises: int = 60  # keys spread over every partition

    def _body(self, first: int, n: int) -> list[dict[str, object]]:
        sectors = ("food", "manufacturing", "agricultural", "engineering")
        return [
            result_body(
                f"{self.label}-{i:07d}",
                sector=sectors[i % 4],
                conclusion="fail" if i % 3 == 0 else "pass",
                district_code=("370212", "370202", "370203")[i % 3],
                uscc=make_uscc(i % self.enterprises),
            )
            for i in range(first, first + n)
        ]

    async def _post(self, body: list[dict[str, object]], deadline: float) -> None:
        while time.monotonic() < deadline:
            url = self.urls[self._turn % len(self.urls)]
            self._turn += 1
            try:
                r = await self.client.post(f"{url}/v1/results:batch", json=body, headers=self.headers)
                if r.status_code == 200:
                    rows = r.json()["rows"]
                    assert all(row["outcome"] in ("created", "duplicate") for row in rows), rows[:3]
                    self.acknowledged.update(b["report_no"] for b in body)
                    return
            except httpx.TransportError:
                pass
            self.failed_requests += 1
            await asyncio.sleep(0.2)

    async def run(self, total: int, timeout_s: float) -> None:
        """Write `total` results at a steady pace; stop at `timeout_s` whatever is left."""
        deadline = time.monotonic() + timeout_s
        start = time.monotonic()
        for first in range(0, total, self.batch):
            if time.monotonic() > deadline:
                return
            await self._post(self._body(first, min(self.batch, total - first)), deadline)
            ahead = start + (first + self.batch) / self.rate_per_s - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)

    async def reached(self, n: int, timeout: float = 120.0) -> None:
        async def count() -> int:
            return len(self.acknowledged)

        await eventually(count, lambda k: k >= n, timeout=timeout, interval=0.05)


@dataclass
class Figures:
    """What each service holds of the writes, read from the databases (and the gateway's API)."""

    stored: set[str] = field(repr=False)  # report numbers in the sampling service
    stored_rows: int  # rows (more than `stored` would be a doubled write)
    sampling_by_sector: dict[str, tuple[int, int]]
    gateway_by_sector: dict[str, tuple[int, int]]
    gateway_results: int
    final_fails: set[str] = field(repr=False)  # sampling results that are final fails...
    credit_negative: set[str] = field(repr=False)  # ...and credit's negative records: the same ids

    @property
    def gateway_total(self) -> int:
        return sum(n for n, _ in self.gateway_by_sector.values())

    @property
    def credit_consistent(self) -> bool:
        return self.credit_negative == self.final_fails

    @property
    def consistent(self) -> bool:
        return (
            self.gateway_by_sector == self.sampling_by_sector
            and self.gateway_results == self.stored_rows
            and self.credit_consistent
        )

    @property
    def doubled(self) -> int:
        return (
            self.stored_rows
            - len(self.stored)
            + max(0, self.gateway_total - self.stored_rows)
            + max(0, self.gateway_results - self.stored_rows)
        )

    def __repr__(self) -> str:
        return (
            f"Figures(stored={self.stored_rows}, gateway={self.gateway_results}, sampling={self.sampling_by_sector}, "
            f"gateway={self.gateway_by_sector}, final fails={len(self.final_fails)}, "
            f"credit negative={len(self.credit_negative)}, credit consistent={self.credit_consistent})"
        )


async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


async def figures(topology: Topology, client: httpx.AsyncClient, headers: dict[str, str]) -> Figures:
    db = topology.databases
    results = await _fetch(db["sampling"], "SELECT id, report_no, sector, conclusion, state FROM results")
    by_sector: dict[str, tuple[int, int]] = {}
    for r in results:
        if r["state"] != "retracted":
            n, passed = by_sector.get(r["sector"], (0, 0))
            by_sector[r["sector"]] = (n + 1, passed + (r["conclusion"] == "pass"))
    negative = await _fetch(
        db["credit"], "SELECT source_id FROM credit_records WHERE source = 'sampling' AND kind = 'negative'"
    )
    gateway_results = (await _fetch(db["gateway"], "SELECT count(*) AS n FROM rm_results"))[0]["n"]
    r = await client.get(f"{topology.urls('gateway')[0]}/v1/pass-rates", headers=headers)
    assert r.status_code == 200, r.text
    return Figures(
        stored={r["report_no"] for r in results},
        stored_rows=len(results),
        sampling_by_sector=by_sector,
        gateway_by_sector={g["sector"]: (g["n"], g["passed"]) for g in r.json()["groups"]},
        gateway_results=int(gateway_results),
        final_fails={r["id"] for r in results if r["state"] == "final" and r["conclusion"] == "fail"},
        credit_negative={r["source_id"] for r in negative},
    )


async def settled(
    topology: Topology, client: httpx.AsyncClient, headers: dict[str, str], timeout: float = 180.0
) -> Figures:
    """The figures once every read model has caught up with the sampling service (or the last seen)."""

    async def probe() -> Figures:
        return await figures(topology, client, headers)

    try:
        return await eventually(probe, lambda f: f.consistent, timeout=timeout, interval=0.5)
    except AssertionError:
        return await probe()
