"""The progress status of an indicator: pure functions, no I/O.

The status follows Open SDG's published method (sdg-build `ProgressMeasure.py`, described
in docs/attainment-method.md): compound annual growth observed since the base year, compared with
the growth still needed to reach the target by its year, or, without a numeric target, with fixed
growth thresholds eased near a natural limit. A pass rate whose target is to stay stable (保持稳定)
is judged instead by whether it fell significantly (`stability`): Open SDG's growth thresholds would
call a rate held flat at 95 % "limited progress".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from shared.stats import wilson_interval

__all__ = [
    "Growth",
    "Observation",
    "Progress",
    "growth",
    "limit_coefficient",
    "progress",
    "stability",
    "wilson_interval",
]

Status = Literal["achieved", "on_track", "acceleration_needed", "limited_progress", "deterioration", "no_data"]

#: Open SDG's thresholds for the ratio of observed to required growth (method 2, a numeric target).
TARGET_THRESHOLDS = {"high": 0.95, "med": 0.6, "low": 0.0}
#: Open SDG's thresholds for the observed yearly growth itself (method 1, no numeric target).
TREND_THRESHOLDS = {"high": 0.015, "med": 0.005, "low": 0.0}
#: Open SDG's exponent of the reduction coefficient near a limit.
LIMIT_EXPONENT = 4.44
#: Open SDG replaces a zero base value (or target) by this, since growth from zero is undefined.
ZERO_SUBSTITUTE = 0.001

# Open SDG's labels, in the vocabulary of the issue and the dashboard.
_LABELS: dict[str, Status] = {
    "target_achieved": "achieved",
    "substantial_progress": "on_track",
    "moderate_progress": "acceleration_needed",
    "limited_progress": "limited_progress",
    "deterioration": "deterioration",
    "not_available": "no_data",
}


def growth(current: float, base: float, t1: int, t0: int) -> float:
    """Compound annual growth rate between two years (Open SDG's `growth_calculation`)."""
    return float((current / base) ** (1 / (t1 - t0)) - 1)


def limit_coefficient(base: float, limit: float) -> float:
    """Open SDG's reduction coefficient: 1 far from the limit, falling to 0 at it, so a value already
    near 100 % is not called 'limited progress' for failing to grow 1.5 % a year."""
    base, limit = abs(base), abs(limit)
    if base >= 2 * limit:
        return 1.0
    if base <= limit:
        return float(1 - (base / limit) ** LIMIT_EXPONENT)
    return float(1 - ((2 * limit - base) / limit) ** LIMIT_EXPONENT)


@dataclass(frozen=True)
class Observation:
    """A series' value in one year: the base or the current point of a status, or the target."""

    year: int
    value: float

    def growth_to(self, later: Observation) -> float:
        """Compound annual growth from this observation to a later one."""
        return growth(later.value, self.value, later.year, self.year)


@dataclass(frozen=True)
class Growth:
    """What a status was judged by: the yearly growth observed from the base year and, with a numeric
    target, the growth it requires; `value` (observed / |required|, or the signed observed growth) is
    what was compared with the `thresholds`. Stability shows the observed growth alone."""

    observed: float
    required: float | None = None
    value: float | None = None
    thresholds: Mapping[str, float] | None = None


@dataclass(frozen=True)
class Progress:
    """A status, why, and what it was judged from: the base and current points and their growth."""

    status: Status
    reason: str
    base: Observation | None = None
    current: Observation | None = None
    growth: Growth | None = None


def _label(value: float, thresholds: Mapping[str, float]) -> Status:
    if value >= thresholds["high"]:
        return _LABELS["substantial_progress"]
    if value >= thresholds["med"]:
        return _LABELS["moderate_progress"]
    if value >= thresholds["low"]:
        return _LABELS["limited_progress"]
    return _LABELS["deterioration"]


def _span(years: list[int], base_year: int) -> tuple[int, int]:
    """(base year, current year): the plan's base year or the first later year with data, and the latest."""
    after = [y for y in years if y >= base_year]
    return (after[0] if after else years[0]), years[-1]


def progress(
    series: Mapping[int, float],
    *,
    base_year: int,
    target: float | None,
    target_year: int,
    limit: float | None = None,
    direction: int = 1,
) -> Progress:
    """The status of a yearly series (year -> value) against its target, by Open SDG's method.

    The current year is the latest year of the series; the base year the plan's, or the first
    year after it with data. Fewer than two years of data gives no status, unless the target is met.
    """
    if not series:
        return Progress("no_data", "no value in any year")
    b_year, current_year = _span(sorted(series), base_year)
    now = Observation(current_year, series[current_year])
    if target is not None and (now.value >= target if direction > 0 else now.value <= target):
        return Progress("achieved", "the current value meets the target", current=now)
    if now.year - b_year < 1:
        return Progress("no_data", "progress needs values in two years from the base year", current=now)
    base = Observation(b_year, series[b_year] or ZERO_SUBSTITUTE)
    if (base.value > 0 > now.value) or (base.value < 0 < now.value):
        return Progress("no_data", "base and current values differ in sign")
    if target is None:
        return _against_trend(base, now, limit=limit, direction=direction)
    return _against_target(base, now, Observation(target_year, target or ZERO_SUBSTITUTE), direction=direction)


def _against_trend(base: Observation, now: Observation, *, limit: float | None, direction: int) -> Progress:
    """Open SDG's method 1 (no numeric target): the observed yearly growth against fixed thresholds,
    eased near a natural limit."""
    observed = base.growth_to(now)
    coeff = limit_coefficient(base.value, limit) if limit is not None else 1.0
    thresholds = {k: v * coeff for k, v in TREND_THRESHOLDS.items()}
    value = (-1 if base.value < 0 else 1) * direction * observed
    if coeff == 0 and value >= 0:  # held at the limit itself: Open SDG scores this as substantial progress
        status: Status = "on_track"
    else:
        status = _label(value, thresholds)
    reason = "observed yearly growth against fixed thresholds" + (
        f", eased near the limit {limit} (coefficient {coeff:.4f})" if limit is not None else ""
    )
    return Progress(status, reason, base, now, Growth(observed, None, value, thresholds))


def _against_target(base: Observation, now: Observation, target: Observation, *, direction: int) -> Progress:
    """Open SDG's method 2 (a numeric target): the observed yearly growth against the growth still
    needed to reach the target by its year."""
    if target.year <= base.year:
        return Progress("no_data", "the target year is not after the base year")
    observed, required = base.growth_to(now), base.growth_to(target)
    if required == 0:
        return Progress("no_data", "no growth is required from the base value")
    value = (-1 if base.value < 0 else 1) * direction * observed / abs(required)
    reason = "observed yearly growth against the growth needed by the target year"
    status = _label(value, TARGET_THRESHOLDS)
    return Progress(status, reason, base, now, Growth(observed, required, value, dict(TARGET_THRESHOLDS)))


def _significant_fall(
    counts: Mapping[int, tuple[int, int]], earlier: int, later: int
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The two years' 95 % Wilson intervals when the later one lies wholly below the earlier one."""
    before = wilson_interval(counts[earlier][1], counts[earlier][0])
    after = wilson_interval(counts[later][1], counts[later][0])
    assert before is not None and after is not None  # years without results are dropped by the caller
    return (before, after) if after[1] < before[0] else None


def stability(counts: Mapping[int, tuple[int, int]], *, base_year: int) -> Progress:
    """Whether a pass rate stays stable (保持稳定), from each year's (n, passed) (the plan's
    `stability: "no_significant_fall"`).

    A fall counts only when it is significant: the later year's 95 % Wilson interval lies wholly below
    the earlier year's (the intervals do not overlap). The current year is compared with the previous
    year with results (a sudden fall) and with the base year (a drift of small steps, each within the
    noise, shows there). No significant fall: on_track, whether the rate held or rose (the policy
    forbids a fall, not an improvement). A significant fall: deterioration. An earlier dip the rate
    has recovered from does not count: the status says where the rate stands now.
    """
    counts = {y: c for y, c in counts.items() if c[0] > 0}
    if not counts:
        return Progress("no_data", "no value in any year")
    years = sorted(counts)
    b_year, current_year = _span(years, base_year)
    now = Observation(current_year, counts[current_year][1] / counts[current_year][0])
    if current_year - b_year < 1:
        return Progress("no_data", "stability needs values in two years from the base year", current=now)
    base = Observation(b_year, counts[b_year][1] / counts[b_year][0])
    previous = max(y for y in years if y < current_year)
    observed = Observation(b_year, base.value or ZERO_SUBSTITUTE).growth_to(now)
    shown = (base, now, Growth(observed))
    for earlier in dict.fromkeys((previous, b_year)):  # the base year may be the previous year
        fall = _significant_fall(counts, earlier, current_year)
        if fall is not None:
            (lo0, hi0), (lo1, hi1) = fall
            reason = (
                f"a significant fall: {current_year}'s 95% interval [{lo1:.4f}, {hi1:.4f}] lies below "
                f"{earlier}'s [{lo0:.4f}, {hi0:.4f}]"
            )
            return Progress("deterioration", reason, *shown)
    reason = (
        f"stable: {current_year}'s 95% interval overlaps or lies above those of {previous}"
        + (f" and of the base year {b_year}" if previous != b_year else "")
        + " (no significant fall)"
    )
    return Progress("on_track", reason, *shown)


def achieved(value: float | None, target: float | None) -> bool:
    return value is not None and target is not None and value >= target


def gap(value: float | None, target: float | None) -> float | None:
    """How far the value is below the target (negative: beyond it)."""
    if value is None or target is None:
        return None
    return target - value
