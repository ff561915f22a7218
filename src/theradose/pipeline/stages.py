"""One small adapter per pipeline stage over the core packages.

Each function here is the single place where the orchestrator (:mod:`theradose.pipeline.run`) calls a
core package, so swapping an implementation is a local change. Where a stage computes something itself
rather than calling a core package, its docstring says so and cites the relation used.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from theradose.dosimetry.dvh import Dvh, mean_dose_gy
from theradose.dosimetry.engines.registry import DoseEngine
from theradose.dosimetry.results import (
    MEAN_DOSE_DEFINITION,
    ORGAN_SOURCE,
    Bed,
    EngineDose,
    KineticsRecord,
    PartialVolume,
    RegionKind,
    RegionResult,
    round_sig,
)
from theradose.dosimetry.uncertainty_budget import UncertaintyBudget
from theradose.errors import InputError
from theradose.imaging.volume import Volume
from theradose.pipeline.spec import EngineName, KineticsSpec, SegmentationSpec, StudySpec, TimepointSpec

FloatArray = npt.NDArray[np.float64]

#: Voxel dose engines this build can run (every engine of the registry).
AVAILABLE_ENGINES: tuple[EngineName, ...] = tuple(DoseEngine)

#: Voxels below this density (g/mL) are air: no mass, no dose.
AIR_DENSITY_LIMIT_G_PER_ML = 0.01
#: Label of the remainder of the field of view (voxels in no region) in the label partition.
REMAINDER_LABEL = 0


# ------------------------------------------------------------------------------------------------ load
@dataclass(frozen=True)
class LoadedTimepoint:
    """One time point: SPECT in Bq/mL, optional CT in HU, time after administration (h)."""

    time_h: float
    spect: Volume
    ct: Volume | None


def load_timepoint(tp: TimepointSpec, spec: StudySpec, *, time_h: float) -> LoadedTimepoint:
    """Read a time point's SPECT (calibrated to Bq/mL) and CT with :func:`theradose.io.dicom.read_series`."""
    from theradose.io.dicom import read_series

    factor = spec.calibration_factor_cps_per_mbq if spec.calibration == "factor" else None
    spect = read_series(tp.spect, series_uid=tp.series_uid, calibration_cps_per_mbq=factor)
    if spect.unit != "Bq/mL":
        raise InputError(f"SPECT {tp.spect} reads as {spect.unit!r}, not Bq/mL: check calibration.mode")
    ct = read_series(tp.ct, series_uid=tp.ct_series_uid) if tp.ct is not None else None
    if ct is not None and ct.unit != "HU":
        raise InputError(f"timepoints ct {tp.ct} reads as {ct.unit!r}, not a CT in HU: point it at the CT")
    return LoadedTimepoint(time_h, spect, ct)


# ------------------------------------------------------------------------------------------- register
@dataclass(frozen=True)
class AlignedStudy:
    """All time points on the reference SPECT grid, and the reference CT resampled onto it (or None)."""

    time_h: tuple[float, ...]
    spect: tuple[Volume, ...]
    ct: Volume | None
    method: str
    quality: tuple[dict[str, float | int], ...] = ()


def register_timepoints(
    loaded: Sequence[LoadedTimepoint], *, method: str, reference: int, seed: int = 0
) -> AlignedStudy:
    """Bring every SPECT onto the reference time point's SPECT grid.

    ``method = "none"`` trusts the scanner coordinates (same frame of reference or a patient who did not
    move between scans) and resamples with :func:`theradose.imaging.resample.resample`. ``"rigid"`` and
    ``"deformable"`` register each time point's CT onto the reference CT with
    :func:`theradose.imaging.register.register_ct` and carry the SPECT through the same transform
    (:meth:`~theradose.imaging.register.Registration.apply`).
    """
    from theradose.imaging.register import register_ct
    from theradose.imaging.resample import resample

    ref = loaded[reference].spect
    ref_ct = loaded[reference].ct
    spects: list[Volume] = []
    quality: list[dict[str, float | int]] = []
    for i, tp in enumerate(loaded):
        vol = tp.spect
        if method != "none" and i != reference:
            if tp.ct is None or ref_ct is None:
                raise InputError(f"registration.method = '{method}' needs a CT at every time point")
            reg = register_ct(ref_ct, tp.ct, deformable=method == "deformable", seed=seed)
            vol = reg.apply(vol, ref)
            quality.append({"timepoint": i + 1, **reg.quality.as_dict()})
        elif not vol.same_grid(ref):
            vol = resample(_without_frame(vol), _without_frame(ref), method="linear")
        spects.append(vol.with_array(np.clip(np.asarray(vol.array, dtype=np.float64), 0.0, None)))
    ct_on_grid = None
    if ref_ct is not None:
        ct_on_grid = (
            ref_ct
            if ref_ct.same_grid(ref)
            else resample(_without_frame(ref_ct), _without_frame(ref), fill_value=-1000.0)
        )
    return AlignedStudy(tuple(tp.time_h for tp in loaded), tuple(spects), ct_on_grid, method, tuple(quality))


def _without_frame(volume: Volume) -> Volume:
    """The volume with its frame-of-reference UID dropped (scanner coordinates are trusted: method 'none')."""
    return Volume(volume.array, volume.affine, volume.unit, acquisition_datetime=volume.acquisition_datetime)


# ---------------------------------------------------------------------------------------------- masks
@dataclass(frozen=True)
class RegionSet:
    """Regions as a partition of the grid.

    Attributes
    ----------
    labels : ndarray of int32, grid shape
        Partition label per voxel; 0 is the remainder (in no region).
    regions : dict
        Region name → partition labels forming it (regions may overlap by sharing partition labels).
    """

    labels: npt.NDArray[np.int32]
    regions: Mapping[str, tuple[int, ...]]

    def mask(self, name: str) -> npt.NDArray[np.bool_]:
        """Boolean mask of a region."""
        return np.isin(self.labels, self.regions[name])


