"""Server-side SVG charts: well-formed, scaled right, target drawn, text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from services.gateway.dashboard import charts
from services.gateway.dashboard.pages import fmt_value

NS = {"s": "http://www.w3.org/2000/svg"}


@dataclass
class Shown:
    kind: str
    unit: str
    target: float | None = None
    target_text: str | None = None


def pct(v: float) -> str:
    return f"{v * 100:.1f}%"


def test_progress_bar_fills_in_proportion_and_marks_the_target() -> None:
    svg = ET.fromstring(charts.progress_bar(0.95, 0.9, "achieved", scale_max=1.0, label="x", box=charts.Box(200, 14)))
    fill = svg.find("s:rect[@class='fill']", NS)
    target = svg.find("s:line[@class='target']", NS)
    assert fill is not None and target is not None
    assert float(fill.get("width", "")) == 190
    assert fill.get("fill") == charts.STATUS_COLOURS["achieved"]
    assert float(target.get("x1", "")) == 180


def test_a_count_is_drawn_against_its_target_and_capped() -> None:
    half = ET.fromstring(
        charts.progress_bar(200, 400, "limited_progress", scale_max=None, label="x", box=charts.Box(200, 14))
    )
    over = ET.fromstring(charts.progress_bar(900, 400, "achieved", scale_max=None, label="x", box=charts.Box(200, 14)))
    assert float(half.find("s:rect[@class='fill']", NS).get("width", "")) == 100  # type: ignore[union-attr]
    assert float(over.find("s:rect[@class='fill']", NS).get("width", "")) == 200  # type: ignore[union-attr]
    no_target = ET.fromstring(charts.progress_bar(5, None, "on_track", scale_max=None, label="x"))
    assert no_target.find("s:line[@class='target']", NS) is None


def test_series_chart_has_a_point_per_year_and_the_target_line_between_them() -> None:
    points = [(2011, 0.93, (0.9, 0.95)), (2012, 0.95, None), (2013, 0.97, (0.95, 0.98))]
    svg = ET.fromstring(charts.series_chart(points, 0.96, fmt=pct, scale_max=1.0, title="t", target_label="目标"))
    circles = svg.findall("s:circle[@class='point']", NS)
    assert [c.get("data-year") for c in circles] == ["2011", "2012", "2013"]
    assert len(svg.findall("s:line[@class='ci']", NS)) == 2
    target = svg.find("s:line[@class='target']", NS)
    assert target is not None
    ys = [float(c.get("cy", "")) for c in circles]
    ty = float(target.get("y1", ""))
    assert ys[0] > ys[1] > ty > ys[2], "higher values sit higher; the 96% line lies between 95% and 97%"


def test_district_bars_are_ordered_and_proportional() -> None:
    svg = ET.fromstring(
        charts.district_bars([("市南 370202", 10.0), ("崂山 370212", 5.0)], None, fmt=str, scale_max=None, title="t")
    )
    bars = svg.findall("s:rect[@class='bar']", NS)
    assert float(bars[0].get("width", "")) == 2 * float(bars[1].get("width", ""))


def test_history_columns_stack_passes_and_fails() -> None:
    svg = ET.fromstring(
        charts.pass_fail_history([(2014, 3, 1), (2015, 2, 2)], title="t", pass_label="合格", fail_label="不合格")
    )
    assert [r.get("data-year") for r in svg.findall("s:rect[@class='fail']", NS)] == ["2014", "2015"]
    p = svg.find("s:rect[@class='pass'][@data-year='2014']", NS)
    f = svg.find("s:rect[@class='fail'][@data-year='2014']", NS)
    assert p is not None and f is not None
    assert float(p.get("height", "")) == 3 * float(f.get("height", ""))


def test_labels_are_escaped() -> None:
    text = charts.series_chart([(2015, 1.0, None)], None, fmt=str, scale_max=None, title="<script>&", target_label="")
    assert "<script>" not in text and "&lt;script&gt;&amp;" in text
    ET.fromstring(text)


def test_values_are_written_by_kind() -> None:
    assert fmt_value(Shown("min_rate", "ratio"), 0.98765) == "98.77%"
    assert fmt_value(Shown("min_score", "score (0-100)"), 80.25) == "80.2"
    assert fmt_value(Shown("cumulative_count", "items"), 291500.0) == "291,500"
    assert fmt_value(Shown("cumulative_count", "items"), None) == "—"


MULTIPLE = charts.Box(190, 110, charts.Margins(left=6, right=6, top=18, bottom=16))


def test_a_small_multiple_places_values_and_targets_on_the_shared_scale() -> None:
    points = [(2011, 0.8, 0.9), (2012, None, 0.9), (2013, 1.0, 0.9)]
    svg = ET.fromstring(charts.small_multiple(points, lo=0.8, hi=1.0, fmt=pct, title="市南区 <370202>", box=MULTIPLE))
    dots = svg.findall("s:circle[@class='point']", NS)
    assert [d.get("data-year") for d in dots] == ["2011", "2013"], "a year without a value has no dot"
    # Plot area: y from 18 (hi) to 94 (lo); x centres of three columns over 6..184.
    assert [float(d.get("cy", "")) for d in dots] == [94, 18]
    assert [round(float(d.get("cx", "")), 2) for d in dots] == [35.67, 154.33]
    assert dots[0].get("fill") == charts.TARGET_COLOUR and dots[1].get("fill") == charts.BAR_COLOUR, "below target: red"
    target = svg.find("s:path[@class='target']", NS)
    assert target is not None and target.get("d") == "M35.67,56 L95,56 L154.33,56"
    assert "市南区 <370202>" in "".join(svg.itertext()), "the title, escaped in the markup"
    lo, hi = charts.shared_range([0.85, 0.97, 0.9], 1.0)
    assert lo <= 0.85 and hi >= 0.97 and hi <= 1.0
