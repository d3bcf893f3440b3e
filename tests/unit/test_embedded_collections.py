"""The embedded suite collects cycles in larger steps while it runs, and gives the process its own
collector thresholds back when it stops (qcity.embedded.fewer_collections)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from qcity.embedded import GC_GEN0_THRESHOLD, fewer_collections


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*before)


def test_the_first_threshold_is_raised_while_the_suite_runs_and_restored_after(
    thresholds: tuple[int, int, int],
) -> None:
    with fewer_collections():
        assert gc.get_threshold() == (GC_GEN0_THRESHOLD, 10, 10)
        assert gc.isenabled()  # cycles are still collected
    assert gc.get_threshold() == thresholds


def test_a_higher_threshold_the_process_chose_is_kept(thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(50_000, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (50_000, 10, 10)
    assert gc.get_threshold() == (50_000, 10, 10)


def test_the_thresholds_are_restored_when_the_suite_fails(thresholds: tuple[int, int, int]) -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("start-up failed")
    assert gc.get_threshold() == thresholds
