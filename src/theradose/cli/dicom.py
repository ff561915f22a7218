"""``theradose dicom``: inspect folders of DICOM files and convert series to NIfTI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="DICOM: list the series in a folder, convert one to NIfTI.", no_args_is_help=True)


@app.command()
def inspect(
    folder: Annotated[Path, typer.Argument(help="Folder searched recursively for DICOM files.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """List every series: modality, units, shape, spacing, time, nuclide, activity, number of files.

    A damaged file is reported as one error line on standard error and left out; the other files are
    listed, and the exit code is then 2.
    """
    from theradose.cli._output import print_json
    from theradose.io.dicom import scan_folder

    contents = scan_folder(folder)
    series = contents.series
    for damaged in contents.unreadable:
        typer.echo(f"error: {damaged.reason} (left out)", err=True)
    if json_output:
        print_json([s.as_dict() for s in series])
    else:
        _print_series_table(folder, series)
    if contents.unreadable:
        raise typer.Exit(2)


def _print_series_table(folder: Path, series: Sequence[Any]) -> None:
    from theradose.cli._output import print_table

    rows = [
        (
            s.series_uid,
            s.modality,
            s.units or "-",
            "x".join(str(n) for n in s.shape) if s.shape else "-",
            "x".join(f"{v:.3g}" for v in s.spacing_mm) if s.spacing_mm else "-",
            s.acquisition_datetime.isoformat(sep=" ") if s.acquisition_datetime else "-",
            s.nuclide or "-",
            s.injected_activity_mbq if s.injected_activity_mbq is not None else "-",
            s.n_files,
            s.description,
            s.problem or "",
        )
        for s in series
    ]
    columns = [
        "series_uid",
        "modality",
        "units",
        "shape",
        "spacing_mm",
        "acquired",
        "nuclide",
        "MBq",
        "files",
        "description",
        "problem",
    ]
    print_table(f"DICOM series under {folder}", columns, rows)


@app.command()
def convert(
    folder: Annotated[Path, typer.Argument(help="Folder (or file) holding the series.")],
    out: Annotated[Path, typer.Option("--out", help="Output NIfTI file (.nii or .nii.gz).")],
    series: Annotated[str | None, typer.Option("--series", help="Series Instance UID to convert.")] = None,
    calibration_cps_per_mbq: Annotated[
        float | None,
        typer.Option(
            "--calibration-cps-per-mbq", help="SPECT calibration factor for series stored as counts."
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Read one series (CT in HU, SPECT/PET in Bq/mL, RT Dose in Gy) and write it as NIfTI."""
    from theradose.cli._output import print_json, print_mapping
    from theradose.io.dicom import read_series
    from theradose.io.nifti import write_nifti

    volume = read_series(folder, series_uid=series, calibration_cps_per_mbq=calibration_cps_per_mbq)
    path = write_nifti(volume, out)
    summary = {
        "out": str(path),
        "unit": volume.unit,
        "shape": list(volume.shape),
        "spacing_mm": list(volume.spacing_mm),
        "origin_mm": list(volume.origin_mm),
        "acquisition_datetime": volume.acquisition_datetime.isoformat()
        if volume.acquisition_datetime
        else None,
        "frame_uid": volume.frame_uid,
        "min": float(volume.array.min()),
        "max": float(volume.array.max()),
    }
    if json_output:
        print_json(summary)
    else:
        print_mapping(f"converted to {path}", summary)
