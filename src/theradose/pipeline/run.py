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
import hashlib
import io
import json
import math
import os
import platform
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from theradose.dosimetry.engines.registry import DoseEngine
from theradose.dosimetry.results import (
    ORGAN_SOURCE,
    Administration,
    PartialVolume,
    Patient,
    RegionKind,
    StudyDoses,
    round_sig,
)
from theradose.errors import InputError
from theradose.imaging.volume import Volume
from theradose.pipeline import stages
from theradose.pipeline.budget import (
    BudgetContext,
    LabelRecovery,
    ModelRecovery,
    RecoveryUncertainty,
    body_mask_from_ct,
    boundary_sigma_voxels,
    curve_recovery,
    recovery_curve_sigma,
    region_budget,
)
from theradose.pipeline.cache import StepCache, key_of, tree_hash
from theradose.pipeline.spec import KineticsModel, KineticsSpec, StudySpec, load_study

if TYPE_CHECKING:
    from theradose.pipeline.administration import RecordSource

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
    doses : StudyDoses
        The study's dose record (the content of ``doses.json``).
    files : tuple of str
        Output files (relative to ``out_dir``).
    cache_hits, cache_misses : tuple of str
        Steps taken from the cache and steps computed.
    elapsed_s : float
        Wall time.
    """

    out_dir: Path
    doses: StudyDoses
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
    doses: StudyDoses
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


# ------------------------------------------------------------------------------------------ stages
@dataclass(frozen=True)
class StudyInputs:
    """The study's time points in acquisition order, the reference, and the content hash of each input."""

    time_h: tuple[float, ...]
    order: tuple[int, ...]
    reference: int
    kinetics: KineticsSpec
    input_hashes: Mapping[str, Any]


@dataclass(frozen=True)
class Registered:
    """Every time point on the reference grid (with the cache key of the step)."""

    aligned: stages.AlignedStudy
    key: str
    reference: int

    @property
    def grid(self) -> Volume:
        """The reference time point's SPECT: the grid of every map."""
        return self.aligned.spect[self.reference]


@dataclass(frozen=True)
class Regions:
    """The regions as a partition of the grid, the voxel densities and masses (and the cache key)."""

    region_set: stages.RegionSet
    key: str
    density_g_per_ml: npt.NDArray[np.float64]
    voxel_mass_g: npt.NDArray[np.float64]


@dataclass(frozen=True)
class LabelActivity:
    """Activity per voxel and time point, and each partition label's TAC after partial-volume correction
    with its recovery (measured over corrected activity at the last time point) and what the corrections
    tell about their uncertainty. With the model-based correction, ``pvc`` is its result
    (:class:`theradose.imaging.pvc.PvcResult`), ``by_recovery_curve`` the labels corrected by the recovery
    curve instead, and ``tia_images`` the images the voxel TIA is distributed by (the RBV-corrected images
    for ``pvc.method = "rbv"``)."""

    activity_mbq: tuple[npt.NDArray[np.float64], ...]
    tacs: Mapping[int, Sequence[float]]
    recovery: Mapping[int, float]
    uncertainty: RecoveryUncertainty = field(default_factory=RecoveryUncertainty)
    pvc: Any = None
    by_recovery_curve: frozenset[int] = frozenset()
    tia_images: tuple[npt.NDArray[np.float64], ...] = ()


@dataclass(frozen=True)
class Kinetics:
    """Fitted kinetics of every region, and the TIA of every partition label."""

    regions: Mapping[str, stages.RegionKinetics]
    label_tia_mbq_h: Mapping[int, float]


def stage_inputs(spec: StudySpec) -> StudyInputs:
    """Times after administration from the DICOM headers, acquisition order and input hashes."""
    time_h = _time_after_administration_h(spec)
    order = sorted(range(len(time_h)), key=lambda i: time_h[i])
    # positions in the study file → positions in acquisition order
    kinetics = dataclasses.replace(spec.kinetics, stp_timepoint=order.index(spec.kinetics.stp_timepoint))
    hashes = {
        str(i): tree_hash([p for p in (tp.spect, tp.ct) if p is not None])
        for i, tp in enumerate(spec.timepoints)
    }
    return StudyInputs(tuple(time_h), tuple(order), order.index(spec.reference_timepoint), kinetics, hashes)


def stage_load(spec: StudySpec, inputs: StudyInputs, cache: StepCache) -> tuple[list[Any], list[str]]:
    """Each time point's SPECT (Bq/mL) and CT, in acquisition order, with the cache keys."""
    keys: list[str] = []
    loaded: list[stages.LoadedTimepoint] = []
    for i in inputs.order:
        tp = spec.timepoints[i]
        key = key_of(
            "load",
            {
                "files": inputs.input_hashes[str(i)],
                "series_uid": tp.series_uid,
                "ct_series_uid": tp.ct_series_uid,
                "calibration": spec.calibration,
                "factor": spec.calibration_factor_cps_per_mbq,
                "time_h": inputs.time_h[i],
            },
        )
        keys.append(key)
        compute = functools.partial(stages.load_timepoint, tp, spec, time_h=inputs.time_h[i])
        loaded.append(cache.get_or_compute("load", key, compute))
    return loaded, keys


