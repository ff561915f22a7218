"""Report figures with matplotlib (Agg, no display): TACs, MIPs, DVHs.

Each ``draw_*`` function draws into a rectangle of a given figure, so the PDF places them on A4 pages and
the HTML on figures of its own size. Conventions:

* DVHs: cumulative, linear dose axis from 0 Gy, at most :data:`MAX_CURVES_PER_PANEL` curves per panel
  (small multiples, regions of similar dose together), colours from a palette of that many distinguishable
  colours (Okabe & Ito 2008, colour-blind safe) with line styles as a second cue.
* MIPs: coronal, the patient's right on the viewer's left, superior up, the edges lettered R, L, S, I,
  each with a linear colour bar labelled with the quantity and its unit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from theradose.report.data import ReportData, TacPlot
from theradose.report.numbers import fixed

#: Width of the HTML figures, inches.
FIGURE_WIDTH_IN = 7.5
#: At most this many curves share one DVH panel.
MAX_CURVES_PER_PANEL = 8
#: Okabe & Ito (2008) colour-blind-safe qualitative palette; its yellow, too faint on white paper, is
#: replaced by grey (told apart from black by its line style).
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#888888",
)
#: Line styles cycled with the colours.
LINE_STYLES: tuple[str, ...] = ("-", "--", "-", "-.", "-", "--", ":", "-.")
#: Panels per TAC page (columns × rows).
TAC_COLUMNS = 3
#: Rectangle (left, bottom, width, height) in figure fractions.
Rect = tuple[float, float, float, float]


def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=100)


def _grid(rect: Rect, n: int, columns: int, *, hgap: float = 0.08, vgap: float = 0.1) -> list[Rect]:
    """``n`` panel rectangles in ``columns`` columns filling ``rect`` (gaps as fractions of a cell)."""
    left, bottom, width, height = rect
    rows = max(1, math.ceil(n / columns))
    cell_w, cell_h = width / columns, height / rows
    out = []
    for i in range(n):
        r, c = divmod(i, columns)
        out.append(
            (
                left + c * cell_w + hgap * cell_w,
                bottom + (rows - 1 - r) * cell_h + vgap * cell_h,
                cell_w * (1 - 1.5 * hgap),
                cell_h * (1 - 2.2 * vgap),
            )
        )
    return out


# ------------------------------------------------------------------------------------------------ TACs
def draw_tacs(fig: Any, tacs: Sequence[TacPlot], rect: Rect, *, columns: int = TAC_COLUMNS) -> None:
    """One panel per region: measured activity ± σ and the fitted curve, the model and Akaike weights."""
    for tac, box in zip(tacs, _grid(rect, len(tacs), columns, hgap=0.16, vgap=0.16), strict=True):
        ax = fig.add_axes(box)
        ax.errorbar(tac.time_h, tac.activity_mbq, yerr=tac.sigma_mbq, fmt="o", ms=2.5, color="k", lw=0.7)
        if tac.curve_h:
            ax.plot(tac.curve_h, tac.curve_mbq, color=PALETTE[1], lw=0.9)
        weights = ", ".join(f"{m} {w:.2f}" for m, w in tac.weights if w >= 0.005)
        failed = "goodness_of_fit_failed" in tac.flags
        title = f"{tac.name}: {tac.model}" + (" — goodness of fit FAILED" if failed else "")
        ax.set_title(
            title + (f"\n{weights}" if weights else ""), fontsize=6.5, color="#B00000" if failed else "k"
        )
        ax.set_xlim(left=0.0)
        ax.set_ylim(bottom=0.0)
        ax.tick_params(labelsize=5.5)
        ax.set_xlabel("time after administration (h)", fontsize=5.5)
        ax.set_ylabel("activity (MBq)", fontsize=5.5)
        ax.ticklabel_format(style="plain", useOffset=False)


# ------------------------------------------------------------------------------------------------ MIPs
def oriented_mip(image: Any, *, column_to_left: bool, slice_to_superior: bool) -> Any:
    """The MIP flipped so that row 0 is inferior (drawn with ``origin="lower"``: superior up) and column 0
    is the patient's right (shown on the viewer's left)."""
    out = np.asarray(image, dtype=np.float64)
    if not column_to_left:
        out = out[:, ::-1]
    if not slice_to_superior:
        out = out[::-1, :]
    return out


def draw_mips(fig: Any, data: ReportData, rect: Rect) -> None:
    """Coronal MIPs of the reference SPECT (MBq/mL) and of the dose map (Gy), each with a linear colour
    bar from 0 labelled with its quantity and unit and the orientation letters R, L (patient's right on
    the viewer's left), S, I."""
    from theradose.units import bq_to_mbq

    panels = (
        (
            np.asarray(bq_to_mbq(data.spect_mip)),
            "SPECT, reference time point",
            "activity concentration (MBq/mL)",
        ),
        (data.dose_mip, f"Absorbed dose ({data.dvh_source} engine)", "absorbed dose (Gy)"),
    )
    left, bottom, width, height = rect
    for i, (image, title, label) in enumerate(panels):
        shown = oriented_mip(
            image, column_to_left=data.column_to_left, slice_to_superior=data.slice_to_superior
        )
        x0 = left + i * width / 2
        ax = fig.add_axes((x0 + 0.03 * width, bottom + 0.04 * height, 0.34 * width, 0.88 * height))
        peak = float(np.max(shown)) if np.max(shown) > 0 else 1.0
        top = display_top(shown)
        im = ax.imshow(
            shown,
            cmap="inferno",
            origin="lower",
            aspect=data.aspect,
            interpolation="nearest",
            vmin=0.0,
            vmax=top,
        )
        ax.set_title(f"{title}\ncoronal maximum-intensity projection", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        for x, y, letter, ha, va in (
            (0.02, 0.5, "R", "left", "center"),
            (0.98, 0.5, "L", "right", "center"),
            (0.5, 0.98, "S", "center", "top"),
            (0.5, 0.02, "I", "center", "bottom"),
        ):
            ax.text(
                x, y, letter, transform=ax.transAxes, ha=ha, va=va, color="white", fontsize=8, weight="bold"
            )
        cax = fig.add_axes((x0 + 0.39 * width, bottom + 0.04 * height, 0.015 * width, 0.88 * height))
        bar = fig.colorbar(im, cax=cax, extend="max" if top < peak else "neither")
        shown_max = fixed(peak) if top < peak else ""
        bar.set_label(
            f"{label}, linear"
            + (f"; maximum {shown_max}, above the bar in its top colour" if shown_max else ""),
            fontsize=6.5,
        )
        bar.ax.tick_params(labelsize=6)
        bar.formatter.set_useOffset(False)
        bar.formatter.set_scientific(False)
        bar.update_ticks()


def display_top(image: Any) -> float:
    """Top of a MIP's linear colour scale: the :data:`DISPLAY_PERCENTILE` percentile of the pixels above
    1 % of the maximum (the body), so that organs stay visible next to a hot tumour; the maximum when
    that is larger than the image holds."""
    values = np.asarray(image, dtype=np.float64)
    peak = float(values.max()) if values.size else 0.0
    if peak <= 0:
        return 1.0
    body = values[values > 0.01 * peak]
    return float(min(peak, np.percentile(body, DISPLAY_PERCENTILE))) or peak


#: Percentile of the body's pixels at which the MIPs' colour scales saturate.
DISPLAY_PERCENTILE = 99.5
#: A DVH panel holds regions whose maximum doses lie within this factor of each other.
DVH_PANEL_DOSE_RANGE = 5.0


# ------------------------------------------------------------------------------------------------ DVHs
def dvh_panels(data: ReportData) -> list[tuple[str, list[str]]]:
    """Regions grouped into DVH panels of at most :data:`MAX_CURVES_PER_PANEL` curves: organs, then
    tumours, each sorted by the region's maximum dose and cut where a panel would span more than
    :data:`DVH_PANEL_DOSE_RANGE` in maximum dose, so each panel's linear dose axis suits its curves; the
    panels of one kind are then balanced in size. Returns (panel title, region names)."""
    kinds = {r.name: r.kind.value for r in data.doses.regions}
    panels: list[tuple[str, list[str]]] = []

    def peak(name: str) -> float:
        return max(data.dvhs[name][0]) if data.dvhs[name][0] else 0.0

    for kind, title in (("organ", "Organs"), ("tumour", "Tumours")):
        names = sorted((n for n in data.dvhs if kinds.get(n) == kind), key=peak)
        groups: list[list[str]] = []
        for name in names:
            if groups and peak(name) <= DVH_PANEL_DOSE_RANGE * max(peak(groups[-1][0]), 1e-12):
                groups[-1].append(name)
            else:
                groups.append([name])
        chunks: list[list[str]] = []
        for group in groups:
            n = math.ceil(len(group) / MAX_CURVES_PER_PANEL)
            size = math.ceil(len(group) / n)
            chunks += [group[i : i + size] for i in range(0, len(group), size)]
        for j, chunk in enumerate(chunks):
            suffix = f" ({j + 1}/{len(chunks)})" if len(chunks) > 1 else ""
            panels.append((f"{title}{suffix}", chunk))
    return panels


def draw_dvhs(
    fig: Any, data: ReportData, panels: Sequence[tuple[str, list[str]]], rect: Rect, *, columns: int = 2
) -> None:
    """Cumulative DVH panels (``panels`` from :func:`dvh_panels`): linear dose axis from 0 Gy, volume in
    %, at most eight distinguishable curves per panel with a legend."""
    for (title, names), box in zip(panels, _grid(rect, len(panels), columns, vgap=0.14), strict=True):
        ax = fig.add_axes(box)
        top = 0.0
        for i, name in enumerate(names):
            dose, fraction = data.dvhs[name]
            if dose and fraction and fraction[-1] > 0:
                # the last point is the maximum dose, held by its voxels; above it no volume remains
                dose, fraction = (*dose, dose[-1]), (*fraction, 0.0)
            ax.plot(
                dose,
                100.0 * np.asarray(fraction),
                color=PALETTE[i % len(PALETTE)],
                linestyle=LINE_STYLES[i % len(LINE_STYLES)],
                lw=1.1,
                label=name,
            )
            top = max(top, max(dose) if dose else 0.0)
        ax.set_xlim(0.0, top * 1.02 if top > 0 else 1.0)
        ax.set_ylim(0.0, 102.0)
        ax.set_title(f"{title}: cumulative DVH, {data.dvh_source} engine", fontsize=7)
        ax.set_xlabel("absorbed dose (Gy)", fontsize=6.5)
        ax.set_ylabel("volume receiving at least this dose (%)", fontsize=6)
        ax.tick_params(labelsize=6)
        ax.grid(True, lw=0.3, alpha=0.5)
        ax.legend(fontsize=5.5, loc="best", frameon=True, framealpha=0.9)


# ---------------------------------------------------------------------------------------- HTML figures
def report_figures(data: ReportData) -> dict[str, Any]:
    """The report's figures for the HTML (screen-sized): title → matplotlib Figure."""
    figures: dict[str, Any] = {}
    if data.tacs:
        rows = math.ceil(len(data.tacs) / TAC_COLUMNS)
        fig = _figure(FIGURE_WIDTH_IN, 2.2 * rows)
        draw_tacs(fig, data.tacs, (0.02, 0.0, 0.96, 1.0))
        figures["Time-activity curves"] = fig
    fig = _figure(FIGURE_WIDTH_IN, 5.0)
    draw_mips(fig, data, (0.0, 0.0, 1.0, 1.0))
    figures["Maximum-intensity projections"] = fig
    panels = dvh_panels(data)
    if panels:
        rows = math.ceil(len(panels) / 2)
        fig = _figure(FIGURE_WIDTH_IN, 3.0 * rows)
        draw_dvhs(fig, data, panels, (0.02, 0.0, 0.96, 1.0))
        figures["Dose-volume histograms"] = fig
    if data.plan is not None and data.next_cycle is not None:
        from theradose.planning.plot import cumulative_bed_figure

        figures[PLAN_FIGURE_TITLE] = cumulative_bed_figure(data.plan, data.next_cycle)
    return figures


#: Title of the cumulative BED figure of the next-cycle plan.
PLAN_FIGURE_TITLE = "Cumulative BED per organ across cycles"

__all__ = [
    "LINE_STYLES",
    "MAX_CURVES_PER_PANEL",
    "PALETTE",
    "PLAN_FIGURE_TITLE",
    "draw_dvhs",
    "draw_mips",
    "draw_tacs",
    "dvh_panels",
    "oriented_mip",
    "report_figures",
]
