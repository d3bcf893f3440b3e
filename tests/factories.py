"""Valid request bodies and events for tests; each test overrides what it is about."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.contracts.sampling import RESULT_RECORDED, SOURCE
from shared.events import Envelope

USCC_A = "91370200163562681G"
USCC_B = "91370200MA3C00001N"

ITEM = {
    "item": "菌落总数",
    "requirement": "≤100 CFU/mL",
    "measured": "350",
    "unit": "CFU/mL",
    "standard": "GB 19298-2014",
}


def result_body(report_no: str = "QD-2014-0001", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_no": report_no,
        "level": "municipal",
        "sector": "food",
        "key_product": False,
        "product_category": "饮料",
        "product_name": "矿泉水",
        "brand": "崂山",
        "model_spec": "550mL",
        "batch_no": "B1",
        "production_date": "2014-05-01",
        "uscc": USCC_A,
        "enterprise_name": "青岛某饮品有限公司",
        "district_code": "370212",
        "sampled_unit": "某超市",
        "sampling_date": "2014-05-10",
        "report_date": "2014-05-25",
        "conclusion": "pass",
        "nonconforming_items": [],
    }
    if over.get("conclusion") == "fail" and "nonconforming_items" not in over:
        body["nonconforming_items"] = [ITEM]
    body.update(over)
    return body


def snapshot(result_id: str, version: int = 1, **over: Any) -> dict[str, Any]:
    snap: dict[str, Any] = {
        "result_id": result_id,
        "version": version,
        "agency_code": "QD-AGENCY-1",
        "report_no": f"R-{result_id}",
        "level": "municipal",
        "sector": "food",
        "key_product": False,
        "product_category": "饮料",
        "product_name": "矿泉水",
        "brand": None,
        "uscc": USCC_A,
        "enterprise_name": "青岛某饮品有限公司",
        "district_code": "370212",
        "sampling_date": "2014-05-10",
        "report_date": "2014-05-25",
        "conclusion": "pass",
        "original_conclusion": "pass",
        "state": "final",
        "objection_deadline": None,
        "reinspection": None,
        "nonconforming_count": 0,
        "recorded_at": "2014-05-25T08:00:00Z",
    }
    snap.update(over)
    return snap


def result_event(type_: str = RESULT_RECORDED, *, extra: dict[str, Any] | None = None, **snap: Any) -> Envelope:
    """A sampling event; `extra` holds the payload's fields beside `result` (a correction's reason...)."""
    s = snapshot(**snap)
    return Envelope(
        type=type_,
        source=SOURCE,
        subject=s["uscc"],
        data={"result": s, **(extra or {})},
        time=datetime(2014, 5, 25, tzinfo=UTC),
    )
