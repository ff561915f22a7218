"""``theradose schema``: the published JSON Schemas of theradose's records, and checking a record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from theradose.cli._output import print_json, print_mapping

app = typer.Typer(help="Published JSON Schemas (doses.json) and record checks.", no_args_is_help=True)


@app.command("doses")
def doses_schema_command() -> None:
    """Print the JSON Schema of doses.json (the study dose record, current version)."""
    from theradose.dosimetry.results import doses_schema

    print_json(doses_schema())


@app.command("check-doses")
def check_doses(
    path: Annotated[Path, typer.Argument(help="A doses.json (any version theradose wrote).")],
    upgrade: Annotated[
        Path | None, typer.Option("--upgrade", help="Write the record in the current version to this file.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Read a doses.json through the dose record: say what it holds and which version it was."""
    from theradose.dosimetry.results import DOSES_VERSION, read_doses, write_doses
    from theradose.errors import InputError

    record = read_doses(path)
    if upgrade is not None:
        if upgrade.resolve() == path.resolve():
            raise InputError("--upgrade must name a new file: the original doses.json is kept as it is")
        write_doses(record, upgrade)
    summary = {
        "file": str(path),
        "version": record.upgraded_from or DOSES_VERSION,
        "upgraded_to": DOSES_VERSION if record.upgraded_from is not None else None,
        "patient": record.patient.id,
        "cycle": record.cycle,
        "reference_dose": record.reference_dose,
        "engines": list(record.engines),
        "regions": len(record.regions),
        "written": None if upgrade is None else str(upgrade),
    }
    if json:
        print_json(summary)
    else:
        print_mapping("dose record", summary)
