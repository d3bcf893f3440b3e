"""Server-side SVG charts: progress bars, a yearly series against its target line, district bars.

Pure functions from numbers to SVG text. Rendering on the server keeps the pages free of any
script fetched at run time (the city's network may be closed) and makes every chart testable as
text. All text is escaped; numbers are formatted by the caller's `fmt`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import NamedTuple

STATUS_COLOURS: dict[str, str] = {
    "achieved": "#1a7f37",
    "on_track": "#2da44e",
    "acceleration_needed": "#bf8700",
    "limited_progress": "#e16f24",
    "deterioration": "#cf222e",
    "no_data": "#8c959f",
}
TARGET_COLOUR = "#cf222e"
BAR_COLOUR = "#0969da"
Fmt = Callable[[float], str]


def _num(x: float) -> str:
    """Coordinates with two decimals: short SVG, stable text for tests."""
    return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


class Margins(NamedTuple):
    """The space around a chart's plotting area, for its title, axis labels and years."""

    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0


@dataclass(frozen=True)
class Box:
    """A chart's size, and the margins that leave its plotting area."""

    width: int
    height: int
    margins: Margins = Margins()

    @property
    def w(self) -> int:
        return self.width - self.margins.left - self.margins.right

    @property
    def h(self) -> int:
        return self.height - self.margins.top - self.margins.bottom

    def column(self, i: int, n: int) -> float:
        """The centre of the i-th of n columns across the plotting area."""
        return self.margins.left + (i + 0.5) * self.w / n

    def svg(self, cls: str, label: str) -> str:
        """The chart's opening tag: an image of the box's size, named by its label for screen readers."""
        return (
            f'<svg class="{cls}" role="img" aria-label="{escape(label)}" width="{self.width}" '
            f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" xmlns="http://www.w3.org/2000/svg">'
        )


#: Each chart's default box.
BAR = Box(220, 14)
SERIES = Box(640, 260, Margins(left=64, right=16, top=28, bottom=32))
HISTORY = Box(520, 200, Margins(left=36, right=12, top=28, bottom=30))
MULTIPLE = Box(190, 110, Margins(left=6, right=6, top=18, bottom=16))


def fraction(value: float | None, target: float | None, scale_max: float | None) -> tuple[float, float | None]:
    """Where the bar ends and where the target mark sits, as fractions of the bar's width.

    With a natural scale (rates: 1, scores: 100) both are placed on it; a count without one is
    drawn against its target (full bar = target reached), capped at the bar's end."""
    if value is None:
        return 0.0, (target / scale_max if target is not None and scale_max else None)
    if scale_max:
        return max(0.0, min(1.0, value / scale_max)), (target / scale_max if target is not None else None)
    if target:
        return max(0.0, min(1.0, value / target)), 1.0
    return 0.0, None


