"""The study orchestrator: DICOM time points → registered SPECT → regions → TACs → TIA → dose → report.

:func:`run_study` runs every stage of a validated :class:`~theradose.pipeline.spec.StudySpec` through the
adapters of :mod:`theradose.pipeline.stages`, caching each step's result by content hash (inputs,
parameters, theradose version) so that a re-run recomputes only what changed. The results are written into
a temporary sibling folder that is renamed to ``out_dir`` only when everything (``provenance.json`` last)
is written: an interrupted run never leaves an output folder that looks complete. The numbers depend only
on the inputs and the study's ``seed``; ``doses.json`` is byte-for-byte reproducible.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import io
import json
import math
import os
import platform
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError
from theradose.imaging.volume import Volume
from theradose.pipeline import stages
from theradose.pipeline.cache import StepCache, key_of, tree_hash
from theradose.pipeline.spec import StudySpec, load_study

DOSES_FORMAT = "theradose-doses"
DOSES_VERSION = 1
#: Relative standard uncertainty of each quantitative SPECT activity measurement (EANM guidance on
#: uncertainty in MRT dosimetry: Gear et al. 2018, Eur J Nucl Med Mol Imaging 45:2456, section on
#: calibration and recovery; ~5 % is typical of calibrated 177Lu SPECT/CT).
ACTIVITY_RELATIVE_SIGMA = 0.05
#: Bins of each region's DVH.
DVH_BINS = 100
#: Packages whose versions are recorded in provenance.json.
PROVENANCE_PACKAGES = (
    "numpy",
    "scipy",
    "lmfit",
    "pydicom",
    "highdicom",
    "SimpleITK",
    "nibabel",
    "matplotlib",
)


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_study` produced.

    Attributes
    ----------
    out_dir : Path
        The completed output folder.
    doses : dict
        The content of ``doses.json``.
    files : tuple of str
        Output files (relative to ``out_dir``).
    cache_hits, cache_misses : tuple of str
        Steps taken from the cache and steps computed.
    elapsed_s : float
        Wall time.
    """

    out_dir: Path
    doses: dict[str, Any]
    files: tuple[str, ...]
    cache_hits: tuple[str, ...]
    cache_misses: tuple[str, ...]
    elapsed_s: float


@dataclass
class StudyResults:
    """Everything computed for one study (input of the writers and of the report)."""

    spec: StudySpec
    aligned: stages.AlignedStudy
    region_set: stages.RegionSet
    density_g_per_ml: npt.NDArray[np.float64]
    kinetics: dict[str, stages.RegionKinetics]
    tia_map: Volume
    dose_maps: dict[str, Volume]
    doses: dict[str, Any]
    dvhs: dict[str, dict[str, stages.Dvh]] = field(default_factory=dict)
    #: Next-cycle plan (:class:`theradose.pipeline.plan.StudyPlan`) when the study names a plan file.
    plan: Any = None


# ------------------------------------------------------------------------------------------ progress
class _Progress:
    """Rich progress bar on stderr (or nothing)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self._bar: Any = None
        self._task: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description:<28}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._bar.add_task("pipeline", total=total)

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def step(self, name: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=name)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)


# ------------------------------------------------------------------------------------------ helpers
def _round(value: float | None, digits: int = 6) -> float | None:
    """Round to ``digits`` significant digits for the tables (None/NaN → None)."""
    if value is None or not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return float(f"{value:.{digits}g}")


def _time_after_administration_h(spec: StudySpec) -> list[float]:
    from theradose.pipeline.spec import check_dicom_headers
    from theradose.units import seconds_to_hours

    headers = check_dicom_headers(spec)
    return [
        float(seconds_to_hours((h.acquisition_datetime - spec.administration.datetime).total_seconds()))
        for h in headers
    ]


def check_out_dir(out_dir: Path) -> None:
    """Refuse an output folder that holds something other than a previous theradose run."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError(f"--out {out_dir} is a file: choose a folder")
        entries = {p.name for p in out_dir.iterdir()}
        if entries and not ({"provenance.json", "doses.json"} <= entries or entries == {".cache"}):
            raise InputError(
                f"--out {out_dir} exists and is not a theradose output folder: choose a new folder or "
                f"empty it"
            )


