"""``theradose radiobiology``: BED and EQD2 for radiopharmaceutical therapy."""

from __future__ import annotations

from typing import Annotated

import typer

from theradose.errors import InputError

app = typer.Typer(help="BED and EQD2 for radiopharmaceutical therapy.", no_args_is_help=True)


@app.command("bed")
def bed(
    dose_gy: Annotated[float, typer.Option("--dose-gy", help="Absorbed dose, Gy.")],
    effective_half_life_h: Annotated[
        float, typer.Option("--effective-half-life-h", help="Effective half-life of the dose rate, h.")
    ],
    alpha_beta_gy: Annotated[
        float | None, typer.Option("--alpha-beta-gy", help="α/β of the tissue, Gy (default from --tissue).")
    ] = None,
    repair_half_time_h: Annotated[
        float | None,
        typer.Option("--repair-half-time-h", help="Repair half-time, h (default from --tissue)."),
    ] = None,
    uptake_half_life_h: Annotated[
        float | None,
        typer.Option("--uptake-half-life-h", help="Uptake half-life for a bi-exponential rate, h."),
    ] = None,
    dose_sigma_gy: Annotated[
        float | None, typer.Option("--dose-sigma-gy", help="Standard uncertainty of the dose, Gy.")
    ] = None,
    tissue: Annotated[
        str | None, typer.Option("--tissue", help="Tissue whose default α/β and repair half-time to use.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """BED and EQD2 of a radionuclide absorbed dose (Dale 1985; Baechler 2008 with uptake)."""
    from theradose.cli._output import print_json, print_mapping
    from theradose.radiobiology import bed_gy, bed_sigma_gy, eqd2_gy, tissue_parameters

    if tissue is not None:
        params = tissue_parameters(tissue, alpha_beta_gy=alpha_beta_gy, repair_half_time_h=repair_half_time_h)
        alpha_beta_gy, repair_half_time_h = params.alpha_beta_gy, params.repair_half_time_h
    if alpha_beta_gy is None:
        raise InputError("--alpha-beta-gy is required (or give --tissue NAME for its default)")
    if repair_half_time_h is None:
        raise InputError("--repair-half-time-h is required (or give --tissue NAME for its default)")
    bed_value = bed_gy(
        dose_gy,
        effective_half_life_h=effective_half_life_h,
        alpha_beta_gy=alpha_beta_gy,
        repair_half_time_h=repair_half_time_h,
        uptake_half_life_h=uptake_half_life_h,
    )
    data: dict[str, float | None] = {
        "dose_gy": dose_gy,
        "bed_gy": bed_value,
        "eqd2_gy": eqd2_gy(bed_value, alpha_beta_gy=alpha_beta_gy),
        "alpha_beta_gy": alpha_beta_gy,
        "repair_half_time_h": repair_half_time_h,
        "effective_half_life_h": effective_half_life_h,
        "uptake_half_life_h": uptake_half_life_h,
    }
    if dose_sigma_gy is not None:
        bed_sigma = bed_sigma_gy(
            dose_gy,
            dose_sigma_gy,
            effective_half_life_h=effective_half_life_h,
            alpha_beta_gy=alpha_beta_gy,
            repair_half_time_h=repair_half_time_h,
            uptake_half_life_h=uptake_half_life_h,
        )
        data["bed_sigma_gy"] = bed_sigma
        data["eqd2_sigma_gy"] = eqd2_gy(bed_sigma, alpha_beta_gy=alpha_beta_gy)
    if as_json:
        print_json(data)
    else:
        print_mapping("Biologically effective dose", data)


@app.command("tissues")
def tissues(as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False) -> None:
    """Default tissue parameters (α/β, repair half-time) and their sources."""
    from theradose.cli._output import print_json, print_table
    from theradose.radiobiology import tissue_names, tissue_parameters

    rows = [
        {"tissue": name, **vars(tissue_parameters(name))}  # frozen dataclass → dict
        for name in tissue_names()
    ]
    if as_json:
        print_json({"tissues": rows})
    else:
        print_table(
            "Tissue parameters",
            ["tissue", "α/β (Gy)", "repair half-time (h)", "source"],
            [(r["tissue"], r["alpha_beta_gy"], r["repair_half_time_h"], r["source"]) for r in rows],
        )