def stage_register(
    spec: StudySpec, inputs: StudyInputs, loaded: Sequence[Any], load_keys: Sequence[str], cache: StepCache
) -> Registered:
    """Every time point brought onto the reference time point's grid."""
    key = key_of(
        "register",
        {
            "loads": list(load_keys),
            "method": spec.registration,
            "reference": inputs.reference,
            "seed": spec.seed,
        },
    )
    aligned = cache.get_or_compute(
        "register",
        key,
        lambda: stages.register_timepoints(
            loaded, method=spec.registration, reference=inputs.reference, seed=spec.seed
        ),
    )
    return Registered(aligned, key, inputs.reference)


def stage_regions(spec: StudySpec, registered: Registered, cache: StepCache) -> Regions:
    """The regions on the grid (label map, RTSTRUCT, SEG or automatic), voxel densities and masses."""
    seg = spec.segmentation
    grid = registered.grid
    key = key_of(
        "masks",
        {
            "register": registered.key,
            "source": seg.source,
            "files": tree_hash([seg.path]) if seg.path is not None else {},
            "regions": {k: list(map(str, v)) for k, v in seg.regions.items()},
            "threshold": seg.threshold_percent,
        },
    )
    region_set = cache.get_or_compute(
        "masks", key, lambda: stages.region_masks(seg, grid, ct=registered.aligned.ct)
    )
    density = stages.density_map_g_per_ml(registered.aligned.ct, grid)
    return Regions(region_set, key, density, density * grid.voxel_volume_ml)


def stage_label_activity(
    spec: StudySpec, registered: Registered, regions: Regions, cache: StepCache | None = None
) -> LabelActivity:
    """TAC of every partition label (one connected structure of the segmentation) with the study's
    partial-volume corrections (:mod:`theradose.imaging.pvc`).

    ``pvc.method = "gtm"`` or ``"rbv"``: every label by the geometric transfer matrix (or the region-based
    voxel-wise correction) over the listed regions, the CT's tissue classes and other uptake; lesions by
    the recovery curve instead when ``pvc.lesions = "recovery_curve"``; the remainder is what the image
    holds beyond the corrected labels. Otherwise (``"legacy"``): the recovery-coefficient correction of the
    listed structures (default: the tumours), then the enlarged-VOI correction of the listed organs.

    For the uncertainty budget it also keeps, per label corrected by the recovery curve, the curve's RC and
    slope at the label's volume (and whether that volume is below the smallest calibrated sphere), the
    curve's residual scatter, the organs' corrected activities with the margin one voxel smaller and
    larger, and per label corrected by the model its relative σ and whether it is below the resolvable
    size (:class:`~theradose.pipeline.budget.RecoveryUncertainty`)."""
    from theradose.imaging.pvc import (
        background_sector_sigma_mbq,
        enlarged_voi_label_tacs,
        enlarged_vois,
        recovery_label_tacs,
    )

    grid, part = registered.grid, regions.region_set
    activity = tuple(stages.activity_mbq_per_voxel(v) for v in registered.aligned.spect)
    model_based = spec.pvc.method in ("gtm", "rbv")
    by_curve = spec.pvc.enabled and (not model_based or spec.pvc.lesions == "recovery_curve")
    pvc_regions = (
        (set(spec.tumour_regions) if model_based else set(spec.pvc.regions or spec.tumour_regions))
        if by_curve
        else set()
    )
    pvc_labels = sorted({label for n in pvc_regions for label in part.regions.get(n, ())})
    curve = None
    curve_sigma, spheres, half_recovery = None, 0, None
    curve_labels: dict[int, LabelRecovery] = {}
    if by_curve:
        assert spec.pvc.recovery_curve is not None
        curve = stages.read_recovery_curve(spec.pvc.recovery_curve)
        curve_sigma, spheres = recovery_curve_sigma(spec.pvc.recovery_curve)
        for label in pvc_labels:
            volume_ml = float(np.count_nonzero(part.labels == label)) * grid.voxel_volume_ml
            rc, beta, v_min, v50 = curve_recovery(curve, volume_ml)
            curve_labels[label] = LabelRecovery(rc, beta, volume_ml < v_min)
            half_recovery = v50
    tacs, recovery = recovery_label_tacs(
        activity,
        part.labels,
        pvc_labels if curve is not None else [],
        curve,
        voxel_volume_ml=grid.voxel_volume_ml,
        spacing_mm=grid.spacing_mm,
        shell_mm=spec.pvc.background_shell_mm if spec.pvc.spill_in else None,
    )
    if model_based:
        curve_only = RecoveryUncertainty(curve_sigma, spheres, curve_labels, half_recovery)
        return _model_label_activity(
            spec, registered, regions, activity, tacs, recovery, pvc_labels, curve_only, cache
        )
    margin_sums: dict[int, tuple[float, float, float]] = {}
    background_sums: dict[int, float] = {}
    step_mm = float(np.mean(grid.spacing_mm))
    if spec.pvc.organs == "enlarged_voi":
        assert spec.pvc.margin_mm is not None
        organs = sorted(
            {label for n in spec.pvc.organ_regions for label in part.regions.get(n, ())}
            - set(pvc_labels)
            - {stages.REMAINDER_LABEL}
        )
        tumours = {label for n in spec.tumour_regions for label in part.regions.get(n, ())}

        def corrected(margin_mm: float) -> tuple[dict[int, list[float]], dict[int, float]]:
            return enlarged_voi_label_tacs(
                activity,
                part.labels,
                tacs,
                organs,
                exclude=sorted(tumours | set(pvc_labels)),
                spacing_mm=grid.spacing_mm,
                margin_mm=margin_mm,
                shell_mm=spec.pvc.background_shell_mm,
                voxel_mass_g=regions.voxel_mass_g,
            )

        organ_tacs, organ_recovery = corrected(spec.pvc.margin_mm)
        smaller, _ = corrected(max(spec.pvc.margin_mm - step_mm, step_mm))
        larger, _ = corrected(spec.pvc.margin_mm + step_mm)
        margin_sums = {
            label: (float(sum(smaller[label])), float(sum(organ_tacs[label])), float(sum(larger[label])))
            for label in organs
        }
        vois = enlarged_vois(
            part.labels,
            organs,
            exclude=sorted(tumours | set(pvc_labels)),
            spacing_mm=grid.spacing_mm,
            margin_mm=spec.pvc.margin_mm,
            shell_mm=spec.pvc.background_shell_mm,
        )
        background_sums = {
            label: float(
                sum(
                    background_sector_sigma_mbq(
                        activity, part.labels, label, vois.band[label], vois.shell[label],
                        voxel_mass_g=regions.voxel_mass_g,
                    )
                )
            )
            for label in organs
        }  # fmt: skip
        tacs = organ_tacs
        recovery = {**recovery, **organ_recovery}
    uncertainty = RecoveryUncertainty(
        curve_sigma, spheres, curve_labels, half_recovery, margin_sums, step_mm, background_sums
    )
    return LabelActivity(activity, tacs, recovery, uncertainty, tia_images=activity)


