"""The demo raises a realistic warning, and the warnings page shows it as the API does: the embedded
suite seeded with the demo generator (as `qcity demo` loads it), looked at in a headless Chromium.

The demo's outbreak (a quarter in which one district's spring onions failed for procymidone in 45 of
100 campaign samples) must be raised by the fail-rate rules; the page lists the warnings not closed,
each with its evidence and a chart of the quarter's rate against its baseline."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from qcity.demo import OUTBREAK_FAILS, OUTBREAK_RESULTS
from tests.e2e.dashboard_helpers import BackgroundSuite, demo_suite, headless_browser, screenshot

suite = pytest.fixture(demo_suite, scope="module", name="suite")
browser = pytest.fixture(headless_browser, name="browser")


def not_closed(suite: BackgroundSuite, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for state in ("open", "acknowledged"):
        items += suite.api("/v1/warnings", {"state": state, "limit": 1000}, token=token)["items"]
    return items


def outbreak_warnings(suite: BackgroundSuite, token: str) -> list[dict[str, Any]]:
    """The fail-rate warnings on the demo's outbreak: its quarter, and its district or its category."""
    o = suite.data.outbreak
    assert o is not None
    items = suite.api("/v1/warnings", {"kind": "fail_rate_above_baseline", "limit": 1000}, token=token)["items"]
    return [
        w
        for w in items
        if w["window_start"] == o.quarter_start.isoformat()
        and (w["district_code"], w["product_category"])
        in {(o.district, o.category), (o.district, None), (None, o.category)}
    ]


def test_the_demo_raises_its_outbreak_as_a_warning(suite: BackgroundSuite) -> None:
    o = suite.data.outbreak
    assert o is not None and len(o.report_nos) == OUTBREAK_RESULTS
    token = suite.mint("analyst", ["read"])
    found = outbreak_warnings(suite, token)
    assert found, "the outbreak's quarter is raised by a fail-rate rule"
    for w in found:
        ev = w["evidence"]
        assert ev["window"]["fails"] >= 3 and ev["window"]["rate"] >= 1.5 * ev["baseline"]["rate"]
        assert ev["p_value"] < ev["alpha_per_look"] and ev["period"] == f"{o.quarter_start.year}Q3"
    # The campaign's fails are in the window the warning counted (the group holds them all).
    district_wide = [w for w in found if w["district_code"] == o.district]
    assert all(w["evidence"]["window"]["fails"] >= OUTBREAK_FAILS for w in district_wide)


def _sign_in(suite: BackgroundSuite, browser: WebDriver, token: str) -> None:
    browser.get(suite.url + "/dashboard/login?next=/dashboard/warnings")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "kind")))


def test_the_warnings_page_shows_what_the_api_holds(suite: BackgroundSuite, browser: WebDriver) -> None:
    browser.get(suite.url + "/dashboard/warnings")
    assert browser.find_elements(By.CSS_SELECTOR, ".notice.warn"), "without a token the page asks for one"
    token = suite.mint("dashboard-reader", ["read"])
    _sign_in(suite, browser, token)
    api = {w["warning_id"]: w for w in not_closed(suite, token)}
    cards = {
        str(c.get_attribute("data-warning-id")): c for c in browser.find_elements(By.CSS_SELECTOR, "section.warning")
    }
    assert set(cards) == set(api) and cards, "every warning not closed has its card, and no other"
    for wid, card in cards.items():
        assert card.get_attribute("data-kind") == api[wid]["kind"]
        assert card.find_element(By.CSS_SELECTOR, ".summary").text == api[wid]["summary"]
    (w, *_) = outbreak_warnings(suite, token)
    card = cards[w["warning_id"]]
    ev = w["evidence"]
    for cls in ("window", "baseline"):
        row = card.find_element(By.CSS_SELECTOR, f"table.rate-evidence tr.{cls}")
        assert (row.get_attribute("data-n"), row.get_attribute("data-fails")) == (
            str(ev[cls]["n"]),
            str(ev[cls]["fails"]),
        )
        assert row.find_element(By.CSS_SELECTOR, "td.value").text == f"{ev[cls]['rate'] * 100:.2f}%"
    assert card.find_element(By.CSS_SELECTOR, ".p-value").text == f"{ev['p_value']:.3g}"
    bars = card.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
    assert len(bars) == 2, "the quarter's rate and its baseline"
    assert card.find_elements(By.CSS_SELECTOR, "svg.chart line.target"), "the baseline drawn as the reference line"
    screenshot(browser, "warnings")

    # Acknowledged through the API, the warning shows under that state with who handled it.
    handler = suite.mint("inspector-li", ["warnings:write"])
    r = httpx.post(
        f"{suite.url}/v1/warnings/{w['warning_id']}:acknowledge",
        json={"note": "已安排专项复检"},
        headers={"Authorization": f"Bearer {handler}", "If-Match": '"1"'},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    Select(browser.find_element(By.ID, "state")).select_by_value("acknowledged")
    browser.find_element(By.ID, "apply").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, "section.warning")))
    (shown,) = browser.find_elements(By.CSS_SELECTOR, "section.warning")
    assert shown.get_attribute("data-warning-id") == w["warning_id"]
    assert shown.get_attribute("data-state") == "acknowledged"
    assert "inspector-li" in shown.text and "已安排专项复检" in shown.text
    screenshot(browser, "warnings-acknowledged")