def region_masks(seg: SegmentationSpec, reference: Volume, *, ct: Volume | None = None) -> RegionSet:
    """Regions on the reference SPECT grid.

    ``nifti``: a label map (:func:`theradose.io.nifti.read_nifti`), resampled by nearest neighbour;
    ``rtstruct``: contours rasterised on the grid (:func:`theradose.io.masks.read_rtstruct`); ``seg``: a DICOM
    SEG (:func:`theradose.io.masks.read_seg`) resampled; ``auto``: uptake regions of the reference SPECT
    (:func:`theradose.imaging.segment.segment_uptake`, constrained to soft tissue when a CT is given).
    """
    from theradose.imaging.resample import resample

    if seg.source == "auto":
        return _auto_regions(reference, ct, threshold_percent=seg.threshold_percent)
    assert seg.path is not None
    if seg.source == "nifti":
        from theradose.io.nifti import read_nifti

        label_map = read_nifti(seg.path, unit="label")
        if not label_map.same_grid(reference):
            label_map = resample(label_map, _without_frame(reference), method="nearest")
        values = np.asarray(label_map.array).astype(np.int32)
        present = set(np.unique(values).tolist())
        regions: dict[str, tuple[int, ...]] = {}
        for name, wanted in seg.regions.items():
            labels = tuple(int(v) for v in wanted)
            if not any(v in present for v in labels):
                raise InputError(
                    f"segmentation.regions.{name} = {list(labels)}: no voxel of the label map "
                    f"{seg.path.name} "
                    "has these labels on the SPECT grid; check the label values"
                )
            regions[name] = tuple(v for v in labels if v in present)
        used = {v for labels in regions.values() for v in labels}
        partition = np.where(np.isin(values, sorted(used)), values, REMAINDER_LABEL).astype(np.int32)
        return RegionSet(partition, regions)
    masks = _roi_masks(seg, reference)
    wanted_regions = dict(seg.regions) or {name: () for name in masks}
    region_masks_: dict[str, npt.NDArray[np.bool_]] = {}
    for name, rois in wanted_regions.items():
        names = [str(r) for r in rois] or [name]
        missing = [r for r in names if r not in masks]
        if missing:
            raise InputError(
                f"segmentation.regions.{name}: ROI {missing[0]!r} is not in {seg.path.name} "
                f"(it holds {', '.join(sorted(masks))}): fix the name"
            )
        region_masks_[name] = np.logical_or.reduce([masks[r] for r in names])
    return partition_from_masks(region_masks_)


def _roi_masks(seg: SegmentationSpec, reference: Volume) -> dict[str, npt.NDArray[np.bool_]]:
    """Every ROI of an RTSTRUCT (rasterised on the grid) or segment of a SEG (resampled), by name."""
    from theradose.imaging.resample import resample
    from theradose.io.masks import read_rtstruct, read_seg

    assert seg.path is not None
    if seg.source == "rtstruct":
        return {n: np.asarray(v.array).astype(bool) for n, v in read_rtstruct(seg.path, reference).items()}
    masks = {}
    for name, vol in read_seg(seg.path).items():
        on_grid = (
            vol
            if vol.same_grid(reference)
            else resample(
                _without_frame(vol.with_array(np.asarray(vol.array).astype(np.uint8), unit="label")),
                _without_frame(reference),
                method="nearest",
            )
        )
        masks[name] = np.asarray(on_grid.array).astype(bool)
    return masks


def partition_from_masks(masks: Mapping[str, npt.NDArray[np.bool_]]) -> RegionSet:
    """Partition of possibly overlapping masks: one label per distinct combination of memberships."""
    names = list(masks)
    code = np.zeros(next(iter(masks.values())).shape, dtype=np.int64)
    for bit, name in enumerate(names):
        code |= masks[name].astype(np.int64) << bit
    combos, inverse = np.unique(code, return_inverse=True)
    partition: npt.NDArray[np.int32] = np.asarray(inverse, dtype=np.int32).reshape(code.shape)
    if combos[0] != 0:  # no remainder voxel: shift so that 0 stays "in no region"
        partition += 1
        combos = np.concatenate([[0], combos])
    regions = {
        name: tuple(int(i) for i, c in enumerate(combos) if i > 0 and (int(c) >> bit) & 1)
        for bit, name in enumerate(names)
    }
    for name, labels in regions.items():
        if not labels:
            raise InputError(f"region {name!r} has no voxel on the SPECT grid: check the segmentation")
    return RegionSet(partition, regions)


def _auto_regions(spect: Volume, ct: Volume | None, *, threshold_percent: float) -> RegionSet:
    from theradose.imaging.segment import segment_uptake, soft_tissue_mask

    allowed = None
    if ct is not None:
        allowed = np.asarray(soft_tissue_mask(ct).array).astype(bool)
    found = segment_uptake(spect, percent_of_max=threshold_percent, allowed=allowed)
    labels = np.asarray(found.labels.array)
    if not found.regions:
        raise InputError(
            f"segmentation.source = 'auto' found no uptake region at {threshold_percent}% of the maximum: "
            "change segmentation.threshold_percent or give a label map"
        )
    return partition_from_masks({r.name: labels == r.label for r in found.regions})


# -------------------------------------------------------------------------------------------- density
def density_map_g_per_ml(ct: Volume | None, grid: Volume) -> FloatArray:
    """Mass density per voxel (g/mL) from the CT on the SPECT grid
    (:func:`theradose.imaging.density.density_map`,
    its default calibration); soft tissue of the tissue registry everywhere without a CT."""
    if ct is None:
        from theradose.tissues import density_g_per_ml

        return np.full(grid.shape, density_g_per_ml("soft_tissue"))
    from theradose.imaging.density import density_map

    return np.asarray(density_map(ct).array, dtype=np.float64)


