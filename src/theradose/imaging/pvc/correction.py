"""Partial-volume correction of a registered serial study by geometric transfer matrix and RBV.

:func:`correct_study` solves the GTM (:mod:`theradose.imaging.pvc.gtm`) at every time point, with the
response of each object measured on the site's phantom and refined on the object's spill-out, and returns
per partition label the corrected activities by both methods (GTM regional activities; sums of the
RBV-corrected image, :mod:`theradose.imaging.pvc.voxelwise`), their relative uncertainty from the response
model and whether the region is resolvable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError
from theradose.imaging.pvc.gtm import (
    RESOLVABLE_SELF_RECOVERY,
    build_compartments,
    join_unresolvable_pieces,
    joinable_label_pairs,
    label_summary,
    label_totals,
    relative_sigma_by_label,
    solve_gtm,
)
from theradose.imaging.pvc.resolution import EffectiveResolution
from theradose.imaging.pvc.voxelwise import rbv_image

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LabelCorrection:
    """Partial-volume correction of one partition label over the time points.

    Attributes
    ----------
    activity : tuple of float
        Corrected activity per time point (image units × voxels).
    measured : tuple of float
        Sum of the image over the label per time point.
    relative_sigma : float
        Relative standard uncertainty from the resolution model.
    self_recovery : float
        ω_ii of the label's largest compartment (reference time point).
    fwhm_mm, equivalent_diameter_mm, contrast : float
        The response used for it (reference time point).
    resolvable : bool
        ``self_recovery >= RESOLVABLE_SELF_RECOVERY``.
    """

    activity: tuple[float, ...]
    measured: tuple[float, ...]
    relative_sigma: float
    self_recovery: float
    fwhm_mm: float
    equivalent_diameter_mm: float
    contrast: float
    resolvable: bool


@dataclass(frozen=True)
class PvcResult:
    """Partial-volume correction of a registered serial study, by both methods.

    Attributes
    ----------
    labels : dict
        Partition label → :class:`LabelCorrection` with the GTM activities (listed regions only).
    rbv_activity : dict
        Partition label → activity per time point of the RBV-corrected image summed over the label.
    remainder, rbv_remainder : tuple of float
        Activity of everything else per time point: the total of the image less the corrected labels.
    corrected_images : tuple of ndarray (float32)
        RBV-corrected images.
    n_compartments : tuple of int
        Compartments used per time point (listed, tissue and other uptake).
    condition_number : tuple of float
        Of the transfer matrix per time point.
    """

    labels: Mapping[int, LabelCorrection]
    rbv_activity: Mapping[int, tuple[float, ...]]
    remainder: tuple[float, ...]
    rbv_remainder: tuple[float, ...]
    corrected_images: tuple[npt.NDArray[np.float32], ...]
    n_compartments: tuple[int, ...]
    condition_number: tuple[float, ...]

    def activity(self, label: int, method: str) -> tuple[float, ...]:
        """Corrected activity per time point of a label by ``"gtm"`` or ``"rbv"``."""
        if method == "rbv":
            return self.rbv_activity[label]
        return self.labels[label].activity


def correct_study(
    images: Sequence[FloatArray],
    region_labels: npt.NDArray[np.integer],
    hu: FloatArray,
    spacing_mm: Sequence[float],
    resolution: EffectiveResolution,
    *,
    reference: int = 0,
    other_uptake: bool = True,
    fit_resolution: bool = True,
    regions: Mapping[str, Sequence[int]] | None = None,
) -> PvcResult:
    """Correct every time point of a registered study by GTM and RBV.

    Parameters
    ----------
    images : sequence of ndarray
        Activity per voxel (MBq) per time point, on the grid of ``region_labels``.
    region_labels : ndarray of int
        Partition of the listed regions (0: not listed).
    hu : ndarray
        CT (HU) on the same grid.
    spacing_mm : sequence of 3 float
    resolution : EffectiveResolution
        Measured on the site's IEC phantom.
    reference : int
        Time point at which the uncertainty and the reported response are evaluated.
    other_uptake : bool
        Detect unlisted uptake (see module docstring).
    fit_resolution : bool
        Fit each listed object's response to its spill-out in the image (else the phantom table only).
    regions : mapping, optional
        Listed region → its partition labels: adjacent labels of one region with similar concentrations
        (a kidney's cortex and medulla) form one object for the response; without it none are joined.
    """
    if not images:
        raise InputError("correct_study needs at least one image")
    if not 0 <= reference < len(images):
        raise InputError(f"reference must be a time point index 0..{len(images) - 1}; got {reference}")
    comps = join_unresolvable_pieces(
        build_compartments(region_labels, hu), resolution.large_object_fwhm_mm, spacing_mm
    )
    listed = sorted(int(v) for v in np.unique(region_labels) if v != 0)
    joinable = joinable_label_pairs(regions or {})
    solutions = [
        solve_gtm(
            image,
            comps,
            resolution,
            spacing_mm,
            other_uptake=other_uptake,
            fit_resolution=fit_resolution,
            joinable_labels=joinable,
        )
        for image in images
    ]
    ref = solutions[reference]
    sigma = relative_sigma_by_label(images[reference], ref, resolution.relative_sigma, spacing_mm)
    summary = label_summary(ref)
    corrected: list[npt.NDArray[np.float32]] = []
    gtm_label: dict[int, list[float]] = {label: [] for label in listed}
    rbv_label: dict[int, list[float]] = {label: [] for label in listed}
    measured_label: dict[int, list[float]] = {label: [] for label in listed}
    remainder: list[float] = []
    rbv_remainder: list[float] = []
    labels_arr = np.asarray(region_labels).ravel()
    n_bins = max(listed, default=0) + 1
    for image, sol in zip(images, solutions, strict=True):
        img = np.asarray(image, dtype=np.float64)
        totals = label_totals(sol.activity, sol.comps)
        rbv = rbv_image(img, sol)
        corrected.append(rbv.astype(np.float32))
        rbv_sums = np.bincount(labels_arr, weights=rbv.ravel(), minlength=n_bins)
        raw = np.bincount(labels_arr, weights=img.ravel(), minlength=n_bins)
        for label in listed:
            gtm_label[label].append(max(totals.get(label, 0.0), 0.0))
            rbv_label[label].append(max(float(rbv_sums[label]), 0.0))
            measured_label[label].append(float(raw[label]))
        total = float(img.sum())
        remainder.append(max(total - sum(gtm_label[lb][-1] for lb in listed), 0.0))
        rbv_remainder.append(max(total - sum(rbv_label[lb][-1] for lb in listed), 0.0))
    out: dict[int, LabelCorrection] = {}
    for label in listed:
        omega, fwhm, d_eq, contrast = summary.get(label, (math.nan, math.nan, math.nan, math.nan))
        out[label] = LabelCorrection(
            activity=tuple(gtm_label[label]),
            measured=tuple(measured_label[label]),
            relative_sigma=float(sigma.get(label, math.nan)),
            self_recovery=omega,
            fwhm_mm=fwhm,
            equivalent_diameter_mm=d_eq,
            contrast=contrast,
            resolvable=bool(omega >= RESOLVABLE_SELF_RECOVERY),
        )
    return PvcResult(
        labels=out,
        rbv_activity={label: tuple(v) for label, v in rbv_label.items()},
        remainder=tuple(remainder),
        rbv_remainder=tuple(rbv_remainder),
        corrected_images=tuple(corrected),
        n_compartments=tuple(s.comps.n for s in solutions),
        condition_number=tuple(s.condition_number for s in solutions),
    )