#: Version of the model-based partial-volume step (part of its cache key).
PVC_MODEL_VERSION = 1


def _model_label_activity(
    spec: StudySpec,
    registered: Registered,
    regions: Regions,
    activity: tuple[npt.NDArray[np.float64], ...],
    tacs: Mapping[int, Sequence[float]],
    recovery: Mapping[int, float],
    by_curve: Sequence[int],
    curve_uncertainty: RecoveryUncertainty,
    cache: StepCache | None,
) -> LabelActivity:
    """The model-based branch of :func:`stage_label_activity` (the correction cached by content); the
    uncertainty of each label it corrects is the model's (:func:`theradose.pipeline.stages.label_pvc_sigma`),
    that of the lesions corrected by the recovery curve the curve's (``curve_uncertainty``)."""
    assert spec.pvc.resolution is not None
    resolution = stages.read_resolution(spec.pvc.resolution)
    key = key_of(
        "pvc",
        {
            "masks": regions.key,
            "register": registered.key,
            "resolution": tree_hash([spec.pvc.resolution]),
            "fit": spec.pvc.fit_resolution,
            "uptake": spec.pvc.other_uptake,
            "version": PVC_MODEL_VERSION,
        },
    )

    def compute() -> Any:
        return stages.model_pvc(
            activity,
            regions.region_set,
            registered.aligned.ct,
            registered.grid,
            resolution=resolution,
            fit_resolution=spec.pvc.fit_resolution,
            other_uptake=spec.pvc.other_uptake,
        )

    result = compute() if cache is None else cache.get_or_compute("pvc", key, compute)
    out_tacs = {label: list(tac) for label, tac in tacs.items()}
    out_recovery = dict(recovery)
    skip = set(by_curve)
    model_labels: dict[int, ModelRecovery] = {}
    for label, corr in result.labels.items():
        if label in skip:
            continue
        model_labels[label] = ModelRecovery(stages.label_pvc_sigma(corr), not corr.resolvable)
        corrected = result.activity(label, spec.pvc.method)
        out_tacs[label] = list(corrected)
        out_recovery[label] = corr.measured[-1] / corrected[-1] if corrected[-1] > 0 else 1.0
    totals = [float(a.sum()) for a in activity]
    out_tacs[stages.REMAINDER_LABEL] = [
        max(total - sum(tac[t] for lab, tac in out_tacs.items() if lab != stages.REMAINDER_LABEL), 0.0)
        for t, total in enumerate(totals)
    ]
    out_recovery.setdefault(stages.REMAINDER_LABEL, 1.0)
    images = (
        tuple(np.asarray(a, dtype=np.float64) for a in result.corrected_images)
        if spec.pvc.method == "rbv"
        else activity
    )
    uncertainty = dataclasses.replace(
        curve_uncertainty, model_labels=model_labels, model_method=spec.pvc.method
    )
    return LabelActivity(
        activity,
        out_tacs,
        out_recovery,
        uncertainty,
        pvc=result,
        by_recovery_curve=frozenset(skip),
        tia_images=images,
    )


