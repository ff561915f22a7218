"""``theradose phantom``: digital phantoms with known truth (virtual patients, NEMA IEC phantom)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from theradose.cli._output import print_json, print_mapping, print_table

app = typer.Typer(
    help="Digital phantoms with known truth: virtual theranostic patients and the NEMA IEC phantom.",
    no_args_is_help=True,
)


def _parse_timepoints(text: str) -> list[float]:
    from theradose.errors import InputError

    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise InputError(
            f"--timepoints-h must be comma-separated hours, e.g. 4,24,96,168; got {text!r}"
        ) from exc
    if not values:
        raise InputError(f"--timepoints-h must list at least one time; got {text!r}")
    return values


def _progress(enabled: bool) -> Any:
    import sys

    if not enabled:
        return None

    def say(message: str) -> None:
        print(f"phantom: {message}", file=sys.stderr, flush=True)

    return say


@app.command()
def create(
    out: Annotated[
        Path, typer.Option("--out", help="New folder for the study (must not exist or be empty).")
    ],
    tracer: Annotated[
        str, typer.Option("--tracer", help="Kinetics library: psma (177Lu-PSMA-617), dotatate, ...")
    ] = "psma",
    seed: Annotated[int, typer.Option("--seed", help="Seed of anatomy, kinetics, tumours and noise.")] = 1,
    grid: Annotated[int, typer.Option("--grid", help="Transaxial matrix (columns = rows).")] = 128,
    voxel_mm: Annotated[float, typer.Option("--voxel-mm", help="Isotropic voxel size (mm).")] = 4.8,
    timepoints_h: Annotated[
        str, typer.Option("--timepoints-h", help="Imaging times after injection (h), comma-separated.")
    ] = "4,24,96,168",
    activity_mbq: Annotated[float, typer.Option("--activity-mbq", help="Injected activity (MBq).")] = 7400.0,
    tumours: Annotated[
        int, typer.Option("--tumours", help="Number of tumours (liver, bone, lymph node).")
    ] = 3,
    slices: Annotated[
        int | None, typer.Option("--slices", help="Number of slices (default: pelvis to vertex).")
    ] = None,
    views: Annotated[
        int | None,
        typer.Option("--views", help="Projection views over 360° (default 120; 60 for grid <= 64)."),
    ] = None,
    iterations: Annotated[int, typer.Option("--iterations", help="OSEM iterations.")] = 4,
    subsets: Annotated[int, typer.Option("--subsets", help="OSEM subsets.")] = 10,
    scatter: Annotated[
        bool, typer.Option("--scatter/--no-scatter", help="Simulate scatter and correct it in OSEM.")
    ] = False,
    dose_engine: Annotated[
        str, typer.Option("--dose-engine", help="Truth dose: vsv (default), mc or local.")
    ] = "vsv",
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Simulate a virtual patient's serial 177Lu SPECT/CT (DICOM) with truth TIA and dose."""
    from theradose.errors import InputError
    from theradose.io.phantoms import check_new_folder, write_patient_study
    from theradose.phantoms.spect import default_system
    from theradose.phantoms.study import simulate_patient_study

    check_new_folder(out)
    from theradose.dosimetry.engines.registry import parse_engine
    from theradose.phantoms.kinetics import available_tracers

    if tracer.lower() not in available_tracers():
        raise InputError(f"--tracer must be one of {', '.join(available_tracers())}; got {tracer!r}")
    engine = parse_engine(dose_engine, field="--dose-engine")
    system = default_system()
    n_views = views if views is not None else (60 if grid <= 64 else system.n_views)
    if n_views < subsets:
        raise InputError(f"--views ({n_views}) must be at least --subsets ({subsets})")
    system = system.with_(n_views=n_views, scatter="convolution" if scatter else "none")
    say = _progress(not json)
    study = simulate_patient_study(
        tracer=tracer.lower(),
        seed=seed,
        grid=grid,
        voxel_mm=voxel_mm,
        slices=slices,
        timepoints_h=_parse_timepoints(timepoints_h),
        activity_mbq=activity_mbq,
        tumours=tumours,
        system=system,
        iterations=iterations,
        subsets=subsets,
        dose_engine=engine,
        progress=say,
    )
    written = write_patient_study(study, out, progress=say)
    summary = {
        "out": str(written.root),
        "tracer": study.kinetics.tracer,
        "radiopharmaceutical": study.kinetics.radiopharmaceutical,
        "seed": seed,
        "injected_activity_mbq": activity_mbq,
        "grid": list(study.anatomy.grid.shape),
        "voxel_mm": voxel_mm,
        "timepoints": [
            {
                "time_h": tp.time_h,
                "ct": str(ct),
                "spect": str(nm),
                "total_counts": tp.total_counts,
            }
            for tp, ct, nm in zip(study.timepoints, written.ct_dirs, written.spect_files, strict=True)
        ],
        "truth_json": str(written.truth_json),
        "truth_files": [str(p) for p in written.truth_files],
        "dose_engine": study.dose.engine,
        "regions": {
            r.name: {"mass_g": r.mass_g, "tia_mbq_h": r.tia_mbq_h, "dose_gy": r.dose_gy}
            for r in study.regions
        },
    }
    if json:
        print_json(summary)
        return
    print_mapping("phantom", {k: v for k, v in summary.items() if not isinstance(v, (list, dict))})
    print_table(
        "truth per region",
        ["region", "mass_g", "tia_mbq_h", "dose_gy"],
        [(r.name, r.mass_g, r.tia_mbq_h, r.dose_gy) for r in study.regions],
    )