# ------------------------------------------------------------------------------------------- kinetics
def activity_mbq_per_voxel(spect: Volume) -> FloatArray:
    """Activity per voxel (MBq) from a concentration map in Bq/mL."""
    from theradose.units import bq_to_mbq

    return np.asarray(bq_to_mbq(np.asarray(spect.array, dtype=np.float64) * spect.voxel_volume_ml))


@dataclass(frozen=True)
class RegionKinetics:
    """TAC and time-integrated activity of one region (or partition label).

    Attributes
    ----------
    time_h, activity_mbq, sigma_mbq : tuple of float
        The measured TAC (after partial-volume correction when applied) and its standard uncertainties.
    tia_mbq_h, tia_sigma_mbq_h : float
        TIA and its standard uncertainty (NaN when it cannot be estimated); for a fit that failed the χ²
        test, the σ scaled by sqrt(χ²/ν) (:attr:`theradose.kinetics.FitResult.tia_sigma_scaled_mbq_h`).
    model : str
        Fitted model or single-time-point method.
    effective_half_life_h : float or None
    candidates : tuple of (model, weight)
        Akaike weights of the candidate models (empty for single time point).
    curve_h, curve_mbq : tuple of float
        The fitted curve sampled for plots (empty for single time point).
    recovery : float
        Recovery coefficient already divided out of ``activity_mbq`` (1.0 without partial-volume correction).
    record : KineticsRecord or None
        How the TIA was obtained, with its flags (the dose record's kinetics of the region).
    fit_tia_rel_sigma, fit_half_life_rel_sigma : float or None
        Relative σ of the TIA and of the effective half-life for the uncertainty budget (scaled when the
        fit failed goodness of fit; :func:`theradose.dosimetry.uncertainty_budget.fit_components`).
    fit_correlation : float
        Their correlation.
    """

    time_h: tuple[float, ...]
    activity_mbq: tuple[float, ...]
    sigma_mbq: tuple[float, ...]
    tia_mbq_h: float
    tia_sigma_mbq_h: float
    model: str
    effective_half_life_h: float | None
    candidates: tuple[tuple[str, float], ...]
    curve_h: tuple[float, ...]
    curve_mbq: tuple[float, ...]
    recovery: float = 1.0
    record: KineticsRecord | None = None
    fit_tia_rel_sigma: float | None = None
    fit_half_life_rel_sigma: float | None = None
    fit_correlation: float = 0.0

    @property
    def flags(self) -> tuple[str, ...]:
        """The kinetics flags (none without a record)."""
        return () if self.record is None else self.record.flags


#: Flag of a later-cycle single-time-point estimate whose region has no earlier-cycle fit to use.
FLAG_EARLIER_CYCLE_UNAVAILABLE = "earlier_cycle_fit_unavailable"


def fit_result_from_record(record: KineticsRecord, tia_mbq_h: float, half_life_h: float | None) -> Any:
    """The :class:`~theradose.kinetics.FitResult` of an earlier cycle's fit kept in its dose record
    (model, parameters, covariance, the TAC), for :func:`theradose.kinetics.stp_from_earlier_cycle`."""
    from theradose.kinetics import FitResult, TimeActivityCurve

    if record.method != "fit" or record.covariance is None or record.model == "trapezoid":
        raise InputError(f"the earlier-cycle kinetics ({record.model}) has no fitted curve with a covariance")
    return FitResult(
        model=record.model,  # type: ignore[arg-type]
        parameters=dict(record.parameters),
        tia_mbq_h=tia_mbq_h,
        tia_sigma_mbq_h=None,
        effective_half_life_h=half_life_h,
        candidates=(),
        covariance=np.asarray(record.covariance, dtype=np.float64),
        parameter_sigmas=None,
        aicc=None,
        weighted_rss=0.0,
        tac=TimeActivityCurve(
            np.asarray(record.time_h), np.asarray(record.activity_mbq), np.asarray(record.sigma_mbq)
        ),
        decay_constant_per_h=record.decay_constant_per_h,
        effective_half_life_sigma_h=record.effective_half_life_sigma_h,
    )


def _stp(
    t: FloatArray,
    a: FloatArray,
    sigma: FloatArray,
    *,
    kinetics: KineticsSpec,
    region: str,
    recovery: float,
    earlier: Any,
) -> RegionKinetics:
    """Single-time-point TIA (:mod:`theradose.kinetics.stp`) with its σ, flags and applicability window."""
    from theradose.kinetics import hanscheid_estimate, stp_from_earlier_cycle, stp_from_half_life

    i = kinetics.stp_timepoint
    ti, ai, si = float(t[i]), float(a[i]), float(sigma[i])
    teff = kinetics.effective_half_life_h.get(region, kinetics.effective_half_life_h.get("*"))
    extra_flags: list[str] = []
    extra_notes: list[str] = []
    if kinetics.single_timepoint == "earlier_cycle" and earlier is not None:
        result = stp_from_earlier_cycle(ti, ai, earlier, activity_sigma_mbq=si)
        model = "stp-earlier-cycle"
    elif kinetics.single_timepoint == "madsen":
        assert teff is not None
        result = stp_from_half_life(
            ti, ai, effective_half_life_h=teff, activity_sigma_mbq=si, half_life_source="study file (prior)"
        )
        model = "stp-madsen"
    else:
        if kinetics.single_timepoint == "earlier_cycle":
            extra_flags.append(FLAG_EARLIER_CYCLE_UNAVAILABLE)
            extra_notes.append(
                f"no earlier-cycle fit of region {region!r} in the earlier cycle's record: Hänscheid's "
                "single-time-point estimate was used instead"
            )
        result = hanscheid_estimate(ti, ai, activity_sigma_mbq=si, expected_half_life_h=teff)
        model = "stp-hanscheid"
    tia = float(result.tia_mbq_h)
    tia_sigma = float(result.tia_sigma_mbq_h) if result.tia_sigma_mbq_h is not None else math.nan
    half_life: float | None = result.effective_half_life_h if model != "stp-hanscheid" else ti
    half_life_sigma = result.effective_half_life_sigma_h
    record = KineticsRecord(
        method="single_time_point",
        model=model,
        flags=(*result.flags, *extra_flags),
        notes=(*result.warnings, *extra_notes),
        time_h=tuple(t.tolist()),
        activity_mbq=tuple(a.tolist()),
        sigma_mbq=tuple(sigma.tolist()),
        half_life_source=result.half_life_source,
        time_in_half_lives=result.time_in_half_lives,
        effective_half_life_sigma_h=half_life_sigma,
    )
    rel_t = half_life_sigma / half_life if half_life_sigma is not None and half_life else None
    return RegionKinetics(
        tuple(t.tolist()), tuple(a.tolist()), tuple(sigma.tolist()), tia, tia_sigma, model, half_life,
        (), (), (), recovery, record, tia_sigma / tia if tia > 0 and math.isfinite(tia_sigma) else None,
        rel_t, 0.0,
    )  # fmt: skip