def _earlier_fits(spec: StudySpec, regions: Regions) -> tuple[dict[str, Any], dict[int, Any], str]:
    """The earlier cycle's fitted curve of every region (``single_timepoint = "earlier_cycle"``), and of
    every partition label the curve of the most specific region containing it (fewest labels); the
    SHA-256 of the earlier record (for the cache key)."""
    path = spec.kinetics.earlier_cycle
    if spec.kinetics.single_timepoint != "earlier_cycle" or path is None:
        return {}, {}, ""
    from theradose.dosimetry.results import read_doses

    earlier = read_doses(path)
    by_region: dict[str, Any] = {}
    for region in earlier.regions:
        if region.kinetics is None or region.kinetics.covariance is None or not region.tia_mbq_h:
            continue
        by_region[region.name] = stages.fit_result_from_record(
            region.kinetics, region.tia_mbq_h, region.effective_half_life_h
        )
    by_label: dict[int, Any] = {}
    for name, members in sorted(regions.region_set.regions.items(), key=lambda item: len(item[1])):
        if name in by_region:
            for label in members:
                by_label.setdefault(label, by_region[name])
    digest = tree_hash([path]).get(str(path), "")
    return by_region, by_label, str(digest)


def stage_kinetics(
    spec: StudySpec, inputs: StudyInputs, registered: Registered, regions: Regions, labels: LabelActivity,
    cache: StepCache,
) -> Kinetics:  # fmt: skip
    """Each region's TAC (sum of its labels) fitted and integrated, and each label's TIA. With a single
    time point from the earlier cycle, each region (and label) uses the earlier cycle's fit of that region
    (:func:`_earlier_fits`)."""
    times = list(registered.aligned.time_h)
    nuclide = spec.administration.nuclide
    earlier_regions, earlier_labels, earlier_digest = _earlier_fits(spec, regions)

    label_models: dict[int, KineticsModel] = {}
    for region_name, members in regions.region_set.regions.items():
        for label in members:
            chosen = spec.kinetics.model_for(region_name)
            # a label shared by regions of different models keeps the study's model
            label_models[label] = chosen if label_models.get(label, chosen) == chosen else spec.kinetics.model

    def fit(
        name: str,
        tac: list[float],
        recovery: float,
        earlier: Any = None,
        model: KineticsModel | None = None,
    ) -> stages.RegionKinetics:
        chosen = model if model is not None else spec.kinetics.model_for(name)
        region_kinetics = dataclasses.replace(inputs.kinetics, model=chosen)
        key = key_of(
            "fit",
            {
                "tac": tac,
                "time_h": times,
                "recovery": recovery,
                "kinetics": [
                    chosen,
                    spec.kinetics.single_timepoint,
                    inputs.kinetics.stp_timepoint,
                    dict(spec.kinetics.effective_half_life_h),
                    earlier_digest,
                    earlier is not None,
                ],
                "region": name,
                "nuclide": nuclide,
                "sigma": ACTIVITY_RELATIVE_SIGMA,
            },
        )
        return cache.get_or_compute(
            "fit",
            key,
            lambda: stages.fit_region(
                times,
                tac,
                kinetics=region_kinetics,
                nuclide=nuclide,
                region=name,
                relative_sigma=ACTIVITY_RELATIVE_SIGMA,
                recovery=recovery,
                earlier=earlier,
            ),
        )

    fitted: dict[str, stages.RegionKinetics] = {}
    for name, members in regions.region_set.regions.items():
        tac = [sum(labels.tacs[label][t] for label in members) for t in range(len(times))]
        raw_total = sum(labels.tacs[label][-1] * labels.recovery[label] for label in members)
        recovery = raw_total / tac[-1] if tac[-1] > 0 else 1.0
        fitted[name] = fit(name, tac, recovery, earlier_regions.get(name))
        if labels.pvc is not None:
            fitted[name] = _with_pvc_uncertainty(fitted[name], labels, members)
    label_tia = {
        label: fit(
            f"label:{label}",
            list(tac),
            labels.recovery[label],
            earlier_labels.get(label),
            label_models.get(label, spec.kinetics.model),
        ).tia_mbq_h
        for label, tac in labels.tacs.items()
    }
    return Kinetics(fitted, label_tia)


def _with_pvc_uncertainty(
    k: stages.RegionKinetics, labels: LabelActivity, members: Sequence[int]
) -> stages.RegionKinetics:
    """The region's TIA uncertainty with the partial-volume correction's (correlated over its labels and
    time points) added in quadrature."""
    pvc = labels.pvc
    weights = [
        (pvc.labels[lab].activity[0], stages.label_pvc_sigma(pvc.labels[lab]))
        for lab in members
        if lab in pvc.labels and lab not in labels.by_recovery_curve
    ]
    total = sum(w for w, _ in weights)
    if total <= 0 or not math.isfinite(k.tia_mbq_h):
        return k
    rel = sum(w * sg for w, sg in weights) / total
    fit_sigma = k.tia_sigma_mbq_h if math.isfinite(k.tia_sigma_mbq_h) else 0.0
    return dataclasses.replace(k, tia_sigma_mbq_h=math.hypot(fit_sigma, rel * k.tia_mbq_h))


def stage_voxel_tia(
    registered: Registered, regions: Regions, labels: LabelActivity, kinetics: Kinetics, cache: StepCache
) -> tuple[Volume, str]:
    """Voxel TIA map (MBq·h) by the hybrid method, and its cache key."""
    times = list(registered.aligned.time_h)
    rbv = labels.tia_images is not labels.activity_mbq and labels.pvc is not None
    key = key_of(
        "tia",
        {
            "masks": regions.key,
            "register": registered.key,
            "labels": dict(kinetics.label_tia_mbq_h),
            "rbv": rbv,
        },
    )
    images = labels.tia_images or labels.activity_mbq
    array = cache.get_or_compute(
        "tia",
        key,
        lambda: stages.voxel_tia_map(times, images, regions.region_set.labels, kinetics.label_tia_mbq_h),
    )
    return registered.grid.with_array(array, unit="MBq·h"), key


