"""Demonstration and benchmark on virtual patients with known truth.

:func:`run_demo` simulates a virtual 177Lu-PSMA-617 patient with four SPECT/CT time points
(:mod:`theradose.phantoms`), derives a recovery curve from a simulated NEMA IEC phantom acquired and
reconstructed like the patient, writes a study file, runs the pipeline and scores every region's dose
against the truth. :func:`run_benchmark` runs several methods (multi- vs single-time-point, each
available dose engine, with and without partial-volume correction) on N virtual patients and tabulates
the error against truth and the spread between methods per region (harmonisation table).

The phantom's truth dose is local deposition of the electron energy, so the ``local`` engine is the
like-for-like comparison; other engines add photon cross-dose and electron transport.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from theradose.dosimetry.engines.registry import DoseEngine
from theradose.dosimetry.results import StudyDoses
from theradose.errors import InputError
from theradose.pipeline import stages

#: Voxel size (mm) of the demo patient at a 128 matrix (the phantom package's default).
DEMO_VOXEL_MM_AT_128 = 4.8
#: Imaging times of the demo (h after administration), a common 177Lu-PSMA schedule.
DEMO_TIMEPOINTS_H = (4.0, 24.0, 96.0, 168.0)
#: Administered activity (MBq): the standard 177Lu-PSMA-617 cycle (VISION trial, Sartor et al. 2021,
#: N Engl J Med 385:1091).
DEMO_ACTIVITY_MBQ = 7400.0
#: Dose engines of the demo; the first (local deposition, like the phantom's truth) is scored.
DEMO_ENGINES = (DoseEngine.LOCAL, DoseEngine.VSV)
#: OSEM settings of the demo acquisitions (patient and IEC phantom alike).
DEMO_ITERATIONS = 4
DEMO_SUBSETS = 10
#: Sphere-to-background ratios of the simulated IEC phantoms giving the recovery curves: the NEMA
#: NU 2 / EARL ratio 10:1 and 40:1, about the contrast of PSMA-avid lesions in liver or soft tissue
#: (OSEM recovery depends on contrast; the pipeline interpolates between the two).
IEC_SPHERE_TO_BACKGROUND = (10.0, 40.0)
#: Diameter (mm) from which a tumour is scored against the 15 % goal (smaller ones are reported only).
SCORED_TUMOUR_DIAMETER_MM = 20.0
#: Time point (1-based position) used by the single-time-point method: 96 h (Hänscheid et al. 2018).
STP_TIMEPOINT = 3
#: Regions never treated as organs by the enlarged-VOI correction: the whole-body remainder.
WHOLE_BODY_REGIONS = ("body",)


def organ_margin_mm() -> float:
    """Margin (mm) of the demo's enlarged organ VOIs: 1 FWHM of the camera's spatial resolution at the
    centre of rotation, FWHM(d) = a + b·d of the simulated MEGP collimator at d = orbit radius
    (the "system resolution" a guideline's margin of ≈ 1 FWHM refers to; MIRD Pamphlet 26)."""
    from theradose.phantoms.spect import default_system

    system = default_system()
    return round(float(system.collimator.fwhm_mm(system.radius_mm)), 1)


@dataclass(frozen=True)
class RegionScore:
    """One region's dose against the truth."""

    name: str
    dose_gy: float
    truth_dose_gy: float
    error_percent: float
    kind: str
    diameter_mm: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dose_gy": self.dose_gy,
            "truth_dose_gy": self.truth_dose_gy,
            "error_percent": self.error_percent,
        }


@dataclass(frozen=True)
class DemoResult:
    """Outcome of :func:`run_demo`: scores, paths and wall time."""

    regions: tuple[RegionScore, ...]
    report: Path
    out_dir: Path
    elapsed_s: float
    pipeline_s: float
    simulation_s: float


def _voxel_mm(grid: int) -> float:
    from theradose.phantoms.study import minimum_voxel_mm

    return max(DEMO_VOXEL_MM_AT_128 * 128.0 / grid, float(minimum_voxel_mm(grid)))


def _views(grid: int) -> int:
    from theradose.phantoms.spect import default_system

    return 60 if grid <= 64 else default_system().n_views


