"""The dashboard in a real headless Chromium, over the embedded suite seeded with the demo generator.

Each page is compared with the JSON API it is drawn from, and a screenshot of each is saved under
test-artifacts/dashboard/.
"""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.dashboard_helpers import BackgroundSuite, demo_suite, headless_browser, screenshot

#: Indicators of three kinds (pass rates, an honour count, a reported value) checked value by value.
CHECKED = (
    "mfg_key_pass_rate_municipal",
    "agri_pass_rate",
    "key_food_stable",
    "construction_pass_rate",
    "shandong_famous_brands",
    "national_industry_local_standards",
    "expressway_good_road_rate",
)
STATUS_ZH = {
    "achieved": "已实现",
    "on_track": "进展顺利",
    "acceleration_needed": "需加快",
    "limited_progress": "进展有限",
    "deterioration": "退步",
    "no_data": "无数据",
}
DISTRICT = "370212"


def shown(fig: dict[str, Any]) -> str:
    """How the page must write the API's value (rates as percentages with two decimals)."""
    v = fig["value"]
    if fig["kind"].endswith("_rate") or fig["unit"] == "ratio":
        return f"{v * 100:.2f}%"
    if fig["kind"] == "min_score":
        return f"{v:.1f}"
    return f"{v:,.0f}"


suite = pytest.fixture(demo_suite, scope="module", name="suite")
browser = pytest.fixture(headless_browser, name="browser")


def _rows(browser: WebDriver) -> dict[str, Any]:
    return {str(r.get_attribute("data-code")): r for r in browser.find_elements(By.CSS_SELECTOR, "tr.indicator")}


def _check_values(browser: WebDriver, api: dict[str, Any]) -> None:
    rows = _rows(browser)
    figures = {f["code"]: f for f in api["indicators"]}
    assert set(rows) == set(figures), "every indicator of the plan has its row"
    for code in CHECKED:
        fig, row = figures[code], rows[code]
        cell = row.find_element(By.CSS_SELECTOR, "td.value")
        if fig["value"] is None:  # reported figures are city-wide: no value for a district
            assert fig["source"] == "reported" and api["district"], code
            assert (cell.get_attribute("data-value"), cell.text) == ("", "—"), code
        else:
            assert cell.get_attribute("data-value") == str(fig["value"]), code  # the API's number, exactly
            assert cell.text.split(" ")[0] == shown(fig), code
        assert row.find_element(By.CSS_SELECTOR, ".badge").text == STATUS_ZH[fig["status"]], code
        assert row.get_attribute("data-status") == fig["status"]


def test_overview_shows_the_attainment_api_values(suite: BackgroundSuite, browser: WebDriver) -> None:
    browser.get(suite.url + "/dashboard")
    api = suite.api("/v1/attainment")
    assert all(f["value"] is not None for f in api["indicators"] if f["code"] in CHECKED), "the demo fills them"
    _check_values(browser, api)
    sections = [s.get_attribute("data-section") for s in browser.find_elements(By.CSS_SELECTOR, "section.plan-section")]
    assert sections == ["二(一)", "二(二)", "二(三)", "三(一)1", "三(一)2", "三(一)3"]  # the seed's order
    assert browser.find_element(By.ID, "as-of").text == api["as_of"] == "2015-12-31"
    assert browser.find_element(By.CSS_SELECTOR, ".freshness").get_attribute("data-events") == str(
        api["freshness"]["events_applied"]
    )
    # Every bar is an inline SVG with the target marked (no script, nothing fetched).
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.indicator svg.bar")) == len(api["indicators"])
    assert not browser.find_elements(By.TAG_NAME, "script")
    screenshot(browser, "overview")


def test_the_district_filter_changes_the_values(suite: BackgroundSuite, browser: WebDriver) -> None:
    browser.get(suite.url + "/dashboard")
    city = {f["code"]: f for f in suite.api("/v1/attainment")["indicators"]}
    Select(browser.find_element(By.ID, "district")).select_by_value(DISTRICT)
    browser.find_element(By.ID, "apply").click()
    WebDriverWait(browser, 20).until(ec.url_contains(f"district={DISTRICT}"))
    api = suite.api("/v1/attainment", {"district": DISTRICT})
    _check_values(browser, api)
    assert DISTRICT in browser.find_element(By.ID, "district-shown").text
    local = {f["code"]: f for f in api["indicators"]}
    changed = [c for c in CHECKED if local[c]["value"] != city[c]["value"]]
    assert len(changed) >= 3, "the district's figures are not the city's"
    screenshot(browser, "overview-district-370212")


