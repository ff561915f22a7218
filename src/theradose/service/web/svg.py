"""Small inline SVG charts (no JavaScript, no external files): line charts with limit lines.

Each chart has ``role="img"`` with a ``<title>`` and ``<desc>`` for screen readers; the pages also show
the plotted numbers in a table next to the chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

#: Colour-blind-safe palette (Okabe & Ito, "Color Universal Design", 2008).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


@dataclass(frozen=True)
class Series:
    """One line: points (x, y); ``bad`` marks points drawn as failures (red squares)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    bad: Sequence[bool] = ()
    markers: bool = True


@dataclass(frozen=True)
class HLine:
    """A horizontal reference line (limit, tolerance)."""

    y: float
    label: str


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    out = []
    v = start
    while v <= hi + 1e-9 * step:
        out.append(round(v, 10))
        v += step
    return out


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    hlines: Sequence[HLine] = (),
    x_tick_labels: dict[float, str] | None = None,
    width: int = 640,
    height: int = 320,
    include_zero: bool = False,
) -> str:
    """An SVG line chart as markup (safe to insert: every text is escaped)."""
    left, right, top, bottom = 64, 16, 28, 48
    xs = [float(v) for s in series for v in s.x]
    ys = [float(v) for s in series for v in s.y] + [h.y for h in hlines]
    if not xs:
        xs, ys = [0.0, 1.0], [0.0, 1.0]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    if include_zero:
        y_lo, y_hi = min(y_lo, 0.0), max(y_hi, 0.0)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    pad = (y_hi - y_lo) * 0.08 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return top + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'class="chart" aria-labelledby="t-{id(series)} d-{id(series)}">',
        f'<title id="t-{id(series)}">{escape(title)}</title>',
        f'<desc id="d-{id(series)}">{escape(y_label)} against {escape(x_label)}; '
        f"{len(series)} series; values in the table below.</desc>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#888"/>',
    ]
    for t in _ticks(y_lo, y_hi):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end" font-size="12">{_fmt(t)}</text>'
        )
    x_ticks = sorted(x_tick_labels) if x_tick_labels else _ticks(x_lo, x_hi)
    for t in x_ticks:
        label = x_tick_labels[t] if x_tick_labels else _fmt(t)
        parts.append(
            f'<text x="{px(t):.1f}" y="{top + plot_h + 18}" text-anchor="middle" font-size="12">'
            f"{escape(label)}</text>"
        )
    for h in hlines:
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(h.y):.1f}" y2="{py(h.y):.1f}" '
            f'stroke="#B00020" stroke-dasharray="6 4" stroke-width="1.5"/>'
            f'<text x="{left + plot_w - 4}" y="{py(h.y) - 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#B00020">{escape(h.label)}</text>'
        )
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        pts = " ".join(f"{px(float(x)):.1f},{py(float(y)):.1f}" for x, y in zip(s.x, s.y, strict=True))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>')
        if s.markers:
            bad = list(s.bad) or [False] * len(s.x)
            for x, y, b in zip(s.x, s.y, bad, strict=True):
                cx, cy = px(float(x)), py(float(y))
                if b:
                    parts.append(
                        f'<rect x="{cx - 6:.1f}" y="{cy - 6:.1f}" width="12" height="12" fill="#B00020">'
                        f"<title>fail: {_fmt(float(y))}</title></rect>"
                    )
                else:
                    parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{colour}"/>')
    # legend
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        lx = left + 8 + i * 150
        parts.append(
            f'<rect x="{lx}" y="8" width="12" height="12" fill="{colour}"/>'
            f'<text x="{lx + 16}" y="18" font-size="12">{escape(s.label[:20])}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 8}" text-anchor="middle" font-size="13">'
        f"{escape(x_label)}</text>"
        f'<text transform="translate(16 {top + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle" '
        f'font-size="13">{escape(y_label)}</text></svg>'
    )
    return "".join(parts)
