from __future__ import annotations

import pytest

from shared.stats import wilson_interval


def test_wilson_interval_matches_published_values() -> None:
    # 81 of 263 (Wilson 1927 style example; reference values from R's prop.test without correction)
    low, high = wilson_interval(81, 263) or (0, 0)
    assert low == pytest.approx(0.2553, abs=1e-4)
    assert high == pytest.approx(0.3662, abs=1e-4)


def test_wilson_interval_stays_inside_zero_and_one() -> None:
    assert wilson_interval(10, 10) is not None
    low, high = wilson_interval(10, 10) or (0, 0)
    assert 0.69 < low < 0.73 and high == pytest.approx(1.0)
    assert wilson_interval(0, 0) is None