def fit_region(
    time_h: Sequence[float],
    activity_mbq: Sequence[float],
    *,
    kinetics: KineticsSpec,
    nuclide: str,
    region: str,
    relative_sigma: float,
    recovery: float = 1.0,
    earlier: Any = None,
) -> RegionKinetics:
    """Fit (or single-time-point estimate) one TAC with :func:`theradose.kinetics.fit_tac` / the
    single-time-point methods of :mod:`theradose.kinetics.stp`.

    Each measurement gets a standard uncertainty ``relative_sigma`` × activity (EANM guidance, Gear et
    al. 2018, EJNMMI 45:2456). In automatic mode a curve that no exponential model fits physically falls
    back to the trapezoid model with a physical-decay tail (a note says so). The fit's flags (failed
    goodness of fit, parameters poorly determined, ...) are kept in the region's kinetics record; the TIA
    σ of a fit that failed goodness of fit is scaled by sqrt(χ²/ν). ``earlier`` is the same region's
    fit of an earlier cycle (:func:`fit_result_from_record`) for ``single_timepoint = "earlier_cycle"``.
    ``recovery`` is recorded only.
    """
    from theradose.dosimetry.uncertainty_budget import fit_components
    from theradose.errors import FitError
    from theradose.kinetics import fit_tac
    from theradose.nuclides import get_nuclide

    t = np.asarray(time_h, dtype=np.float64)
    a = np.asarray(activity_mbq, dtype=np.float64)
    sigma = relative_sigma * np.abs(a)
    lam = float(get_nuclide(nuclide).decay_constant_per_h)
    measured = (tuple(t.tolist()), tuple(a.tolist()), tuple(sigma.tolist()))
    if kinetics.single_timepoint != "none":
        return _stp(t, a, sigma, kinetics=kinetics, region=region, recovery=recovery, earlier=earlier)
    if not np.any(a > 0):
        return RegionKinetics(*measured, 0.0, 0.0, "none", None, (), (), (), recovery)
    safe_sigma = np.where(sigma > 0, sigma, max(float(sigma.max()), 1e-12))
    # the record keeps the weights the fit used (a point of zero activity gets the largest σ), so that a
    # later cycle rebuilds the same fit from it
    measured = (measured[0], measured[1], tuple(safe_sigma.tolist()))
    fallback: tuple[str, ...] = ()
    try:
        fit = fit_tac(t, a, safe_sigma, model=kinetics.model, decay_constant_per_h=lam)
    except FitError as exc:
        if kinetics.model not in ("auto", "trapezoid_mono"):
            raise
        fit = fit_tac(t, a, safe_sigma, model="trapezoid", decay_constant_per_h=lam)
        what = "no exponential form" if kinetics.model == "auto" else "no late mono-exponential"
        fallback = (f"{what} fits this curve physically ({exc}); trapezoid with a "
                    "physical-decay tail used",)  # fmt: skip
    curve_t = np.linspace(0.0, float(t.max()) * 1.2, 121)
    curve_a = fit.evaluate(curve_t)
    sigma_scaled = fit.tia_sigma_scaled_mbq_h
    tia_sigma = sigma_scaled if sigma_scaled is not None else math.nan
    candidates = tuple((c.model, float(c.weight)) for c in fit.candidates)
    curve = (tuple(curve_t.tolist()), tuple(np.asarray(curve_a, dtype=np.float64).tolist()))
    cov = None if fit.covariance is None else tuple(tuple(float(x) for x in row) for row in fit.covariance)
    record = KineticsRecord(
        method="fit",
        model=fit.model,
        flags=tuple(fit.flags),
        notes=(*fallback, *fit.notes),
        selection_criterion=fit.selection_criterion,
        chi_square=fit.chi_square,
        dof=fit.dof,
        p_value=fit.p_value,
        tia_sigma_scaled_mbq_h=sigma_scaled,
        parameters=dict(fit.parameters),
        covariance=cov,
        decay_constant_per_h=fit.decay_constant_per_h,
        effective_half_life_sigma_h=fit.effective_half_life_sigma_h,
        time_h=measured[0],
        activity_mbq=measured[1],
        sigma_mbq=measured[2],
    )
    rel_tia: float | None
    rel_t: float | None
    try:
        parts = fit_components(fit)
        rel_tia, rel_t, rho = parts.tia_rel_sigma, parts.half_life_rel_sigma, parts.correlation
    except InputError:  # trapezoid: no covariance
        rel_tia = tia_sigma / fit.tia_mbq_h if fit.tia_mbq_h > 0 and math.isfinite(tia_sigma) else None
        rel_t, rho = None, 0.0
    fitted = (float(fit.tia_mbq_h), float(tia_sigma))
    return RegionKinetics(
        *measured, *fitted, fit.model, fit.effective_half_life_h, candidates, *curve, recovery, record,
        rel_tia, rel_t, rho,
    )  # fmt: skip


