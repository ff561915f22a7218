"""``theradose nuclide``: decay data and decay correction."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from theradose.cli._output import print_json, print_mapping, print_table

app = typer.Typer(help="Nuclear decay data (ICRP-107): half-life, energies, decay.", no_args_is_help=True)


def nuclide_summary(name: str) -> dict[str, Any]:
    """The stable JSON shape of ``theradose nuclide show``."""
    from theradose.nuclides import air_kerma_rate_constant_ugy_m2_per_gbq_h, equilibrium_energies, get_nuclide

    nuclide = get_nuclide(name)
    chain = equilibrium_energies(nuclide)
    return {
        "name": nuclide.name,
        "half_life_h": nuclide.half_life_h,
        "beta_energy_mev_per_decay": nuclide.beta_energy_mev_per_decay,
        "electron_energy_mev_per_decay": nuclide.electron_energy_mev_per_decay,
        "photon_energy_mev_per_decay": nuclide.photon_energy_mev_per_decay,
        "alpha_energy_mev_per_decay": nuclide.alpha_energy_mev_per_decay,
        "photon_lines": [
            {"energy_kev": line.energy_kev, "yield": line.yield_per_decay} for line in nuclide.photon_lines
        ],
        "air_kerma_rate_constant_ugy_m2_per_gbq_h": air_kerma_rate_constant_ugy_m2_per_gbq_h(nuclide),
        "progeny": [{"name": d, "branching_fraction": b} for d, b in nuclide.progeny],
        "chain_equilibrium": {
            "members": [
                {"name": m.name, "activity_ratio": m.activity_ratio, "in_equilibrium": m.in_equilibrium}
                for m in chain.members
            ],
            "alpha_energy_mev_per_decay": chain.alpha_energy_mev_per_decay,
            "electron_energy_mev_per_decay": chain.electron_energy_mev_per_decay,
            "photon_energy_mev_per_decay": chain.photon_energy_mev_per_decay,
        },
    }


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Nuclide, e.g. Lu-177, 177Lu, Ac225.")],
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    min_yield: Annotated[
        float, typer.Option(help="Photon lines shown in the table above this yield.")
    ] = 1e-3,
) -> None:
    """Half-life, mean energies per decay, photon lines and air-kerma-rate constant."""
    summary = nuclide_summary(name)
    if json:
        print_json(summary)
        return
    scalars = {k: v for k, v in summary.items() if not isinstance(v, (list, dict))}
    print_mapping(summary["name"], scalars)
    lines = [(ln["energy_kev"], ln["yield"]) for ln in summary["photon_lines"] if ln["yield"] >= min_yield]
    print_table("photon lines", ["energy_kev", "yield"], lines)
    members = summary["chain_equilibrium"]["members"]
    if len(members) > 1:
        print_table(
            "decay chain at equilibrium (activity per parent activity)",
            ["member", "activity_ratio", "in_equilibrium"],
            [(m["name"], m["activity_ratio"], m["in_equilibrium"]) for m in members],
        )


@app.command()
def decay(
    name: Annotated[str, typer.Argument(help="Nuclide, e.g. Lu-177.")],
    activity_mbq: Annotated[float, typer.Option("--activity-mbq", help="Activity at the start (MBq).")],
    elapsed_h: Annotated[float, typer.Option("--elapsed-h", help="Elapsed time (h); negative goes back.")],
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Activity after ELAPSED_H hours of physical decay."""
    from theradose.errors import InputError
    from theradose.nuclides import decay_activity_mbq, get_nuclide

    if not activity_mbq >= 0.0:
        raise InputError(f"--activity-mbq must be >= 0; got {activity_mbq}: give the activity in MBq")
    nuclide = get_nuclide(name)
    result = {
        "name": nuclide.name,
        "activity_mbq": float(decay_activity_mbq(activity_mbq, nuclide, elapsed_h)),
        "initial_activity_mbq": activity_mbq,
        "elapsed_h": elapsed_h,
        "half_life_h": nuclide.half_life_h,
    }
    if json:
        print_json(result)
    else:
        print_mapping(f"{nuclide.name} decay", result)
