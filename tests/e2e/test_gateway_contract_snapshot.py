"""The gateway's JSON answers, byte for byte, against a recorded snapshot.

The figures are built by one typed function per indicator source and the credit profile by a use
case; a client must not see any difference from how they were served before. The snapshot was
recorded from the gateway on the generated dataset of test_gateway_correctness (plus reports of a
reported indicator): every indicator, overview and detail, citywide and for a district, credit
profiles and the priority list. Only what differs per run (freshness, report ids and times) is
masked. Record again, deliberately, with QC_RECORD_SNAPSHOT=1 when the contract changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tests.e2e.test_gateway_correctness import PLAN, generate, load

Suite = tuple[FastAPI, httpx.AsyncClient]
SNAPSHOT = Path(__file__).parent / "golden" / "gateway_answers.json"
MASKED = {"report_id", "reported_at"}


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<masked>" if k in MASKED else _mask(v)) for k, v in value.items() if k != "freshness"}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


async def test_figures_and_profiles_are_served_exactly_as_recorded(
    embedded: Suite, auth: Callable[..., dict[str, str]]
) -> None:
    app, client = embedded
    truth = generate(n_results=1200, n_honours=500, seed=11)
    await load(app, truth)
    h = auth("indicators:write", subject="road-system")
    for start, end, value in (("2012-01-01", "2012-12-31", 0.95), ("2014-01-01", "2014-12-31", 0.975)):
        body = {"indicator": "expressway_good_road_rate", "period_start": start, "period_end": end, "value": value}
        body |= {"reporting_system": "road", "evidence_ref": "ref"}
        assert (await client.post("/v1/indicator-reports", json=body, headers=h)).status_code == 201
    answers: dict[str, Any] = {}

    async def get(url: str, params: dict[str, str], headers: dict[str, str] | None = None) -> None:
        r = await client.get(url, params=params, headers=headers)
        assert r.status_code == 200, r.text
        # Key order is part of "byte for byte": compare the text as served, not only the parsed values.
        answers[f"{url}?{sorted(params.items())}"] = _mask(r.json())

    for params in ({"as_of": "2015-12-31"}, {"as_of": "2014-06-30"}, {"as_of": "2015-12-31", "district": "370212"}):
        await get("/v1/attainment", params)
        for ind in PLAN.indicators:
            await get(f"/v1/attainment/{ind.code}", params)
    for uscc in sorted({r["uscc"] for r in truth.results.values()})[:8]:
        for day in ("2013-06-01", "2015-06-01"):
            await get(f"/v1/credit/{uscc}", {"as_of": day}, auth("read"))
    # On the day an honour was suspended, so the profile's "suspended" list is covered too.
    suspensions = [ev for ev in truth.events if ev.type == "awards.honour.suspended.v1"][:8]
    assert suspensions
    for ev in suspensions:
        await get(f"/v1/credit/{ev.subject}", {"as_of": ev.data["suspended_on"]}, auth("read"))
    await get("/v1/procurement/priority-list", {"as_of": "2014-01-01"}, auth("read"))
    served = json.dumps(answers, ensure_ascii=False, indent=1)
    if os.environ.get("QC_RECORD_SNAPSHOT") == "1":
        SNAPSHOT.write_text(served + "\n", encoding="utf-8")
    recorded = SNAPSHOT.read_text(encoding="utf-8").rstrip("\n")
    assert json.loads(served) == json.loads(recorded)  # the values
    assert served == recorded  # and the keys in the same order