def stage_dose(
    spec: StudySpec, engine: DoseEngine, tia_map: Volume, tia_key: str, registered: Registered,
    regions: Regions, cache: StepCache,
) -> Volume:  # fmt: skip
    """The dose map (Gy) of one voxel engine."""
    key = key_of(
        "dose",
        {
            "tia": tia_key,
            "register": registered.key,
            "engine": engine,
            "seed": spec.seed,
            "photons": spec.dose.mc_photons,
        },
    )
    compute = functools.partial(
        stages.voxel_dose_gy,
        tia_map,
        regions.density_g_per_ml,
        spec.administration.nuclide,
        engine=engine,
        seed=spec.seed,
        mc_photons=spec.dose.mc_photons,
    )
    result: Volume = cache.get_or_compute("dose", key, compute)
    return result


# ------------------------------------------------------------------------------------------ compute
def compute_study(
    spec: StudySpec,
    *,
    cache: StepCache,
    progress: _Progress | None = None,
) -> StudyResults:
    """Run every computational stage of ``spec`` (no files written except cache entries).

    The stages, in order, each a function of this module returning a typed value: :func:`stage_inputs`,
    :func:`stage_load`, :func:`stage_register`, :func:`stage_regions`, :func:`stage_label_activity`,
    :func:`stage_kinetics`, :func:`stage_voxel_tia`, :func:`stage_dose` (per engine), :func:`study_record`.
    """
    say = progress or _Progress(False, 0)
    say.step("checking inputs")
    inputs = stage_inputs(spec)
    say.done()
    say.step("loading time points")
    loaded, load_keys = stage_load(spec, inputs, cache)
    say.done()
    say.step(f"registration ({spec.registration})")
    registered = stage_register(spec, inputs, loaded, load_keys, cache)
    say.done()
    say.step("regions")
    regions = stage_regions(spec, registered, cache)
    say.done()
    say.step("time-activity curves and fits")
    labels = stage_label_activity(spec, registered, regions, cache)
    kinetics = stage_kinetics(spec, inputs, registered, regions, labels, cache)
    say.done()
    say.step("voxel time-integrated activity")
    tia_map, tia_key = stage_voxel_tia(registered, regions, labels, kinetics, cache)
    say.done()
    dose_maps: dict[str, Volume] = {}
    for engine in spec.dose.engines:
        say.step(f"dose ({engine})")
        dose_maps[engine] = stage_dose(spec, engine, tia_map, tia_key, registered, regions, cache)
        say.done()
    say.step("region doses, DVH, BED")
    marrow = stages.marrow_doses(spec, kinetics.regions, nuclide=spec.administration.nuclide)
    record = study_record(
        spec,
        masks={name: regions.region_set.mask(name) for name in regions.region_set.regions},
        kinetics=kinetics.regions,
        dose_maps=dose_maps,
        voxel_mass_g=regions.voxel_mass_g,
        voxel_volume_ml=registered.grid.voxel_volume_ml,
        timepoints_h=registered.aligned.time_h,
        registration={"method": registered.aligned.method, "reference_timepoint": inputs.reference + 1},
        context=budget_context(spec, registered, regions, labels, kinetics),
        region_labels=regions.region_set.regions,
        input_hashes=inputs.input_hashes,
        pvc=labels.pvc,
        pvc_by_recovery_curve=labels.by_recovery_curve,
        red_marrow=None if marrow is None else marrow.as_dict(),
    )
    say.done()
    return StudyResults(
        spec, registered.aligned, regions.region_set, regions.density_g_per_ml, dict(kinetics.regions),
        tia_map, dose_maps, record,
    )  # fmt: skip


def budget_context(
    spec: StudySpec, registered: Registered, regions: Regions, labels: LabelActivity, kinetics: Kinetics
) -> BudgetContext:
    """Study-level inputs of the uncertainty budgets (:mod:`theradose.pipeline.budget`)."""
    record = spec.calibration_record
    if record is not None:
        calibration: tuple[float | None, str] = (
            record.relative_sigma,
            f"QA record {record.path.name} ({record.measured.date().isoformat()})",
        )
    else:
        calibration = (None, "no calibration QA record named in the study file")
    boundary, boundary_source = boundary_sigma_voxels(
        spec.segmentation.boundary_sigma_mm, registered.grid.spacing_mm
    )
    aligned = registered.aligned
    dice = [float(q["dice_body_after"]) for q in aligned.quality if "dice_body_after" in q]
    if aligned.method == "none" or not dice:
        registration: tuple[float | None, str] = (None, "registration not run (scanner coordinates)")
    else:
        mean_dice = float(np.mean(dice))
        registration = (mean_dice, f"{aligned.method} registration, mean body Dice {mean_dice:.3f} after")
    ct = None if aligned.ct is None else np.asarray(aligned.ct.array, dtype=np.float64)
    weight = {label: float(sum(tac)) for label, tac in labels.tacs.items()}
    return BudgetContext(
        nuclide=spec.administration.nuclide,
        reference=spec.dose.reference,
        calibration_rel_sigma=calibration[0],
        calibration_source=calibration[1],
        boundary_sigma_voxels=boundary,
        boundary_source=boundary_source,
        registration_dice=registration[0],
        registration_source=registration[1],
        body_mask=body_mask_from_ct(ct) if registration[0] is not None else None,
        recovery=labels.uncertainty,
        label_weight=weight,
    )


