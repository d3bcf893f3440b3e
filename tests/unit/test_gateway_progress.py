"""The published status method (Open SDG's progress calculation) and the plan file's validation."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.gateway import attainment, eligibility, progress
from services.gateway.plans import PLANS_DIR, PlanFileError, load_plans, parse_plan
from services.gateway.schemas import ProgressOut


def status(series: dict[int, float], target: float | None, limit: float | None = None) -> str:
    return progress.progress(series, base_year=2011, target=target, target_year=2015, limit=limit).status


def test_statuses_follow_the_ratio_of_observed_to_required_growth() -> None:
    # required 0.90 -> 0.96 in 4 years: 1.63 %/yr
    assert status({2011: 0.90, 2013: 0.94}, 0.96) == "on_track"  # 2.20 %/yr: ratio 1.35
    assert status({2011: 0.90, 2013: 0.925}, 0.96) == "acceleration_needed"  # 1.38 %/yr: ratio 0.85
    assert status({2011: 0.90, 2013: 0.905}, 0.96) == "limited_progress"
    assert status({2011: 0.90, 2013: 0.88}, 0.96) == "deterioration"
    assert status({2011: 0.90, 2013: 0.97}, 0.96) == "achieved"
    assert status({}, 0.96) == "no_data"
    assert status({2013: 0.9}, 0.96) == "no_data"  # one year: no growth to measure


def test_ratio_thresholds_are_open_sdgs() -> None:
    p = progress.progress({2011: 0.90, 2013: 0.93}, base_year=2011, target=0.96, target_year=2015)
    assert (p.base, p.current) == (progress.Observation(2011, 0.90), progress.Observation(2013, 0.93))
    g = p.growth
    assert g is not None and g.required is not None
    assert g.observed == pytest.approx((0.93 / 0.90) ** 0.5 - 1)
    assert g.required == pytest.approx((0.96 / 0.90) ** 0.25 - 1)
    assert g.value == pytest.approx(g.observed / g.required)
    assert g.thresholds == progress.TARGET_THRESHOLDS
    # The published shape names the parts of the points and the growth.
    out = ProgressOut.model_validate(p, from_attributes=True)
    assert (out.base_year, out.base_value, out.current_year) == (2011, 0.90, 2013)
    assert (out.observed_growth, out.required_growth, out.progress_value) == (g.observed, g.required, g.value)
    assert progress.TARGET_THRESHOLDS == {"high": 0.95, "med": 0.6, "low": 0.0}


def test_trend_without_target_is_eased_near_the_natural_limit() -> None:
    # +0.2 %/yr is "limited" far from a limit (threshold 0.5 %), but near 100 % the thresholds shrink.
    far = progress.progress({2011: 0.50, 2012: 0.501}, base_year=2011, target=None, target_year=2015)
    near = progress.progress({2011: 0.98, 2012: 0.982}, base_year=2011, target=None, target_year=2015, limit=1.0)
    assert far.status == "limited_progress"
    assert near.status == "on_track"
    assert progress.limit_coefficient(0.98, 1.0) == pytest.approx(1 - 0.98**4.44)
    assert progress.limit_coefficient(1.0, 1.0) == 0.0
    assert status({2011: 0.98, 2013: 0.96}, None, 1.0) == "deterioration"


def food_status(counts: dict[int, tuple[int, int]]) -> str:
    """The food indicator's status (保持稳定) as the gateway computes it: by the plan's own rule."""
    plan = load_plans()["qingdao-2012"]
    ind = plan.indicator("key_food_stable")
    assert ind is not None and ind.stability == "no_significant_fall"
    return attainment._progress(plan, ind, {y: p / n for y, (n, p) in counts.items()}, counts).status


def flat(rate: float, n: int = 400) -> dict[int, tuple[int, int]]:
    return {y: (n, round(rate * n)) for y in range(2011, 2016)}


def test_a_rate_holding_steady_is_on_track_for_a_stability_target() -> None:
    # Open SDG's thresholds call a flat 95 % "limited progress" (growth 0 < the eased 0.3 %/yr): the
    # policy's target is to stay stable, so holding is on track.
    assert status({y: 0.95 for y in range(2011, 2016)}, None, 1.0) == "limited_progress"
    assert food_status(flat(0.95)) == "on_track"
    assert food_status(flat(0.99)) == "on_track"
    assert food_status(flat(0.80)) == "on_track"


def test_a_rising_rate_is_on_track() -> None:
    rising = {2011: (400, 340), 2012: (400, 352), 2013: (400, 364), 2014: (400, 376), 2015: (400, 390)}
    assert food_status(rising) == "on_track"


def test_a_significant_fall_is_deterioration() -> None:
    # 95 % -> 85 % on 400 results a year: [0.925, 0.967] against [0.812, 0.881], no overlap.
    sudden = flat(0.95) | {2015: (400, 340)}
    p = progress.stability(sudden, base_year=2011)
    assert p.status == "deterioration" and "2015" in p.reason and "2014" in p.reason
    assert food_status(sudden) == "deterioration"
    # A drift of steps each within the noise of the year before, but significant against the base year.
    drift = {2011: (400, 388), 2012: (400, 378), 2013: (400, 368), 2014: (400, 358), 2015: (400, 348)}
    for earlier, later in zip(range(2011, 2015), range(2012, 2016), strict=True):
        lo0, _ = progress.wilson_interval(drift[earlier][1], 400) or (0, 0)
        _, hi1 = progress.wilson_interval(drift[later][1], 400) or (0, 0)
        assert hi1 >= lo0, "each yearly step alone is not significant"
    p = progress.stability(drift, base_year=2011)
    assert p.status == "deterioration" and "2011" in p.reason


def test_a_noisy_rate_within_its_intervals_is_stable() -> None:
    # Small samples swing by several points without any fall being significant.
    noisy = {2011: (51, 45), 2012: (65, 58), 2013: (63, 56), 2014: (50, 46), 2015: (57, 49)}
    assert status({y: p / n for y, (n, p) in noisy.items()}, None, 1.0) == "deterioration"  # Open SDG's growth
    assert food_status(noisy) == "on_track"
    # A dip the rate has recovered from does not count: the status says where the rate stands now.
    recovered = flat(0.95) | {2013: (400, 340)}
    assert food_status(recovered) == "on_track"
    # The same swing on many results is no longer noise.
    assert food_status({2011: (20000, 19000), 2015: (20000, 18800)}) == "deterioration"
    assert food_status({2015: (400, 380)}) == "no_data"  # one year: nothing to compare


def test_stability_applies_only_to_a_pass_rate_without_a_target(tmp_path: Path) -> None:
    text = (PLANS_DIR / "qingdao-2012.json").read_text("utf-8")
    old = '"target_text": "一批 (a batch)"}'
    assert old in text
    path = tmp_path / "qingdao-2012.json"
    path.write_text(text.replace(old, '"target_text": "一批 (a batch)", "stability": "no_significant_fall"}', 1))
    with pytest.raises(PlanFileError) as err:
        parse_plan(path)
    assert "'stability' applies only to a pass rate" in str(err.value) and err.value.line == 27


def test_honour_counting_rules() -> None:
    h = eligibility.HonourFacts(
        date(2012, 3, 1), date(2015, 2, 28), None, [eligibility.Suspension(date(2013, 1, 10), date(2013, 6, 1))]
    )
    assert eligibility.active_on(h, date(2013, 1, 9)) and not eligibility.active_on(h, date(2013, 1, 10))
    assert eligibility.active_on(h, date(2013, 6, 1)) and not eligibility.active_on(h, date(2015, 3, 1))
    assert eligibility.granted_during(h, date(2011, 1, 1), date(2015, 12, 31))
    revoked = eligibility.HonourFacts(date(2012, 3, 1), None, date(2014, 1, 1))
    assert not eligibility.granted_during(revoked, date(2011, 1, 1), date(2015, 12, 31))  # revocation annuls
    assert eligibility.granted_during(revoked, date(2011, 1, 1), date(2013, 12, 31))


def test_procurement_needs_a_brand_honour_and_no_listing() -> None:
    assert eligibility.procurement_eligibility(["B5"], [])[0] is True
    ok, reasons = eligibility.procurement_eligibility(["B5"], ["E-1"])
    assert ok is False and reasons == ["holds an active brand honour: B5", "is on the quality blacklist: E-1"]
    assert eligibility.procurement_eligibility([], [])[0] is False


def test_the_seed_plan_holds_every_indicator_of_design_3_5() -> None:
    plan = load_plans()["qingdao-2012"]
    assert plan.period_end == date(2015, 12, 31)
    targets = {i.code: i.target for i in plan.indicators}
    assert targets["agri_pass_rate"] == 0.96 and targets["construction_pass_rate"] == 1.0
    assert targets["shandong_famous_brands"] == 400 and targets["standards_library_holdings"] == 300000
    assert {i.section for i in plan.indicators} == {"二(一)", "二(二)", "二(三)", "三(一)1", "三(一)2", "三(一)3"}
    assert sum(i.reported for i in plan.indicators) == 6


@pytest.mark.parametrize(
    ("old", "new", "line", "reason"),
    [
        ('"target": 0.96', '"target": 9.6', 22, "ratio between 0 and 1"),
        ('"kind": "qualitative"', '"kind": "trend"', 23, "indicators.4.kind"),
        ('"unit": "awards",', '"unit": "awards"', 31, "not valid JSON"),
        ('"counting": "active_at_end", ', "", 35, "needs 'counting'"),
    ],
    ids=["rate-out-of-range", "unknown-kind", "json-syntax", "missing-counting"],
)
def test_a_malformed_plan_names_the_file_and_the_line(
    tmp_path: Path, old: str, new: str, line: int, reason: str
) -> None:
    text = (PLANS_DIR / "qingdao-2012.json").read_text("utf-8")
    assert old in text
    path = tmp_path / "qingdao-2012.json"
    path.write_text(text.replace(old, new, 1), "utf-8")
    with pytest.raises(PlanFileError) as err:
        parse_plan(path)
    assert err.value.line == line and reason in str(err.value) and str(path) in str(err.value)
