"""``theradose kinetics``: fit and integrate time–activity curves; single-time-point estimates."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from theradose.cli._output import print_json, print_mapping, print_table

if TYPE_CHECKING:
    from theradose.kinetics import FitResult

# Spelled out here (not imported) so that ``--help`` does not import the kinetics core.
ModelChoice = Literal["auto", "mono", "bi", "tri", "trapezoid"]
StpMethod = Literal["hanscheid", "madsen"]

app = typer.Typer(help="Time-activity curves: fit, integrate, single time point.", no_args_is_help=True)


def fit_summary(result: FitResult) -> dict[str, Any]:
    """The stable JSON shape of ``theradose kinetics fit``."""
    return {
        "model": result.model,
        "parameters": dict(result.parameters),
        "tia_mbq_h": result.tia_mbq_h,
        "tia_sigma_mbq_h": result.tia_sigma_mbq_h,
        "effective_half_life_h": result.effective_half_life_h,
        "candidates": [{"model": c.model, "aicc": c.aicc, "weight": c.weight} for c in result.candidates],
    }


@app.command()
def fit(
    tac_csv: Annotated[
        Path, typer.Argument(help="CSV with columns time_h,activity_mbq[,sigma_mbq].", show_default=False)
    ],
    model: Annotated[
        ModelChoice,
        typer.Option(
            "--model",
            help="Model; auto selects by AICc among mono, bi and tri. trapezoid: physical-decay tail with "
            "--nuclide, else a tail through the last two points.",
        ),
    ] = "auto",
    nuclide: Annotated[
        str | None,
        typer.Option(
            "--nuclide", help="Nuclide (e.g. Lu-177): physical bound and trapezoid tail.", show_default=False
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Fit a time-activity curve and integrate it from 0 to infinity (TIA in MBq·h)."""
    from theradose.kinetics import fit_tac, read_tac_csv

    tac = read_tac_csv(tac_csv)
    decay_constant_per_h = None
    if nuclide is not None:
        from theradose.nuclides import get_nuclide

        decay_constant_per_h = get_nuclide(nuclide).decay_constant_per_h
    result = fit_tac(
        tac.time_h,
        tac.activity_mbq,
        tac.sigma_mbq,
        model=model,
        decay_constant_per_h=decay_constant_per_h,
    )
    summary = fit_summary(result)
    if json:
        print_json(summary)
        return
    print_mapping(
        f"kinetics fit: {tac_csv.name}",
        {
            "model": summary["model"],
            "tia_mbq_h": summary["tia_mbq_h"],
            "tia_sigma_mbq_h": "undefined" if result.tia_sigma_mbq_h is None else result.tia_sigma_mbq_h,
            "effective_half_life_h": (
                "undefined" if result.effective_half_life_h is None else result.effective_half_life_h
            ),
            "nuclide": nuclide or "none",
        },
    )
    sigmas = result.parameter_sigmas or {}
    print_table(
        "parameters",
        ["parameter", "value", "sigma"],
        [(name, value, sigmas.get(name, "")) for name, value in result.parameters.items()],
    )
    print_table(
        "candidates",
        ["model", "aicc", "weight", "note"],
        [
            (c.model, "undefined" if c.aicc is None else c.aicc, c.weight, c.rejected_reason or "")
            for c in result.candidates
        ],
    )
    for note in result.notes:
        typer.echo(f"note: {note}")


@app.command()
def stp(
    method: Annotated[StpMethod, typer.Option("--method", help="Published STP method.")],
    time_h: Annotated[
        float, typer.Option("--time-h", help="Time of the measurement after administration (h).")
    ],
    activity_mbq: Annotated[float, typer.Option("--activity-mbq", help="Activity at that time (MBq).")],
    effective_half_life_h: Annotated[
        float | None,
        typer.Option(
            "--effective-half-life-h", help="Prior effective half-life (h); Madsen only.", show_default=False
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Time-integrated activity from a single measurement (Hänscheid 2018 or Madsen 2018)."""
    from theradose.kinetics import stp_tia_mbq_h

    tia = stp_tia_mbq_h(
        time_h,
        activity_mbq,
        method=method,
        effective_half_life_h=effective_half_life_h,
    )
    if json:
        print_json({"tia_mbq_h": tia})
        return
    rows: dict[str, Any] = {"method": method, "time_h": time_h, "activity_mbq": activity_mbq}
    if effective_half_life_h is not None:
        rows["effective_half_life_h"] = effective_half_life_h
    rows["tia_mbq_h"] = tia
    print_mapping("single-time-point TIA", rows)
