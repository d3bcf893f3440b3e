"""A five-year archive imported in embedded mode: attainment, ratings, listings and honour suspensions
as of three past dates, against the figures computed from the archive in the test."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from shared.clock import FixedClock
from tests.e2e.archive_helpers import TODAY, import_and_check


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(TODAY.year, TODAY.month, TODAY.day, 4, 0, tzinfo=UTC))


async def test_a_five_year_archive_gives_the_past_figures(
    embedded: tuple[FastAPI, httpx.AsyncClient], auth: Callable[..., dict[str, str]]
) -> None:
    _, client = embedded
    await import_and_check(client, auth)
