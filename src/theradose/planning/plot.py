"""Figure of cumulative BED per organ across cycles against its limit (embedded in the pipeline report)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from theradose.planning._bed import BedFunction, radiobiology_bed_gy
from theradose.planning.cycles import TreatmentPlan
from theradose.planning.nextcycle import NextCycleResult, organ_history_gy

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class OrganCurve:
    """Cumulative BED (or absorbed dose where the organ has no BED parameters) after each cycle."""

    organ: str
    quantity: str
    cumulative_gy: tuple[float, ...]
    limit_gy: float | None
    projected_gy: float | None


def organ_curves(
    plan: TreatmentPlan,
    result: NextCycleResult | None = None,
    *,
    bed_function: BedFunction | None = None,
) -> tuple[OrganCurve, ...]:
    """Cumulative BED per organ after each given cycle, its limit and (optionally) the projection.

    Organs without a BED limit in the protocol are shown as cumulative absorbed dose against their
    absorbed-dose limit.
    """
    bed_fn = bed_function if bed_function is not None else radiobiology_bed_gy
    projections = {o.organ: o for o in result.organs} if result is not None else {}
    curves = []
    for organ in plan.protocol.organs:
        history = organ_history_gy(plan, organ, bed_function=bed_fn)
        if history is None:
            continue
        doses, beds = history
        projection = projections.get(organ.name)
        if beds is not None and organ.bed_limit_gy is not None:
            limit = organ.bed_limit_for(plan.risk_factors)
            curves.append(
                OrganCurve(
                    organ=organ.name,
                    quantity="BED",
                    cumulative_gy=beds,
                    limit_gy=None if limit is None else limit.value,
                    projected_gy=None if projection is None else projection.projected_bed_gy,
                )
            )
        else:
            curves.append(
                OrganCurve(
                    organ=organ.name,
                    quantity="absorbed dose",
                    cumulative_gy=doses,
                    limit_gy=None if organ.dose_limit_gy is None else organ.dose_limit_gy.value,
                    projected_gy=None if projection is None else projection.projected_dose_gy,
                )
            )
    return tuple(curves)


def cumulative_bed_figure(
    plan: TreatmentPlan,
    result: NextCycleResult | None = None,
    *,
    bed_function: BedFunction | None = None,
) -> Figure:
    """Matplotlib figure: cumulative BED per organ (solid) across cycles, next-cycle projection (dashed),
    and each organ's limit (dotted, same colour). One panel per organ, values as a fraction would hide
    the Gy, so each panel has its own Gy axis.

    Parameters
    ----------
    plan : TreatmentPlan
    result : NextCycleResult, optional
        When given, the projected value after the recommended next cycle is drawn.
    bed_function : BedFunction, optional
        Default :func:`theradose.radiobiology.bed_gy`.

    Returns
    -------
    matplotlib.figure.Figure
        Created without pyplot (no global state); save it with ``fig.savefig(...)``.
    """
    from matplotlib.figure import Figure

    curves = organ_curves(plan, result, bed_function=bed_function)
    n = max(len(curves), 1)
    fig = Figure(figsize=(4.0 * min(n, 3), 3.2 * ((n + 2) // 3)), layout="constrained")
    axes = fig.subplots((n + 2) // 3, min(n, 3), squeeze=False).ravel()
    for ax in axes[len(curves) :]:
        ax.set_visible(False)
    for ax, curve in zip(axes, curves, strict=False):
        cycles = list(range(0, len(curve.cumulative_gy) + 1))
        values = [0.0, *curve.cumulative_gy]
        (line,) = ax.plot(cycles, values, marker="o", label=f"cumulative {curve.quantity}")
        if curve.projected_gy is not None:
            ax.plot(
                [cycles[-1], cycles[-1] + 1],
                [values[-1], curve.projected_gy],
                linestyle="--",
                marker="o",
                color=line.get_color(),
                label="projected next cycle",
            )
        if curve.limit_gy is not None:
            ax.axhline(curve.limit_gy, linestyle=":", color="black", label=f"limit {curve.limit_gy:g} Gy")
        ax.set_title(curve.organ.replace("_", " "))
        ax.set_xlabel("cycle")
        ax.set_ylabel(f"cumulative {curve.quantity} (Gy)")
        ax.set_xticks(list(range(0, len(curve.cumulative_gy) + 2)))
        ax.legend(fontsize="small")
    if not curves:
        axes[0].set_visible(True)
        axes[0].text(0.5, 0.5, "no organ dosimetry", ha="center", va="center")
        axes[0].set_axis_off()
    fig.suptitle(f"{plan.protocol.title}: cumulative BED per organ")
    return fig
