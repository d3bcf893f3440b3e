"""Assessment schemes as data (docs/assessment.md): a second scheme loads with no code change, and a
malformed one stops the gateway at start naming the file and the line. The scoring itself is checked
end to end against an independent computation (tests/e2e/test_assessment.py); here, the pure rules
on hand-made cells."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.gateway import assessment
from services.gateway.assessment import Cell, Inputs
from services.gateway.plans import PLANS_DIR, PlanFileError, load_plans
from shared.regions import load_regions

PLAN = PLANS_DIR / "qingdao-2012.json"


def _write(folder: Path, schemes: list[dict[str, Any]]) -> Path:
    raw = json.loads(PLAN.read_text(encoding="utf-8"))
    raw["assessment_schemes"] = schemes
    path = folder / "qingdao-2012.json"
    path.write_text(json.dumps(raw, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def _scheme(**over: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "id": "second",
        "name_zh": "第二方案",
        "name_en": "A second scheme",
        "min_results": 10,
        "deterioration_penalty": 3,
        "indicators": [
            {"code": "agri_pass_rate", "weight": 3, "floor": 0.9, "district_targets": {"370212": 0.98}},
            {"code": "mayor_quality_awards", "weight": 1, "target": 2},
        ],
    }
    s.update(over)
    return s


def test_the_shipped_plan_holds_two_schemes_that_validate() -> None:
    plan = load_plans()["qingdao-2012"]
    assert [s.id for s in plan.assessment_schemes] == ["districts", "product-safety"]
    assert assessment.scheme_of(plan, "districts").total_weight == 100


def test_a_second_scheme_loads_and_scores_with_no_code_change(tmp_path: Path) -> None:
    _write(tmp_path, [_scheme()])
    plan = load_plans(tmp_path)["qingdao-2012"]
    scheme = assessment.scheme_of(plan, None)  # the plan's only scheme
    inputs = Inputs(date(2015, 12, 31))
    inputs.cells["agri_pass_rate"] = {
        ("370212", 2014): Cell(0.99, 100, 99),
        ("370212", 2015): Cell(0.94, 50, 47),  # the district's own target 0.98, floor 0.9: attainment 0.5
        ("370211", 2015): Cell(0.8, 5, 4),  # too few results
    }
    inputs.cells["mayor_quality_awards"] = {("370212", 2015): Cell(1.0)}
    years = assessment.assess(plan, scheme, inputs, [2014, 2015])
    laoshan = next(a for a in years[2015] if a.district_code == "370212")
    agri, awards = laoshan.indicators
    assert (agri.target_source, agri.target) == ("district", 0.98)
    assert agri.attainment == pytest.approx(0.5) and agri.points == pytest.approx(1.5)
    assert agri.penalty == 0, "0.99 (n=100) to 0.94 (n=50): the intervals overlap, no significant fall"
    # A count's target is the plan's end's, judged pro rata: 2 × 5/5 in 2015.
    assert (awards.target, awards.points) == (pytest.approx(2.0), pytest.approx(0.5))
    assert laoshan.score == pytest.approx(100 * (1.5 + 0.5) / 4)
    assert laoshan.rank == 1
    huangdao = next(a for a in years[2015] if a.district_code == "370211")
    line = huangdao.indicators[0]
    assert line.status == "too_few_results" and line.points is None and "5 results" in line.why
    assert not huangdao.ranked and huangdao.score is None and huangdao.rank is None
    assert {a.district_code for a in years[2015]} == {
        r.code for r in assessment.districts_in(2015, load_regions().regions)
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"indicators": [{"code": "no_such", "weight": 1}]}, "'no_such' is not an indicator of the plan"),
        ({"indicators": [{"code": "gi_products", "weight": 1}]}, "needs a district 'target'"),
        ({"indicators": [{"code": "agri_pass_rate", "weight": 1, "target": 1.5}]}, "targets and floor lie in [0, 1]"),
        ({"indicators": [{"code": "agri_pass_rate", "weight": 1, "floor": 0.97}]}, "floor must lie below"),
        (
            {"indicators": [{"code": "agri_pass_rate", "weight": 1, "district_targets": {"370200": 0.9}}]},
            "370200 is not a district code",
        ),
        ({"indicators": [{"code": "agri_pass_rate", "weight": 0}]}, "greater than 0"),
        (
            {"bonuses": [{"code": "shandong_famous_brands", "points_each": 1, "max_points": 2}]},
            "counted granted_during",
        ),
    ],
)
def test_a_malformed_scheme_stops_the_gateway_naming_file_and_line(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = _write(tmp_path, [_scheme(**change)])
    with pytest.raises(PlanFileError) as info:
        load_plans(tmp_path)
    assert info.value.path == path and message in info.value.reason, info.value.reason
    assert info.value.line > 1, "the line of the scheme, not the file's first"


def test_two_schemes_with_one_id_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, [_scheme(), _scheme()])
    with pytest.raises(PlanFileError, match="appears twice"):
        load_plans(tmp_path)