@app.command()
def iec(
    out: Annotated[Path, typer.Option("--out", help="New folder (must not exist or be empty).")],
    sphere_to_background: Annotated[
        float, typer.Option("--sphere-to-background", help="Sphere-to-background concentration ratio.")
    ] = 10.0,
    activity_mbq: Annotated[
        float, typer.Option("--activity-mbq", help="Total activity in the phantom (MBq).")
    ] = 500.0,
    voxel_mm: Annotated[float, typer.Option("--voxel-mm", help="Isotropic voxel size (mm).")] = 4.8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the Poisson noise.")] = 1,
    views: Annotated[int, typer.Option("--views", help="Projection views over 360°.")] = 120,
    iterations: Annotated[int, typer.Option("--iterations", help="OSEM iterations.")] = 6,
    subsets: Annotated[int, typer.Option("--subsets", help="OSEM subsets.")] = 10,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Simulate a 177Lu SPECT/CT of the NEMA IEC body phantom (DICOM + truth + recovery coefficients)."""
    from theradose.errors import InputError
    from theradose.io.phantoms import check_new_folder, write_physical_phantom
    from theradose.phantoms.osem import reconstruct
    from theradose.phantoms.physical import iec_body_phantom, recovery_coefficients
    from theradose.phantoms.spect import default_system, mu_map_from_hu, simulate_spect

    check_new_folder(out)
    if views < subsets:
        raise InputError(f"--views ({views}) must be at least --subsets ({subsets})")
    phantom = iec_body_phantom(
        spacing_mm=voxel_mm, sphere_to_background=sphere_to_background, activity_mbq=activity_mbq
    )
    mu = mu_map_from_hu(phantom.hu)
    system = default_system().with_(n_views=views)
    acquisition = simulate_spect(phantom.activity_mbq, mu, phantom.grid.spacing_mm, system=system, seed=seed)
    recon = reconstruct(acquisition, mu, iterations=iterations, subsets=subsets)
    rc = recovery_coefficients(phantom, recon.concentration_bq_per_ml) if sphere_to_background > 0 else {}
    written = write_physical_phantom(
        phantom,
        recon.concentration_bq_per_ml,
        out,
        extra={
            "simulation": {
                "seed": seed,
                "n_views": views,
                "time_per_view_s": system.time_per_view_s,
                "total_counts": float(acquisition.counts.sum()),
                "iterations": iterations,
                "subsets": subsets,
                "recovery_coefficients_measured": rc,
            }
        },
    )
    summary = {
        "out": str(written.root),
        "ct": str(written.ct_dirs[0]),
        "spect": str(written.spect_files[0]),
        "truth_json": str(written.truth_json),
        "truth_files": [str(p) for p in written.truth_files],
        "total_activity_mbq": float(phantom.activity_mbq.sum()),
        "background_bq_per_ml": phantom.background_concentration_bq_per_ml,
        "sphere_bq_per_ml": phantom.sphere_concentration_bq_per_ml,
        "total_counts": float(acquisition.counts.sum()),
        "recovery_coefficients": rc,
    }
    if json:
        print_json(summary)
        return
    print_mapping("IEC phantom", {k: v for k, v in summary.items() if not isinstance(v, (list, dict))})
    print_table("recovery coefficients (mean in sphere / truth)", ["sphere", "rc"], list(rc.items()))


@app.command()
def cylinder(
    out: Annotated[Path, typer.Option("--out", help="New folder (must not exist or be empty).")],
    activity_mbq: Annotated[
        float, typer.Option("--activity-mbq", help="Activity in the cylinder at the acquisition (MBq).")
    ] = 500.0,
    diameter_mm: Annotated[float, typer.Option(help="Inner diameter (mm).")] = 200.0,
    length_mm: Annotated[float, typer.Option(help="Inner length (mm).")] = 200.0,
    voxel_mm: Annotated[float, typer.Option("--voxel-mm", help="Isotropic voxel size (mm).")] = 4.8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the Poisson noise.")] = 1,
    views: Annotated[int, typer.Option("--views", help="Projection views over 360°.")] = 120,
    iterations: Annotated[int, typer.Option("--iterations", help="OSEM iterations.")] = 4,
    subsets: Annotated[int, typer.Option("--subsets", help="OSEM subsets.")] = 10,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Simulate a uniform-cylinder calibration acquisition; the SPECT series holds uncalibrated counts."""
    import math

    from theradose.errors import InputError
    from theradose.io.phantoms import check_new_folder, write_physical_phantom
    from theradose.phantoms.osem import reconstruct
    from theradose.phantoms.physical import uniform_cylinder
    from theradose.phantoms.spect import default_system, mu_map_from_hu, simulate_spect
    from theradose.units import mbq_to_bq, mm3_to_ml

    check_new_folder(out)
    if not activity_mbq > 0:
        raise InputError(f"--activity-mbq must be > 0; got {activity_mbq}")
    if views < subsets:
        raise InputError(f"--views ({views}) must be at least --subsets ({subsets})")
    volume_ml = mm3_to_ml(math.pi * (diameter_mm / 2.0) ** 2 * length_mm)
    phantom = uniform_cylinder(
        diameter_mm=diameter_mm,
        length_mm=length_mm,
        concentration_bq_per_ml=mbq_to_bq(activity_mbq) / volume_ml,
        spacing_mm=voxel_mm,
    )
    mu = mu_map_from_hu(phantom.hu)
    system = default_system().with_(n_views=views)
    acquisition = simulate_spect(phantom.activity_mbq, mu, phantom.grid.spacing_mm, system=system, seed=seed)
    recon = reconstruct(acquisition, mu, iterations=iterations, subsets=subsets)
    # The camera's own output before calibration: the reconstructed activity distribution expressed as the
    # counts all views together collect from it (sensitivity x time per view x views).
    counts_per_mbq = system.sensitivity_cps_per_mbq * system.time_per_view_s * system.n_views
    counts = recon.activity_mbq * counts_per_mbq
    written = write_physical_phantom(
        phantom,
        counts,
        out,
        counts_acquisition=(system.time_per_view_s, system.n_views // system.n_heads, system.n_heads),
        extra={
            "simulation": {
                "seed": seed,
                "n_views": views,
                "n_heads": system.n_heads,
                "time_per_view_s": system.time_per_view_s,
                "acquisition_duration_s": system.acquisition_duration_s,
                "system_sensitivity_cps_per_mbq": system.sensitivity_cps_per_mbq * system.n_heads,
                "iterations": iterations,
                "subsets": subsets,
            },
            "phantom_volume_ml": volume_ml,
        },
    )
    summary = {
        "out": str(written.root),
        "spect": str(written.spect_files[0]),
        "truth_json": str(written.truth_json),
        "activity_mbq": activity_mbq,
        "acquisition_duration_s": system.acquisition_duration_s,
        "system_sensitivity_cps_per_mbq": system.sensitivity_cps_per_mbq * system.n_heads,
        "phantom_volume_ml": volume_ml,
    }
    if json:
        print_json(summary)
        return
    print_mapping("uniform cylinder (counts)", summary)
