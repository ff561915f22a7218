"""Report figures with matplotlib (Agg backend, no display): TACs, MIPs, DVHs, dose table."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from theradose.dosimetry.results import ORGAN_SOURCE
from theradose.report.data import ReportData

#: Width of report figures, inches (A4 text width).
FIGURE_WIDTH_IN = 7.5


def _figure(height_in: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(FIGURE_WIDTH_IN, height_in), dpi=100)


def tac_figure(data: ReportData) -> Any:
    """One panel per region: measured activity ± σ and the fitted curve, model and Akaike weights."""
    n = max(len(data.tacs), 1)
    cols = 3
    rows = math.ceil(n / cols)
    fig = _figure(2.3 * rows)
    for i, tac in enumerate(data.tacs):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.errorbar(tac.time_h, tac.activity_mbq, yerr=tac.sigma_mbq, fmt="o", ms=3, color="k", lw=0.8)
        if tac.curve_h:
            ax.plot(tac.curve_h, tac.curve_mbq, color="tab:red", lw=1.0)
        weights = ", ".join(f"{m} {w:.2f}" for m, w in tac.weights if w > 0)
        ax.set_title(f"{tac.name}: {tac.model}" + (f"\n({weights})" if weights else ""), fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_xlabel("time (h)", fontsize=6)
        ax.set_ylabel("activity (MBq)", fontsize=6)
    fig.tight_layout()
    return fig


def mip_figure(data: ReportData) -> Any:
    """Coronal MIPs of the reference SPECT (MBq/mL) and of the dose map (Gy), superior up, square-root scale
    so that organs stay visible next to hot tumours."""
    from matplotlib.colors import PowerNorm

    from theradose.units import bq_to_mbq

    fig = _figure(4.5)
    panels = (
        (np.asarray(bq_to_mbq(data.spect_mip)), "SPECT (reference time point)", "MBq/mL"),
        (data.dose_mip, "Absorbed dose", "Gy"),
    )
    for i, (image, title, unit) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        top = float(np.max(image)) if np.max(image) > 0 else 1.0
        shown = ax.imshow(
            image,
            cmap="inferno",
            origin="lower",
            aspect=data.aspect,
            interpolation="nearest",
            norm=PowerNorm(gamma=0.5, vmin=0.0, vmax=top),
        )
        ax.set_title(f"{title} MIP", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
        bar.set_label(unit, fontsize=7)
        bar.ax.tick_params(labelsize=6)
    fig.tight_layout()
    return fig


def dvh_figure(data: ReportData) -> Any:
    """Cumulative DVHs of all regions (engine ``data.dvh_source``), each in its organ's registry colour
    where the region is an organ of the registry."""
    from theradose.organs import find_organ

    fig = _figure(3.5)
    ax = fig.add_subplot(1, 1, 1)
    for name, (edges, fraction) in data.dvhs.items():
        organ = find_organ(name)
        colour = None if organ is None or organ.is_tumour else organ.display_hex
        ax.plot(edges, 100.0 * np.asarray(fraction), lw=1.0, label=name, color=colour)
    ax.set_xlabel(f"absorbed dose, {data.dvh_source} engine (Gy)", fontsize=8)
    ax.set_ylabel("volume (%)", fontsize=8)
    ax.set_ylim(0, 102)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, ncol=3)
    fig.tight_layout()
    return fig


def dose_table_rows(data: ReportData) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the dose table (strings): the study's dose of each region, named by its source,
    its Gy/GBq and the BED computed from it, then every other estimate for comparison."""
    doses = data.doses
    reference = doses.reference_dose
    others = [s for s in (*doses.engines, ORGAN_SOURCE) if s != reference]
    header = ["Region", "Mass (g)", "TIA (MBq·h)", "Model"]
    header += [f"Dose ({_label(reference)}, Gy)", "Gy/GBq", "BED of this dose (Gy)"]
    header += [f"{_label(s)} (Gy)" for s in others]
    rows: list[list[str]] = []

    def pm(value: Any, sigma: Any) -> str:
        if value is None:
            return "—"
        return f"{value:.3g} ± {sigma:.2g}" if sigma is not None else f"{value:.3g}"

    for region in doses.regions:
        shown = doses.row(region)
        mass = "—" if region.mass_g is None else f"{region.mass_g:.4g}"
        row = [region.name, mass, pm(region.tia_mbq_h, region.tia_sigma_mbq_h), region.kinetics_model]
        row.append(pm(shown.dose_gy, shown.dose_sigma_gy))
        row.append("—" if shown.dose_gy_per_gbq is None else f"{shown.dose_gy_per_gbq:.3g}")
        row.append("—" if shown.bed_gy is None else f"{shown.bed_gy:.3g}")
        for source in others:
            estimate = region.dose(source)
            row.append("—" if estimate is None else pm(estimate.dose_gy, estimate.dose_sigma_gy))
        rows.append(row)
    return header, rows


def _label(source: str) -> str:
    return "organ MIRD" if source == ORGAN_SOURCE else f"{source} engine"


def plan_summary(data: ReportData) -> tuple[list[str], list[str], list[list[str]]]:
    """Next-cycle plan in words and as a table: (lines, table header, table rows); empty without a plan."""
    if data.plan is None or data.next_cycle is None:
        return [], [], []
    result = data.next_cycle
    lines = [
        f"Protocol: {data.plan.protocol.title}",
        f"Cycle {result.cycle_number}: "
        + (
            "STOP treatment"
            if result.stop
            else f"recommended activity {result.recommended_activity_mbq:.0f} MBq"
        )
        + (f" (limiting organ: {result.limiting_organ})" if result.limiting_organ else ""),
        *(f"Reason: {r}" for r in result.reasons),
        *(f"Note: {n}" for n in result.notes),
    ]
    header = [
        "Organ",
        "Regions used (per cycle)",
        "Cumulative dose (Gy)",
        "Dose limit (Gy)",
        "Cumulative BED (Gy)",
        "BED limit (Gy)",
        "Allowed (MBq)",
    ]

    def num(value: float | None) -> str:
        return "—" if value is None or not math.isfinite(value) else f"{value:.3g}"

    rows = [
        [
            o.organ,
            "; ".join(", ".join(r) or "(expected)" for r in o.regions_used),
            num(o.projected_dose_gy),
            num(o.limit_dose_gy),
            num(o.projected_bed_gy),
            num(o.limit_bed_gy),
            num(o.allowed_activity_mbq),
        ]
        for o in result.organs
    ]
    return lines, header, rows


def report_figures(data: ReportData) -> dict[str, Any]:
    """The report's figures, drawn once for both the HTML and the PDF: title → matplotlib Figure."""
    figures = {
        "Time-activity curves": tac_figure(data),
        "Maximum-intensity projections": mip_figure(data),
        "Dose-volume histograms": dvh_figure(data),
    }
    if data.plan is not None and data.next_cycle is not None:
        from theradose.planning.plot import cumulative_bed_figure

        figures[PLAN_FIGURE_TITLE] = cumulative_bed_figure(data.plan, data.next_cycle)
    return figures


#: Title of the cumulative BED figure of the next-cycle plan.
PLAN_FIGURE_TITLE = "Cumulative BED per organ across cycles"