def test_indicator_page_series_and_districts(suite: BackgroundSuite, browser: WebDriver) -> None:
    browser.get(suite.url + "/dashboard")
    _rows(browser)["agri_pass_rate"].find_element(By.CSS_SELECTOR, "td.name a").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/dashboard/indicators/agri_pass_rate"))
    fig = suite.api("/v1/attainment/agri_pass_rate")["indicator"]
    series = browser.find_elements(By.CSS_SELECTOR, "tr.series-row")
    assert [r.get_attribute("data-year") for r in series] == [str(p["year"]) for p in fig["series"]]
    assert [r.find_element(By.CSS_SELECTOR, ".value").get_attribute("data-value") for r in series] == [
        str(p["value"]) for p in fig["series"]
    ]
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.series circle.point")) == len(fig["series"]) == 5
    assert browser.find_elements(By.CSS_SELECTOR, "svg.series line.target"), "the target line is drawn"
    districts = browser.find_elements(By.CSS_SELECTOR, "tr.district-row")
    assert {
        r.get_attribute("data-district"): r.find_element(By.CSS_SELECTOR, ".value").get_attribute("data-value")
        for r in districts
    } == {d["district_code"]: str(d["value"]) for d in fig["districts"]}
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.districts rect.bar")) == len(fig["districts"]) > 5
    # The district x year table under the chart: every cell the API answers, in the same place.
    cells = {
        (r.get_attribute("data-district"), c.get_attribute("data-year")): (
            c.get_attribute("data-value"),
            c.get_attribute("data-n"),
        )
        for r in browser.find_elements(By.CSS_SELECTOR, "tr.district-year-row")
        for c in r.find_elements(By.CSS_SELECTOR, "td.value")
    }
    assert cells == {
        (c["district_code"], str(c["year"])): ("" if c["value"] is None else str(c["value"]), str(c["n"]))
        for c in fig["district_years"]
    }
    assert len({y for _, y in cells}) == 5 and len({d for d, _ in cells}) > 5
    screenshot(browser, "indicator-agri_pass_rate")
    browser.get(suite.url + "/dashboard/indicators/shandong_famous_brands?lang=en")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Shandong famous-brand products"
    screenshot(browser, "indicator-shandong_famous_brands-en")


def test_credit_search_finds_an_enterprise_and_shows_its_profile(suite: BackgroundSuite, browser: WebDriver) -> None:
    listed = next(c for c in suite.data.blacklist if c.fate == "listed")
    uscc, name = listed.proposal["uscc"], listed.proposal["enterprise_name"]
    browser.get(suite.url + "/dashboard/credit")
    assert browser.find_elements(By.CSS_SELECTOR, ".notice.warn"), "without a token the page asks for one"
    token = suite.mint("dashboard-reader", ["read"])
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.ID, "q")))
    browser.find_element(By.ID, "q").send_keys(name[2:6])  # a fragment of the name
    browser.find_element(By.ID, "search").click()
    WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr.enterprise")))
    found = {
        r.find_element(By.CSS_SELECTOR, ".uscc").text: r
        for r in browser.find_elements(By.CSS_SELECTOR, "tr.enterprise")
    }
    assert uscc in found
    screenshot(browser, "credit-search")
    found[uscc].find_element(By.TAG_NAME, "a").click()
    WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.ID, "enterprise-name")))
    profile = suite.api(f"/v1/credit/{uscc}", token=token)
    assert browser.find_element(By.ID, "enterprise-name").text == name
    assert browser.find_element(By.ID, "rating").text == profile["rating"]["rating"] == "D"  # listed: 严重失信
    assert browser.find_element(By.ID, "listed").text == "列入黑名单"
    assert browser.find_element(By.ID, "eligible").text == "不符合"
    assert browser.find_element(By.ID, "pass-rate").text == f"{profile['sampling']['pass_rate'] * 100:.2f}%"
    years = {r.get_attribute("data-year") for r in browser.find_elements(By.CSS_SELECTOR, "svg.history rect.fail")}
    assert years, "the sampling history chart has its yearly columns"
    screenshot(browser, "credit-profile")


def test_public_lists_render_without_a_token(suite: BackgroundSuite, browser: WebDriver) -> None:
    browser.get(suite.url + "/dashboard/public/blacklist")
    api = suite.api("/v1/blacklist", {"limit": 200})
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.entry")
    assert {r.get_attribute("data-uscc") for r in rows} == {e["uscc"] for e in api["items"]}
    assert len(rows) >= 10
    screenshot(browser, "public-blacklist")
    browser.find_element(By.LINK_TEXT, "荣誉公示").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/dashboard/public/honours"))
    Select(browser.find_element(By.ID, "type")).select_by_value("B3")
    browser.find_element(By.ID, "apply").click()
    WebDriverWait(browser, 20).until(ec.url_contains("type=B3"))
    honours = suite.api("/v1/public/honour-types/B3/honours", {"limit": 100})
    shown_rows = browser.find_elements(By.CSS_SELECTOR, "tr.honour")
    assert len(shown_rows) == len(honours["items"]) > 0
    assert all(r.get_attribute("data-type") == "B3" for r in shown_rows)
    screenshot(browser, "public-honours-B3")


