"""Charts drawn on the server as SVG: horizontal bars, one row per label, one bar per series, each bar
with its number as a tooltip (``<title>``) and written beside it. No script draws anything (the pages'
Content-Security-Policy allows none inline), and every chart has its numbers in a table as well.

:func:`bar_chart` only computes the geometry; ``templates/_charts.html`` draws it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

WIDTH = 640
LABEL_WIDTH = 190
VALUE_ROOM = 70  # for the number written after the longest bar
BAR_HEIGHT = 13
GAP = 9
LABEL_CHARS = 27


@dataclass(frozen=True)
class Series:
    """One kind of bar: its name (legend), CSS class (``""``, ``"alt"``, ``"warn"``), values and how a value
    is written (``fmt``); ``intervals`` draws a whisker (e.g. a 95% confidence interval) over each bar."""

    name: str
    values: Sequence[float | None]
    fmt: Callable[[float], str]
    cls: str = ""
    intervals: Sequence[tuple[float, float] | None] | None = None
    notes: Sequence[str] | None = None  # more words for each bar's tooltip


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    cls: str
    text: str
    title: str
    whisker: tuple[float, float] | None = None  # x from, x to


@dataclass(frozen=True)
class Row:
    label: str
    short: str
    text_y: float
    bars: list[Bar]


@dataclass
class Chart:
    width: int
    height: float
    label_width: int
    plot_width: float
    rows: list[Row] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css class, series name)
    axis_y: float = 0.0


def _short(label: str, chars: int = LABEL_CHARS) -> str:
    return label if len(label) <= chars else label[: chars - 1] + "…"


def bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    max_value: float | None = None,
    width: int = WIDTH,
    label_width: int = LABEL_WIDTH,
) -> Chart:
    """Horizontal bars for each label (rows) and series (bars within a row), scaled to the largest value
    (or ``max_value``, e.g. 1.0 for rates). Missing values (None) draw no bar and say so in the tooltip.
    ``width`` is the drawing's width in CSS pixels at its natural size (narrow cards: a smaller one)."""
    values = [v for s in series for v in s.values if v is not None]
    highs = [hi for s in series for iv in (s.intervals or ()) if iv is not None for hi in iv[1:]]
    top = max_value if max_value is not None else max([*values, *highs], default=0.0)
    top = top if top > 0 else 1.0
    plot = width - label_width - VALUE_ROOM
    row_height = len(series) * BAR_HEIGHT + GAP
    chart = Chart(width, 0, label_width, plot)
    chars = max(8, LABEL_CHARS * label_width // LABEL_WIDTH)
    chart.legend = [(s.cls, s.name) for s in series] if len(series) > 1 else []
    y = 4.0
    for i, label in enumerate(labels):
        bars = []
        for j, s in enumerate(series):
            value = s.values[i]
            by = y + j * BAR_HEIGHT
            note = f"; {s.notes[i]}" if s.notes and s.notes[i] else ""
            if value is None:
                bars.append(
                    Bar(label_width, by, 0, BAR_HEIGHT - 2, s.cls, "–", f"{label}: {s.name}: none{note}")
                )
                continue
            length = max(0.0, min(value, top)) / top * plot
            whisker = None
            interval = s.intervals[i] if s.intervals else None
            if interval is not None:
                whisker = (
                    label_width + min(interval[0], top) / top * plot,
                    label_width + min(interval[1], top) / top * plot,
                )
                note = f" (95% interval {s.fmt(interval[0])} to {s.fmt(interval[1])}){note}"
            text = s.fmt(value)
            bars.append(
                Bar(
                    label_width,
                    by,
                    round(length, 1),
                    BAR_HEIGHT - 2,
                    s.cls,
                    text,
                    f"{label}: {s.name} {text}{note}",
                    whisker,
                )
            )
        chart.rows.append(Row(label, _short(label, chars), y + len(series) * BAR_HEIGHT / 2 + 3, bars))
        y += row_height
    chart.height = y + 2
    chart.axis_y = y
    return chart


def percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def days(value: float) -> str:
    return f"{value:,.1f} d"