def voxel_tia_map(
    time_h: Sequence[float],
    activity_mbq: Sequence[FloatArray],
    partition: npt.NDArray[np.int32],
    label_tia_mbq_h: Mapping[int, float],
) -> FloatArray:
    """Voxel TIA (MBq·h) by the hybrid method of :func:`theradose.kinetics.voxel.hybrid_tia_by_label`:
    each voxel takes its label's fitted TIA in proportion to its share of the label's activity,
    s_v = Σ_t A_v(t)·C(t) / Σ_t C(t)², Ã_v = s_v·Ã_label (MIRD Pamphlet 23, Dewaraja et al. 2012,
    J Nucl Med 53:1310). The remainder (label 0) is treated as one more label. With one scan (single time
    point) the same relation gives each voxel its share of the label's activity at that scan."""
    from theradose.kinetics.voxel import hybrid_tia_by_label

    stack = np.stack([np.asarray(a, dtype=np.float64) for a in activity_mbq])
    present = set(np.unique(partition).tolist())
    shifted = {label + 1: tia for label, tia in label_tia_mbq_h.items() if label in present and tia > 0}
    if not shifted:
        return np.zeros(partition.shape, dtype=np.float64)
    if stack.shape[0] == 1:  # one scan: s_v = A_v(t)·C(t)/C(t)² = A_v/C, the voxel's share of its label
        out = np.zeros(partition.shape, dtype=np.float64)
        for label, tia in shifted.items():
            mask = partition + 1 == label
            total = float(stack[0][mask].sum())
            if total > 0:
                out[mask] = stack[0][mask] / total * tia
        return out
    return np.asarray(hybrid_tia_by_label(list(time_h), stack, partition + 1, shifted), dtype=np.float64)


# ----------------------------------------------------------------------------------------------- dose
def voxel_dose_gy(
    tia_mbq_h: Volume,
    density_g_per_ml: FloatArray,
    nuclide: str,
    *,
    engine: EngineName,
    seed: int,
    mc_photons: int,
) -> Volume:
    """Absorbed dose map (Gy) from a TIA map (MBq·h per voxel) with
    :func:`theradose.dosimetry.engines.dose_rate_or_dose` (``local``: electron energy deposited in the
    emitting voxel; ``vsv``: density-corrected voxel S-value convolution; ``mc``: photon Monte Carlo with
    ``mc_photons`` histories seeded by ``seed``). Voxels of air (below :data:`AIR_DENSITY_LIMIT_G_PER_ML`)
    are set to 0 Gy: activity there is reconstruction spill-out, not tissue.
    """
    from theradose.dosimetry.engines import dose_rate_or_dose

    density = tia_mbq_h.with_array(np.asarray(density_g_per_ml, dtype=np.float64), unit="g/mL")
    tia = tia_mbq_h.with_array(np.clip(np.asarray(tia_mbq_h.array, dtype=np.float64), 0.0, None))
    dose = dose_rate_or_dose(tia, density, nuclide, engine=engine, seed=seed, n_photons=mc_photons)
    values = np.where(
        density_g_per_ml > AIR_DENSITY_LIMIT_G_PER_ML, np.asarray(dose.array, dtype=np.float64), 0.0
    )
    return tia_mbq_h.with_array(values, unit="Gy")


@dataclass(frozen=True)
class OrganDose:
    """Organ-level (MIRD) dose of one region: mean dose ± σ (Gy) and the method used."""

    dose_gy: float
    dose_sigma_gy: float
    method: str


def organ_doses(
    regions: Mapping[str, tuple[float, float, float]],
    nuclide: str,
    *,
    tumours: Sequence[str],
    administered_activity_mbq: float,
) -> dict[str, OrganDose]:
    """Organ-level MIRD self-dose ± σ of each region from (mass g, TIA MBq·h, TIA σ MBq·h).

    Calls :func:`theradose.dosimetry.organ.region_doses`: organs as ``"organ"`` (electrons absorbed
    locally, photon absorbed fraction of a sphere of the same mass), tumours as ``"sphere"`` (unit-density
    sphere S values), MIRD Pamphlet 21 (Bolch et al. 2009, J Nucl Med 50:477) with EANM uncertainty
    propagation (Gear et al. 2018). Regions are treated independently (no cross-dose between overlapping
    groups such as ``kidneys`` and ``kidney_left``).
    """
    from theradose.dosimetry.organ import Region, region_doses

    tumour_set = set(tumours)
    items = [
        Region(
            name=name,
            kind="sphere" if name in tumour_set else "organ",
            mass_g=mass_g,
            tia_mbq_h=max(tia, 0.0),
            tia_sigma_mbq_h=tia_sigma if math.isfinite(tia_sigma) else 0.0,
        )
        for name, (mass_g, tia, tia_sigma) in regions.items()
        if mass_g > 0
    ]
    if not items:
        return {}
    results = region_doses(items, nuclide, administered_activity_mbq=administered_activity_mbq)
    out: dict[str, OrganDose] = {}
    for item, result in zip(items, results, strict=True):
        known = math.isfinite(regions[item.name][2])
        method = "MIRD sphere S value" if item.kind == "sphere" else "MIRD organ self-dose (patient mass)"
        out[item.name] = OrganDose(result.dose_gy, result.dose_sigma_gy if known else math.nan, method)
    return out


