"""Voxel dosimetry commands of ``theradose dose``: ``kernel``, ``voxel`` and ``dvh``.

NIfTI files are read and written with :mod:`theradose.io.nifti` (RAS ↔ LPS and axis order handled there).
The TIA image holds MBq·h per voxel; the CT image holds Hounsfield units (or g/mL with
``--ct-unit density``); the dose image is written in Gy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from theradose.cli._output import print_json, print_mapping, print_table

if TYPE_CHECKING:
    from theradose.imaging.volume import Unit, Volume


def read_nifti(path: Path, *, unit: Unit, name: str) -> Volume:
    """Read a 3-D NIfTI image with :func:`theradose.io.nifti.read_nifti`, naming the option on errors."""
    from theradose.errors import InputError
    from theradose.io.nifti import read_nifti as read

    if not path.is_file():
        raise InputError(f"{name} file {path} does not exist: give the path of a .nii or .nii.gz file")
    try:
        return read(path, unit=unit)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from exc


def kernel_summary(
    nuclide: str, voxel_mm: float, tissue: Literal["soft", "bone"], size: int | None
) -> dict[str, Any]:
    """The JSON shape of ``theradose dose kernel``."""
    from theradose.dosimetry.kernels import nuclide_kernel

    kernel = nuclide_kernel(nuclide, voxel_mm=voxel_mm, tissue=tissue, size=size)
    return {
        "nuclide": kernel.nuclide,
        "tissue": kernel.tissue,
        "voxel_mm": list(kernel.voxel_mm),
        "density_g_per_ml": kernel.density_g_per_ml,
        "center_mgy_per_mbq_s": kernel.center_mgy_per_mbq_s,
        "face_neighbour_mgy_per_mbq_s": kernel.face_neighbour_mgy_per_mbq_s,
        "sum_mgy_per_mbq_s": kernel.sum_mgy_per_mbq_s,
        "shape": list(kernel.shape),
        "emitted_energy_mev_per_decay": kernel.emitted_energy_mev_per_decay,
        "absorbed_energy_mev_per_decay": kernel.absorbed_energy_mev_per_decay,
        "includes_photons": kernel.includes_photons,
        "method": kernel.method,
    }


def register(app: typer.Typer) -> None:
    """Add the ``kernel``, ``voxel`` and ``dvh`` commands to the ``dose`` group."""

    @app.command("kernel")
    def kernel(
        nuclide: Annotated[str, typer.Option("--nuclide", help="ICRP-107 nuclide, e.g. Lu-177.")],
        voxel_mm: Annotated[float, typer.Option("--voxel-mm", help="Cubic voxel side (mm).")],
        tissue: Annotated[str, typer.Option("--tissue", help="soft or bone.")] = "soft",
        size: Annotated[int | None, typer.Option("--size", help="Odd kernel size (default: range).")] = None,
        json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    ) -> None:
        """Voxel S-value kernel (electrons) of a nuclide: centre, face neighbour and sum in mGy/(MBq·s)."""
        from theradose.errors import InputError

        if tissue not in ("soft", "bone"):
            raise InputError(f"--tissue must be 'soft' or 'bone'; got {tissue!r}")
        summary = kernel_summary(nuclide, voxel_mm, "soft" if tissue == "soft" else "bone", size)
        if json:
            print_json(summary)
        else:
            print_mapping(f"{summary['nuclide']} voxel S values ({tissue})", summary)

    @app.command("voxel")
    def voxel(
        tia: Annotated[Path, typer.Option("--tia", help="TIA image (NIfTI, MBq·h per voxel).")],
        nuclide: Annotated[str, typer.Option("--nuclide", help="ICRP-107 nuclide, e.g. Lu-177.")],
        out: Annotated[Path, typer.Option("--out", help="Output dose image (NIfTI, Gy).")],
        ct: Annotated[Path | None, typer.Option("--ct", help="CT on the TIA grid (NIfTI).")] = None,
        ct_unit: Annotated[str, typer.Option("--ct-unit", help="hu or density (g/mL).")] = "hu",
        engine: Annotated[str, typer.Option("--engine", help="local, vsv or mc.")] = "vsv",
        n_photons: Annotated[int, typer.Option("--n-photons", help="mc: photon histories.")] = 1_000_000,
        seed: Annotated[int, typer.Option("--seed", help="mc: random seed.")] = 0,
        vsv_photons: Annotated[
            bool, typer.Option("--vsv-photons", help="vsv: add photons with a Monte Carlo photon kernel.")
        ] = False,
        workers: Annotated[int | None, typer.Option("--workers", help="Threads (default: all CPUs).")] = None,
        json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    ) -> None:
        """Absorbed dose map from a TIA map with the local, VSV or Monte Carlo engine."""
        import numpy as np

        from theradose.dosimetry.engines import dose_rate_or_dose, monte_carlo_dose
        from theradose.dosimetry.engines.registry import DoseEngine, parse_engine
        from theradose.errors import InputError

        chosen = parse_engine(engine, field="--engine")
        if ct_unit not in ("hu", "density"):
            raise InputError(f"--ct-unit must be hu or density; got {ct_unit!r}")
        tia_volume = read_nifti(tia, unit="MBq·h", name="--tia")
        ct_volume = None
        if ct is not None:
            ct_volume = read_nifti(ct, unit="HU" if ct_unit == "hu" else "g/mL", name="--ct")
            if not ct_volume.same_grid(tia_volume):
                raise InputError("--ct is not on the grid of --tia: resample the CT onto the SPECT grid")
        if not out.parent.exists():
            raise InputError(f"--out folder {out.parent} does not exist: create it first")
        uncertainty: float | None = None
        if chosen is DoseEngine.MC:
            result = monte_carlo_dose(
                tia_volume, ct_volume, nuclide, n_photons=n_photons, seed=seed, workers=workers
            )
            dose = result.dose
            rel = np.asarray(result.relative_uncertainty.array)
            in_source = (np.asarray(tia_volume.array) > 0) & np.isfinite(rel)
            uncertainty = float(np.median(rel[in_source])) if np.any(in_source) else None
        else:
            dose = dose_rate_or_dose(
                tia_volume,
                ct_volume,
                nuclide,
                engine=chosen,
                workers=workers,
                vsv_photons=vsv_photons,
            )
        from theradose.io.nifti import write_nifti

        write_nifti(dose, out)
        values = np.asarray(dose.array)
        source = np.asarray(tia_volume.array) > 0
        summary: dict[str, Any] = {
            "out": str(out),
            "engine": chosen.value,
            "nuclide": nuclide,
            "unit": dose.unit,
            "shape": list(dose.shape),
            "spacing_mm": list(dose.spacing_mm),
            "dmax_gy": float(values.max()),
            "dmean_source_gy": float(values[source].mean()) if np.any(source) else 0.0,
            "tia_total_mbq_h": float(np.asarray(tia_volume.array).sum()),
        }
        if chosen is DoseEngine.MC:
            summary["n_photons"] = n_photons
            summary["seed"] = seed
            summary["median_relative_uncertainty_source"] = uncertainty
        if json:
            print_json(summary)
        else:
            print_mapping("voxel dose", summary)

    @app.command("dvh")
    def dvh(
        dose: Annotated[Path, typer.Option("--dose", help="Dose image (NIfTI, Gy).")],
        labels: Annotated[Path, typer.Option("--labels", help="Label map on the dose grid (NIfTI).")],
        bins: Annotated[int, typer.Option("--bins", help="Number of DVH bins.")] = 100,
        json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    ) -> None:
        """Dose metrics (Dmean, Dmax, D2, D50, D98, volume) and DVH per label."""
        from theradose.dosimetry.dvh import dose_metrics_by_label
        from theradose.errors import InputError

        dose_volume = read_nifti(dose, unit="Gy", name="--dose")
        label_volume = read_nifti(labels, unit="label", name="--labels")
        if not label_volume.same_grid(dose_volume):
            raise InputError("--labels is not on the grid of --dose: resample the label map")
        result = dose_metrics_by_label(dose_volume, label_volume, n_bins=bins)
        payload = {
            str(label): {
                "dmean_gy": item.metrics.dmean_gy,
                "dmax_gy": item.metrics.dmax_gy,
                "d2_gy": item.metrics.d2_gy,
                "d50_gy": item.metrics.d50_gy,
                "d98_gy": item.metrics.d98_gy,
                "volume_ml": item.metrics.volume_ml,
                "dvh": {
                    "dose_gy": item.dvh.dose_gy,
                    "cumulative_fraction": item.dvh.cumulative_fraction,
                },
            }
            for label, item in result.items()
        }
        if json:
            print_json({"dose": str(dose), "labels": payload})
        else:
            rows = [
                (label, p["dmean_gy"], p["dmax_gy"], p["d2_gy"], p["d50_gy"], p["d98_gy"], p["volume_ml"])
                for label, p in payload.items()
            ]
            print_table("dose per label", ["label", "Dmean", "Dmax", "D2", "D50", "D98", "mL"], rows)