def create_patient(
    folder: Path, *, seed: int, grid: int, say: Callable[[str], None] = lambda _m: None
) -> Path:
    """Simulate and write a virtual 177Lu-PSMA patient (reused if ``folder`` already holds one)."""
    from theradose.io.phantoms import write_patient_study
    from theradose.phantoms.spect import default_system
    from theradose.phantoms.study import simulate_patient_study

    if (folder / "truth" / "truth.json").is_file():
        return folder
    study = simulate_patient_study(
        tracer="psma",
        seed=seed,
        grid=grid,
        voxel_mm=_voxel_mm(grid),
        timepoints_h=DEMO_TIMEPOINTS_H,
        activity_mbq=DEMO_ACTIVITY_MBQ,
        tumours=3,
        system=default_system().with_(n_views=_views(grid)),
        iterations=DEMO_ITERATIONS,
        subsets=DEMO_SUBSETS,
        progress=say,
    )
    write_patient_study(study, folder, progress=say)
    return folder


def create_recovery_curve(path: Path, *, grid: int, seed: int = 1) -> Path:
    """Recovery curves (JSON) from simulated NEMA IEC phantoms acquired and reconstructed like the patient,
    one per sphere-to-background ratio of :data:`IEC_SPHERE_TO_BACKGROUND`.

    For each sphere mask (voxel centres inside) the measured mean C_m, the true mean C of the voxelised
    phantom in the same mask (edge voxels partly filled) and the background C_bg give the recovery
    RC = (C_m − C_bg)/(C − C_bg), the quantity the pipeline's spill-in correction divides by
    (:func:`theradose.imaging.pvc.recovery_corrected_tac`); RC(V) is fitted with
    :func:`theradose.qa.spect.fit_recovery_curve`. Reused if ``path`` exists.
    """
    if path.is_file():
        return path
    curves = [_iec_recovery(grid=grid, seed=seed, sphere_to_background=r) for r in IEC_SPHERE_TO_BACKGROUND]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps({"curves": curves}, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)  # never a truncated curve that a later run would reuse
    return path


def _iec_recovery(*, grid: int, seed: int, sphere_to_background: float) -> dict[str, Any]:
    """One IEC phantom's fitted recovery curve and measured points (see :func:`create_recovery_curve`)."""
    from theradose.phantoms.osem import reconstruct
    from theradose.phantoms.physical import iec_body_phantom
    from theradose.phantoms.spect import default_system, mu_map_from_hu, simulate_spect
    from theradose.qa.spect import fit_recovery_curve
    from theradose.units import mm3_to_ml

    phantom = iec_body_phantom(
        spacing_mm=_voxel_mm(grid), sphere_to_background=sphere_to_background, activity_mbq=500.0
    )
    mu = mu_map_from_hu(phantom.hu)
    system = default_system().with_(n_views=_views(grid))
    acquisition = simulate_spect(phantom.activity_mbq, mu, phantom.grid.spacing_mm, system=system, seed=seed)
    recon = reconstruct(acquisition, mu, iterations=DEMO_ITERATIONS, subsets=DEMO_SUBSETS)
    measured = np.asarray(recon.concentration_bq_per_ml, dtype=np.float64)
    truth = np.asarray(phantom.concentration_bq_per_ml, dtype=np.float64)
    background = float(phantom.background_concentration_bq_per_ml)
    voxel_ml = float(mm3_to_ml(float(np.prod(phantom.grid.spacing_mm))))
    volumes: list[float] = []
    recovery: list[float] = []
    for i in range(len(phantom.sphere_diameters_mm)):
        mask = phantom.sphere_mask(i)
        volumes.append(float(np.count_nonzero(mask)) * voxel_ml)
        recovery.append(
            (float(measured[mask].mean()) - background) / (float(truth[mask].mean()) - background)
        )
    # spheres too small to stand out of the background at this voxel size carry no information
    kept = [(v, r) for v, r in zip(volumes, recovery, strict=True) if r > 0]
    curve = fit_recovery_curve([v for v, _ in kept], [r for _, r in kept])
    return {
        "sphere_to_background": sphere_to_background,
        "rc_inf": curve.rc_inf,
        "v50_ml": curve.v50_ml,
        "slope": curve.slope,
        "v_min_ml": curve.v_min_ml,
        "v_max_ml": curve.v_max_ml,
        "measured": {
            "volume_ml": volumes,
            "recovery": recovery,
            "diameter_mm": list(phantom.sphere_diameters_mm),
        },
        "definition": "RC = (mean measured - background) / (mean true - background) in each sphere mask",
        "source": (
            f"simulated NEMA IEC body phantom (sphere-to-background {sphere_to_background:g}), "
            "camera and OSEM as the patient"
        ),
    }


def _toml_string(value: str) -> str:
    return json.dumps(value)


