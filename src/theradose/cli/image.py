"""``theradose image``: register CT time points, segment CT/SPECT."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from theradose.imaging.volume import Volume

app = typer.Typer(help="Images: register CT time points, segment body/organs/uptake.", no_args_is_help=True)


def load_volume(path: Path, *, calibration_cps_per_mbq: float | None = None) -> Volume:
    """A volume from a NIfTI file (``.nii``/``.nii.gz``) or a DICOM folder/file."""
    if path.name.endswith((".nii", ".nii.gz")):
        from theradose.io.nifti import read_nifti

        return read_nifti(path)
    from theradose.io.dicom import read_series

    return read_series(path, calibration_cps_per_mbq=calibration_cps_per_mbq)


@app.command()
def register(
    fixed: Annotated[Path, typer.Option("--fixed", help="Reference CT (DICOM folder or NIfTI).")],
    moving: Annotated[Path, typer.Option("--moving", help="CT to align to the reference.")],
    out: Annotated[Path, typer.Option("--out", help="Output ITK transform file (.tfm).")],
    deformable: Annotated[bool, typer.Option("--deformable", help="Add a B-spline stage.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Rigid (optionally B-spline) CT-CT registration; prints the quality figure (Dice of body masks, MI)."""
    from theradose.cli._output import print_json, print_mapping
    from theradose.imaging.register import register_ct

    result = register_ct(load_volume(fixed), load_volume(moving), deformable=deformable)
    path = result.write(out)
    summary = {
        "transform": str(path),
        "deformable": result.deformable,
        "rotation_deg": list(result.rotation_deg),
        "translation_mm": list(result.translation_mm),
        **result.quality.as_dict(),
    }
    if json_output:
        print_json(summary)
    else:
        print_mapping("registration", summary)


@app.command()
def segment(
    ct: Annotated[Path, typer.Option("--ct", help="CT (DICOM folder or NIfTI, HU).")],
    out: Annotated[Path, typer.Option("--out", help="Output label map (.nii.gz).")],
    spect: Annotated[
        Path | None, typer.Option("--spect", help="Quantitative SPECT (same frame as the CT).")
    ] = None,
    method: Annotated[str, typer.Option("--method", help="auto (CT classes + SPECT uptake) or ct.")] = "auto",
    percent_of_max: Annotated[float, typer.Option(help="Uptake threshold, % of the local maximum.")] = 40.0,
    min_volume_ml: Annotated[float, typer.Option(help="Smallest uptake region kept (mL).")] = 1.0,
    calibration_cps_per_mbq: Annotated[
        float | None, typer.Option("--calibration-cps-per-mbq", help="For a SPECT stored as counts.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Label map on the CT grid: body 1, lungs 2, bone 3, uptake regions 10, 11, ..."""
    from theradose.cli._output import print_json, print_table
    from theradose.errors import InputError
    from theradose.imaging.segment import segment_auto
    from theradose.io.nifti import write_nifti

    chosen: Literal["auto", "ct"]
    if method == "auto":
        chosen = "auto"
    elif method == "ct":
        chosen = "ct"
    else:
        raise InputError(f"--method must be 'auto' or 'ct'; got {method!r}")
    ct_volume = load_volume(ct)
    spect_volume = None
    if spect is not None and chosen == "auto":
        spect_volume = load_volume(spect, calibration_cps_per_mbq=calibration_cps_per_mbq)
    result = segment_auto(
        ct_volume, spect_volume, percent_of_max=percent_of_max, min_uptake_volume_ml=min_volume_ml
    )
    path = write_nifti(result.labels, out)
    regions = [
        {"label": r.label, "name": r.name, "volume_ml": r.volume_ml, "max": r.max_value, "mean": r.mean_value}
        for r in result.regions
    ]
    if json_output:
        print_json({"out": str(path), "method": chosen, "regions": regions})
    else:
        print_table(
            f"labels written to {path}",
            ["label", "name", "volume_ml", "max", "mean"],
            [(r["label"], r["name"], r["volume_ml"], r["max"] or "-", r["mean"] or "-") for r in regions],
        )
