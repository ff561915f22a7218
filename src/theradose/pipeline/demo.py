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
import functools
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
#: Coverage factor of a 95 % interval of a normal distribution (JCGM 100:2008 (GUM) G.3, k = 1.96).
COVERAGE_K = 1.959963984540054
#: Standard uncertainty of the activity measured in the calibration phantom: the default of
#: ``theradose qa spect-calibration --activity-sigma-percent`` (dose calibrator), as a fraction.
CALIBRATION_ACTIVITY_RELATIVE_SIGMA = 0.02
#: Time zone of the demo's site (the reports show times in it).
DEMO_TIME_ZONE = "Europe/Berlin"


def organ_margin_mm() -> float:
    """Margin (mm) of the demo's enlarged organ VOIs: 1 FWHM of the camera's spatial resolution at the
    centre of rotation, FWHM(d) = a + b·d of the simulated MEGP collimator at d = orbit radius
    (the "system resolution" a guideline's margin of ≈ 1 FWHM refers to; MIRD Pamphlet 26)."""
    from theradose.phantoms.spect import default_system

    system = default_system()
    return round(float(system.collimator.fwhm_mm(system.radius_mm)), 1)


@dataclass(frozen=True)
class RegionScore:
    """One region's dose against the truth, with its standard uncertainty and dominant terms."""

    name: str
    dose_gy: float
    truth_dose_gy: float
    error_percent: float
    kind: str
    diameter_mm: float | None = None
    sigma_gy: float | None = None
    dominant: tuple[str, ...] = ()

    @property
    def covered(self) -> bool | None:
        """Whether the 95 % interval (±1.96 σ) holds the truth (None without σ)."""
        if self.sigma_gy is None:
            return None
        return abs(self.dose_gy - self.truth_dose_gy) <= COVERAGE_K * self.sigma_gy

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dose_gy": self.dose_gy,
            "sigma_gy": self.sigma_gy,
            "dominant": list(self.dominant),
            "truth_dose_gy": self.truth_dose_gy,
            "error_percent": self.error_percent,
            "covered_95": self.covered,
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
    """Simulate and write a virtual 177Lu-PSMA patient (reused if ``folder`` already holds one). Its truth
    dose is local deposition of the electron energy of the true TIA map, computed by the phantom package
    (:func:`theradose.phantoms.kinetics.truth_dose`), not by the pipeline's dose engines."""
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
        dose_engine=DoseEngine.LOCAL,
        progress=say,
    )
    write_patient_study(study, folder, progress=say)
    return folder


