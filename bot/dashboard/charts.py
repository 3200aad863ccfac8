"""Charts drawn on the server as inline SVG: nothing to download, readable on a phone, and testable.

Every drawn value carries its data (``data-label``, ``data-value``; a goal line ``data-goal``), so a test reads what
a chart shows without looking at pixels. The viewBox is about a phone's width, so text keeps its size there; the
stylesheet caps how wide a chart grows on a desktop. Colours come from classes in ``dashboard.css``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 360
ROW = 44  # one bar's row: its label on a line of its own (any length, any language), the bar under it
BAR_H = 16
VALUE_W = 48  # room for the value after a bar


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: nothing to measure (shown as a dash with ``note``, never as a zero bar)
    shown: str = ""  # the value as text (e.g. "42%"); "" gives the number
    note: str = ""  # said instead of a bar when there is no value


@dataclass(frozen=True)
class Series:
    key: str  # data-series, and the class that colours it
    label: str  # legend
    values: Sequence[int]


def _num(value: float) -> str:
    return f"{value:.4g}"


def _text(x: float, y: float, text: str, cls: str, anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}">{escape(text)}</text>'


def bars(
    items: Sequence[Bar],
    *,
    title: str,
    top: float = 1.0,
    goal: float | None = None,
    goal_label: str = "",
    band: tuple[float, float] | None = None,
) -> Markup:
    """Horizontal bars, each under its label, scaled to ``top`` (1.0 for shares); ``goal`` a dashed line across all
    rows, ``band`` a shaded target range (e.g. 60–70%)."""
    plot_x, plot_w = 2, WIDTH - 2 - VALUE_W
    head = 20 if goal is not None or band is not None else 0
    height = head + ROW * max(1, len(items))
    scale = plot_w / top if top > 0 else 0.0
    parts = [
        f'<svg class="chart bars" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
        f'data-chart="bars" data-top="{_num(top)}">',
        f"<title>{escape(title)}</title>",
    ]
    if band is not None:
        low, high = (plot_x + scale * min(v, top) for v in band)
        parts.append(
            f'<rect class="band" x="{low:.1f}" y="{head}" width="{high - low:.1f}" height="{height - head}" '
            f'data-band="{_num(band[0])}-{_num(band[1])}"/>'
        )
    for i, item in enumerate(items):
        y = head + i * ROW
        parts.append(_text(plot_x, y + 15, item.label, "label"))
        bar_y = y + 21
        if item.value is None:
            parts.append(
                f'<text x="{plot_x}" y="{bar_y + 13}" class="empty" data-label="{escape(item.label)}" '
                f'data-value="">{escape(item.note or "—")}</text>'
            )
            continue
        w = max(scale * min(item.value, top), 2 if item.value > 0 else 0)
        parts.append(f'<rect class="track" x="{plot_x}" y="{bar_y}" width="{plot_w}" height="{BAR_H}" rx="3"/>')
        parts.append(
            f'<rect class="bar" x="{plot_x}" y="{bar_y}" width="{w:.1f}" height="{BAR_H}" rx="3" '
            f'data-label="{escape(item.label)}" data-value="{_num(item.value)}"><title>{escape(item.label)}: '
            f"{escape(item.shown or _num(item.value))}</title></rect>"
        )
        parts.append(_text(plot_x + plot_w + 6, bar_y + 13, item.shown or _num(item.value), "value"))
    if goal is not None:
        x = plot_x + scale * min(goal, top)
        parts.append(
            f'<line class="goal" x1="{x:.1f}" y1="{head - 2}" x2="{x:.1f}" y2="{height}" data-goal="{_num(goal)}"/>'
        )
        if goal_label:
            parts.append(_text(x, 13, goal_label, "goal-label", "end" if x > WIDTH - 80 else "middle"))
    elif band is not None and goal_label:
        parts.append(_text(plot_x + scale * (band[0] + band[1]) / 2, 13, goal_label, "goal-label", "middle"))
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(groups: Sequence[Series], ticks: Sequence[str], *, title: str) -> Markup:
    """Counts over time as columns side by side per stretch (a day or a week): one column per series, coloured by
    its key; ``ticks`` name the stretches, a few of them written under the axis."""
    count = max(1, len(ticks))
    left, right, top_pad, bottom = 26, 4, 8, 22
    height = 200
    plot_w, plot_h = WIDTH - left - right, height - top_pad - bottom
    peak = max([1, *(v for line in groups for v in line.values)])
    step = _nice_step(peak)
    top = step * math.ceil(peak / step)
    slot = plot_w / count
    width = max(1.0, slot * 0.8 / max(1, len(groups)))

    def y_of(v: float) -> float:
        return top_pad + plot_h * (1 - v / top)

    parts = [
        f'<svg class="chart columns" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
        f'data-chart="columns" data-points="{len(ticks)}">',
        f"<title>{escape(title)}</title>",
    ]
    for v in range(0, int(top) + 1, int(step)):
        y = y_of(v)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" y2="{y:.1f}"/>')
        parts.append(_text(left - 5, y + 4, str(v), "axis", "end"))
    every = max(1, math.ceil(count / 6))
    for i, tick in enumerate(ticks):
        if i % every == 0:
            parts.append(_text(left + slot * (i + 0.5), height - 5, tick, "axis", "middle"))
    for g, line in enumerate(groups):
        parts.append(f'<g class="series {escape(line.key)}" data-series="{escape(line.key)}">')
        for i, v in enumerate(line.values):
            x = left + slot * i + slot * 0.1 + g * width
            y = y_of(v)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{top_pad + plot_h - y:.1f}" '
                f'data-label="{escape(ticks[i])}" data-value="{v}"><title>{escape(ticks[i])} {escape(line.label)}: '
                f"{v}</title></rect>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice_step(peak: float) -> float:
    """A grid step of 1, 2 or 5 times a power of ten giving at most about five lines."""
    raw = peak / 4
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 5, 10):
        if power * factor >= raw:
            return max(1, power * factor)
    return max(1, power * 10)
