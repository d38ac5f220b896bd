"""Charts as inline SVG, drawn on the server: no chart library, no script, nothing fetched.

Each chart is a `viewBox`-scaled SVG (it fills its container at any width), coloured by CSS
classes from the console's stylesheet, with a `<title>` per bar or point (the browser shows it
on hover) and an accessible name; every chart on a page also has its numbers as a table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 720
HEIGHT = 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 12, 28


@dataclass(frozen=True, slots=True)
class Series:
    """One named row of values (None: no value at that point), drawn with CSS class `css`."""

    name: str
    values: Sequence[float | None]
    css: str


def _nice_top(peak: float) -> float:
    """The smallest axis maximum of four equal steps, each 1, 2, 2.5 or 5 times a power of
    ten, that reaches `peak` (so the grid reads 0, 5, 10, 15, 20 rather than 0, 3.4, …)."""
    if peak <= 0:
        return 1.0
    power = 10.0 ** (math.floor(math.log10(peak / 4)) - 1)
    while True:
        for m in (1, 2, 2.5, 5):
            if 4 * m * power >= peak:
                return 4 * m * power
        power *= 10


def compact(value: float) -> str:
    """An axis number in few characters: 950, 12.5k, 3M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def _frame(label: str, top: float, fmt: Callable[[float], str], labels: Sequence[str]) -> str:
    plot_h = HEIGHT - _TOP - _BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet">'
    ]
    for i in range(5):
        value = top * i / 4
        y = _TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(fmt(value))}</text>"
        )
    slot = (WIDTH - _LEFT - _RIGHT) / max(1, len(labels))
    # At most ~8 x labels, so they never overlap on a phone.
    every = max(1, -(-len(labels) // 8))
    for i, text in enumerate(labels):
        if i % every == 0:
            x = _LEFT + slot * (i + 0.5)
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                f"{escape(text)}</text>"
            )
    return "".join(parts)


def _svg(parts: list[str]) -> Markup:
    # Safe: every text drawn passed through escape() above; the rest is numbers and the
    # callers' own CSS class names.
    return Markup("".join(parts))  # noqa: S704


def bars(
    label: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str] = compact,
) -> Markup:
    """Stacked bars, one per label, the series bottom to top."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    top = _nice_top(max(totals, default=0))
    plot_h = HEIGHT - _TOP - _BOTTOM
    slot = (WIDTH - _LEFT - _RIGHT) / max(1, len(labels))
    parts = [_frame(label, top, fmt, labels)]
    for i, text in enumerate(labels):
        base = 0.0
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            h = plot_h * value / top
            y = _TOP + plot_h - plot_h * base / top - h
            parts.append(
                f'<rect class="{s.css}" x="{_LEFT + slot * i + slot * 0.15:.1f}" y="{y:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{h:.1f}"><title>{escape(text)}: '
                f"{escape(s.name)} {escape(fmt(value))}</title></rect>"
            )
            base += value
    parts.append("</svg>")
    return _svg(parts)


def lines(
    label: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str] = compact,
) -> Markup:
    """One line per series; a point without a value breaks its line."""
    peak = max((v for s in series for v in s.values if v is not None), default=0.0)
    top = _nice_top(peak)
    plot_h = HEIGHT - _TOP - _BOTTOM
    slot = (WIDTH - _LEFT - _RIGHT) / max(1, len(labels))
    parts = [_frame(label, top, fmt, labels)]
    for s in series:
        runs: list[list[str]] = [[]]
        for i, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            x = _LEFT + slot * (i + 0.5)
            y = _TOP + plot_h - plot_h * value / top
            runs[-1].append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle class="{s.css}" cx="{x:.1f}" cy="{y:.1f}" r="2.5"><title>'
                f"{escape(labels[i])}: {escape(s.name)} {escape(fmt(value))}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline class="{s.css}" points="{" ".join(run)}"/>')
    parts.append("</svg>")
    return _svg(parts)