def region_flags(
    name: str,
    members: Sequence[int],
    context: BudgetContext,
    voxel_volume_ml: float,
    n_voxels: int,
    partial_volume: PartialVolume | None = None,
) -> tuple[str, ...]:
    """``below_resolution`` when a region's recovery-curve corrected structures lie below the smallest
    calibrated sphere, when the model-based correction finds it below the resolvable size
    (:attr:`~theradose.dosimetry.results.PartialVolume.below_resolvable_size`), or when an uncorrected
    region is smaller than the curve's half-recovery volume (then also ``partial_volume_not_corrected``)."""
    rec = context.recovery
    corrected = [
        label
        for label in members
        if label in rec.curve_labels or label in rec.margin_sums or label in rec.model_labels
    ]
    if any(rec.curve_labels[label].below_resolution for label in members if label in rec.curve_labels):
        return ("below_resolution",)
    if partial_volume is not None and partial_volume.below_resolvable_size:
        return ("below_resolution",)
    if (
        not corrected
        and rec.half_recovery_ml is not None
        and n_voxels * voxel_volume_ml < rec.half_recovery_ml
    ):
        return ("below_resolution", "partial_volume_not_corrected")
    return ()


def study_record(
    spec: StudySpec,
    *,
    masks: Mapping[str, npt.NDArray[np.bool_]],
    kinetics: Mapping[str, stages.RegionKinetics],
    dose_maps: Mapping[str, Volume],
    voxel_mass_g: npt.NDArray[np.float64],
    voxel_volume_ml: float,
    timepoints_h: Sequence[float],
    registration: Mapping[str, Any],
    context: BudgetContext,
    region_labels: Mapping[str, Sequence[int]],
    input_hashes: Mapping[str, Any],
    pvc: Any = None,
    pvc_by_recovery_curve: frozenset[int] = frozenset(),
    red_marrow: Mapping[str, Any] | None = None,
) -> StudyDoses:
    """The study's dose record (:class:`~theradose.dosimetry.results.StudyDoses`, per region
    :func:`~theradose.pipeline.stages.region_result`) with the reference dose ``spec.dose.reference``,
    each region's uncertainty budget (:func:`~theradose.pipeline.budget.region_budget`) and flags, the
    calibration, the site's time zone and the provenance (software version and input hashes)."""
    from theradose import __version__
    from theradose.dosimetry.results import Calibration

    nuclide = spec.administration.nuclide
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
    tumours = set(spec.tumour_regions)

    partial_volume = {
        name: (
            None
            if pvc is None
            else stages.region_partial_volume(
                pvc, region_labels[name], method=spec.pvc.method, by_recovery_curve=set(pvc_by_recovery_curve)
            )
        )
        for name in masks
    }

    def budget_of(name: str) -> stages.BudgetFunction:
        def compute(region: str, chosen: Any, estimates: Any, bed: Any) -> Any:
            return region_budget(
                region, chosen, estimates, bed, context=context, labels=region_labels[name],
                mask=masks[name], kinetics=kinetics[name],
            )  # fmt: skip

        return compute

    regions = tuple(
        stages.region_result(
            name,
            kind=RegionKind.TUMOUR if name in tumours else RegionKind.ORGAN,
            mask=mask,
            kinetics=kinetics[name],
            dose_maps=dose_maps,
            voxel_mass_g=voxel_mass_g,
            voxel_volume_ml=voxel_volume_ml,
            organ_dose=organ.get(name),
            tissue=spec.tissue(name),
            reference=spec.dose.reference,
            budget=budget_of(name),
            dvh_bins=DVH_BINS,
            partial_volume=partial_volume[name],
            flags=region_flags(
                name,
                region_labels[name],
                context,
                voxel_volume_ml,
                int(mask.sum()),
                partial_volume=partial_volume[name],
            ),
        )
        for name, mask in masks.items()
    )
    adm = spec.administration
    record = spec.calibration_record
    calibration = Calibration(
        mode=spec.calibration,
        factor_cps_per_mbq=None if record is None else round_sig(record.factor_cps_per_mbq),
        factor_sigma_cps_per_mbq=None if record is None else round_sig(record.sigma_cps_per_mbq),
        measured=None if record is None else record.measured,
        camera="" if record is None else record.camera,
        record="" if record is None else f"{record.path.name} (SHA-256 {record.sha256})",
    )
    file_hashes = sorted(str(h) for per_tp in input_hashes.values() for h in dict(per_tp).values())
    digest = hashlib.sha256("\n".join(file_hashes).encode()).hexdigest()
    study_sha = tree_hash([spec.path]).get(str(spec.path)) if spec.path.is_file() else None
    return StudyDoses(
        patient=Patient(spec.patient.patient_id, spec.patient.name),
        cycle=spec.cycle,
        administration=Administration(adm.nuclide, adm.radiopharmaceutical, adm.activity_mbq, adm.datetime),
        reference_dose=spec.dose.reference,
        engines=tuple(e.value for e in spec.dose.engines),
        regions=regions,
        timepoints_h=tuple(round_sig(t) or 0.0 for t in timepoints_h),
        registration=dict(registration),
        partial_volume_correction=bool(spec.pvc.enabled),
        organ_partial_volume_correction=(
            {
                "method": spec.pvc.organs,
                "margin_mm": spec.pvc.margin_mm,
                "regions": list(spec.pvc.organ_regions),
            }
            if spec.pvc.organs != "none"
            else None
        ),
        calibration=calibration,
        site_time_zone=spec.site_time_zone,
        provenance={
            "software": f"theradose {__version__}",
            "study_file_sha256": study_sha,
            "inputs_sha256": digest,
            "input_files": len(file_hashes),
        },
        partial_volume_model=(
            None
            if pvc is None
            else {
                "method": spec.pvc.method,
                "lesions": spec.pvc.lesions,
                "resolution_file": None if spec.pvc.resolution is None else spec.pvc.resolution.name,
                "fit_resolution": spec.pvc.fit_resolution,
                "other_uptake": spec.pvc.other_uptake,
                "compartments": list(pvc.n_compartments),
                "condition_number": [round_sig(c) for c in pvc.condition_number],
            }
        ),
        red_marrow=None if red_marrow is None else _rounded_tree(red_marrow),
    )


