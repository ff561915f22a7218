"""The uncertainty budget of every region's dose and BED, from what the study actually did.

Each component of :mod:`theradose.dosimetry.uncertainty_budget` (EANM guidance, Gear et al. 2018, Eur J
Nucl Med Mol Imaging 45:2456) gets its relative standard uncertainty from the study's own inputs:

=============== ===========================================================================================
calibration     the SPECT calibration's QA record named by the study file (σ/factor); not assessed without
recovery        tumours corrected with a recovery curve: the residual standard deviation of the measured
                spheres about the curve (:func:`theradose.qa.spect.recovery_fit_sigma`) over RC(V), with
                β = d ln RC/d ln V from the curve; organs corrected with enlarged VOIs: the change of the
                corrected activity when the margin changes by ±1 voxel (half the difference; the margin
                is "about 1 FWHM") combined with the uncertainty of the band's background from the
                background's non-uniformity around the organ
                (:func:`theradose.imaging.pvc.background_sector_sigma_mbq`); regions corrected by the
                model-based correction (``pvc.method = "gtm"`` or ``"rbv"``): the model's relative σ of
                the corrected activity (the response scaled by ±σ of the measured resolution), widened to
                half the correction below the resolvable size
                (:func:`theradose.pipeline.stages.label_pvc_sigma`); not assessed for an uncorrected
                region
volume          segmentation: one-voxel dilation and erosion of the region's mask
                (:func:`~theradose.dosimetry.uncertainty_budget.volume_relative_sigma_from_mask`) scaled to
                the boundary's standard uncertainty: the study file's ``boundary_sigma_mm``, else the
                voxelisation error of the grid (1/√12 voxel)
registration    when registration ran: the residual displacement from the body Dice after registration
                (:func:`~theradose.dosimetry.uncertainty_budget.registration_relative_sigma`)
fit_tia,        the fit covariance (:func:`~theradose.dosimetry.uncertainty_budget.fit_components`), scaled
fit_half_life   by sqrt(χ²/ν) when goodness of fit failed; single time point: its activity and half-life terms
s_value         the spread of the study's other dose estimates (engines, organ-level MIRD) about the
                reference dose: root-mean-square relative difference; not assessed with one estimate
decay_data      :data:`~theradose.dosimetry.uncertainty_budget.DECAY_DATA_RELATIVE_SIGMA`
density         not assessed (the HU-to-density calibration states no uncertainty)
=============== ===========================================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from theradose.dosimetry.results import Bed, EngineDose
from theradose.dosimetry.uncertainty_budget import (
    DECAY_DATA_RELATIVE_SIGMA,
    VOXELISATION_SIGMA_VOXELS,
    BudgetInputs,
    UncertaintyBudget,
    propagate_budget,
    registration_relative_sigma,
    volume_relative_sigma_from_mask,
)
from theradose.errors import InputError

FloatArray = npt.NDArray[np.float64]

#: CT number (HU) above which a voxel is in the body (for the body outline of the registration term).
BODY_HU_THRESHOLD = -500.0


@dataclass(frozen=True)
class LabelRecovery:
    """The recovery-curve correction of one partition label: RC at its volume, β = d ln RC/d ln V and
    whether the volume lies below the smallest calibrated sphere."""

    recovery: float
    slope: float
    below_resolution: bool


@dataclass(frozen=True)
class ModelRecovery:
    """The model-based correction (:mod:`theradose.imaging.pvc`) of one partition label: the relative σ of
    its corrected activity (widened below the resolvable size) and whether it is below that size."""

    relative_sigma: float
    below_resolution: bool


@dataclass(frozen=True)
class RecoveryUncertainty:
    """What the partial-volume corrections tell about their own uncertainty.

    Attributes
    ----------
    curve_sigma : float or None
        Residual standard deviation (RC units) of the measured spheres about the recovery curve(s).
    curve_spheres : int
        Number of measured spheres behind ``curve_sigma``.
    curve_labels : mapping
        Label → :class:`LabelRecovery` of every label corrected with the curve.
    half_recovery_ml : float or None
        Volume at which the curve recovers half of RC∞ (the smallest V₅₀ of the curves).
    margin_sums : mapping
        Organ label → its corrected activity summed over time points with the margin − 1 voxel, as used,
        + 1 voxel.
    margin_step_mm : float
        The voxel step of the margin.
    background_sums : mapping
        Organ label → the standard uncertainty of the band's background from the background's
        non-uniformity around the organ (:func:`theradose.imaging.pvc.background_sector_sigma_mbq`),
        summed over time points like ``margin_sums``.
    model_labels : mapping
        Label → :class:`ModelRecovery` of every label corrected by the model-based correction.
    model_method : str
        That correction's method (``"gtm"`` or ``"rbv"``; ``""`` without it).
    """

    curve_sigma: float | None = None
    curve_spheres: int = 0
    curve_labels: Mapping[int, LabelRecovery] = field(default_factory=dict)
    half_recovery_ml: float | None = None
    margin_sums: Mapping[int, tuple[float, float, float]] = field(default_factory=dict)
    margin_step_mm: float = 0.0
    background_sums: Mapping[int, float] = field(default_factory=dict)
    model_labels: Mapping[int, ModelRecovery] = field(default_factory=dict)
    model_method: str = ""


def recovery_curve_sigma(path: Path) -> tuple[float | None, int]:
    """Pooled residual standard deviation (RC units) of the measured spheres about the fitted curve(s) of
    a recovery-curve file, and the number of spheres (None, 0 when the file holds no measured points).

    Each curve with measured points (``measured`` or top-level ``volume_ml``/``recovery``) contributes
    its squared residuals and n − 3 degrees of freedom (:func:`theradose.qa.spect.recovery_fit_sigma`).
    """
    import json

    from theradose.imaging.pvc import background_free_recovery
    from theradose.qa.spect import RecoveryCurve, fit_recovery_curve, recovery_fit_sigma

    if path.suffix.lower() == ".csv":
        from theradose.tables import column, read_rows

        rows = read_rows(path, required={"volume_ml": float, "recovery": float})
        entries: list[dict[str, Any]] = [
            {"measured": {"volume_ml": column(rows, "volume_ml"), "recovery": column(rows, "recovery")}}
        ]
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = list(data["curves"]) if "curves" in data else [data]
    squares, dof, spheres = 0.0, 0, 0
    keys = ("rc_inf", "v50_ml", "slope", "v_min_ml", "v_max_ml")
    for entry in entries:
        measured = entry.get("measured", entry)
        if "volume_ml" not in measured or "recovery" not in measured:
            continue
        volumes = [float(v) for v in measured["volume_ml"]]
        recovery = [float(r) for r in measured["recovery"]]
        if all(k in entry for k in keys):
            curve = RecoveryCurve(*(float(entry[k]) for k in keys))
        else:
            ratio = entry.get("sphere_to_background")
            if ratio is not None:
                recovery = background_free_recovery(recovery, sphere_to_background=float(ratio))
            curve = None
        kept = [(v, r) for v, r in zip(volumes, recovery, strict=True) if r > 0]
        if len(kept) < 4:
            continue
        v, r = [p[0] for p in kept], [p[1] for p in kept]
        if curve is None:
            curve = fit_recovery_curve(v, r)
        s = recovery_fit_sigma(v, r, curve)
        squares += s**2 * (len(kept) - 3)
        dof += len(kept) - 3
        spheres += len(kept)
    if dof == 0:
        return None, 0
    return math.sqrt(squares / dof), spheres


def curve_recovery(curve: Any, volume_ml: float) -> tuple[float, float, float, float]:
    """(RC, β, smallest calibrated volume, V₅₀) of a recovery curve or of the mean of a contrast set."""
    curves = list(getattr(curve, "curves", (curve,)))
    rc = float(np.mean([float(c(volume_ml)) for c in curves]))
    beta = float(np.mean([c.log_slope(volume_ml) for c in curves]))
    return rc, beta, min(c.v_min_ml for c in curves), min(c.v50_ml for c in curves)


@dataclass(frozen=True)
class BudgetContext:
    """Study-level inputs of every region's budget (see the module docstring)."""

    nuclide: str
    reference: str
    calibration_rel_sigma: float | None
    calibration_source: str
    boundary_sigma_voxels: float
    boundary_source: str
    registration_dice: float | None
    registration_source: str
    body_mask: npt.NDArray[np.bool_] | None
    recovery: RecoveryUncertainty
    label_weight: Mapping[int, float]

    def region_recovery(self, labels: Sequence[int]) -> tuple[float | None, float, str]:
        """(relative σ, β, source) of the recovery of a region made of ``labels``: the activity-weighted
        mean over its corrected labels (fully correlated within the region); None when none is
        corrected or the correction states no uncertainty."""
        rec = self.recovery
        curve = [label for label in labels if label in rec.curve_labels]
        organ = [label for label in labels if label in rec.margin_sums]
        model = [label for label in labels if label in rec.model_labels]
        if not curve and not organ and not model:
            return None, 0.0, "no partial-volume correction"
        parts: list[tuple[float, float | None, float]] = []  # (weight, σ, β)
        for label in curve:
            info = rec.curve_labels[label]
            sigma = None if rec.curve_sigma is None else rec.curve_sigma / info.recovery
            parts.append((self.label_weight.get(label, 0.0), sigma, info.slope))
        if organ:
            minus = sum(rec.margin_sums[label][0] for label in organ)
            used = sum(rec.margin_sums[label][1] for label in organ)
            plus = sum(rec.margin_sums[label][2] for label in organ)
            background = sum(rec.background_sums.get(label, 0.0) for label in organ)
            sigma = math.hypot(abs(plus - minus) / 2.0, background) / used if used > 0 else None
            parts.append((sum(self.label_weight.get(label, 0.0) for label in organ), sigma, 0.0))
        for label in model:
            parts.append((self.label_weight.get(label, 0.0), rec.model_labels[label].relative_sigma, 0.0))
        if any(sigma is None for _w, sigma, _b in parts):
            return None, 0.0, "recovery curve without measured spheres: its uncertainty cannot be assessed"
        total = sum(w for w, _s, _b in parts) or 1.0
        rel = sum(w * (s or 0.0) for w, s, _b in parts) / total
        beta = sum(w * b for w, _s, b in parts) / total
        sources = []
        if curve:
            sources.append(
                f"recovery curve: residual SD {rec.curve_sigma:.3f} of {rec.curve_spheres} spheres"
            )
        if organ:
            sources.append(
                f"enlarged VOI: margin ±{rec.margin_step_mm:.1f} mm (one voxel) and the background's "
                "non-uniformity around the organ"
            )
        if model:
            below = any(rec.model_labels[label].below_resolution for label in model)
            sources.append(
                f"{rec.model_method or 'model-based'} correction: response scaled by ±σ of the measured "
                "resolution" + ("; half the correction below the resolvable size" if below else "")
            )
        return rel, beta, "; ".join(sources)


