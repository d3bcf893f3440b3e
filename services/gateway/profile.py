"""The credit profile of one enterprise on a day: the use case behind `GET /v1/credit/{uscc}`.

The read models say what happened (results, rating, listings, honours and their suspensions); the
rules of `eligibility` say what it means on the day: which listings stand, how each honour stands,
and whether the enterprise has procurement priority.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import attainment, eligibility, repository
from services.gateway.plans import brand_type_codes
from services.gateway.schemas import CreditProfile
from services.gateway.visibility import Visibility
from shared.contracts.credit import RECORD_EVENTS
from shared.stats import wilson_interval


@dataclass
class Records:
    """What the read models hold about one enterprise."""

    identity: dict[str, Any] | None
    sampling: dict[str, Any]
    last_change: dict[str, Any] | None
    rating: dict[str, Any] | None
    entries: list[dict[str, Any]]
    honours: list[dict[str, Any]]
    suspensions: dict[str, list[eligibility.Suspension]]

    def empty(self) -> bool:
        return self.identity is None and not self.sampling["n"] and not (self.entries or self.honours or self.rating)


async def read(session: AsyncSession, uscc: str, day: date) -> Records:
    honours = await repository.honours_of_holder(session, uscc)
    spans: dict[str, list[eligibility.Suspension]] = defaultdict(list)
    for (honour_id, _), v in (await repository.suspensions_of(session, [h["honour_id"] for h in honours])).items():
        spans[honour_id].append(eligibility.Suspension(v["suspended_on"], v["reinstated_on"]))
    identity, rating, last_change = await repository.profile_head(session, uscc, day)
    return Records(
        identity=identity,
        sampling=await repository.results_summary(session, uscc, day),
        last_change=last_change,
        rating=rating,
        entries=await repository.entries_of(session, uscc),
        honours=honours,
        suspensions=spans,
    )


def honours_by_standing(records: Records, day: date) -> dict[eligibility.Standing, list[dict[str, Any]]]:
    out: dict[eligibility.Standing, list[dict[str, Any]]] = {"active": [], "suspended": [], "other": []}
    for h in records.honours:
        facts = eligibility.HonourFacts(
            h["granted_on"], h["valid_until"], h["revoked_on"], records.suspensions.get(h["honour_id"], [])
        )
        out[eligibility.standing_on(facts, day)].append(h)
    return out


def _sampling(summary: dict[str, Any]) -> dict[str, Any]:
    n, p = summary["n"], summary["passed"]
    return {
        "n": n,
        "passed": p,
        "pass_rate": p / n if n else None,
        "wilson_95": wilson_interval(p, n),
        "by_year": summary["by_year"],
        "recent_fails": summary["recent_fails"],
    }


def _priority(active: list[dict[str, Any]], standing: list[dict[str, Any]]) -> dict[str, Any]:
    brands = sorted(brand_type_codes())
    eligible, reasons = eligibility.procurement_eligibility(
        [f"{h['type_code']} {h['type_name_zh']} ({h['certificate_no']})" for h in active if h["type_code"] in brands],
        [f"{e['entry_id']} ({e['decision_no'] or 'no decision number'}, listed {e['listed_on']})" for e in standing],
    )
    return {"eligible": eligible, "reasons": reasons, "brand_type_codes": brands}


async def credit_records(session: AsyncSession, uscc: str) -> list[dict[str, Any]]:
    """The enterprise's records from other authorities: the latest version of each, from the change feed
    (a correction keeps a record's enterprise, so all its versions are under this subject)."""
    latest: dict[str, dict[str, Any]] = {}
    for row in await repository.feed_of_subject(session, uscc, RECORD_EVENTS):
        rec = orjson.loads(row["data"])["record"]
        held = latest.get(rec["record_id"])
        if held is None or rec["version"] > held["version"]:
            latest[rec["record_id"]] = rec
    return sorted(latest.values(), key=lambda r: (r["occurred_on"], r["record_id"]))


async def credit_profile(session: AsyncSession, uscc: str, day: date, now: datetime, seen: Visibility) -> CreditProfile:
    """The profile as `seen` may see it: a `read` caller gets no proposed or rejected entries."""
    records = await read(session, uscc, day)
    records.entries = [e for e in records.entries if seen.sees_entry(e["status"])]
    if records.empty():
        raise eligibility.EnterpriseNotFound(uscc)
    standing = [e for e in records.entries if eligibility.listed_on(e, day)]
    honours = honours_by_standing(records, day)
    ident = records.identity or {}
    return CreditProfile.model_validate(
        {
            "as_of": day,
            "identity": {"uscc": uscc, "name": ident.get("name"), "district_code": ident.get("district_code")},
            "sampling": _sampling(records.sampling),
            "rating": records.rating,
            "blacklist": {"listed": bool(standing), "standing": standing, "history": records.entries},
            "honours": honours,
            "procurement_priority": _priority(honours["active"], standing),
            "credit_records": await credit_records(session, uscc),
            "freshness": attainment.freshness_of(records.last_change, now),
        }
    )