def _rounded_tree(value: Any) -> Any:
    """Floats to 6 significant digits (NaN/inf → None) throughout a JSON-like tree."""
    if isinstance(value, float):
        return round_sig(value)
    if isinstance(value, Mapping):
        return {str(k): _rounded_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded_tree(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------ outputs
def dvh_json_text(doses: StudyDoses) -> str:
    """``dvh.json``: ``{region: {engine: {"dose_gy": [...], "cumulative_fraction": [...]}}}``.

    A view of the DVHs held in the dose record (cumulative DVHs, ICRU Report 83 section 2.3; engines in
    the study's order), for readers that take DVHs from their own file.
    """
    out = {
        region.name: {
            d.source: {"dose_gy": list(d.dvh.dose_gy), "cumulative_fraction": list(d.dvh.cumulative_fraction)}
            for d in region.doses
            if d.dvh is not None
        }
        for region in doses.regions
    }
    return json.dumps(out, indent=1) + "\n"


def doses_csv_text(doses: StudyDoses) -> str:
    """``doses.csv``: one row per region: the study's dose (named by its source) with its standard
    uncertainty, BED ± σ, the budget's dominant terms and every component's relative σ (empty when not
    assessed), the kinetics model and flags, then every estimate (one column group per engine and the
    organ-level MIRD dose)."""
    from theradose.dosimetry.uncertainty_budget import COMPONENTS

    sources = [*doses.engines, ORGAN_SOURCE]
    header = ["region", "kind", "mass_g", "tia_mbq_h", "tia_sigma_mbq_h", "kinetics_model"]
    header += ["dose_source", "dose_gy", "dose_sigma_gy", "dose_relative_sigma", "dose_gy_per_gbq"]
    header += ["bed_gy", "bed_sigma_gy", "dominant_uncertainties", "flags"]
    header += [f"u_{name}" for name in COMPONENTS]
    for source in sources:
        header += [f"dose_{source}_gy", f"dose_{source}_sigma_gy"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for region in doses.regions:
        shown = doses.row(region)
        budget = region.uncertainty
        row: list[Any] = [region.name, region.kind.value, region.mass_g, region.tia_mbq_h]
        row += [region.tia_sigma_mbq_h, region.kinetics_model]
        row += [shown.source, shown.dose_gy, shown.dose_sigma_gy]
        row += [None if budget is None else budget.dose_relative_sigma, shown.dose_gy_per_gbq]
        row += [shown.bed_gy, shown.bed_sigma_gy, " ".join(shown.dominant), " ".join(shown.flags)]
        assessed = {} if budget is None else {c.name: c.relative_sigma for c in budget.components}
        row += [assessed.get(name) for name in COMPONENTS]
        for source in sources:
            estimate = region.dose(source)
            row += [None, None] if estimate is None else [estimate.dose_gy, estimate.dose_sigma_gy]
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def write_outputs(results: StudyResults, folder: Path) -> list[str]:
    """Write every requested output of ``results`` into ``folder`` (``provenance.json`` excepted)."""
    spec = results.spec
    files: list[str] = []

    def add(name: str) -> Path:
        files.append(name)
        return folder / name

    add("doses.json").write_text(results.doses.to_json(), encoding="utf-8")
    add("dvh.json").write_text(dvh_json_text(results.doses), encoding="utf-8")
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

        hashes = {name: tree_hash([folder / name])[str(folder / name)] for name in files}
        data = _report_data(results, hashes)
        figures = report.report_figures(data)
        if "html" in spec.formats:
            report.write_html(data, add("report.html"), figures=figures)
        if "pdf" in spec.formats:
            report.write_pdf(data, add("report.pdf"), figures=figures)
    return files


def _report_data(results: StudyResults, output_hashes: Mapping[str, str]) -> Any:
    """The report's content: the dose record plus the images and curves the pipeline holds, the regions
    the recovery curve corrected, the SHA-256 of the outputs written before the report, and the grid's
    orientation for the MIPs (from its affine: DICOM LPS, +x the patient's left, +z superior)."""
    from theradose.report import TacPlot, build_report_data, coronal_mip, image_engine

    spec = results.spec
    grid = results.aligned.spect[int((results.doses.registration or {}).get("reference_timepoint", 1)) - 1]
    spacing = grid.spacing_mm
    affine = np.asarray(grid.affine, dtype=np.float64)
    return build_report_data(
        results.doses,
        tacs=[
            TacPlot(
                name,
                k.time_h,
                k.activity_mbq,
                k.sigma_mbq,
                k.curve_h,
                k.curve_mbq,
                k.model,
                k.candidates,
                k.flags,
            )
            for name, k in results.kinetics.items()
        ],
        spect_mip=coronal_mip(grid.array),
        dose_mip=coronal_mip(results.dose_maps[image_engine(results.doses)].array),
        aspect=float(spacing[0] / spacing[2]),
        segmentation_source=spec.segmentation.source,
        partial_volume_correction=bool(spec.pvc.enabled),
        recovery_corrected_regions=list(spec.pvc.regions or spec.tumour_regions) if spec.pvc.enabled else [],
        output_hashes=output_hashes,
        plan=None if results.plan is None else results.plan.plan,
        next_cycle=None if results.plan is None else results.plan.result,
        column_to_left=bool(affine[0, 2] >= 0),
        slice_to_superior=bool(affine[2, 0] >= 0),
    )


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

    parameters: dict[str, Any] = clean(asdict(spec))
    parameters.pop("administration_record", None)  # provenance names it on its own
    return parameters


def _provenance(
    results: StudyResults, files: Sequence[str], folder: Path, *, cache: StepCache, started: float
) -> dict[str, Any]:
    """The content of ``provenance.json``: every input's and output's SHA-256, the parameters, the
    constants, package versions and the cache hits."""
    spec = results.spec
    return {
        "format": "theradose-provenance",
        "version": 1,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "study_file": str(spec.path),
        "study_file_sha256": tree_hash([spec.path]).get(str(spec.path)) if spec.path.is_file() else None,
        "inputs_sha256": tree_hash(
            [
                *(p for tp in spec.timepoints for p in (tp.spect, tp.ct) if p is not None),
                *(p for p in (spec.segmentation.path, spec.pvc.recovery_curve) if p is not None),
            ]
        ),
        "administration_record": (
            {"source": "study file"}
            if spec.administration_record is None
            else spec.administration_record.provenance()
        ),
        "parameters": _spec_parameters(spec),
        "constants": {
            "activity_relative_sigma": ACTIVITY_RELATIVE_SIGMA,
            "dvh_bins": DVH_BINS,
            "available_engines": [str(e) for e in stages.AVAILABLE_ENGINES],
        },
        "registration_quality": list(results.aligned.quality),
        "outputs": list(files),
        "outputs_sha256": {f: tree_hash([folder / f])[str(folder / f)] for f in files},
        "versions": _versions(),
        "platform": platform.platform(),
        "cache": {"hits": cache.hits, "computed": cache.misses},
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


# ------------------------------------------------------------------------------------------ entry point
def run_study(
    study: StudySpec | str | Path,
    out_dir: str | Path,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = False,
    on_step: Callable[[str], None] | None = None,
    administration: RecordSource | None = None,
) -> RunResult:
    """Run a study and write its outputs into ``out_dir``.

    Parameters
    ----------
    study : StudySpec or path
        A validated spec or a study file (validated here, before any computation).
    administration : RecordSource, optional
        With a study file: the service's administration record (or an RRDSR) that the patient, cycle
        and administration are taken from (see :func:`theradose.pipeline.spec.load_study`).
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
    if isinstance(study, StudySpec):
        if administration is not None:
            raise InputError("administration: give the record with a study file, not with a validated spec")
        spec = study
    else:
        spec = load_study(study, administration=administration)
    stages.check_capabilities(spec)
    from theradose.pipeline.plan import load_study_plan, plan_with_study

    treatment_plan = load_study_plan(spec)  # checked before any computation
    out = Path(out_dir).expanduser().resolve()
    check_out_dir(out)
    folder = Path(cache_dir).expanduser().resolve() if cache_dir is not None else out / ".cache"
    cache = StepCache(folder if use_cache else None)
    n_steps = 8 + len(spec.dose.engines)
    with _Progress(progress, n_steps) as bar:
        results = compute_study(spec, cache=cache, progress=bar)
        if treatment_plan is not None:
            results.plan = plan_with_study(treatment_plan, spec, results.doses)
            results.doses = dataclasses.replace(results.doses, plan=results.plan.as_dict())
        with _staging(out) as temp:
            bar.step("writing outputs")
            if on_step is not None:
                on_step("outputs")
            files = write_outputs(results, temp)
            if on_step is not None:
                on_step("provenance")
            provenance = _provenance(results, files, temp, cache=cache, started=started)
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