def test_nonconforming_products_page_shows_the_public_api_without_a_token(
    suite: BackgroundSuite, browser: WebDriver
) -> None:
    browser.get(suite.url + "/dashboard/public/honours")
    browser.find_element(By.LINK_TEXT, "不合格产品公示").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/dashboard/public/nonconforming"))
    api = suite.api("/v1/public/nonconforming-products", {"limit": 100})
    assert api["items"], "the demo's final fails are published"
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.nonconforming")
    assert [r.get_attribute("data-report") for r in rows] == [i["report_no"] for i in api["items"]]
    first, item = rows[0], api["items"][0]
    assert first.find_element(By.CSS_SELECTOR, ".producer").text == item["enterprise_name"]
    assert first.find_element(By.CSS_SELECTOR, ".product").text == item["product_name"]
    assert item["nonconforming_items"][0]["measured"] in first.text
    screenshot(browser, "public-nonconforming")

    # Search by a fragment of a producer's name and a district: the rows the API gives for that filter.
    fragment, district = item["enterprise_name"][2:5], item["district_code"]
    browser.find_element(By.ID, "enterprise").send_keys(fragment)
    Select(browser.find_element(By.ID, "district")).select_by_value(district)
    browser.find_element(By.ID, "apply").click()
    WebDriverWait(browser, 20).until(ec.url_contains("enterprise="))
    found = suite.api("/v1/public/nonconforming-products", {"limit": 100, "enterprise": fragment, "district": district})
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.nonconforming")
    assert [r.get_attribute("data-report") for r in rows] == [i["report_no"] for i in found["items"]]
    assert item["report_no"] in [r.get_attribute("data-report") for r in rows]
    assert all(fragment in i["enterprise_name"] and i["district_code"] == district for i in found["items"])
    screenshot(browser, "public-nonconforming-search")


def test_assessment_page_ranks_districts_as_the_api(suite: BackgroundSuite, browser: WebDriver) -> None:
    browser.get(suite.url + "/dashboard")
    browser.find_element(By.LINK_TEXT, "区(市)考核").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/dashboard/assessment"))
    api = suite.api("/v1/assessments")
    assert browser.find_element(By.ID, "year-shown").text == str(api["year"]) == "2015"

    def shown(browser: WebDriver) -> list[tuple[str | None, ...]]:
        return [
            (r.get_attribute("data-district"), r.get_attribute("data-rank"), r.get_attribute("data-score"))
            for r in browser.find_elements(By.CSS_SELECTOR, "tr.district")
        ]

    def expected(body: dict[str, Any]) -> list[tuple[str | None, ...]]:
        return [
            (
                d["district_code"],
                "" if d["rank"] is None else str(d["rank"]),
                "" if d["score"] is None else str(d["score"]),
            )
            for d in body["districts"]
        ]

    assert shown(browser) == expected(api), "every district in the API's order, with its rank and score"
    first = browser.find_elements(By.CSS_SELECTOR, "tr.district")[0]
    points = {
        c.get_attribute("data-code"): c.get_attribute("data-points")
        for c in first.find_elements(By.CSS_SELECTOR, "td.points")
    }
    assert points == {
        i["code"]: "" if i["points"] is None else str(i["points"]) for i in api["districts"][0]["indicators"]
    }
    assert any(points.values()), "the honour counts are judged whatever the sample sizes"
    screenshot(browser, "assessment-2015")
    Select(browser.find_element(By.ID, "year")).select_by_value("2013")
    Select(browser.find_element(By.ID, "scheme")).select_by_value("product-safety")
    browser.find_element(By.ID, "apply").click()
    WebDriverWait(browser, 20).until(ec.url_contains("year=2013"))
    other = suite.api("/v1/assessments", {"year": 2013, "scheme": "product-safety"})
    assert shown(browser) == expected(other)
    screenshot(browser, "assessment-2013-product-safety")


def test_a_districts_printable_report_shows_every_year_of_the_api(suite: BackgroundSuite, browser: WebDriver) -> None:
    browser.get(suite.url + "/dashboard/assessment")
    browser.find_element(By.PARTIAL_LINK_TEXT, DISTRICT).click()
    WebDriverWait(browser, 20).until(ec.url_contains(f"/dashboard/assessment/{DISTRICT}"))
    api = suite.api(f"/v1/assessments/{DISTRICT}")
    sections = browser.find_elements(By.CSS_SELECTOR, "section.report-year")
    assert [(s.get_attribute("data-year"), s.get_attribute("data-score")) for s in sections] == [
        (str(y["year"]), "" if y["score"] is None else str(y["score"])) for y in api["years"]
    ]
    for section, year in zip(sections, api["years"], strict=True):
        lines = section.find_elements(By.CSS_SELECTOR, "tr.line")
        assert [(ln.get_attribute("data-code"), ln.get_attribute("data-status")) for ln in lines] == [
            (i["code"], i["status"]) for i in year["indicators"]
        ]
    screenshot(browser, f"assessment-report-{DISTRICT}")