def write_study_file(
    patient_root: Path,
    path: Path,
    *,
    recovery_curve: Path | None,
    engines: Sequence[str] = ("local",),
    single_timepoint: str = "none",
    registration: str = "none",
    organ_margin_mm: float | None = None,
    typed_administration: bool = True,
) -> Path:
    """Write a study file for a phantom patient folder (labels from the truth label map).

    With ``organ_margin_mm`` every organ region (not a tumour, not the whole body) gets the enlarged-VOI
    partial-volume correction with that margin. Without ``typed_administration`` the file names no patient
    id, cycle or administration: they come from the service's record (``theradose run --administration``)."""
    truth = json.loads((patient_root / "truth" / "truth.json").read_text(encoding="utf-8"))
    tumour_names = [t["name"] for t in truth["tumours"]]
    tumour_regions = [n for n in [*tumour_names, "tumours"] if n in truth["regions"]]
    lines = [f"seed = {int(truth['seed'])}"]
    if typed_administration:
        lines += [
            "cycle = 1",
            "",
            "[patient]",
            f"id = {_toml_string('PHANTOM-' + str(truth['tracer']).upper() + '-' + str(truth['seed']))}",
            f"name = {_toml_string('Phantom^' + str(truth['tracer']).upper())}",
            "",
            "[administration]",
            f"nuclide = {_toml_string(truth['nuclide'])}",
            f"radiopharmaceutical = {_toml_string(truth['radiopharmaceutical'])}",
            f"activity_mbq = {float(truth['injected_activity_mbq'])!r}",
            f"datetime = {truth['injection_datetime']}",
        ]
    lines.append("")
    for folder, files in truth["files"]["timepoints"].items():
        lines += [
            "[[timepoints]]",
            f"spect = {_toml_string(str(patient_root / files['spect']))}",
            f"ct = {_toml_string(str(patient_root / files['ct']))}",
            f"# {folder}",
            "",
        ]
    lines += [
        "[calibration]",
        'mode = "bqml"',
        "",
        "[registration]",
        f"method = {_toml_string(registration)}",
        "",
        "[segmentation]",
        'source = "nifti"',
        f"path = {_toml_string(str(patient_root / truth['files']['labels']))}",
        f"tumours = {json.dumps(tumour_regions)}",
        "",
        "[segmentation.regions]",
    ]
    for name, region in truth["regions"].items():
        lines.append(f"{_toml_string(name)} = {json.dumps(region['labels'])}")
    lines += [
        "",
        "[kinetics]",
        'model = "auto"',
        f"single_timepoint = {_toml_string(single_timepoint)}",
        f"stp_timepoint = {STP_TIMEPOINT}",
        "",
        "[dose]",
        f"engines = {json.dumps([str(e) for e in engines])}",
        "# the first engine's voxel dose is the dose of each region: like-for-like with the phantom's truth",
        f"reference = {_toml_string(str(engines[0]))}",
        "",
    ]
    if recovery_curve is not None or organ_margin_mm is not None:
        lines.append("[pvc]")
    if recovery_curve is not None:
        lines += ["enabled = true", f"recovery_curve = {_toml_string(str(recovery_curve))}"]
    if organ_margin_mm is not None:
        organs = [
            n
            for n in truth["regions"]
            if n not in tumour_regions and n not in WHOLE_BODY_REGIONS and n not in tumour_names
        ]
        lines += ['organs = "enlarged_voi"', f"margin_mm = {float(organ_margin_mm)!r}"]
        lines.append(f"organ_regions = {json.dumps(organs)}")
    lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def score_regions(doses: StudyDoses, truth: dict[str, Any], *, engine: str) -> tuple[RegionScore, ...]:
    """Each truth region's dose (``engine``) against the truth dose, error in percent."""
    by_name = {r.name: r for r in doses.regions}
    diameters = {t["name"]: float(t["diameter_mm"]) for t in truth["tumours"]}
    out: list[RegionScore] = []
    for name, region in truth["regions"].items():
        if name not in by_name:
            continue
        estimate = by_name[name].dose(engine)
        dose = None if estimate is None else estimate.dose_gy
        true = float(region["dose_gy"])
        if dose is None or true <= 0:
            continue
        out.append(
            RegionScore(
                name=name,
                dose_gy=float(dose),
                truth_dose_gy=true,
                error_percent=round(100.0 * (float(dose) - true) / true, 3),
                kind=by_name[name].kind.value,
                diameter_mm=diameters.get(name),
            )
        )
    return tuple(out)


