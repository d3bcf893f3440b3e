"""The docs/ pages that describe data files name everything those files hold, so they cannot drift
silently: a new or changed indicator or honour type fails here until its page says the same."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _rows(page: str, key: int) -> dict[str, list[str]]:
    """The cells of each table row of a docs page, by the (back-quoted) code in cell `key`."""
    out = {}
    for line in (ROOT / "docs" / page).read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) > key:
            out[cells[key].strip("`")] = cells
    return out


def test_every_plan_indicator_is_documented_with_its_target_and_counting() -> None:
    plan = json.loads((ROOT / "services/gateway/plans/qingdao-2012.json").read_text(encoding="utf-8"))
    rows = _rows("plan-indicators.md", 1)
    for ind in plan["indicators"]:
        section, _, name, kind, target, _, counting, due = rows[ind["code"]]
        assert (section, kind) == (ind["section"], f"`{ind['kind']}`")
        assert name.startswith(ind["name_zh"])
        assert counting == (f"`{ind['counting']}`" if "counting" in ind else "—")
        assert due == ind.get("due", plan["period_end"])
        value = ind["target"]
        if value is None:
            assert target == ind["target_text"]
        else:
            shown = f"{value * 100:g}%" if ind["unit"] == "ratio" else f"{value:,}"
            assert target.split(" ")[-1] == shown, ind["code"]


def test_every_honour_type_is_documented_with_its_indicator() -> None:
    catalog = json.loads((ROOT / "services/awards/data/catalog.json").read_text(encoding="utf-8"))
    rows = _rows("honour-catalog.md", 0)
    for t in catalog["types"]:
        _, name, kinds, level, validity, indicator, section, _ = rows[t["code"]]
        assert name.startswith(t["name_zh"])
        assert (kinds, level, indicator, section) == (
            ", ".join(t["holder_kinds"]),
            t["granting_level"],
            f"`{t['indicator_code']}`",
            t["seed_section"],
        )
        assert validity == ("no fixed term" if t["validity_years"] is None else f"{t['validity_years']} years")
