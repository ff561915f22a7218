"""``theradose registry``: export the dose registry of a batch folder to Parquet."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from theradose.cli._output import print_json, print_mapping

app = typer.Typer(
    help="Dose registry: doses, kinetics, BED and outcomes per study and region.", no_args_is_help=True
)


@app.callback()
def registry() -> None:
    """Dose registry: doses, kinetics, BED and outcomes per study and region (Parquet)."""


#: Environment variable holding the de-identification salt when --salt-file is not given.
SALT_ENV = "THERADOSE_DEID_SALT"


@app.command()
def export(
    batch_dir: Annotated[Path, typer.Argument(help="The --out folder of 'theradose batch'.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write, e.g. cohort.parquet.")],
    deidentify: Annotated[
        bool, typer.Option("--deidentify", help="Pseudonymise IDs, shift dates, drop names (needs a salt).")
    ] = False,
    salt_file: Annotated[
        Path | None, typer.Option("--salt-file", help=f"Secret salt file (default: ${SALT_ENV}).")
    ] = None,
    outcomes: Annotated[
        Path | None, typer.Option("--outcomes", help="Outcomes CSV: patient_id,response_category,...")
    ] = None,
    labs: Annotated[
        Path | None, typer.Option("--labs", help="Folder of <patient_id>.csv laboratory files.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Write one row per study and region with doses, kinetics, BED, protocol and outcomes."""
    from theradose.errors import InputError
    from theradose.population.registry import export_registry

    salt: bytes | None = None
    if deidentify:
        if salt_file is not None:
            try:
                salt = salt_file.read_bytes()
            except OSError as exc:
                raise InputError(
                    f"--salt-file {salt_file}: cannot read ({exc.strerror}): check the path"
                ) from None
        elif os.environ.get(SALT_ENV):
            salt = os.environ[SALT_ENV].encode()
    result = export_registry(
        batch_dir, out, deidentified=deidentify, salt=salt, outcomes_csv=outcomes, labs_dir=labs
    )
    if json:
        print_json(result.as_dict())
    else:
        data = result.as_dict()
        data["columns"] = len(result.columns)
        print_mapping("registry export", data)