def run_demo(
    out_dir: str | Path,
    *,
    grid: int = 128,
    seed: int = 1,
    progress: bool = False,
) -> DemoResult:
    """Simulate a virtual 177Lu-PSMA patient, run the pipeline with PVC and score the doses against truth.

    ``out_dir`` receives ``patient/`` (DICOM + truth), ``recovery_curve.json``, ``study.toml`` and
    ``results/`` (the pipeline output); a second run reuses the patient and the step cache.
    """
    from theradose.pipeline.run import run_study

    if grid not in (64, 128):
        raise InputError(f"--grid must be 64 or 128; got {grid}")
    started = time.perf_counter()
    out = Path(out_dir).expanduser().resolve()
    marker = out / "demo.json"
    if out.exists() and any(out.iterdir()) and not marker.is_file():
        raise InputError(f"--out {out} exists and is not a demo folder: choose a new folder or empty it")
    out.mkdir(parents=True, exist_ok=True)
    settings = {"grid": grid, "seed": seed, "tracer": "psma", "timepoints_h": list(DEMO_TIMEPOINTS_H)}
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")).get("settings") != settings:
        raise InputError(f"--out {out} holds a demo with other settings: choose a new folder")
    say = _say(progress)
    patient = create_patient(out / "patient", seed=seed, grid=grid, say=say)
    say("recovery curve (IEC phantom)")
    curve = create_recovery_curve(out / "recovery_curve.json", grid=grid)
    simulated = time.perf_counter()
    study = write_study_file(
        patient,
        out / "study.toml",
        recovery_curve=curve,
        engines=DEMO_ENGINES,
        organ_margin_mm=organ_margin_mm(),
    )
    result = run_study(study, out / "results", progress=progress)
    pipeline_s = time.perf_counter() - simulated
    truth = json.loads((patient / "truth" / "truth.json").read_text(encoding="utf-8"))
    scores = score_regions(result.doses, truth, engine=result.doses.engines[0])
    elapsed = time.perf_counter() - started
    marker.write_text(json.dumps({"settings": settings}, indent=2) + "\n", encoding="utf-8")
    return DemoResult(scores, out / "results" / "report.html", out, elapsed, pipeline_s, simulated - started)


def _say(enabled: bool) -> Callable[[str], None]:
    if not enabled:
        return lambda _m: None
    from rich.console import Console

    console = Console(stderr=True)

    def say(message: str) -> None:
        console.print(f"[dim]·[/dim] {message}")

    return say


# ------------------------------------------------------------------------------------------ benchmark
@dataclass(frozen=True)
class Method:
    """One way of computing the doses."""

    name: str
    engine: str
    single_timepoint: str
    pvc: bool


def benchmark_methods() -> tuple[Method, ...]:
    """Methods compared: multi- vs single-time-point, each available engine, with/without PVC."""
    methods = [
        Method("multi-tp local +PVC", "local", "none", True),
        Method("multi-tp local no PVC", "local", "none", False),
        Method("STP Hänscheid 96 h local +PVC", "local", "hanscheid", True),
    ]
    for engine in stages.AVAILABLE_ENGINES:
        if engine != "local":
            methods.append(Method(f"multi-tp {engine} +PVC", engine, "none", True))
    return tuple(methods)


@dataclass(frozen=True)
class BenchmarkResult:
    """Per-region harmonisation table, raw rows and wall time."""

    methods: tuple[str, ...]
    table: tuple[dict[str, Any], ...]
    rows: tuple[dict[str, Any], ...]
    files: tuple[Path, ...]
    elapsed_s: float


