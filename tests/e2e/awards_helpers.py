"""Builders for the awards tests: grant bodies for every catalog type, valid USCCs, and the credit
service's blacklist events as its contract describes them (the tests feed them themselves)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from stdnum.cn import uscc as _uscc

from services.awards.domain import HonourType, load_catalog
from shared.contracts.credit import ENTRY_LISTED as LISTED
from shared.contracts.credit import ENTRY_REMOVED as REMOVED
from shared.contracts.credit import SOURCE as CREDIT_SOURCE
from shared.events import Envelope


def make_uscc(serial: int, region: str = "370211") -> str:
    """A valid USCC registered in `region` (default 黄岛区) with a 9-character organisation code."""
    body = f"91{region}MA{serial:07d}"[:17]
    return body + _uscc.calc_check_digit(body)


def subject_for(t: HonourType) -> dict[str, Any] | None:
    if t.subject_kind is None:
        return None
    if t.subject_kind == "standard":
        number = {"S1": "ISO 8124-1:2018", "S2": "GB/T 4706.1-2012", "S3": "QB/T 4088-2010", "S4": "DB37/T 2001-2012"}
        return {"kind": "standard", "number": number[t.code], "title": "家用电器安全", "role": "lead"}
    if t.subject_kind == "committee":
        return {"kind": "committee", "number": "SAC/TC 46", "title": "全国家用电器标准化技术委员会"}
    return {"kind": t.subject_kind, "name": f"{t.name_zh}的对象"}


def holder_for(t: HonourType, uscc: str) -> tuple[str, str]:
    """A holder of a kind the type allows: the USCC holder when it may be one, else a region or person."""
    for kind in ("enterprise", "organisation"):
        if kind in t.holder_kinds:
            return kind, uscc
    if "region" in t.holder_kinds:
        return "region", "370211"
    return "person", "QD-EXPERT-0001"


def grant_body(t: HonourType | str, uscc: str, cert: str | None = None, **over: Any) -> dict[str, Any]:
    t = load_catalog().get(t) if isinstance(t, str) else t
    kind, holder_id = holder_for(t, uscc)
    body: dict[str, Any] = {
        "type_code": t.code,
        "holder_kind": kind,
        "holder_id": holder_id,
        "holder_name": "青岛测试电器有限公司" if kind != "person" else "张三",
        "granted_on": "2014-06-01",
        "certificate_no": cert or f"{t.code}-{uuid.uuid4().hex[:8]}",
    }
    subject = subject_for(t)
    if subject is not None:
        body["subject"] = subject
    body.update(over)
    return body


def usccable_types() -> list[HonourType]:
    """Types an enterprise or organisation (a USCC) may hold: the ones a blacklisting can suspend."""
    return [t for t in load_catalog().types if {"enterprise", "organisation"} & set(t.holder_kinds)]


def entry(
    entry_id: str,
    uscc: str,
    *,
    version: int = 1,
    listed_on: date = date(2015, 3, 1),
    removed_on: date | None = None,
    removal_reason: str | None = None,
    decision_no: str = "青质监信〔2015〕7号",
) -> dict[str, Any]:
    return {
        "entry_id": entry_id,
        "version": version,
        "uscc": uscc,
        "enterprise_name": "青岛测试电器有限公司",
        "reason_category": "repeated_sampling_failures",
        "status": "removed" if removed_on else "listed",
        "automatic": False,
        "proposed_by": "officer-1",
        "proposed_at": "2015-02-20T08:00:00Z",
        "decided_by": "reviewer-2",
        "listed_on": listed_on.isoformat(),
        "publish_until": date(listed_on.year + 3, listed_on.month, listed_on.day).isoformat(),
        "removed_on": removed_on.isoformat() if removed_on else None,
        "removal_reason": removal_reason,
        "decision_no": decision_no,
        "deciding_authority": "青岛市质量技术监督局",
        "legal_basis": "青政发〔2012〕32号",
    }


def listed_event(entry_id: str, uscc: str, **kw: Any) -> Envelope:
    return Envelope(
        type=LISTED,
        source=CREDIT_SOURCE,
        subject=uscc,
        data={"entry": entry(entry_id, uscc, **kw)},
        time=datetime(2015, 3, 1, 2, tzinfo=UTC),
    )


def removed_event(entry_id: str, uscc: str, removed_on: date, **kw: Any) -> Envelope:
    kw.setdefault("version", 2)
    return Envelope(
        type=REMOVED,
        source=CREDIT_SOURCE,
        subject=uscc,
        data={
            "entry": entry(entry_id, uscc, removed_on=removed_on, removal_reason="repaired", **kw),
            "reason": "repaired",
        },
        time=datetime(2015, 9, 1, 2, tzinfo=UTC),
    )
