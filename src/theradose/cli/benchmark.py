"""``theradose benchmark``: several dosimetry methods on N virtual patients → harmonisation table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from theradose.cli._output import print_json, print_table

app = typer.Typer(help="Benchmark dosimetry methods on virtual patients against truth (harmonisation).")


@app.command()
def benchmark(
    out: Annotated[Path, typer.Option("--out", help="Folder for patients, results and tables.")],
    patients: Annotated[int, typer.Option("--patients", help="Number of virtual patients.")] = 3,
    grid: Annotated[int, typer.Option("--grid", help="Transaxial matrix: 64 or 128.")] = 64,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Run multi-/single-time-point, each engine, with/without PVC on N patients; error vs truth per
    region."""
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
