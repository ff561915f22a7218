"""``theradose run STUDY.toml --out DIR``: the study pipeline, from DICOM time points to a dose report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from theradose.cli._output import print_json, print_table

app = typer.Typer(help="Run a dosimetry study (study file) and write doses, dose maps and the report.")


@app.command()
def run(
    study: Annotated[
        Path, typer.Argument(help="Study file (TOML, see docs/study-file.md).", show_default=False)
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (new, empty, or a previous run's).")],
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Step cache folder (default OUT/.cache).", show_default=False),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Compute every step; store nothing.")] = False,
    json: Annotated[bool, typer.Option("--json", help="Print doses.json only (no progress bars).")] = False,
) -> None:
    """Run the dosimetry pipeline of a study file and write its outputs into --out."""
    from theradose.pipeline.run import run_study

    result = run_study(study, out, cache_dir=cache_dir, use_cache=not no_cache, progress=not json)
    if json:
        print_json(result.doses.to_dict())
        return
    doses = result.doses
    reference = doses.reference_dose
    others = [s for s in (*doses.engines, "organ") if s != reference]
    print_table(
        f"doses ({result.out_dir}); dose = {reference}",
        [
            "region",
            "mass_g",
            "tia_mbq_h",
            f"dose_{reference}_gy",
            "gy_per_gbq",
            "bed_gy",
            *(f"{s}_gy" for s in others),
        ],
        [
            (
                row.name,
                row.mass_g,
                region.tia_mbq_h,
                row.dose_gy,
                row.dose_gy_per_gbq,
                row.bed_gy,
                *((e.dose_gy if (e := region.dose(s)) is not None else None) for s in others),
            )
            for region in doses.regions
            for row in (doses.row(region),)
        ],
    )
