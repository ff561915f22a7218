"""``theradose kinetics``: fit and integrate time–activity curves; single-time-point estimates."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from theradose.cli._output import print_json, print_mapping, print_table

if TYPE_CHECKING:
    from theradose.kinetics import FitResult

# Spelled out here (not imported) so that ``--help`` does not import the kinetics core.
ModelChoice = Literal[
    "auto",
    "mono",
    "bi",
    "tri",
    "trapezoid",
    "trapezoid_mono",
    "physical",
    "bi_physical",
    "mono_physical",
    "bi_washout",
    "tri_physical",
]
StpMethod = Literal["hanscheid", "madsen"]

app = typer.Typer(help="Time-activity curves: fit, integrate, single time point.", no_args_is_help=True)


def fit_summary(result: FitResult) -> dict[str, Any]:
    """The JSON shape of ``theradose kinetics fit``: :meth:`FitResult.as_dict` (model, parameters and
    their σ and CV, TIA and σ, flags, notes — fallbacks included — and every candidate with its
    criterion, weight, goodness of fit and the reason it was not ranked)."""
    return result.as_dict()


@app.command()
def fit(
    tac_csv: Annotated[
        Path, typer.Argument(help="CSV with columns time_h,activity_mbq[,sigma_mbq].", show_default=False)
    ],
    model: Annotated[
        ModelChoice,
        typer.Option(
            "--model",
            help="Model; auto ranks the admissible forms by AICc (AIC where AICc is undefined): mono, bi, "
            "tri, and with --nuclide also the physical-decay forms. trapezoid: physical-decay tail with "
            "--nuclide, else a tail through the last two points.",
        ),
    ] = "auto",
    nuclide: Annotated[
        str | None,
        typer.Option(
            "--nuclide", help="Nuclide (e.g. Lu-177): physical bound and trapezoid tail.", show_default=False
        ),
    ] = None,
    prior: Annotated[
        str | None,
        typer.Option(
            "--prior",
            help="Population half-life prior TRACER/REGION (e.g. psma/kidneys): MAP fit; needs sigma_mbq.",
            show_default=False,
        ),
    ] = None,
    prior_half_life_h: Annotated[
        float | None,
        typer.Option(
            "--prior-half-life-h",
            help="The patient's own effective half-life (h) from an earlier cycle, as a prior.",
            show_default=False,
        ),
    ] = None,
    prior_sigma_h: Annotated[
        float | None,
        typer.Option(
            "--prior-sigma-h", help="Standard uncertainty of --prior-half-life-h (h).", show_default=False
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Fit a time-activity curve and integrate it from 0 to infinity (TIA in MBq·h)."""
    from theradose.errors import InputError
    from theradose.kinetics import HalfLifePrior, fit_tac, get_prior, read_tac_csv

    tac = read_tac_csv(tac_csv)
    decay_constant_per_h = None
    if nuclide is not None:
        from theradose.nuclides import get_nuclide

        decay_constant_per_h = get_nuclide(nuclide).decay_constant_per_h
    half_life_prior: HalfLifePrior | None = None
    if prior is not None and prior_half_life_h is not None:
        raise InputError("--prior and --prior-half-life-h are exclusive: give one prior")
    if prior is not None:
        tracer, _, region = prior.partition("/")
        if not region:
            raise InputError(f"--prior must be TRACER/REGION (e.g. psma/kidneys); got {prior!r}")
        half_life_prior = get_prior(tracer, region)
    elif prior_half_life_h is not None:
        if prior_sigma_h is None:
            raise InputError("--prior-half-life-h needs --prior-sigma-h (its standard uncertainty in h)")
        half_life_prior = HalfLifePrior.from_estimate(
            prior_half_life_h, prior_sigma_h, source="earlier-cycle half-life given on the command line"
        )
    elif prior_sigma_h is not None:
        raise InputError("--prior-sigma-h needs --prior-half-life-h")
    result = fit_tac(
        tac.time_h,
        tac.activity_mbq,
        tac.sigma_mbq,
        model=model,
        decay_constant_per_h=decay_constant_per_h,
        prior=half_life_prior,
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
            "selection_criterion": result.selection_criterion or "none (explicit model or fallback)",
            "chi_square": "untested" if result.chi_square is None else result.chi_square,
            "p_value": "untested" if result.p_value is None else result.p_value,
            "flags": ", ".join(result.flags) or "none",
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
        ["model", "criterion", "weight", "p_value", "reason not ranked"],
        [
            (
                c.model,
                "" if c.criterion is None else c.criterion,
                c.weight,
                "" if c.p_value is None else c.p_value,
                c.rejected_reason or "",
            )
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
            "--effective-half-life-h",
            help="Effective half-life (h): the patient's own from an earlier cycle, or a population value; "
            "Madsen only.",
            show_default=False,
        ),
    ] = None,
    effective_half_life_sigma_h: Annotated[
        float | None,
        typer.Option(
            "--effective-half-life-sigma-h",
            help="Standard uncertainty of --effective-half-life-h (h); propagated to the TIA.",
            show_default=False,
        ),
    ] = None,
    activity_sigma_mbq: Annotated[
        float | None,
        typer.Option(
            "--activity-sigma-mbq", help="Standard uncertainty of the activity (MBq).", show_default=False
        ),
    ] = None,
    expected_half_life_h: Annotated[
        float | None,
        typer.Option(
            "--expected-half-life-h",
            help="Hänscheid only: expected effective half-life (h) for the applicability-window check.",
            show_default=False,
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Time-integrated activity from a single measurement (Hänscheid 2018 or Madsen 2018), with its
    uncertainty and a warning when the scan is outside 0.75-2.5 effective half-lives."""
    from theradose.errors import InputError
    from theradose.kinetics import hanscheid_estimate, stp_from_half_life, stp_tia_mbq_h

    # Validates the method/half-life combination with the established messages.
    stp_tia_mbq_h(time_h, activity_mbq, method=method, effective_half_life_h=effective_half_life_h)
    if method == "hanscheid":
        if effective_half_life_sigma_h is not None:
            raise InputError("--effective-half-life-sigma-h is not used by the Hänscheid method: omit it")
        result = hanscheid_estimate(
            time_h,
            activity_mbq,
            activity_sigma_mbq=activity_sigma_mbq,
            expected_half_life_h=expected_half_life_h,
        )
    else:
        if expected_half_life_h is not None:
            raise InputError(
                "--expected-half-life-h is for the Hänscheid method: give --effective-half-life-h"
            )
        assert effective_half_life_h is not None
        result = stp_from_half_life(
            time_h,
            activity_mbq,
            effective_half_life_h=effective_half_life_h,
            effective_half_life_sigma_h=effective_half_life_sigma_h,
            activity_sigma_mbq=activity_sigma_mbq,
            half_life_source="given on the command line",
        )
    if json:
        print_json(result.as_dict())
        return
    rows: dict[str, Any] = {"method": method, "time_h": time_h, "activity_mbq": activity_mbq}
    if result.effective_half_life_h is not None:
        rows["effective_half_life_h"] = result.effective_half_life_h
    rows["tia_mbq_h"] = result.tia_mbq_h
    rows["tia_sigma_mbq_h"] = "not given" if result.tia_sigma_mbq_h is None else result.tia_sigma_mbq_h
    if result.time_in_half_lives is not None:
        rows["time_in_half_lives"] = result.time_in_half_lives
    print_mapping("single-time-point TIA", rows)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}")