def progress_bar(
    value: float | None,
    target: float | None,
    status: str,
    *,
    scale_max: float | None,
    label: str,
    box: Box = BAR,
) -> str:
    filled, mark = fraction(value, target, scale_max)
    colour = STATUS_COLOURS.get(status, STATUS_COLOURS["no_data"])
    width, height = box.width, box.height
    parts = [
        box.svg("bar", label),
        f'<rect x="0" y="0" width="{width}" height="{height}" rx="3" fill="#eaeef2"/>',
        f'<rect class="fill" x="0" y="0" width="{_num(filled * width)}" height="{height}" rx="3" fill="{colour}"/>',
    ]
    if mark is not None and 0 <= mark <= 1:
        x = _num(min(mark * width, width - 1))
        parts.append(
            f'<line class="target" x1="{x}" y1="0" x2="{x}" y2="{height}" stroke="{TARGET_COLOUR}" stroke-width="2"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _nice_range(values: Sequence[float], target: float | None, scale_max: float | None) -> tuple[float, float]:
    pool = [v for v in values] + ([target] if target is not None else [])
    if not pool:
        return 0.0, 1.0
    lo, hi = min(pool), max(pool)
    if scale_max and scale_max <= 1.0:
        # Rates: zoom on the region of interest, but keep the target line and 100% readable.
        lo = max(0.0, min(lo, (target or lo)) - 0.05)
        hi = min(1.0, max(hi, (target or hi)) + 0.02)
    else:
        lo = 0.0
        hi = hi * 1.1 if hi > 0 else 1.0
    if hi - lo < 1e-9:
        hi = lo + 1.0
    return lo, hi


@dataclass(frozen=True)
class _Frame:
    """A yearly chart's plotting area: `n` columns across the box, the range `lo`..`hi` up (a value
    outside it is drawn at its edge)."""

    box: Box
    lo: float
    hi: float
    n: int

    def x(self, i: int) -> float:
        return self.box.column(i, self.n)

    def y(self, v: float) -> float:
        b = self.box
        return b.margins.top + b.h - (min(max(v, self.lo), self.hi) - self.lo) / (self.hi - self.lo) * b.h


def series_chart(
    points: Sequence[tuple[int, float, tuple[float, float] | None]],
    target: float | None,
    *,
    fmt: Fmt,
    scale_max: float | None,
    title: str,
    target_label: str,
    box: Box = SERIES,
) -> str:
    """A yearly series (line and dots, with the 95% interval as whiskers when given) against the target."""
    values = [v for _, v, _ in points] + [b for *_, ci in points if ci for b in ci]
    lo, hi = _nice_range(values, target, scale_max)
    f = _Frame(box, lo, hi, max(len(points), 1))
    out = [
        box.svg("chart series", title),
        f'<text x="{box.margins.left}" y="16" font-size="13" font-weight="600">{escape(title)}</text>',
        *_grid(f, fmt),
    ]
    if target is not None and lo <= target <= hi:
        out += _target_line(f, target, f"{escape(target_label)} {escape(fmt(target))}")
    if points:
        path = " ".join(f"{'M' if i == 0 else 'L'}{_num(f.x(i))},{_num(f.y(v))}" for i, (_, v, _) in enumerate(points))
        out.append(f'<path class="line" d="{path}" fill="none" stroke="{BAR_COLOUR}" stroke-width="2"/>')
    for i, point in enumerate(points):
        out += _year(f, i, point, fmt)
    out.append("</svg>")
    return "".join(out)


def _grid(f: _Frame, fmt: Fmt) -> list[str]:
    """Five horizontal grid lines with their values on the left axis."""
    out: list[str] = []
    left, right = f.box.margins.left, f.box.margins.left + f.box.w
    for k in range(5):
        v = f.lo + (f.hi - f.lo) * k / 4
        out.append(
            f'<line x1="{left}" x2="{right}" y1="{_num(f.y(v))}" y2="{_num(f.y(v))}" stroke="#d0d7de" '
            f'stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{_num(f.y(v) + 4)}" font-size="11" text-anchor="end">{escape(fmt(v))}</text>'
        )
    return out


def _target_line(f: _Frame, target: float, label: str) -> list[str]:
    """The target as a dashed line across the chart, labelled (`label` already escaped) at its right end."""
    ty = _num(f.y(target))
    left, right = f.box.margins.left, f.box.margins.left + f.box.w
    return [
        f'<line class="target" x1="{left}" x2="{right}" y1="{ty}" y2="{ty}" stroke="{TARGET_COLOUR}" '
        f'stroke-width="2" stroke-dasharray="6 4"/>',
        f'<text x="{right}" y="{_num(f.y(target) - 5)}" font-size="11" text-anchor="end" '
        f'fill="{TARGET_COLOUR}">{label}</text>',
    ]


def _year(f: _Frame, i: int, point: tuple[int, float, tuple[float, float] | None], fmt: Fmt) -> list[str]:
    """One year of the series: its interval's whisker, its dot, its value above and its year below."""
    year, v, ci = point
    out: list[str] = []
    if ci:
        out.append(
            f'<line class="ci" x1="{_num(f.x(i))}" x2="{_num(f.x(i))}" y1="{_num(f.y(ci[0]))}" '
            f'y2="{_num(f.y(ci[1]))}" stroke="{BAR_COLOUR}" stroke-opacity="0.45" stroke-width="6"/>'
        )
    out.append(
        f'<circle class="point" data-year="{year}" cx="{_num(f.x(i))}" cy="{_num(f.y(v))}" r="4" '
        f'fill="{BAR_COLOUR}"><title>{year}: {escape(fmt(v))}</title></circle>'
    )
    out.append(
        f'<text x="{_num(f.x(i))}" y="{_num(f.y(v) - 8)}" font-size="11" text-anchor="middle">{escape(fmt(v))}</text>'
    )
    out.append(f'<text x="{_num(f.x(i))}" y="{f.box.height - 10}" font-size="11" text-anchor="middle">{year}</text>')
    return out


def district_bars(
    rows: Sequence[tuple[str, float]],
    target: float | None,
    *,
    fmt: Fmt,
    scale_max: float | None,
    title: str,
    width: int = 640,
    row_height: int = 22,
) -> str:
    """One horizontal bar per district, with the target as a vertical line."""
    pad_t = 26
    box = Box(width, pad_t + row_height * max(len(rows), 1) + 8, Margins(left=110, right=70, top=pad_t, bottom=8))
    pad_l, w, height = box.margins.left, box.w, box.height
    top = scale_max or max([v for _, v in rows] + [target or 0.0, 1e-9])
    lo = 0.0
    if scale_max and scale_max <= 1.0 and rows:
        lo = max(0.0, min([v for _, v in rows] + ([target] if target is not None else [])) - 0.05)

    def xx(v: float) -> float:
        return pad_l + (v - lo) / (top - lo) * w if top > lo else pad_l

    out = [
        box.svg("chart districts", title),
        f'<text x="0" y="16" font-size="13" font-weight="600">{escape(title)}</text>',
    ]
    for i, (name, v) in enumerate(rows):
        yy = pad_t + i * row_height
        out.append(f'<text x="{pad_l - 6}" y="{yy + 15}" font-size="12" text-anchor="end">{escape(name)}</text>')
        out.append(
            f'<rect class="bar" x="{pad_l}" y="{yy + 3}" width="{_num(max(0.0, xx(v) - pad_l))}" '
            f'height="{row_height - 6}" fill="{BAR_COLOUR}"/>'
        )
        out.append(f'<text x="{_num(xx(v) + 4)}" y="{yy + 15}" font-size="11">{escape(fmt(v))}</text>')
    if target is not None and lo <= target <= top:
        tx = _num(xx(target))
        out.append(
            f'<line class="target" x1="{tx}" x2="{tx}" y1="{pad_t - 4}" y2="{height - 4}" '
            f'stroke="{TARGET_COLOUR}" stroke-width="2" stroke-dasharray="4 3"/>'
        )
    out.append("</svg>")
    return "".join(out)


def pass_fail_history(
    years: Sequence[tuple[int, int, int]],
    *,
    title: str,
    pass_label: str,
    fail_label: str,
    box: Box = HISTORY,
) -> str:
    """Stacked columns per year: passes (green) under fails (red), with the counts."""
    width, height, h = box.width, box.height, box.h
    top = max([p + f for _, p, f in years] + [1])
    n = max(len(years), 1)
    bw = box.w / n * 0.6
    out = [
        box.svg("chart history", title),
        f'<text x="0" y="16" font-size="13" font-weight="600">{escape(title)}</text>',
        f'<rect x="{width - 150}" y="6" width="10" height="10" fill="#2da44e"/>'
        f'<text x="{width - 136}" y="15" font-size="11">{escape(pass_label)}</text>'
        f'<rect x="{width - 80}" y="6" width="10" height="10" fill="#cf222e"/>'
        f'<text x="{width - 66}" y="15" font-size="11">{escape(fail_label)}</text>',
    ]
    for i, (year, passed, failed) in enumerate(years):
        cx = box.column(i, n)
        hp, hf = passed / top * h, failed / top * h
        base = box.margins.top + h
        out.append(
            f'<rect class="pass" data-year="{year}" x="{_num(cx - bw / 2)}" y="{_num(base - hp)}" '
            f'width="{_num(bw)}" height="{_num(hp)}" fill="#2da44e"/>'
        )
        out.append(
            f'<rect class="fail" data-year="{year}" x="{_num(cx - bw / 2)}" y="{_num(base - hp - hf)}" '
            f'width="{_num(bw)}" height="{_num(hf)}" fill="#cf222e"/>'
        )
        out.append(
            f'<text x="{_num(cx)}" y="{_num(base - hp - hf - 4)}" font-size="11" text-anchor="middle">'
            f"{passed}/{passed + failed}</text>"
        )
        out.append(f'<text x="{_num(cx)}" y="{height - 10}" font-size="11" text-anchor="middle">{year}</text>')
    out.append("</svg>")
    return "".join(out)


def shared_range(values: Sequence[float], scale_max: float | None) -> tuple[float, float]:
    """One vertical range for a set of small multiples, so their lines compare at a glance."""
    return _nice_range(values, None, scale_max)


def small_multiple(
    points: Sequence[tuple[int, float | None, float | None]],
    *,
    lo: float,
    hi: float,
    fmt: Fmt,
    title: str,
    box: Box = MULTIPLE,
) -> str:
    """One panel of a small-multiples grid: a yearly series (year, value, target) against its target,
    which may change year by year (a count's pro-rata share), on the range the grid shares."""
    f = _Frame(box, lo, hi, max(len(points), 1))
    x, y = f.x, f.y
    width, height = box.width, box.height
    out = [
        box.svg("chart multiple", title),
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="none" stroke="#d0d7de"/>',
        f'<text x="{box.margins.left}" y="13" font-size="11" font-weight="600">{escape(title)}</text>',
    ]
    targets = [(i, t) for i, (_, _, t) in enumerate(points) if t is not None]
    if targets:
        path = " ".join(f"{'M' if k == 0 else 'L'}{_num(x(i))},{_num(y(t))}" for k, (i, t) in enumerate(targets))
        out.append(
            f'<path class="target" d="{path}" fill="none" stroke="{TARGET_COLOUR}" stroke-width="1.5" '
            f'stroke-dasharray="4 3"/>'
        )
    known = [(i, v) for i, (_, v, _) in enumerate(points) if v is not None]
    if known:
        path = " ".join(f"{'M' if k == 0 else 'L'}{_num(x(i))},{_num(y(v))}" for k, (i, v) in enumerate(known))
        out.append(f'<path class="line" d="{path}" fill="none" stroke="{BAR_COLOUR}" stroke-width="1.5"/>')
    for i, (year, v, t) in enumerate(points):
        if v is not None:
            below = t is not None and v < t
            out.append(
                f'<circle class="point" data-year="{year}" data-value="{v}" cx="{_num(x(i))}" cy="{_num(y(v))}" '
                f'r="2.5" fill="{TARGET_COLOUR if below else BAR_COLOUR}"><title>{year}: {escape(fmt(v))}'
                f"{' / ' + escape(fmt(t)) if t is not None else ''}</title></circle>"
            )
    if points:
        first, last = box.margins.left, width - box.margins.right
        out.append(f'<text x="{first}" y="{height - 4}" font-size="9">{points[0][0]}</text>')
        out.append(f'<text x="{last}" y="{height - 4}" font-size="9" text-anchor="end">{points[-1][0]}</text>')
    out.append("</svg>")
    return "".join(out)