def dose_factor_spread(reference: EngineDose, estimates: Sequence[EngineDose]) -> tuple[float | None, str]:
    """Root-mean-square relative difference of the other estimates from the reference dose (the
    ``s_value`` component), and its source; None with no other estimate."""
    others = [
        d for d in estimates if d.source != reference.source and d.dose_gy is not None and d.dose_gy > 0
    ]
    if not others or not reference.dose_gy:
        return None, "one dose method only"
    squares = [(float(d.dose_gy or 0.0) / reference.dose_gy - 1.0) ** 2 for d in others]
    names = ", ".join(d.source for d in others)
    return math.sqrt(sum(squares) / len(squares)), f"spread of {names} about {reference.source}"


def region_budget(
    name: str,
    reference: EngineDose,
    estimates: Sequence[EngineDose],
    bed: Bed | None,
    *,
    context: BudgetContext,
    labels: Sequence[int],
    mask: npt.NDArray[np.bool_],
    kinetics: Any,
) -> UncertaintyBudget | None:
    """The budget of one region's reference dose and BED (module docstring); None without a dose."""
    if reference.dose_gy is None or reference.dose_gy <= 0:
        return None
    rec_sigma, beta, rec_source = context.region_recovery(labels)
    volume = volume_relative_sigma_from_mask(mask, boundary_sigma_voxels=context.boundary_sigma_voxels)
    registration = None
    if context.registration_dice is not None and context.body_mask is not None:
        registration = registration_relative_sigma(context.registration_dice, context.body_mask, mask)
    s_value, s_source = dose_factor_spread(reference, estimates)
    decay = DECAY_DATA_RELATIVE_SIGMA.get(context.nuclide)
    record = kinetics.record
    fit_source = "fit covariance"
    if record is not None and record.method == "single_time_point":
        fit_source = f"single time point ({record.model}): activity and half-life terms"
    elif record is not None and "goodness_of_fit_failed" in record.flags:
        fit_source = (
            f"fit covariance scaled by sqrt(chi2/dof) = sqrt({record.chi_square:.3g}/{record.dof}): "
            "goodness of fit failed"
        )
    elif record is not None:
        fit_source = f"fit covariance ({record.model})"
    inputs = BudgetInputs(
        region=name,
        dose_gy=reference.dose_gy,
        calibration_rel_sigma=context.calibration_rel_sigma,
        recovery_rel_sigma=rec_sigma,
        volume_rel_sigma=volume,
        density_rel_sigma=None,
        registration_rel_sigma=registration,
        fit_tia_rel_sigma=kinetics.fit_tia_rel_sigma,
        s_value_rel_sigma=s_value,
        decay_data_rel_sigma=decay,
        recovery_volume_slope=beta,
        mass_exponent=1.0,
        effective_half_life_h=None if bed is None else bed.effective_half_life_h,
        fit_half_life_rel_sigma=kinetics.fit_half_life_rel_sigma if bed is not None else None,
        fit_tia_half_life_correlation=kinetics.fit_correlation if bed is not None else 0.0,
        alpha_beta_gy=None if bed is None else bed.alpha_beta_gy,
        repair_half_time_h=None if bed is None else bed.repair_half_time_h,
        sources={
            "calibration": context.calibration_source,
            "recovery": rec_source,
            "volume": context.boundary_source,
            "registration": context.registration_source,
            "fit_tia": fit_source,
            "fit_half_life": fit_source,
            "s_value": s_source,
            "decay_data": "ICRP 107 energy per decay",
        },
    )
    try:
        return propagate_budget(inputs)
    except InputError:
        return None


