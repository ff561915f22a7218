"""``theradose benchmark``: dosimetry methods on virtual patients against truth (harmonisation tables).

``--design trial`` (default) runs the virtual multicentre trial (:mod:`theradose.pipeline.trial`): N
patients imaged at several sites, each method, per-region errors and the spread between sites and
methods. ``--design demo`` runs the older benchmark on the demo phantom
(:func:`theradose.pipeline.demo.run_benchmark`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from theradose.cli._output import print_json, print_table

app = typer.Typer(help="Benchmark dosimetry methods on virtual patients against truth (harmonisation).")


@app.command()
def benchmark(
    out: Annotated[Path, typer.Option("--out", help="Folder for patients, results and tables.")],
    patients: Annotated[int, typer.Option("--patients", help="Number of virtual patients.")] = 6,
    design: Annotated[
        str,
        typer.Option("--design", help="'trial' (multicentre trial) or 'demo' (demo phantom, one camera)."),
    ] = "trial",
    sites: Annotated[str, typer.Option("--sites", help="Trial sites, comma-separated.")] = "A,B,C",
    methods: Annotated[
        str,
        typer.Option(
            "--methods", help="Trial methods, comma-separated (none, legacy, gtm, gtm_phantom, gtm_rc, rbv)."
        ),
    ] = "none,legacy,gtm,gtm_rc,rbv",
    scale: Annotated[
        str, typer.Option("--scale", help="'full' (the sites' voxels) or 'ci' (twice the voxel size, quick).")
    ] = "full",
    trial_dir: Annotated[
        Path | None,
        typer.Option("--trial-dir", help="Trial images (default OUT/trial); generated if absent."),
    ] = None,
    only_patients: Annotated[
        str | None,
        typer.Option(
            "--only-patients",
            help="Trial: run only these seeds of 1..N, comma-separated (share a trial between processes).",
        ),
    ] = None,
    organ_kinetics: Annotated[
        str,
        typer.Option(
            "--organ-kinetics",
            help="Trial: kinetics model of every region that is not a lesion (auto, trapezoid_mono, ...).",
        ),
    ] = "auto",
    grid: Annotated[int, typer.Option("--grid", help="Demo design: transaxial matrix 64 or 128.")] = 64,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Run the virtual multicentre trial (or the demo benchmark) and print the errors against truth."""
    from theradose.errors import InputError

    if design == "demo":
        _demo(out, patients=patients, grid=grid, json=json)
        return
    if design != "trial":
        raise InputError(f"--design must be 'trial' or 'demo'; got {design!r}")
    from theradose.pipeline.trial import run_trial_benchmark

    only: list[int] | None = None
    if only_patients is not None:
        try:
            only = [int(v) for v in only_patients.split(",") if v.strip()]
        except ValueError:
            raise InputError(
                f"--only-patients must be comma-separated seeds such as 1,3; got {only_patients!r}"
            ) from None
    say = None
    if not json:
        from rich.console import Console

        console = Console(stderr=True)

        def say(message: str) -> None:
            console.print(f"[dim]·[/dim] {message}")

    result = run_trial_benchmark(
        out,
        patients=patients,
        sites=[s.strip() for s in sites.split(",") if s.strip()],
        methods=[m.strip() for m in methods.split(",") if m.strip()],
        scale=scale,
        trial_dir=trial_dir,
        only_patients=only,
        progress=say,
        organ_kinetics=organ_kinetics,
    )
    if json:
        print_json(
            {
                "patients": patients,
                "sites": list(result.sites),
                "methods": list(result.methods),
                "regions": [_clean(e) for e in result.table],
                "files": [str(f) for f in result.files],
                "elapsed_s": round(result.elapsed_s, 1),
            }
        )
        return
    rows = []
    for entry in result.table:
        for m in result.methods:
            e = entry["methods"].get(m)
            if e is None:
                continue
            rows.append(
                (
                    entry["region"],
                    m,
                    *(_median_max(e["sites"].get(s)) for s in result.sites),
                    f"{e['median_abs_error_percent']:.1f} / {e['max_abs_error_percent']:.1f}",
                    _fmt(e["spread_between_sites_percent"]),
                    _fmt(entry["spread_between_methods_percent"]),
                    f"{e['flagged']}/{e['n']}",
                )
            )
    print_table(
        "|error| vs truth (%): median / max per site and over all sites; spreads: CV (%) for one patient",
        [
            "region",
            "method",
            *(f"site {s}" for s in result.sites),
            "all",
            "spread sites",
            "spread methods",
            "flagged",
        ],
        rows,
    )


def _median_max(entry: dict[str, float] | None) -> str:
    if entry is None:
        return "—"
    return f"{entry['median_abs_error_percent']:.1f} / {entry['max_abs_error_percent']:.1f}"


def _fmt(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.1f}"


def _clean(value: object) -> object:
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 3)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _demo(out: Path, *, patients: int, grid: int, json: bool) -> None:
    from theradose.pipeline.demo import run_benchmark

    result = run_benchmark(out, patients=patients, grid=grid, progress=not json)
    if json:
        print_json(
            {
                "patients": patients,
                "methods": list(result.methods),
                "regions": list(result.table),
                "files": [str(f) for f in result.files],
                "elapsed_s": round(result.elapsed_s, 2),
            }
        )
        return
    print_table(
        "error vs truth (%), mean ± sd over patients",
        ["region", *result.methods, "spread %"],
        [
            (
                e["region"],
                *(
                    f"{e['methods'][m]['mean_error_percent']:.1f} ± {e['methods'][m]['sd_error_percent']:.1f}"
                    if m in e["methods"]
                    else "—"
                    for m in result.methods
                ),
                e["spread_between_methods_percent"],
            )
            for e in result.table
        ],
    )