# ------------------------------------------------------------------------------------------- DVH / BED
def region_dvh(dose_gy: FloatArray, mask: npt.NDArray[np.bool_], *, n_bins: int = 100) -> Dvh:
    """Cumulative dose–volume histogram of a region with ``n_bins`` equal bins to its maximum
    (:func:`theradose.dosimetry.dvh.dose_volume_histogram`), stated to the record's significant digits."""
    from theradose.dosimetry.dvh import dose_volume_histogram

    dvh = dose_volume_histogram(dose_gy, mask=mask, n_bins=n_bins)
    return Dvh(
        tuple(round_sig(v) or 0.0 for v in dvh.dose_gy),
        tuple(round_sig(v) or 0.0 for v in dvh.cumulative_fraction),
    )


def region_bed(
    dose: EngineDose | None, *, tissue: str | None, effective_half_life_h: float | None
) -> Bed | None:
    """BED of a region's reference dose delivered to complete decay with its fitted effective half-life.

    :func:`theradose.radiobiology.bed_gy` with the LQ parameters of ``tissue`` in the tissue registry
    (Dale 1985, Br J Radiol 58:515; Baechler et al. 2008, J Nucl Med 49:1966). None when the region has no
    reference dose, no tissue, a tissue without LQ parameters, or no measured effective half-life.
    """
    from theradose.radiobiology import bed_gy
    from theradose.tissues import get_tissue

    if dose is None or dose.dose_gy is None or tissue is None:
        return None
    if effective_half_life_h is None or not effective_half_life_h > 0:
        return None
    params = get_tissue(tissue)
    if params.alpha_beta_gy is None or params.repair_half_time_h is None:
        return None
    value = bed_gy(
        dose.dose_gy,
        effective_half_life_h=effective_half_life_h,
        alpha_beta_gy=params.alpha_beta_gy,
        repair_half_time_h=params.repair_half_time_h,
    )
    return Bed(
        bed_gy=round_sig(float(value)) or 0.0,
        dose_gy=dose.dose_gy,
        dose_source=dose.source,
        tissue=params.name,
        alpha_beta_gy=params.alpha_beta_gy,
        repair_half_time_h=params.repair_half_time_h,
        effective_half_life_h=effective_half_life_h,
        parameters_source=params.radiobiology_source,
    )


#: Computes a region's uncertainty budget from its reference dose, every estimate and its BED.
BudgetFunction = Callable[[str, EngineDose, Sequence[EngineDose], Bed | None], UncertaintyBudget | None]


def region_result(
    name: str,
    *,
    kind: RegionKind,
    mask: npt.NDArray[np.bool_],
    kinetics: RegionKinetics,
    dose_maps: Mapping[str, Volume],
    voxel_mass_g: FloatArray,
    voxel_volume_ml: float,
    organ_dose: OrganDose | None,
    tissue: str | None,
    reference: str,
    budget: BudgetFunction,
    dvh_bins: int,
    flags: tuple[str, ...] = (),
    partial_volume: PartialVolume | None = None,
) -> RegionResult:
    """One region of the dose record: each engine's mass-weighted mean dose with its DVH
    (:func:`engine_estimates`), the organ-level MIRD dose, the BED of the reference dose, the uncertainty
    budget of the reference dose and its BED (``budget``), the kinetics record, the region's flags and how
    its activity was corrected for partial volume (``partial_volume``, model-based correction).

    Every estimate's σ is its dose times the relative σ of the reference dose's budget (the same inputs:
    calibration, recovery, segmentation, registration, fit, dose factor, decay data); the reference dose
    carries its budget's σ exactly. A region without a budget (no dose, or nothing assessed) has no σ;
    a dose of 0 Gy has σ 0.
    """
    from theradose.organs import find_organ

    doses = engine_estimates(mask, dose_maps, voxel_mass_g, dvh_bins=dvh_bins)
    if organ_dose is not None:
        doses.append(EngineDose(ORGAN_SOURCE, round_sig(organ_dose.dose_gy), None, organ_dose.method))
    chosen = next((d for d in doses if d.source == reference), None)
    half_life = round_sig(kinetics.effective_half_life_h)
    bed = region_bed(chosen, tissue=tissue, effective_half_life_h=half_life)
    uncertainty = None
    if chosen is not None and chosen.dose_gy:
        computed = budget(name, chosen, doses, bed)
        uncertainty = None if computed is None else computed.rounded()

    def with_sigma(d: EngineDose) -> EngineDose:
        if d.dose_gy is None:
            return d
        if d.dose_gy == 0:
            sigma: float | None = 0.0
        elif uncertainty is None:
            sigma = None
        elif d.source == reference:
            sigma = uncertainty.dose_sigma_gy
        else:
            sigma = round_sig(d.dose_gy * uncertainty.dose_relative_sigma)
        return dataclasses.replace(d, dose_sigma_gy=sigma)

    organ = find_organ(name)
    return RegionResult(
        name=name,
        kind=kind,
        doses=tuple(with_sigma(d) for d in doses),
        volume_ml=round_sig(float(np.count_nonzero(mask)) * voxel_volume_ml),
        mass_g=round_sig(float(voxel_mass_g[mask].sum())),
        tia_mbq_h=round_sig(kinetics.tia_mbq_h),
        tia_sigma_mbq_h=round_sig(kinetics.tia_sigma_mbq_h),
        kinetics_model=kinetics.model,
        effective_half_life_h=half_life,
        recovery_coefficient=round_sig(kinetics.recovery),
        organ=None if organ is None else organ.name,
        tissue=tissue,
        bed=bed,
        uncertainty=uncertainty,
        kinetics=None if kinetics.record is None else _rounded_record(kinetics.record),
        flags=flags,
        partial_volume=partial_volume,
    )


