"""One fault under load: start the writer, inject the fault once part of the writes are acknowledged,
measure the recovery, let the writer finish, and check what every service holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from tests.faults.table import Row
from tests.faults.topology import Figures, Load, Topology, figures, settled
from tests.helpers import eventually

Auth = Callable[..., dict[str, str]]


async def finalise(topology: Topology, http: httpx.AsyncClient, admin: dict[str, str]) -> str:
    """Run the sampling service's finalisation now (fails past their objection window become final:
    a second version of each, which credit turns into a negative record). The last answer: "200" when
    a replica ran it."""
    answer = "no replica"
    for url in topology.urls("sampling"):
        try:
            r = await http.post(f"{url}/v1/jobs/finalise-results:run", headers=admin)
            answer = f"{r.status_code} {r.text[:300]}"
            if r.status_code == 200:
                return "200"
        except httpx.TransportError as exc:
            answer = repr(exc)
    return answer


async def _finalising(topology: Topology, http: httpx.AsyncClient, admin: dict[str, str]) -> None:
    while True:
        await finalise(topology, http, admin)
        await asyncio.sleep(1.0)


async def under_load(
    name: str,
    topology: Topology,
    http: httpx.AsyncClient,
    auth: Auth,
    writes: int,
    inject: Callable[[], Awaitable[None]],
    table: list[Row],
    *,
    rate_per_s: float = 600.0,
) -> Figures:
    """`inject` breaks something and returns once it is restored (or, for a replica killed for good,
    at once: the survivors take over). Recovery: seconds from the injection until every read model
    holds everything the sampling service held when `inject` returned."""
    headers, admin = auth("sampling:write", "read"), auth("admin", "read")
    load = Load(http, topology.urls("gateway"), headers, label=name.replace(" ", "-")[:20], rate_per_s=rate_per_s)
    writer = asyncio.create_task(load.run(writes, timeout_s=writes / rate_per_s + 240))
    finaliser = asyncio.create_task(_finalising(topology, http, admin))
    try:
        await load.reached(int(writes * 0.3))
        started = time.monotonic()
        await inject()
        then = await figures(topology, http, headers)
        await eventually(
            lambda: figures(topology, http, headers),
            lambda f: f.gateway_results >= then.stored_rows and f.credit_negative >= then.final_fails,
            timeout=180,
            interval=0.25,
        )
        recovery_s = time.monotonic() - started
        await writer
    finally:
        writer.cancel()
        finaliser.cancel()
    # The last fails made final (a run cut off by the cancelled task above may still hold them).
    await eventually(lambda: finalise(topology, http, admin), lambda answer: answer == "200", timeout=60, interval=1)
    result = await settled(topology, http, headers)
    lost = load.acknowledged - result.stored
    table.append(Row(name, len(load.acknowledged), result.stored_rows, len(lost), result.doubled, recovery_s))
    assert len(load.acknowledged) == writes, f"only {len(load.acknowledged)} of {writes} writes acknowledged"
    assert not lost, f"{len(lost)} acknowledged writes not stored, e.g. {sorted(lost)[:5]}"
    assert result.doubled == 0, f"{result.doubled} doubled: {result!r}"
    assert result.gateway_by_sector == result.sampling_by_sector, result
    assert result.gateway_results == result.stored_rows, result
    assert result.final_fails and result.credit_consistent, result
    return result