def run_benchmark(
    out_dir: str | Path,
    *,
    patients: int,
    grid: int = 64,
    first_seed: int = 1,
    progress: bool = False,
) -> BenchmarkResult:
    """Run every :func:`benchmark_methods` method on ``patients`` virtual patients and tabulate the errors.

    Writes ``rows.csv`` (patient, method, region, dose, truth, error), ``harmonisation.csv`` and
    ``harmonisation.json`` (per region and method: mean and SD of the error in percent over patients;
    spread between methods = SD over methods of the per-patient doses relative to their mean, averaged
    over patients).
    """
    from theradose.pipeline.run import run_study

    if patients < 1:
        raise InputError(f"--patients must be >= 1; got {patients}")
    if grid not in (64, 128):
        raise InputError(f"--grid must be 64 or 128; got {grid}")
    started = time.perf_counter()
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and any(out.iterdir()) and not (out / "benchmark.json").is_file():
        raise InputError(f"--out {out} exists and is not a benchmark folder: choose a new folder or empty it")
    out.mkdir(parents=True, exist_ok=True)
    say = _say(progress)
    curve = create_recovery_curve(out / "recovery_curve.json", grid=grid)
    methods = benchmark_methods()
    rows: list[dict[str, Any]] = []
    for p in range(patients):
        seed = first_seed + p
        say(f"patient {p + 1}/{patients} (seed {seed})")
        patient = create_patient(out / f"patient_{seed}", seed=seed, grid=grid, say=say)
        truth = json.loads((patient / "truth" / "truth.json").read_text(encoding="utf-8"))
        for m in methods:
            slug = "".join(c if c.isascii() and c.isalnum() else "_" for c in m.name.lower())
            study = write_study_file(
                patient,
                out / f"studies/patient_{seed}_{slug}.toml",
                recovery_curve=curve if m.pvc else None,
                organ_margin_mm=organ_margin_mm() if m.pvc else None,
                engines=(m.engine,),
                single_timepoint=m.single_timepoint,
            )
            result = run_study(study, out / f"results/patient_{seed}/{slug}", cache_dir=out / ".cache")
            for s in score_regions(result.doses, truth, engine=m.engine):
                rows.append(
                    {
                        "patient": seed,
                        "method": m.name,
                        "region": s.name,
                        "dose_gy": s.dose_gy,
                        "truth_dose_gy": s.truth_dose_gy,
                        "error_percent": s.error_percent,
                    }
                )
    table = harmonisation_table(rows, [m.name for m in methods])
    files = _write_benchmark(out, rows, table, [m.name for m in methods], patients=patients, grid=grid)
    return BenchmarkResult(
        tuple(m.name for m in methods), tuple(table), tuple(rows), files, time.perf_counter() - started
    )


def harmonisation_table(rows: Sequence[dict[str, Any]], methods: Sequence[str]) -> list[dict[str, Any]]:
    """Per region: mean ± SD of the error (%) per method and the between-method spread (%).

    The spread of one patient is the standard deviation of the methods' doses divided by their mean
    (coefficient of variation, %); the table gives its mean over patients.
    """
    import statistics

    regions = list(dict.fromkeys(r["region"] for r in rows))
    patients = sorted({r["patient"] for r in rows})
    table: list[dict[str, Any]] = []
    for region in regions:
        entry: dict[str, Any] = {"region": region, "methods": {}}
        for m in methods:
            errors = [r["error_percent"] for r in rows if r["region"] == region and r["method"] == m]
            if errors:
                entry["methods"][m] = {
                    "mean_error_percent": round(statistics.fmean(errors), 3),
                    "sd_error_percent": round(statistics.stdev(errors), 3) if len(errors) > 1 else 0.0,
                    "n": len(errors),
                }
        spreads = []
        for p in patients:
            doses = [r["dose_gy"] for r in rows if r["region"] == region and r["patient"] == p]
            if len(doses) > 1 and statistics.fmean(doses) > 0:
                spreads.append(100.0 * statistics.stdev(doses) / statistics.fmean(doses))
        entry["spread_between_methods_percent"] = round(statistics.fmean(spreads), 3) if spreads else math.nan
        table.append(entry)
    return table


def _write_benchmark(
    out: Path,
    rows: Sequence[dict[str, Any]],
    table: Sequence[dict[str, Any]],
    methods: Sequence[str],
    *,
    patients: int,
    grid: int,
) -> tuple[Path, ...]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["patient"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (out / "rows.csv").write_text(buf.getvalue(), encoding="utf-8")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["region", *(f"{m} error % (mean±sd)" for m in methods), "spread between methods %"])
    for entry in table:
        cells = []
        for m in methods:
            e = entry["methods"].get(m)
            cells.append("" if e is None else f"{e['mean_error_percent']:.2f} ± {e['sd_error_percent']:.2f}")
        w.writerow([entry["region"], *cells, f"{entry['spread_between_methods_percent']:.2f}"])
    (out / "harmonisation.csv").write_text(buf.getvalue(), encoding="utf-8")
    (out / "harmonisation.json").write_text(
        json.dumps(
            {"patients": patients, "grid": grid, "methods": list(methods), "regions": list(table)}, indent=2
        )
        + "\n",
        encoding="utf-8",
    )
    (out / "benchmark.json").write_text(
        json.dumps({"patients": patients, "grid": grid}) + "\n", encoding="utf-8"
    )
    return (out / "rows.csv", out / "harmonisation.csv", out / "harmonisation.json")
