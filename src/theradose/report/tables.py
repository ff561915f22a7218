"""The report's tables as strings (shared by the PDF and the HTML): doses with their uncertainty, the
uncertainty budgets, the kinetics per region, the estimates of every method, the next-cycle plan."""

from __future__ import annotations

import math
from collections.abc import Mapping

from theradose.dosimetry.results import ORGAN_SOURCE
from theradose.dosimetry.uncertainty_budget import COMPONENTS
from theradose.report.data import COMPONENT_TITLES, ReportData
from theradose.report.numbers import MISSING, fixed, mass_g, p_value, percent, plus_minus

#: Short codes of flags in the tables (the warnings section spells them out).
FLAG_CODES: Mapping[str, str] = {
    "goodness_of_fit_failed": "GoF",
    "goodness_of_fit_untested": "GoF?",
    "parameter_cv_above_limit": "CV",
    "parameter_correlation_above_limit": "r",
    "too_few_points_for_selection": "N",
    "prior_used": "prior",
    "stp_time_outside_window": "window",
    "earlier_cycle_fit_unavailable": "no-C1",
    "below_resolution": "res",
    "partial_volume_not_corrected": "noPVC",
}
#: Legend of :data:`FLAG_CODES`.
FLAG_LEGEND = (
    "Flags: GoF goodness of fit failed (chi2 test, p < 0.05); GoF? not tested; CV parameter CV > 50 %; "
    "r parameter correlation |r| > 0.8; N too few points to rank models; prior population prior used; "
    "window single time point outside 0.75-2.5 half-lives; no-C1 no earlier-cycle fit (Hänscheid used); "
    "res below resolution; noPVC no partial-volume correction."
)
#: Column titles of the budget table, in :data:`COMPONENTS` order.
BUDGET_SHORT: Mapping[str, str] = {
    "calibration": "cal.",
    "recovery": "recov.",
    "volume": "vol.",
    "density": "dens.",
    "registration": "reg.",
    "fit_tia": "fit",
    "fit_half_life": "T½",
    "s_value": "dose f.",
    "decay_data": "decay",
}
#: Shown in the budget table for a component that was not assessed.
NOT_ASSESSED = "n.a."


def _codes(flags: tuple[str, ...]) -> str:
    return " ".join(dict.fromkeys(FLAG_CODES.get(f, f) for f in flags)) or ""


def _label(source: str) -> str:
    return "organ MIRD" if source == ORGAN_SOURCE else f"{source} engine"


def dose_table_rows(data: ReportData) -> tuple[list[str], list[list[str]]]:
    """The study's dose of each region (named by its source) ± its standard uncertainty, the relative
    uncertainty, Gy/GBq, BED ± σ, the dominant uncertainty components and the flags."""
    doses = data.doses
    header = [
        "Region",
        "Mass (g)",
        "TIA (MBq·h)",
        f"Dose ({_label(doses.reference_dose)}) (Gy)",
        "u (%)",
        "Gy/GBq",
        "BED (Gy)",
        "Dominant uncertainty",
        "Flags",
    ]
    rows: list[list[str]] = []
    for region in doses.regions:
        shown = doses.row(region)
        budget = region.uncertainty
        rows.append(
            [
                region.name,
                mass_g(region.mass_g),
                plus_minus(region.tia_mbq_h, region.tia_sigma_mbq_h),
                plus_minus(shown.dose_gy, shown.dose_sigma_gy),
                MISSING if budget is None else fixed(100.0 * budget.dose_relative_sigma, 1),
                fixed(shown.dose_gy_per_gbq),
                plus_minus(shown.bed_gy, shown.bed_sigma_gy),
                ", ".join(BUDGET_SHORT.get(d, d) for d in shown.dominant) or MISSING,
                _codes(shown.flags),
            ]
        )
    return header, rows


def estimates_table_rows(data: ReportData) -> tuple[list[str], list[list[str]]]:
    """Every dose estimate of each region (engines and organ-level MIRD), ± σ, for comparison."""
    doses = data.doses
    sources = [*doses.engines, ORGAN_SOURCE]
    sources = [s for s in sources if any(r.dose(s) is not None for r in doses.regions)]
    header = ["Region", *(f"{_label(s)} (Gy)" + (" *" if s == doses.reference_dose else "") for s in sources)]
    rows = []
    for region in doses.regions:
        row = [region.name]
        for source in sources:
            estimate = region.dose(source)
            row.append(MISSING if estimate is None else plus_minus(estimate.dose_gy, estimate.dose_sigma_gy))
        rows.append(row)
    return header, rows


