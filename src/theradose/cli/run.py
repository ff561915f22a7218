"""``theradose run STUDY.toml --out DIR``: the study pipeline, from DICOM time points to a dose report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    administration: Annotated[
        int | None,
        typer.Option(
            "--administration",
            min=1,
            help="Administration id in the service: its patient, cycle, product, net activity and injection "
            "time are the study's (needs --service and a token).",
            show_default=False,
        ),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option(
            "--service",
            help="Base URL of the theradose service, e.g. http://127.0.0.1:8000.",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Service token (POST /auth/login); default $THERADOSE_TOKEN. Never printed.",
            show_default=False,
        ),
    ] = None,
    rrdsr: Annotated[
        Path | None,
        typer.Option(
            "--rrdsr",
            help="RRDSR file (DICOM) of the administration: patient, product, net activity and injection "
            "time are the study's; the study file gives the cycle.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the dosimetry pipeline of a study file and write its outputs into --out.

    The administration is typed into the study file, or read from the service's record
    (--administration ID --service URL, token from --token or $THERADOSE_TOKEN) or from an RRDSR file
    (--rrdsr FILE); values the study file also states must agree with the record.
    """
    from theradose.pipeline.run import run_study

    record = _administration_record(administration, service, token, rrdsr)
    result = run_study(
        study, out, cache_dir=cache_dir, use_cache=not no_cache, progress=not json, administration=record
    )
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


def _administration_record(
    administration: int | None, service: str | None, token: str | None, rrdsr: Path | None
) -> Any:
    """The administration record named by the options (None: the study file's typed-in values)."""
    from theradose.errors import InputError
    from theradose.pipeline.administration import (
        TOKEN_ENV,
        fetch_service_record,
        read_rrdsr_record,
        token_from_environment,
    )

    if rrdsr is not None:
        if administration is not None or service is not None:
            raise InputError(
                "--rrdsr: give either --rrdsr FILE or --administration ID --service URL, not both"
            )
        return read_rrdsr_record(rrdsr)
    if administration is None:
        if service is not None or token is not None:
            raise InputError(
                "--administration: --service and --token need the administration id (--administration ID)"
            )
        return None
    if service is None:
        raise InputError(
            f"--service: --administration {administration} needs the service URL (--service URL)"
        )
    secret = token_from_environment(token)
    if not secret:
        raise InputError(
            f"--token: --administration needs a service token: pass --token or set ${TOKEN_ENV} "
            "(from POST /auth/login)"
        )
    return fetch_service_record(service, administration, secret)
