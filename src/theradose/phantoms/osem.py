"""OSEM reconstruction with attenuation correction, resolution modelling and additive scatter.

Ordered-subsets expectation maximisation (Hudson & Larkin 1994, IEEE Trans Med Imaging 13:601)::

    x ← x / (Aₛᵀ 1) · Aₛᵀ [ yₛ / (Aₛ x + sₛ) ]

with Aₛ the system matrix of the views of subset s (:class:`~theradose.phantoms.projector.Projector`:
attenuation from the μ-map = attenuation correction, depth-dependent CDR = resolution modelling, the
sensitivity × time per view = quantitative calibration) and sₛ an additive scatter estimate. Subsets take
every n-th view (interleaved). The image is activity per voxel in MBq, so the result is quantitative
(Bq/mL after division by the voxel volume) without a separate calibration factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError
from theradose.phantoms.projector import Projector
from theradose.phantoms.spect import SpectAcquisition, make_projector, scatter_from_primary
from theradose.units import bq_to_mbq, mbq_to_bq, mm3_to_ml

FloatArray = npt.NDArray[np.float64]
ScatterCorrection = Literal["none", "model", "convolution"]


@dataclass(frozen=True)
class Reconstruction:
    """A reconstructed SPECT image.

    Attributes
    ----------
    activity_mbq : ndarray, shape (n_z, n, n)
        Activity per voxel (MBq).
    concentration_bq_per_ml : ndarray, shape (n_z, n, n)
        Activity concentration (Bq/mL).
    iterations, subsets : int
        OSEM settings.
    attenuation_correction, resolution_modelling : bool
        Corrections applied.
    scatter_correction : {"none", "model", "convolution"}
        ``"model"``: the true expected scatter (for simulation studies); ``"convolution"``: estimated from
        the measured projections with the same convolution kernel (Bailey & Meikle 1994).
    """

    activity_mbq: FloatArray
    concentration_bq_per_ml: FloatArray
    iterations: int
    subsets: int
    attenuation_correction: bool
    resolution_modelling: bool
    scatter_correction: ScatterCorrection


def osem(
    counts: FloatArray,
    projector: Projector,
    *,
    iterations: int = 4,
    subsets: int = 10,
    additive: FloatArray | None = None,
    initial: FloatArray | None = None,
    support: npt.NDArray[np.bool_] | None = None,
) -> FloatArray:
    """OSEM iterations on ``counts`` with ``projector``; returns activity per voxel (MBq).

    Parameters
    ----------
    counts : ndarray, shape (n_views, n_z, n)
        Measured counts.
    projector : Projector
        System model (its ``counts_per_mbq`` makes the image quantitative).
    iterations, subsets : int
        Number of full passes and of interleaved view subsets (``subsets`` must divide into the views).
    additive : ndarray, shape like counts, or None
        Additive term of the forward model (scatter estimate).
    initial : ndarray or None
        Start image (default uniform, scaled to the total counts).
    support : bool ndarray or None
        Voxels allowed to hold activity (default all).
    """
    n_views = projector.n_views
    if counts.shape[0] != n_views:
        raise InputError(f"counts has {counts.shape[0]} views; the projector has {n_views}")
    if iterations < 1 or subsets < 1 or subsets > n_views:
        raise InputError(
            f"iterations must be >= 1 and 1 <= subsets <= {n_views}; got {iterations}, {subsets}"
        )
    if np.any(counts < 0.0):
        raise InputError("counts must be >= 0")
    subset_views = [np.arange(s, n_views, subsets) for s in range(subsets)]
    if initial is None:
        total_sens = float(projector.counts_per_mbq) * n_views
        total_activity_mbq = float(counts.sum()) / total_sens if total_sens > 0 else 1.0
        x = np.full(projector.shape, max(total_activity_mbq, 1e-12) / math.prod(projector.shape))
    else:
        x = np.array(initial, dtype=np.float64)
    if support is not None:
        x = np.where(support, x, 0.0)
    sens = [projector.sensitivity(v) for v in subset_views]
    for _ in range(iterations):
        for views, s_img in zip(subset_views, sens, strict=True):
            expected = projector.forward(x, views)
            if additive is not None:
                expected = expected + additive[views]
            y = counts[views]
            ratio = np.divide(y, expected, out=np.zeros_like(expected), where=expected > 0.0)
            update = projector.back(ratio, views)
            x = np.divide(x * update, s_img, out=np.zeros_like(x), where=s_img > 0.0)
            np.maximum(x, 0.0, out=x)  # non-negativity (FFT round-off of the blur can be negative)
    return x


def reconstruct(
    acquisition: SpectAcquisition,
    mu_per_cm: FloatArray | None,
    *,
    iterations: int = 4,
    subsets: int = 10,
    attenuation_correction: bool = True,
    resolution_modelling: bool = True,
    scatter_correction: ScatterCorrection = "none",
    projector: Projector | None = None,
) -> Reconstruction:
    """Reconstruct a simulated acquisition into a quantitative image (Bq/mL).

    Parameters
    ----------
    acquisition : SpectAcquisition
        Projections and the system that produced them.
    mu_per_cm : ndarray or None
        μ-map for attenuation correction (1/cm); required when ``attenuation_correction``.
    iterations, subsets : int
        OSEM settings.
    attenuation_correction, resolution_modelling : bool
        Model attenuation / the depth-dependent CDR in the system matrix.
    scatter_correction : {"none", "model", "convolution"}
        Additive scatter term (see :class:`Reconstruction`).
    projector : Projector or None
        A ready system model to reuse (its cached sensitivity images are reused too); it must match the
        acquisition and the correction flags. Default: built from the acquisition's system.
    """
    if attenuation_correction and mu_per_cm is None:
        raise InputError("attenuation_correction needs mu_per_cm: pass the μ-map or switch it off")
    shape = (acquisition.counts.shape[1], acquisition.counts.shape[2], acquisition.counts.shape[2])
    if projector is None:
        projector = make_projector(
            mu_per_cm if attenuation_correction else None,
            acquisition.spacing_mm,
            acquisition.system,
            shape=shape,
            resolution_modelling=resolution_modelling,
        )
    elif projector.shape != shape or projector.n_views != acquisition.counts.shape[0]:
        raise InputError("projector does not match the acquisition (grid or number of views)")
    additive: FloatArray | None
    if scatter_correction == "none":
        additive = None
    elif scatter_correction == "model":
        additive = acquisition.scatter_counts
    elif scatter_correction == "convolution":
        k = acquisition.system.scatter_fraction
        # measured = p + k g*p  ⇒  k g*measured / (1 + k) approximates k g*p to first order in k
        additive = scatter_from_primary(acquisition.counts, acquisition.system, acquisition.spacing_mm) / (
            1.0 + k
        )
    else:
        raise InputError(
            f"scatter_correction must be 'none', 'model' or 'convolution'; got {scatter_correction!r}"
        )
    activity = osem(acquisition.counts, projector, iterations=iterations, subsets=subsets, additive=additive)
    voxel_ml = float(mm3_to_ml(float(np.prod(acquisition.spacing_mm))))
    return Reconstruction(
        activity_mbq=activity,
        concentration_bq_per_ml=np.asarray(mbq_to_bq(activity) / voxel_ml, dtype=np.float64),
        iterations=iterations,
        subsets=subsets,
        attenuation_correction=attenuation_correction,
        resolution_modelling=resolution_modelling,
        scatter_correction=scatter_correction,
    )


def concentration_to_activity_mbq(concentration_bq_per_ml: FloatArray, voxel_ml: float) -> FloatArray:
    """Bq/mL → MBq per voxel."""
    return np.asarray(bq_to_mbq(concentration_bq_per_ml * voxel_ml), dtype=np.float64)