def _rounded_record(record: KineticsRecord) -> KineticsRecord:
    """The kinetics record with its numbers stated to the record's significant digits."""

    def r(values: Sequence[float]) -> tuple[float, ...]:
        return tuple(round_sig(v) or 0.0 for v in values)

    return dataclasses.replace(
        record,
        chi_square=round_sig(record.chi_square),
        p_value=round_sig(record.p_value),
        tia_sigma_scaled_mbq_h=round_sig(record.tia_sigma_scaled_mbq_h),
        parameters={k: round_sig(v) or 0.0 for k, v in record.parameters.items()},
        covariance=None if record.covariance is None else tuple(r(row) for row in record.covariance),
        decay_constant_per_h=round_sig(record.decay_constant_per_h),
        effective_half_life_sigma_h=round_sig(record.effective_half_life_sigma_h),
        time_h=r(record.time_h),
        activity_mbq=r(record.activity_mbq),
        sigma_mbq=r(record.sigma_mbq),
        time_in_half_lives=round_sig(record.time_in_half_lives),
    )


def engine_estimates(
    mask: npt.NDArray[np.bool_],
    dose_maps: Mapping[str, Volume],
    voxel_mass_g: FloatArray,
    *,
    dvh_bins: int,
) -> list[EngineDose]:
    """Each engine's region dose: the mass-weighted mean (:func:`~theradose.dosimetry.dvh.mean_dose_gy`,
    MIRD Pamphlet 21) with the region's DVH (σ set by :func:`region_result` from the budget)."""
    out: list[EngineDose] = []
    for engine, dmap in dose_maps.items():
        values = np.asarray(dmap.array, dtype=np.float64)
        mean = round_sig(mean_dose_gy(values, mask, voxel_mass_g))
        out.append(
            EngineDose(
                source=str(engine),
                dose_gy=mean,
                dose_sigma_gy=None,
                method=f"{engine} engine, {MEAN_DOSE_DEFINITION}",
                dvh=region_dvh(values, mask, n_bins=dvh_bins),
            )
        )
    return out


def check_capabilities(spec: StudySpec) -> None:
    """Refuse, before any computation, a study that asks for a stage this build cannot run."""
    for engine in spec.dose.engines:
        if engine not in AVAILABLE_ENGINES:
            raise InputError(
                f"dose.engines has '{engine}', which this build cannot run: use {list(AVAILABLE_ENGINES)}"
            )


def read_recovery_curve(path: Path) -> Any:
    """Recovery curve from QA: JSON with ``rc_inf, v50_ml, slope, v_min_ml, v_max_ml`` (a fitted
    :class:`~theradose.qa.spect.RecoveryCurve`) or with ``volume_ml`` and ``recovery`` lists (optionally
    under ``measured``, with ``sphere_to_background``: the measured RC_mean are then freed of the
    background's spill-in by :func:`~theradose.imaging.pvc.background_free_recovery` before fitting), or
    CSV with columns ``volume_ml,recovery`` (fitted with :func:`~theradose.qa.spect.fit_recovery_curve`).
    A JSON object with ``curves``, a list of such objects each with its ``sphere_to_background``, gives a
    :class:`~theradose.imaging.pvc.ContrastRecovery` (RC by volume and contrast)."""
    import json

    from theradose.imaging.pvc import ContrastRecovery
    from theradose.qa.spect import RecoveryCurve, fit_recovery_curve

    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        from theradose.tables import column, read_rows

        rows = read_rows(path, required={"volume_ml": float, "recovery": float})
        return fit_recovery_curve(column(rows, "volume_ml"), column(rows, "recovery"))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"pvc.recovery_curve {path.name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"pvc.recovery_curve {path.name} must hold a JSON object")
    if "curves" in data:
        entries = data["curves"]
        if not isinstance(entries, list) or not entries:
            raise InputError(f"pvc.recovery_curve {path.name}: 'curves' must be a non-empty list")
        pairs: list[tuple[float, RecoveryCurve]] = []
        for entry in entries:
            ratio = entry.get("sphere_to_background") if isinstance(entry, dict) else None
            if not isinstance(ratio, (int, float)) or not ratio > 1:
                raise InputError(
                    f"pvc.recovery_curve {path.name}: every entry of 'curves' needs sphere_to_background > 1"
                )
            pairs.append((float(ratio), _curve_from_json(entry, path)))
        pairs.sort(key=lambda p: p[0])
        return ContrastRecovery(tuple(r for r, _ in pairs), tuple(c for _, c in pairs))
    return _curve_from_json(data, path)


def _curve_from_json(data: Mapping[str, Any], path: Path) -> Any:
    """One recovery curve from a JSON object (fitted parameters or measured lists)."""
    from theradose.imaging.pvc import background_free_recovery
    from theradose.qa.spect import RecoveryCurve, fit_recovery_curve

    keys = ("rc_inf", "v50_ml", "slope", "v_min_ml", "v_max_ml")
    if all(k in data for k in keys):
        return RecoveryCurve(*(float(data[k]) for k in keys))
    if isinstance(data.get("measured"), dict):
        data = {**data["measured"], **{k: v for k, v in data.items() if k == "sphere_to_background"}}
    if "volume_ml" in data and "recovery" in data:
        recovery = [float(r) for r in data["recovery"]]
        ratio = data.get("sphere_to_background")
        if ratio is not None:
            if not isinstance(ratio, (int, float)) or not ratio > 1:
                raise InputError(
                    f"pvc.recovery_curve {path.name}: sphere_to_background must be > 1; got {ratio!r}"
                )
            recovery = background_free_recovery(recovery, sphere_to_background=float(ratio))
        pairs = [(float(v), r) for v, r in zip(data["volume_ml"], recovery, strict=True) if r > 0]
        return fit_recovery_curve([v for v, _ in pairs], [r for _, r in pairs])
    raise InputError(
        f"pvc.recovery_curve {path.name} needs keys {', '.join(keys)} or volume_ml + recovery lists"
    )