def boundary_sigma_voxels(boundary_sigma_mm: float | None, spacing_mm: Sequence[float]) -> tuple[float, str]:
    """The segmentation boundary's standard uncertainty in voxels of the grid, and its source."""
    voxel_mm = float(np.mean(np.asarray(spacing_mm, dtype=np.float64)))
    if boundary_sigma_mm is None:
        return VOXELISATION_SIGMA_VOXELS, (
            f"segmentation ±1 voxel ({voxel_mm:.1f} mm), voxelisation error 1/sqrt(12) voxel"
        )
    return boundary_sigma_mm / voxel_mm, f"segmentation boundary sigma {boundary_sigma_mm:g} mm (study file)"


def body_mask_from_ct(ct_hu: FloatArray | None) -> npt.NDArray[np.bool_] | None:
    """Body outline (CT above :data:`BODY_HU_THRESHOLD`) on the grid, or None without a CT."""
    if ct_hu is None:
        return None
    mask = np.asarray(ct_hu) > BODY_HU_THRESHOLD
    return mask if mask.any() else None


__all__ = [
    "BODY_HU_THRESHOLD",
    "BudgetContext",
    "LabelRecovery",
    "ModelRecovery",
    "RecoveryUncertainty",
    "body_mask_from_ct",
    "boundary_sigma_voxels",
    "curve_recovery",
    "dose_factor_spread",
    "recovery_curve_sigma",
    "region_budget",
]