def create_resolution(path: Path, *, grid: int, seed: int = 1) -> Path:
    """Effective resolution (JSON, :class:`theradose.imaging.pvc.resolution.EffectiveResolution`) from the
    same simulated NEMA IEC fills as :func:`create_recovery_curve` (acquired and reconstructed like the
    patient): the recovery-matched FWHM of each sphere by diameter and contrast. Reused if ``path``
    exists."""
    from theradose.imaging.pvc.resolution import effective_resolution, measure_spheres

    if path.is_file():
        return path
    measurements = []
    for ratio in IEC_SPHERE_TO_BACKGROUND:
        phantom, measured = _iec_acquisition(grid=grid, seed=seed, sphere_to_background=ratio)
        inverse = np.linalg.inv(phantom.grid.affine())
        centres = [(inverse @ np.array([*c, 1.0]))[:3] for c in phantom.sphere_centres_mm]
        measurements += measure_spheres(
            measured,
            phantom.grid.spacing_mm,
            centres_voxel=centres,
            diameters_mm=phantom.sphere_diameters_mm,
            sphere_bq_per_ml=phantom.sphere_concentration_bq_per_ml,
            background_bq_per_ml=phantom.background_concentration_bq_per_ml,
        )
    resolution = effective_resolution(
        measurements, source="simulated NEMA IEC fills, camera and OSEM as the patient"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(resolution.as_dict(), indent=1) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


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


@functools.lru_cache(maxsize=4)
def _iec_acquisition(*, grid: int, seed: int, sphere_to_background: float) -> tuple[Any, np.ndarray]:
    """A simulated IEC fill acquired and reconstructed like the demo patient: (phantom, Bq/mL image)."""
    from theradose.phantoms.osem import reconstruct
    from theradose.phantoms.physical import iec_body_phantom
    from theradose.phantoms.spect import default_system, mu_map_from_hu, simulate_spect

    phantom = iec_body_phantom(
        spacing_mm=_voxel_mm(grid), sphere_to_background=sphere_to_background, activity_mbq=500.0
    )
    mu = mu_map_from_hu(phantom.hu)
    system = default_system().with_(n_views=_views(grid))
    acquisition = simulate_spect(phantom.activity_mbq, mu, phantom.grid.spacing_mm, system=system, seed=seed)
    recon = reconstruct(acquisition, mu, iterations=DEMO_ITERATIONS, subsets=DEMO_SUBSETS)
    return phantom, np.asarray(recon.concentration_bq_per_ml, dtype=np.float64)


def _iec_recovery(*, grid: int, seed: int, sphere_to_background: float) -> dict[str, Any]:
    """One IEC phantom's fitted recovery curve and measured points (see :func:`create_recovery_curve`)."""
    from theradose.qa.spect import fit_recovery_curve
    from theradose.units import mm3_to_ml

    phantom, measured = _iec_acquisition(grid=grid, seed=seed, sphere_to_background=sphere_to_background)
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


def create_calibration_record(path: Path, *, injection: str) -> Path:
    """The QA record of the simulated camera's SPECT calibration (the JSON of ``theradose qa
    spect-calibration --json``): the factor is the simulated camera's sensitivity, which the phantom's
    reconstruction uses, so its images are exactly calibrated; the record states the uncertainty a
    calibration with a dose-calibrator reading of :data:`CALIBRATION_ACTIVITY_RELATIVE_SIGMA` has
    (Poisson counts of a calibration phantom are negligible next to it). Measured 7 days before the
    administration."""
    from datetime import datetime, timedelta

    from theradose.phantoms.spect import default_system

    system = default_system()
    factor = float(system.sensitivity_cps_per_mbq)
    measured = datetime.fromisoformat(injection) - timedelta(days=7)
    record = {
        "calibration_factor_cps_per_mbq": factor,
        "sigma": factor * CALIBRATION_ACTIVITY_RELATIVE_SIGMA,
        "acquisition_datetime": measured.isoformat(),
        "camera": "simulated dual-head SPECT, MEGP collimator (theradose.phantoms)",
        "note": "simulated camera: sensitivity as simulated; sigma from a 2 % dose-calibrator reading",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


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
    resolution: Path | None = None,
    calibration_record: Path | None = None,
    earlier_cycle: Path | None = None,
    cycle: int = 1,
    typed_administration: bool = True,
) -> Path:
    """Write a study file for a phantom patient folder (labels from the truth label map).

    With ``resolution`` every region gets the model-based (geometric transfer matrix) partial-volume
    correction; otherwise, with ``organ_margin_mm`` every organ region (not a tumour, not the whole body)
    gets the enlarged-VOI correction with that margin and, with ``recovery_curve``, the tumours the
    recovery-curve correction. ``calibration_record`` names the camera's QA record; ``earlier_cycle``
    (with ``single_timepoint = "earlier_cycle"``) the dose record of an earlier cycle. Without
    ``typed_administration`` the file names no patient id, cycle or administration: they come from the
    service's record (``theradose run --administration``)."""
    truth = json.loads((patient_root / "truth" / "truth.json").read_text(encoding="utf-8"))
    tumour_names = [t["name"] for t in truth["tumours"]]
    tumour_regions = [n for n in [*tumour_names, "tumours"] if n in truth["regions"]]
    lines = [f"seed = {int(truth['seed'])}"]
    if typed_administration:
        lines += [
            f"cycle = {int(cycle)}",
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
    lines += ["[site]", f"time_zone = {_toml_string(DEMO_TIME_ZONE)}", ""]
    lines += ["[calibration]", 'mode = "bqml"']
    if calibration_record is not None:
        lines.append(f"record = {_toml_string(str(calibration_record))}")
    lines += [
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
        *([f"earlier_cycle = {_toml_string(str(earlier_cycle))}"] if earlier_cycle is not None else []),
        "",
        "[dose]",
        f"engines = {json.dumps([str(e) for e in engines])}",
        "# the first engine's voxel dose is the dose of each region: like-for-like with the phantom's truth",
        f"reference = {_toml_string(str(engines[0]))}",
        "",
    ]
    if resolution is not None:
        lines += ["[pvc]", 'method = "gtm"', f"resolution = {_toml_string(str(resolution))}", ""]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines), encoding="utf-8")
        return path
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
        budget = by_name[name].uncertainty if engine == doses.reference_dose else None
        out.append(
            RegionScore(
                name=name,
                dose_gy=float(dose),
                truth_dose_gy=true,
                error_percent=round(100.0 * (float(dose) - true) / true, 3),
                kind=by_name[name].kind.value,
                diameter_mm=diameters.get(name),
                sigma_gy=None if estimate is None else estimate.dose_sigma_gy,
                dominant=() if budget is None else budget.dominant,
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

    ``out_dir`` receives ``patient/`` (DICOM + truth), ``resolution.json`` (the effective resolution
    measured on simulated IEC fills, for the model-based partial-volume correction), ``study.toml`` and
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
    say("effective resolution (IEC phantom)")
    resolution = create_resolution(out / "resolution.json", grid=grid)
    simulated = time.perf_counter()
    truth_file = json.loads((patient / "truth" / "truth.json").read_text(encoding="utf-8"))
    calibration = create_calibration_record(
        out / "spect_calibration.json", injection=str(truth_file["injection_datetime"])
    )
    study = write_study_file(
        patient,
        out / "study.toml",
        recovery_curve=None,
        engines=DEMO_ENGINES,
        resolution=resolution,
        calibration_record=calibration,
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


# ------------------------------------------------------------------------------------------ coverage
#: Budget components whose errors a virtual patient contains: its images are simulated and reconstructed
#: (partial-volume and reconstruction errors: ``recovery``; noise, kinetics and model choice:
#: ``fit_tia``; ``registration`` when a registration ran). The others are not realised in a phantom: the
#: simulated camera is exactly calibrated, the segmentation is the truth label map, the truth dose uses
#: the same dose factor (local deposition) and decay data. Intervals from these components alone are
#: the strict test of the budget's image-derived part.
PHANTOM_REALISED_COMPONENTS: tuple[str, ...] = ("recovery", "fit_tia", "registration")


@dataclass(frozen=True)
class CoverageRow:
    """One region of one patient: the dose, its full and its phantom-realised standard uncertainty, the
    truth and whether each 95 % interval holds it."""

    patient: str
    region: str
    kind: str
    dose_gy: float
    sigma_gy: float
    realised_sigma_gy: float
    truth_dose_gy: float
    dominant: tuple[str, ...]
    flags: tuple[str, ...]
    contributions: tuple[tuple[str, float], ...] = ()

    def sigma_of(self, components: Sequence[str]) -> float:
        """σ (Gy) from ``components`` alone: the root sum of squares of their relative contributions
        |a_i|·u_i (uncorrelated) times the dose."""
        chosen = [c for name, c in self.contributions if name in components]
        return self.dose_gy * math.sqrt(sum(c * c for c in chosen))

    def covered_by(self, components: Sequence[str]) -> bool:
        """The 95 % interval from ``components`` alone holds the truth."""
        return abs(self.dose_gy - self.truth_dose_gy) <= COVERAGE_K * self.sigma_of(components)

    @property
    def z(self) -> float:
        """(dose − truth)/σ."""
        return (self.dose_gy - self.truth_dose_gy) / self.sigma_gy if self.sigma_gy > 0 else math.inf

    @property
    def covered(self) -> bool:
        """The full budget's 95 % interval holds the truth."""
        return abs(self.dose_gy - self.truth_dose_gy) <= COVERAGE_K * self.sigma_gy

    @property
    def covered_realised(self) -> bool:
        """The interval from the phantom-realised components alone holds the truth."""
        return abs(self.dose_gy - self.truth_dose_gy) <= COVERAGE_K * self.realised_sigma_gy

    def as_dict(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "region": self.region,
            "kind": self.kind,
            "dose_gy": self.dose_gy,
            "sigma_gy": self.sigma_gy,
            "realised_sigma_gy": self.realised_sigma_gy,
            "truth_dose_gy": self.truth_dose_gy,
            "error_percent": round(100.0 * (self.dose_gy / self.truth_dose_gy - 1.0), 3),
            "z": round(self.z, 3),
            "covered_95": self.covered,
            "covered_95_realised": self.covered_realised,
            "dominant": " ".join(self.dominant),
            "flags": " ".join(self.flags),
        }


def coverage_rows(
    doses: StudyDoses,
    truth: dict[str, Any],
    *,
    patient: str,
    realised: Sequence[str] = PHANTOM_REALISED_COMPONENTS,
) -> list[CoverageRow]:
    """Every truth region with a budget: its reference dose and σ against the truth dose.

    The realised σ propagates only ``realised`` components (their contributions |a_i|·u_i, with their
    correlations ignored: the realised components are uncorrelated in the budget)."""
    rows: list[CoverageRow] = []
    for region in doses.regions:
        entry = truth["regions"].get(region.name)
        budget = region.uncertainty
        if entry is None or budget is None or float(entry["dose_gy"]) <= 0:
            continue
        realised_rel = math.sqrt(
            sum(c.relative_contribution**2 for c in budget.components if c.name in realised)
        )
        rows.append(
            CoverageRow(
                patient=patient,
                region=region.name,
                kind=region.kind.value,
                dose_gy=budget.dose_gy,
                sigma_gy=budget.dose_sigma_gy,
                realised_sigma_gy=budget.dose_gy * realised_rel,
                truth_dose_gy=float(entry["dose_gy"]),
                dominant=budget.dominant,
                flags=region.all_flags,
                contributions=tuple((c.name, c.relative_contribution) for c in budget.components),
            )
        )
    return rows


@dataclass(frozen=True)
class CoverageResult:
    """Coverage of the 95 % intervals over every region of every patient."""

    rows: tuple[CoverageRow, ...]
    files: tuple[Path, ...]
    elapsed_s: float

    @property
    def coverage(self) -> float:
        """Fraction of regions whose full-budget 95 % interval holds the truth."""
        return sum(r.covered for r in self.rows) / len(self.rows) if self.rows else math.nan

    @property
    def coverage_realised(self) -> float:
        """The same with the phantom-realised components only."""
        return sum(r.covered_realised for r in self.rows) / len(self.rows) if self.rows else math.nan

    def coverage_of(self, components: Sequence[str]) -> float:
        """Fraction of regions whose 95 % interval from ``components`` alone holds the truth."""
        return sum(r.covered_by(components) for r in self.rows) / len(self.rows) if self.rows else math.nan

    def summary(self) -> dict[str, Any]:
        """Coverage overall and per region kind, and the regions outside their interval."""
        out: dict[str, Any] = {
            "regions": len(self.rows),
            "coverage_95": round(self.coverage, 4),
            "coverage_95_realised_components": round(self.coverage_realised, 4),
            "realised_components": list(PHANTOM_REALISED_COMPONENTS),
            "coverage_95_fit_term_alone": round(self.coverage_of(("fit_tia",)), 4),
            "missed_realised": [
                f"{r.patient}/{r.region} ({r.as_dict()['error_percent']:+.1f} %, realised σ "
                f"{100 * r.realised_sigma_gy / r.dose_gy:.1f} %)"
                for r in self.rows
                if not r.covered_realised
            ],
            "missed": [
                f"{r.patient}/{r.region} ({r.as_dict()['error_percent']:+.1f} %, z {r.z:+.2f})"
                for r in self.rows
                if not r.covered
            ],
        }
        for kind in ("organ", "tumour"):
            subset = [r for r in self.rows if r.kind == kind]
            if subset:
                out[f"coverage_95_{kind}"] = round(sum(r.covered for r in subset) / len(subset), 4)
        return out


def run_coverage(
    out_dir: str | Path,
    *,
    patients: int = 3,
    grid: int = 64,
    first_seed: int = 1,
    patient_folders: Sequence[Path] = (),
    progress: bool = False,
) -> CoverageResult:
    """Run the demo's method (multi-time-point, local deposition, the model-based partial-volume
    correction with the effective resolution measured on the IEC phantom, the camera's calibration record)
    on virtual patients and score each region's 95 % interval against the truth.

    ``patient_folders`` runs on existing patient folders instead (each with ``truth/truth.json`` and the
    DICOM time points, the layout of :func:`theradose.io.phantoms.write_patient_study`), e.g. the
    patients of a virtual multicentre trial; otherwise ``patients`` virtual patients (seeds
    ``first_seed``...) are simulated at ``grid``. Writes ``coverage.csv`` (one row per region and
    patient) and ``coverage.json`` (the summary).
    """
    from theradose.pipeline.run import run_study

    started = time.perf_counter()
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    say = _say(progress)
    resolution = create_resolution(out / "resolution.json", grid=grid)
    folders = list(patient_folders) or [
        create_patient(out / f"patient_{first_seed + i}", seed=first_seed + i, grid=grid, say=say)
        for i in range(patients)
    ]
    rows: list[CoverageRow] = []
    for folder in folders:
        say(f"pipeline {folder.name}")
        truth = json.loads((folder / "truth" / "truth.json").read_text(encoding="utf-8"))
        calibration = create_calibration_record(
            out / "calibration" / f"{folder.name}.json", injection=str(truth["injection_datetime"])
        )
        study = write_study_file(
            folder, out / "studies" / f"{folder.name}.toml", recovery_curve=None, engines=DEMO_ENGINES,
            resolution=resolution, calibration_record=calibration,
        )  # fmt: skip
        result = run_study(study, out / "results" / folder.name, cache_dir=out / ".cache")
        rows += coverage_rows(result.doses, truth, patient=folder.name)
    coverage = CoverageResult(tuple(rows), (), time.perf_counter() - started)
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(rows[0].as_dict()) if rows else ["patient"], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(r.as_dict() for r in rows)
    (out / "coverage.csv").write_text(buf.getvalue(), encoding="utf-8")
    (out / "coverage.json").write_text(json.dumps(coverage.summary(), indent=2) + "\n", encoding="utf-8")
    return CoverageResult(coverage.rows, (out / "coverage.csv", out / "coverage.json"), coverage.elapsed_s)