@contextlib.contextmanager
def _staging(out_dir: Path) -> Iterator[Path]:
    """A temporary sibling folder, renamed to ``out_dir`` on success (replacing a previous run), else
    removed."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temp = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        yield temp
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    old = None
    if out_dir.exists():
        cache = out_dir / ".cache"
        if cache.is_dir() and not (temp / ".cache").exists():
            os.replace(cache, temp / ".cache")
        old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out_dir, old)
    os.replace(temp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------ compute
def compute_study(
    spec: StudySpec,
    *,
    cache: StepCache,
    progress: _Progress | None = None,
) -> StudyResults:
    """Run every computational stage of ``spec`` (no files written except cache entries)."""
    from theradose.units import mbq_to_gbq

    say = progress or _Progress(False, 0)
    nuclide = spec.administration.nuclide

    say.step("checking inputs")
    time_h = _time_after_administration_h(spec)
    order = sorted(range(len(time_h)), key=lambda i: time_h[i])
    reference = order.index(spec.reference_timepoint)
    # positions in the study file → positions in acquisition order
    kinetics_spec = dataclasses.replace(spec.kinetics, stp_timepoint=order.index(spec.kinetics.stp_timepoint))
    input_hashes = {
        str(i): tree_hash([p for p in (tp.spect, tp.ct) if p is not None])
        for i, tp in enumerate(spec.timepoints)
    }
    say.done()

    say.step("loading time points")
    load_keys: list[str] = []
    loaded: list[stages.LoadedTimepoint] = []
    for i in order:
        tp = spec.timepoints[i]
        key = key_of(
            "load",
            {
                "files": input_hashes[str(i)],
                "series_uid": tp.series_uid,
                "ct_series_uid": tp.ct_series_uid,
                "calibration": spec.calibration,
                "factor": spec.calibration_factor_cps_per_mbq,
                "time_h": time_h[i],
            },
        )
        load_keys.append(key)
        loaded.append(
            cache.get_or_compute(
                "load", key, functools.partial(stages.load_timepoint, tp, spec, time_h=time_h[i])
            )
        )
    say.done()

    say.step(f"registration ({spec.registration})")
    reg_key = key_of(
        "register",
        {"loads": load_keys, "method": spec.registration, "reference": reference, "seed": spec.seed},
    )
    aligned = cache.get_or_compute(
        "register",
        reg_key,
        lambda: stages.register_timepoints(
            loaded, method=spec.registration, reference=reference, seed=spec.seed
        ),
    )
    grid = aligned.spect[reference]
    say.done()

    say.step("regions")
    seg = spec.segmentation
    seg_files = tree_hash([seg.path]) if seg.path is not None else {}
    mask_key = key_of(
        "masks",
        {
            "register": reg_key,
            "source": seg.source,
            "files": seg_files,
            "regions": {k: list(map(str, v)) for k, v in seg.regions.items()},
            "threshold": seg.threshold_percent,
        },
    )
    region_set = cache.get_or_compute(
        "masks", mask_key, lambda: stages.region_masks(seg, grid, ct=aligned.ct)
    )
    density = stages.density_map_g_per_ml(aligned.ct, grid)
    voxel_mass_g = density * grid.voxel_volume_ml
    say.done()

    say.step("time-activity curves and fits")
    activity = [stages.activity_mbq_per_voxel(v) for v in aligned.spect]
    times = list(aligned.time_h)
    curve = None
    if spec.pvc.enabled:
        assert spec.pvc.recovery_curve is not None
        curve = stages.read_recovery_curve(spec.pvc.recovery_curve)
    pvc_regions = set(spec.pvc.regions or spec.tumour_regions) if spec.pvc.enabled else set()
    tumours_set = set(spec.tumour_regions)

    def fit_key(name: str, tac: list[float], recovery: float) -> str:
        return key_of(
            "fit",
            {
                "tac": tac,
                "time_h": times,
                "recovery": recovery,
                "kinetics": [
                    spec.kinetics.model,
                    spec.kinetics.single_timepoint,
                    kinetics_spec.stp_timepoint,
                    dict(spec.kinetics.effective_half_life_h),
                ],
                "region": name,
                "nuclide": nuclide,
                "sigma": ACTIVITY_RELATIVE_SIGMA,
            },
        )

    def fit(name: str, tac: list[float], recovery: float) -> stages.RegionKinetics:
        return cache.get_or_compute(
            "fit",
            fit_key(name, tac, recovery),
            lambda: stages.fit_region(
                times,
                tac,
                kinetics=kinetics_spec,
                nuclide=nuclide,
                region=name,
                relative_sigma=ACTIVITY_RELATIVE_SIGMA,
                recovery=recovery,
            ),
        )

    # Partial-volume correction per partition label (a label is one connected structure of the
    # segmentation, e.g. one tumour): its activity is divided by the recovery coefficient of its volume.
    pvc_labels = {
        label for name in pvc_regions if name in region_set.regions for label in region_set.regions[name]
    }
    label_tac: dict[int, list[float]] = {}
    label_recovery: dict[int, float] = {}
    pvc_mask = np.isin(region_set.labels, sorted(pvc_labels))
    for label in np.unique(region_set.labels).tolist():
        lmask = region_set.labels == label
        raw = [float(a[lmask].sum()) for a in activity]
        corrected = raw
        if curve is not None and label in pvc_labels and label != stages.REMAINDER_LABEL:
            from theradose.qa.spect import partial_volume_correct

            volume_ml = float(np.count_nonzero(lmask)) * grid.voxel_volume_ml
            by_contrast = None
            if isinstance(curve, stages.ContrastRecovery):
                by_contrast = functools.partial(curve.recovery, volume_ml)
                recovery = curve.recovery(volume_ml, curve.sphere_to_background[0])
            else:
                recovery = 1.0 / partial_volume_correct(1.0, volume_ml, curve, allow_extrapolation=True)
            shell = (
                stages.background_shell(
                    lmask, pvc_mask, spacing_mm=grid.spacing_mm, width_mm=spec.pvc.background_shell_mm
                )
                if spec.pvc.spill_in
                else None
            )
            corrected = stages.pvc_tac(
                activity, lmask, recovery=recovery, shell=shell, recovery_at_contrast=by_contrast
            )
        label_recovery[int(label)] = raw[-1] / corrected[-1] if corrected[-1] > 0 else 1.0
        label_tac[int(label)] = corrected

    # Organ partial-volume correction: each organ label's total activity from its enlarged VOI (CT outline
    # plus a margin of ≈ 1 FWHM, neighbour-aware, background from a shell beyond the margin); the counts
    # so collected are taken off the TACs of the labels they lay in (total activity is conserved).
    if spec.pvc.organs == "enlarged_voi":
        assert spec.pvc.margin_mm is not None
        organ_labels = sorted(
            {label for n in spec.pvc.organ_regions for label in region_set.regions.get(n, ())}
            - pvc_labels
            - {stages.REMAINDER_LABEL}
        )
        tumour_labels = {label for n in tumours_set for label in region_set.regions.get(n, ())}
        vois = stages.enlarged_vois(
            region_set.labels,
            organ_labels,
            exclude=sorted(tumour_labels | pvc_labels),
            spacing_mm=grid.spacing_mm,
            margin_mm=spec.pvc.margin_mm,
            shell_mm=spec.pvc.background_shell_mm,
        )
        taken: dict[int, npt.NDArray[np.float64]] = {}
        for label in organ_labels:
            total, moved = stages.enlarged_voi_tac(
                activity,
                region_set.labels,
                label,
                vois.band[label],
                vois.shell[label],
                voxel_mass_g=voxel_mass_g,
            )
            # a tumour inside the organ's VOI: its spill-out is in the VOI, so count its raw activity
            # and take off its own (partial-volume corrected) activity: A_organ = A_VOI − A_tumour.
            for inner in vois.enclosed.get(label, ()):
                inner_mask = region_set.labels == inner
                total = [
                    max(t + float(a[inner_mask].sum()) - c, 0.0)
                    for t, a, c in zip(total, activity, label_tac[inner], strict=True)
                ]
            raw_last = label_tac[label][-1]
            label_tac[label] = total
            label_recovery[label] = raw_last / total[-1] if total[-1] > 0 else 1.0
            for source, moved_mbq in moved.items():
                taken[source] = taken.get(source, np.zeros(len(times))) + np.asarray(moved_mbq)
        for source, taken_mbq in taken.items():
            label_tac[source] = [
                max(a - float(m), 0.0) for a, m in zip(label_tac[source], taken_mbq, strict=True)
            ]

    kinetics: dict[str, stages.RegionKinetics] = {}
    masks: dict[str, npt.NDArray[np.bool_]] = {}
    for name, labels in region_set.regions.items():
        masks[name] = region_set.mask(name)
        tac = [sum(label_tac[label][t] for label in labels) for t in range(len(times))]
        raw_total = sum(label_tac[label][-1] * label_recovery[label] for label in labels)
        recovery = raw_total / tac[-1] if tac[-1] > 0 else 1.0
        kinetics[name] = fit(name, tac, recovery)
    label_tia = {
        label: fit(f"label:{label}", tac, label_recovery[label]).tia_mbq_h for label, tac in label_tac.items()
    }
    say.done()

    say.step("voxel time-integrated activity")
    tia_key = key_of("tia", {"masks": mask_key, "register": reg_key, "labels": label_tia})
    tia_array = cache.get_or_compute(
        "tia", tia_key, lambda: stages.voxel_tia_map(times, activity, region_set.labels, label_tia)
    )
    tia_map = grid.with_array(tia_array, unit="MBq·h")
    say.done()

    dose_maps: dict[str, Volume] = {}
    for engine in spec.dose.engines:
        say.step(f"dose ({engine})")
        dkey = key_of(
            "dose",
            {
                "tia": tia_key,
                "register": reg_key,
                "engine": engine,
                "seed": spec.seed,
                "photons": spec.dose.mc_photons,
            },
        )
        dose_maps[engine] = cache.get_or_compute(
            "dose",
            dkey,
            functools.partial(
                stages.voxel_dose_gy,
                tia_map,
                density,
                nuclide,
                engine=engine,
                seed=spec.seed,
                mc_photons=spec.dose.mc_photons,
            ),
        )
        say.done()

    say.step("region doses, DVH, BED")
    gbq = float(mbq_to_gbq(spec.administration.activity_mbq))
    region_rows: list[dict[str, Any]] = []
    mass_by_region = {name: float(voxel_mass_g[m].sum()) for name, m in masks.items()}
    organ = (
        stages.organ_doses(
            {n: (mass_by_region[n], k.tia_mbq_h, k.tia_sigma_mbq_h) for n, k in kinetics.items()},
            nuclide,
            tumours=spec.tumour_regions,
            administered_activity_mbq=spec.administration.activity_mbq,
        )
        if spec.dose.organ
        else {}
    )
    dvhs: dict[str, dict[str, stages.Dvh]] = {}
    tumours = set(spec.tumour_regions)
    for name, mask in masks.items():
        k = kinetics[name]
        mass = mass_by_region[name]
        rel_sigma = k.tia_sigma_mbq_h / k.tia_mbq_h if k.tia_mbq_h > 0 else math.nan
        engine_doses: dict[str, Any] = {}
        for engine_name, dmap in dose_maps.items():
            values = np.asarray(dmap.array, dtype=np.float64)
            weights = voxel_mass_g[mask]
            mean = float((values[mask] * weights).sum() / weights.sum()) if weights.sum() > 0 else math.nan
            engine_doses[engine_name] = {
                "dose_gy": _round(mean),
                "dose_sigma_gy": _round(mean * rel_sigma),
                "dose_gy_per_gbq": _round(mean / gbq),
            }
            dvhs.setdefault(name, {})[engine_name] = stages.region_dvh(values, mask, n_bins=DVH_BINS)
        tissue = spec.tissue(name)
        first = spec.dose.engines[0]
        bed_source = engine_doses[first]["dose_gy"]
        bed = (
            stages.region_bed_gy(bed_source, tissue=tissue, effective_half_life_h=k.effective_half_life_h)
            if bed_source is not None
            else None
        )
        row: dict[str, Any] = {
            "name": name,
            "kind": "tumour" if name in tumours else "organ",
            "volume_ml": _round(float(np.count_nonzero(mask)) * grid.voxel_volume_ml),
            "mass_g": _round(mass),
            "tia_mbq_h": _round(k.tia_mbq_h),
            "tia_sigma_mbq_h": _round(k.tia_sigma_mbq_h),
            "kinetics_model": k.model,
            "effective_half_life_h": _round(k.effective_half_life_h),
            "recovery_coefficient": _round(k.recovery),
            "doses": engine_doses,
            "tissue": tissue,
            "bed_gy": _round(bed),
        }
        if name in organ:
            od = organ[name]
            row["organ_dose"] = {
                "dose_gy": _round(od.dose_gy),
                "dose_sigma_gy": _round(od.dose_sigma_gy),
                "dose_gy_per_gbq": _round(od.dose_gy / gbq),
                "method": od.method,
            }
        region_rows.append(row)
    say.done()

    adm = spec.administration
    doses: dict[str, Any] = {
        "format": DOSES_FORMAT,
        "version": DOSES_VERSION,
        "patient": {"id": spec.patient.patient_id, "name": spec.patient.name},
        "cycle": spec.cycle,
        "administration": {
            "nuclide": adm.nuclide,
            "radiopharmaceutical": adm.radiopharmaceutical,
            "activity_mbq": adm.activity_mbq,
            "datetime": adm.datetime.isoformat(),
        },
        "timepoints_h": [_round(t) for t in times],
        "registration": {"method": aligned.method, "reference_timepoint": reference + 1},
        "engines": list(spec.dose.engines),
        "partial_volume_correction": bool(spec.pvc.enabled),
        "organ_partial_volume_correction": (
            {"method": spec.pvc.organs, "margin_mm": spec.pvc.margin_mm}
            if spec.pvc.organs != "none"
            else None
        ),
        "regions": region_rows,
    }
    return StudyResults(spec, aligned, region_set, density, kinetics, tia_map, dose_maps, doses, dvhs)


# ------------------------------------------------------------------------------------------ outputs
def doses_json_text(doses: Mapping[str, Any]) -> str:
    """The exact text of ``doses.json`` (stable key order, 2-space indent, trailing newline)."""
    return json.dumps(doses, indent=2, ensure_ascii=False) + "\n"


def dvh_json_text(dvhs: Mapping[str, Mapping[str, stages.Dvh]], engines: list[str] | tuple[str, ...]) -> str:
    """``dvh.json``: ``{region: {engine: {"dose_gy": [...], "cumulative_fraction": [...]}}}``.

    Per region and engine (in the study's engine order) the cumulative DVH (ICRU Report 83, section 2.3):
    ``dose_gy`` are the :data:`DVH_BINS` + 1 bin edges from 0 to the region's maximum dose and
    ``cumulative_fraction`` the fraction of the region's volume receiving at least each, 6 significant
    digits. This is the shape the web UI's dosimetry review reads.
    """
    out = {
        region: {
            engine: {
                "dose_gy": [_round(v) for v in by_engine[engine].dose_gy],
                "cumulative_fraction": [_round(v) for v in by_engine[engine].cumulative_fraction],
            }
            for engine in engines
            if engine in by_engine
        }
        for region, by_engine in dvhs.items()
    }
    return json.dumps(out, indent=1) + "\n"


def doses_csv_text(doses: Mapping[str, Any]) -> str:
    """``doses.csv``: one row per region, one dose column group per engine (and organ-level)."""
    engines = list(doses["engines"])
    header = ["region", "kind", "mass_g", "tia_mbq_h", "tia_sigma_mbq_h", "kinetics_model"]
    for e in engines:
        header += [f"dose_{e}_gy", f"dose_{e}_sigma_gy", f"dose_{e}_gy_per_gbq"]
    header += ["organ_dose_gy", "organ_dose_sigma_gy", "bed_gy"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in doses["regions"]:
        row = [r["name"], r["kind"], r["mass_g"], r["tia_mbq_h"], r["tia_sigma_mbq_h"], r["kinetics_model"]]
        for e in engines:
            d = r["doses"][e]
            row += [d["dose_gy"], d["dose_sigma_gy"], d["dose_gy_per_gbq"]]
        od = r.get("organ_dose") or {}
        row += [od.get("dose_gy"), od.get("dose_sigma_gy"), r["bed_gy"]]
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def write_outputs(results: StudyResults, folder: Path) -> list[str]:
    """Write every requested output of ``results`` into ``folder`` (``provenance.json`` excepted)."""
    spec = results.spec
    files: list[str] = []

    def add(name: str) -> Path:
        files.append(name)
        return folder / name

    add("doses.json").write_text(doses_json_text(results.doses), encoding="utf-8")
    add("dvh.json").write_text(dvh_json_text(results.dvhs, spec.dose.engines), encoding="utf-8")
    if "csv" in spec.formats:
        add("doses.csv").write_text(doses_csv_text(results.doses), encoding="utf-8")
    if "nifti" in spec.formats:
        from theradose.io.nifti import write_nifti

        for engine, dmap in results.dose_maps.items():
            write_nifti(
                dmap.with_array(np.asarray(dmap.array, dtype=np.float32)), add(f"dose_{engine}.nii.gz")
            )
        write_nifti(
            results.tia_map.with_array(results.tia_map.array.astype(np.float32)), add("tia_mbq_h.nii.gz")
        )
    if "dicom" in spec.formats:
        from theradose.io.dicom import write_rtdose

        # RT Dose joins the study and frame of reference of the reference SPECT it was computed on and takes
        # its patient module from those images (not from the study file)
        reference_spect = _reference_spect_files(spec)
        for number, (engine, dmap) in enumerate(results.dose_maps.items(), start=50):
            write_rtdose(
                dmap,
                add(f"dose_{engine}.dcm"),
                reference_files=reference_spect,
                series_number=number,
                series_description=f"Absorbed dose ({engine}) cycle {spec.cycle}",
                comment=f"theradose {engine} engine, {spec.administration.nuclide}",
            )
        seg_path = _write_segmentation(results, folder / "segmentation.dcm")
        if seg_path is not None:
            files.append("segmentation.dcm")
    if "html" in spec.formats or "pdf" in spec.formats:
        from theradose import report

        data = report.build_report_data(results)
        figures = report.report_figures(data)
        if "html" in spec.formats:
            report.write_html(data, add("report.html"), figures=figures)
        if "pdf" in spec.formats:
            report.write_pdf(data, add("report.pdf"), figures=figures)
    return files


def _write_segmentation(results: StudyResults, path: Path) -> Path | None:
    """DICOM SEG of the regions on the reference CT grid (:func:`theradose.io.masks.write_seg`); None
    without CT."""
    from theradose.imaging.resample import resample
    from theradose.io.dicom import discover_series
    from theradose.io.masks import write_seg

    spec = results.spec
    ct_folder = spec.timepoints[spec.reference_timepoint].ct
    if ct_folder is None:
        return None
    cts = [s for s in discover_series(ct_folder) if s.modality == "CT" and s.is_image]
    if spec.timepoints[spec.reference_timepoint].ct_series_uid:
        cts = [s for s in cts if s.series_uid == spec.timepoints[spec.reference_timepoint].ct_series_uid]
    if len(cts) != 1:
        return None
    from theradose.io.dicom import read_series

    ct = read_series(list(cts[0].files))
    grid = results.aligned.spect[0]
    partition = grid.with_array(results.region_set.labels.astype(np.int32), unit="label")
    if not partition.same_grid(ct):
        partition = resample(stages._without_frame(partition), stages._without_frame(ct), method="nearest")
    labels = np.asarray(partition.array)
    masks = {
        name: ct.with_array(np.isin(labels, values), unit="label")
        for name, values in results.region_set.regions.items()
        if np.isin(labels, values).any()
    }
    if not masks:
        return None
    return write_seg(
        masks,
        path,
        reference_files=list(cts[0].files),
        algorithm_type="AUTOMATIC" if spec.segmentation.source == "auto" else "MANUAL",
        series_description="theradose regions",
    )


def _reference_spect_files(spec: StudySpec) -> list[Path]:
    """The files of the reference time point's SPECT series (the grid of the dose maps)."""
    from theradose.io.dicom import discover_series

    timepoint = spec.timepoints[spec.reference_timepoint]
    found = [s for s in discover_series(timepoint.spect) if s.is_image and s.modality in ("NM", "PT")]
    if timepoint.series_uid:
        found = [s for s in found if s.series_uid == timepoint.series_uid]
    if len(found) != 1:
        raise InputError(
            f"the reference time point {timepoint.spect} holds {len(found)} SPECT series: set its series_uid "
            "so the RT Dose can join the right study"
        )
    return list(found[0].files)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from theradose import __version__

    out = {"theradose": __version__, "python": platform.python_version()}
    for name in PROVENANCE_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def _spec_parameters(spec: StudySpec) -> dict[str, Any]:
    from dataclasses import asdict

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        return value

    return clean(asdict(spec))  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------ entry point
def run_study(
    study: StudySpec | str | Path,
    out_dir: str | Path,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> RunResult:
    """Run a study and write its outputs into ``out_dir``.

    Parameters
    ----------
    study : StudySpec or path
        A validated spec or a study file (validated here, before any computation).
    out_dir : path
        Output folder: new, empty, or a previous run's output (replaced on success).
    cache_dir : path, optional
        Step cache folder (default ``out_dir/.cache``).
    use_cache : bool
        False: compute every step and store nothing.
    progress : bool
        Rich progress bar on stderr.
    on_step : callable, optional
        Called with the name of each output stage before it runs.

    Returns
    -------
    RunResult
    """
    started = time.perf_counter()
    spec = study if isinstance(study, StudySpec) else load_study(study)
    stages.check_capabilities(spec)
    from theradose.pipeline.plan import load_study_plan, plan_with_study

    treatment_plan = load_study_plan(spec)  # checked before any computation
    out = Path(out_dir).expanduser().resolve()
    check_out_dir(out)
    if use_cache:
        cache_folder = Path(cache_dir).expanduser().resolve() if cache_dir is not None else out / ".cache"
        cache = StepCache(cache_folder)
    else:
        cache = StepCache(None)
    n_steps = 8 + len(spec.dose.engines)
    with _Progress(progress, n_steps) as bar:
        results = compute_study(spec, cache=cache, progress=bar)
        if treatment_plan is not None:
            results.plan = plan_with_study(treatment_plan, spec, results.doses)
            results.doses["plan"] = results.plan.as_dict()
        with _staging(out) as temp:
            bar.step("writing outputs")
            if on_step is not None:
                on_step("outputs")
            files = write_outputs(results, temp)
            if on_step is not None:
                on_step("provenance")
            provenance = {
                "format": "theradose-provenance",
                "version": 1,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "study_file": str(spec.path),
                "study_file_sha256": tree_hash([spec.path]).get(str(spec.path))
                if spec.path.is_file()
                else None,
                "inputs_sha256": tree_hash(
                    [
                        *(p for tp in spec.timepoints for p in (tp.spect, tp.ct) if p is not None),
                        *(p for p in (spec.segmentation.path, spec.pvc.recovery_curve) if p is not None),
                    ]
                ),
                "parameters": _spec_parameters(spec),
                "constants": {
                    "activity_relative_sigma": ACTIVITY_RELATIVE_SIGMA,
                    "dvh_bins": DVH_BINS,
                    "available_engines": list(stages.AVAILABLE_ENGINES),
                },
                "registration_quality": list(results.aligned.quality),
                "outputs": files,
                "outputs_sha256": {f: tree_hash([temp / f])[str(temp / f)] for f in files},
                "versions": _versions(),
                "platform": platform.platform(),
                "cache": {"hits": cache.hits, "computed": cache.misses},
                "elapsed_s": round(time.perf_counter() - started, 3),
            }
            (temp / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
            bar.done()
    return RunResult(
        out_dir=out,
        doses=results.doses,
        files=(*files, "provenance.json"),
        cache_hits=tuple(cache.hits),
        cache_misses=tuple(cache.misses),
        elapsed_s=time.perf_counter() - started,
    )