def budget_table_rows(data: ReportData) -> tuple[list[str], list[list[str]]]:
    """Per region: the dose's relative standard uncertainty and each component's contribution
    |∂ln D/∂ln x|·u(x) in percent (the BED-only half-life term for the BED); n.a. where not assessed."""
    header = ["Region", "u (%)", *(BUDGET_SHORT[c] for c in COMPONENTS), "u BED (%)"]
    rows = []
    for region in data.doses.regions:
        budget = region.uncertainty
        if budget is None:
            rows.append([region.name, MISSING, *(MISSING for _ in COMPONENTS), MISSING])
            continue
        cells = [region.name, fixed(100.0 * budget.dose_relative_sigma, 1)]
        for name in COMPONENTS:
            if name in budget.not_assessed:
                cells.append(NOT_ASSESSED)
                continue
            c = budget.component(name)
            value = c.bed_relative_contribution if name == "fit_half_life" else c.relative_contribution
            cells.append(MISSING if value is None else fixed(100.0 * value, 1))
        cells.append(
            MISSING if budget.bed_relative_sigma is None else fixed(100.0 * budget.bed_relative_sigma, 1)
        )
        rows.append(cells)
    return header, rows


def budget_legend() -> str:
    """What the budget table's columns mean."""
    names = "; ".join(f"{BUDGET_SHORT[c]} {COMPONENT_TITLES[c]}" for c in COMPONENTS)
    return (
        "Contributions to the relative standard uncertainty of the dose, |d ln D/d ln x|·u(x), in %: "
        f"{names} (T½: BED only). n.a.: not assessed (not counted). u: combined, with the fit's correlation."
    )


def kinetics_table_rows(data: ReportData) -> tuple[list[str], list[list[str]]]:
    """Per region: how its TIA was obtained (model or single-time-point method), the selection
    criterion, χ²/ν and p of the goodness-of-fit test, the effective half-life ± σ and the flags."""
    header = ["Region", "Method", "Model", "Criterion", "chi2/dof", "p", "T_eff (h)", "Flags"]
    rows = []
    for region in data.doses.regions:
        k = region.kinetics
        if k is None:
            rows.append(
                [region.name, MISSING, region.kinetics_model or MISSING, *(MISSING for _ in range(4)), ""]
            )
            continue
        reduced = fixed(k.chi_square / k.dof, 2) if k.chi_square is not None and k.dof else MISSING
        half_life = plus_minus(region.effective_half_life_h, k.effective_half_life_sigma_h)
        if k.method == "fit" and k.effective_half_life_sigma_h == 0 and region.effective_half_life_h:
            half_life = f"{fixed(region.effective_half_life_h, 1)} (physical)"  # fits the column
        rows.append(
            [
                region.name,
                "fit" if k.method == "fit" else "single time point",
                k.model,
                k.selection_criterion or MISSING,
                reduced,
                p_value(k.p_value),
                half_life,
                _codes(k.flags),
            ]
        )
    return header, rows


def plan_summary(data: ReportData) -> tuple[list[str], list[str], list[list[str]]]:
    """Next-cycle plan in words and as a table: (lines, table header, table rows); empty without a plan.

    The expected Gy/GBq of each organ is shown with its standard uncertainty, the one the plan's
    one-sided confidence uses (the dose record's σ: the region's uncertainty budget)."""
    if data.plan is None or data.next_cycle is None:
        return [], [], []
    result = data.next_cycle
    lines = [
        f"Protocol: {data.plan.protocol.title}",
        f"Cycle {result.cycle_number}: "
        + (
            "STOP treatment"
            if result.stop
            else f"recommended activity {fixed(result.recommended_activity_mbq, 0, 'MBq')}"
        )
        + (f" (limiting organ: {result.limiting_organ})" if result.limiting_organ else ""),
        f"Confidence {percent(result.confidence, 0)} (one-sided, z = {fixed(result.z, 3)}): each organ's "
        "Gy/GBq is taken as expected + z·σ, with σ from its dose's uncertainty budget.",
        *(f"Reason: {r}" for r in result.reasons),
        *(f"Note: {n}" for n in result.notes),
    ]
    header = [
        "Organ",
        "Regions used (per cycle)",
        "Expected Gy/GBq ± σ",
        "Cumulative dose (Gy)",
        "Dose limit (Gy)",
        "Cumulative BED (Gy)",
        "BED limit (Gy)",
        "Allowed (MBq)",
    ]

    def num(value: float | None) -> str:
        return MISSING if value is None or not math.isfinite(value) else fixed(value)

    rows = [
        [
            o.organ,
            "; ".join(", ".join(r) or "(expected)" for r in o.regions_used),
            plus_minus(o.expected.dose_gy_per_gbq, o.expected.sigma_gy_per_gbq),
            num(o.projected_dose_gy),
            num(o.limit_dose_gy),
            num(o.projected_bed_gy),
            num(o.limit_bed_gy),
            num(o.allowed_activity_mbq),
        ]
        for o in result.organs
    ]
    return lines, header, rows


__all__ = [
    "FLAG_CODES",
    "FLAG_LEGEND",
    "budget_legend",
    "budget_table_rows",
    "dose_table_rows",
    "estimates_table_rows",
    "kinetics_table_rows",
    "plan_summary",
]