# ------------------------------------------------------------------------------ model-based partial volume
def read_resolution(path: Path) -> Any:
    """Effective resolution (JSON written by ``theradose qa resolution``):
    :class:`theradose.imaging.pvc.resolution.EffectiveResolution`."""
    import json

    from theradose.imaging.pvc.resolution import EffectiveResolution

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(
            f"pvc.resolution {path.name} is not readable JSON ({exc}): write it with "
            "'theradose qa resolution'"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"pvc.resolution {path.name} must hold a JSON object")
    return EffectiveResolution.from_dict(data, where=f"pvc.resolution {path.name}")


def model_pvc(
    activity_mbq: Sequence[FloatArray],
    region_set: RegionSet,
    ct: Volume | None,
    grid: Volume,
    *,
    resolution: Any,
    fit_resolution: bool,
    other_uptake: bool,
) -> Any:
    """Geometric-transfer-matrix and region-based voxel-wise correction of every partition label at every
    time point: :func:`theradose.imaging.pvc.correct_study` (Rousset et al. 1998; Thomas et al. 2011),
    background compartments from the CT's tissue classes, effective resolution from the site's IEC phantom
    refined on each object's spill-out in the image."""
    from theradose.imaging.pvc import correct_study

    if ct is None:
        raise InputError("pvc.method 'gtm' or 'rbv' needs the CT of the reference time point")
    return correct_study(
        [np.asarray(a, dtype=np.float64) for a in activity_mbq],
        region_set.labels,
        np.asarray(ct.array, dtype=np.float64),
        grid.spacing_mm,
        resolution,
        fit_resolution=fit_resolution,
        other_uptake=other_uptake,
        regions=region_set.regions,
    )


def unresolved_relative_sigma(self_recovery: float) -> float:
    """Relative uncertainty of a region below the resolvable size: half its correction factor less one,
    0.5·(1/ω − 1) (ω its self-recovery); the corrected value is not known better than the size of its
    correction."""
    if not self_recovery > 0:
        return math.inf
    return 0.5 * (1.0 / self_recovery - 1.0)


def label_pvc_sigma(correction: Any) -> float:
    """Relative uncertainty of one label's corrected activity: the propagated response uncertainty,
    widened to :func:`unresolved_relative_sigma` below the resolvable size."""
    sigma = float(correction.relative_sigma) if math.isfinite(correction.relative_sigma) else 0.0
    if not correction.resolvable:
        sigma = max(sigma, unresolved_relative_sigma(correction.self_recovery))
    return sigma


def region_partial_volume(
    pvc_result: Any, labels: Sequence[int], *, method: str, by_recovery_curve: set[int]
) -> PartialVolume | None:
    """The partial-volume entry of a region from its labels' corrections (activity-weighted)."""
    if labels and all(label in by_recovery_curve for label in labels):
        return PartialVolume(method="recovery_curve")
    corrs = [pvc_result.labels[label] for label in labels if label in pvc_result.labels]
    if not corrs:
        return None
    weight = [max(c.activity[0], 0.0) for c in corrs]
    total = sum(weight) or 1.0
    omega = sum(w * c.self_recovery for w, c in zip(weight, corrs, strict=True)) / total
    sigma = sum(w * label_pvc_sigma(c) for w, c in zip(weight, corrs, strict=True)) / total
    return PartialVolume(
        method=method,
        self_recovery=round_sig(omega),
        fwhm_mm=round_sig(max(c.fwhm_mm for c in corrs)),
        equivalent_diameter_mm=round_sig(min(c.equivalent_diameter_mm for c in corrs)),
        activity_relative_sigma=round_sig(sigma),
        below_resolvable_size=not all(c.resolvable for c in corrs),
    )


# -------------------------------------------------------------------------------------------- red marrow
def marrow_doses(spec: StudySpec, kinetics: Mapping[str, RegionKinetics], *, nuclide: str) -> Any:
    """Blood- and image-based red marrow doses of the study (:mod:`theradose.dosimetry.marrow`) and their
    disagreement; None without ``[marrow]``."""
    from theradose.dosimetry.marrow import blood_based_dose, compare_methods, image_based_dose
    from theradose.nuclides import get_nuclide

    m = spec.marrow
    if not m.enabled:
        return None
    patient = spec.patient
    if patient.sex not in ("M", "F") or patient.weight_kg is None:
        raise InputError(
            "red marrow dosimetry needs patient.sex ('M' or 'F') and patient.weight_kg for the reference "
            "marrow mass: add them"
        )
    data = get_nuclide(nuclide)
    energy = float(data.electron_energy_mev_per_decay)
    blood = None
    if m.samples:
        blood = blood_based_dose(
            [s.time_h for s in m.samples],
            [s.concentration_bq_per_ml for s in m.samples],
            radiopharmaceutical=spec.administration.radiopharmaceutical,
            electron_energy_mev=energy,
            decay_constant_per_h=float(data.decay_constant_per_h),
            sex=patient.sex,
            weight_kg=patient.weight_kg,
            sample_kind=m.sample,
            haematocrit=m.haematocrit,
            rmblr=m.rmblr,
            rmblr_relative_sigma=m.rmblr_relative_sigma,
            sample_relative_sd=m.sample_relative_sd,
        )
    image = None
    if m.region is not None:
        k = kinetics[m.region]
        rel = k.tia_sigma_mbq_h / k.tia_mbq_h if k.tia_mbq_h > 0 and math.isfinite(k.tia_sigma_mbq_h) else 0.0
        image = image_based_dose(
            max(k.tia_mbq_h, 0.0),
            vertebrae=m.vertebrae,
            electron_energy_mev=energy,
            sex=patient.sex,
            weight_kg=patient.weight_kg,
            voi_tia_relative_sigma=rel,
        )
    return compare_methods(blood, image)
