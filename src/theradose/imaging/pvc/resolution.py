"""Effective spatial resolution of a reconstructed SPECT image, measured on the site's own IEC phantom.

What is measured, and why not the collimator
---------------------------------------------
A partial-volume correction needs the response of the *reconstructed image* to an object, not the
response of the collimator: OSEM with resolution modelling recovers part of the collimator blur, by an
amount that depends on the object's size and contrast and on the number of iterations (MIRD Pamphlet 23,
Dewaraja et al. 2012, J Nucl Med 53:1310; size- and contrast-dependent recovery: Srinivas et al. 2009,
Ann Nucl Med 23:341; Gibbs-like edge overshoot of resolution-modelled OSEM: Rahmim et al. 2013, Med Phys
40:064301). The reconstruction is therefore not shift-invariant and no single point-spread function
describes it. This module measures, from the IEC body phantom that the site acquired and reconstructed
like its patients, the FWHM of the Gaussian that reproduces each sphere's background-free recovery:

    RC_i = (C̄_measured − C_bg) / (C̄_true − C_bg)        (voxel mask of sphere i)
    find f_i such that  mean_mask(G_f ∗ s_i) / mean_mask(s_i) = RC_i,

with s_i the sphere's exact partial-volume map on the image grid and G_f a 3-D Gaussian of FWHM f. The
``recovery-matched FWHM`` f(d, contrast) is tabulated by sphere diameter d and fill contrast, forced to be
non-increasing in d (larger objects are recovered at least as well: pooled-adjacent-violators regression),
and interpolated linearly in d and in log(contrast), held constant outside the measured range (no
extrapolation). A structure of another shape is given the FWHM of the *equivalent sphere*: the sphere whose
Gaussian self-recovery equals the structure's (:func:`equivalent_sphere_diameter_mm`); to first order in
the blur, self-recovery is 1 − 6σ/(√(2π)·d_eq) with d_eq = 6V/S, so the equivalent sphere has the
structure's volume-to-surface ratio.

Position dependence
-------------------
The phantom's spheres lie 57 mm from the rotation axis. For a circular orbit of radius R the collimator's
FWHM(d) = a + b·d, averaged over the views, is a + b·R at every point of the slice (the distance to the
detector is R ± r·cos θ and the mean over θ is R), so the resolution varies across the field only by the
radial/tangential asymmetry of the second order in r/R; it is not modelled here (documented limit; the
size of the effect for the project's simulated cameras is in ``docs/pvc.md``). A body-contour orbit makes
the resolution depth-dependent and needs a phantom measured at the depth of the organ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: FWHM of a Gaussian in units of its standard deviation, 2√(2 ln 2).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: Search interval (mm) of the recovery-matched FWHM.
FWHM_SEARCH_MM: tuple[float, float] = (0.05, 120.0)
#: Gaussian filters are truncated at this many standard deviations (scipy's ``truncate``).
GAUSSIAN_TRUNCATE = 4.0
#: Lower bound of the relative standard uncertainty of a recovery-matched FWHM: a Gaussian is an
#: approximation of the response of an iterative reconstruction, whose shape (edge overshoot, tails) it
#: does not reproduce; the residual spread of the per-sphere values about the monotone fit is added in
#: quadrature.
FWHM_RELATIVE_SIGMA_FLOOR = 0.05


def gaussian_sigma_voxels(fwhm_mm: float, spacing_mm: Sequence[float]) -> tuple[float, float, float]:
    """Standard deviation of a Gaussian of ``fwhm_mm`` in voxels along each array axis."""
    s = float(fwhm_mm) / FWHM_PER_SIGMA
    return (s / float(spacing_mm[0]), s / float(spacing_mm[1]), s / float(spacing_mm[2]))


def blur(array: FloatArray, fwhm_mm: float, spacing_mm: Sequence[float]) -> FloatArray:
    """3-D Gaussian blur of FWHM ``fwhm_mm`` (zero outside the array; truncated at 4 σ)."""
    from scipy.ndimage import gaussian_filter

    if fwhm_mm <= 0:
        return np.asarray(array, dtype=np.float64)
    return np.asarray(
        gaussian_filter(
            np.asarray(array, dtype=np.float64),
            sigma=gaussian_sigma_voxels(fwhm_mm, spacing_mm),
            mode="constant",
            truncate=GAUSSIAN_TRUNCATE,
        ),
        dtype=np.float64,
    )


def _margin_voxels(fwhm_mm: float, spacing_mm: Sequence[float]) -> tuple[int, int, int]:
    sig = gaussian_sigma_voxels(fwhm_mm, spacing_mm)
    return (
        math.ceil(GAUSSIAN_TRUNCATE * sig[0]) + 1,
        math.ceil(GAUSSIAN_TRUNCATE * sig[1]) + 1,
        math.ceil(GAUSSIAN_TRUNCATE * sig[2]) + 1,
    )


def self_recovery(mask: BoolArray, fwhm_mm: float, spacing_mm: Sequence[float]) -> float:
    """Fraction of a uniform structure's counts that stay in its own mask after a Gaussian blur.

    ``mean_mask(G_f ∗ 1_mask)``; computed in the bounding box of the mask padded by 4 σ.
    """
    idx = np.argwhere(mask)
    if idx.size == 0:
        raise InputError("self_recovery needs a non-empty mask")
    pad = np.array(_margin_voxels(fwhm_mm, spacing_mm))
    lo = idx.min(axis=0) - pad
    hi = idx.max(axis=0) + pad + 1
    shape = np.asarray(mask.shape)
    # pad with zeros beyond the array edge so that the box keeps its margin
    box = np.zeros(tuple(int(v) for v in hi - lo), dtype=np.float64)
    src_lo = np.maximum(lo, 0)
    src_hi = np.minimum(hi, shape)
    dst_lo = src_lo - lo
    dst_hi = dst_lo + (src_hi - src_lo)
    box[tuple(slice(int(a), int(b)) for a, b in zip(dst_lo, dst_hi, strict=True))] = mask[
        tuple(slice(int(a), int(b)) for a, b in zip(src_lo, src_hi, strict=True))
    ]
    inside = box > 0
    blurred = blur(box, fwhm_mm, spacing_mm)
    return float(blurred[inside].mean())


def sphere_partial_volume(
    shape: Sequence[int],
    spacing_mm: Sequence[float],
    centre_voxel: Sequence[float],
    diameter_mm: float,
    *,
    supersampling: int = 5,
) -> FloatArray:
    """Fraction of each voxel inside a sphere (``supersampling``³ points per voxel).

    Parameters
    ----------
    shape, spacing_mm : sequence of 3
        Grid shape and voxel size along the array axes.
    centre_voxel : sequence of 3 float
        Sphere centre in (fractional) voxel indices along the array axes.
    diameter_mm : float
        Sphere diameter.
    """
    if diameter_mm <= 0 or supersampling < 1:
        raise InputError(
            f"diameter_mm must be > 0 and supersampling >= 1; got {diameter_mm}, {supersampling}"
        )
    r = diameter_mm / 2.0
    out = np.zeros(tuple(int(n) for n in shape), dtype=np.float64)
    lo = [max(math.floor(c - r / s) - 1, 0) for c, s in zip(centre_voxel, spacing_mm, strict=True)]
    hi = [
        min(math.ceil(c + r / s) + 2, int(n)) for c, s, n in zip(centre_voxel, spacing_mm, shape, strict=True)
    ]
    if any(h <= lo_ for lo_, h in zip(lo, hi, strict=True)):
        return out
    offsets = (np.arange(supersampling) + 0.5) / supersampling - 0.5
    axes = [
        ((np.arange(lo[a], hi[a])[:, None] + offsets[None, :]).ravel() - float(centre_voxel[a]))
        * float(spacing_mm[a])
        for a in range(3)
    ]
    d2 = axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2
    inside = (d2 <= r * r).astype(np.float64)
    n = supersampling
    box = inside.reshape(hi[0] - lo[0], n, hi[1] - lo[1], n, hi[2] - lo[2], n).mean(axis=(1, 3, 5))
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = box
    return out


def gaussian_sphere_recovery(
    fraction: FloatArray, mask: BoolArray, fwhm_mm: float, spacing_mm: Sequence[float]
) -> float:
    """Background-free recovery of a sphere (partial-volume map ``fraction``) in ``mask`` after a blur."""
    true_mean = float(fraction[mask].mean())
    if true_mean <= 0:
        raise InputError("the sphere mask holds no part of the sphere: check the centre")
    return float(blur(fraction, fwhm_mm, spacing_mm)[mask].mean()) / true_mean


def matched_fwhm_mm(
    recovery: float, fraction: FloatArray, mask: BoolArray, spacing_mm: Sequence[float]
) -> float:
    """FWHM (mm) of the Gaussian whose recovery of this sphere equals ``recovery``.

    NaN when no Gaussian in :data:`FWHM_SEARCH_MM` matches (a recovery above the sharpest or below the
    widest Gaussian's, e.g. a sphere lost in the noise).
    """
    from scipy.optimize import brentq

    lo, hi = FWHM_SEARCH_MM
    # crop to the sphere neighbourhood padded for the widest blur
    idx = np.argwhere(fraction > 0)
    pad = np.array(_margin_voxels(hi, spacing_mm))
    a = np.maximum(idx.min(axis=0) - pad, 0)
    b = np.minimum(idx.max(axis=0) + pad + 1, fraction.shape)
    sl = tuple(slice(int(p), int(q)) for p, q in zip(a, b, strict=True))
    frac, m = fraction[sl], mask[sl]

    def f(x: float) -> float:
        return gaussian_sphere_recovery(frac, m, x, spacing_mm) - recovery

    f_lo, f_hi = f(lo), f(hi)
    if not (math.isfinite(recovery) and f_lo >= 0.0 >= f_hi):
        return math.nan
    return float(brentq(f, lo, hi, xtol=1e-3))


@dataclass(frozen=True)
class SphereMeasurement:
    """One IEC sphere of one phantom fill.

    Attributes
    ----------
    diameter_mm : float
    contrast : float
        Sphere-to-background concentration ratio of the fill.
    recovery : float
        Background-free recovery (C̄_m − C_bg)/(C̄_true − C_bg) in the voxel mask of the sphere.
    recovery_sigma : float
        Its standard uncertainty from the image noise (background voxel SD / √n, over the true contrast).
    fwhm_mm : float
        Recovery-matched Gaussian FWHM (NaN: no match).
    """

    diameter_mm: float
    contrast: float
    recovery: float
    recovery_sigma: float
    fwhm_mm: float


def measure_spheres(
    image_bq_per_ml: FloatArray,
    spacing_mm: Sequence[float],
    *,
    centres_voxel: Sequence[Sequence[float]],
    diameters_mm: Sequence[float],
    sphere_bq_per_ml: float,
    background_bq_per_ml: float,
    background_mask: BoolArray | None = None,
) -> list[SphereMeasurement]:
    """Recovery and recovery-matched FWHM of each sphere of a phantom image.

    Parameters
    ----------
    image_bq_per_ml : ndarray
        Reconstructed phantom (Bq/mL), axes (slice, row, column).
    spacing_mm : sequence of 3 float
    centres_voxel : sequence of (k, j, i)
        Sphere centres in fractional voxel indices.
    diameters_mm : sequence of float
        Inner sphere diameters.
    sphere_bq_per_ml, background_bq_per_ml : float
        Filled concentrations at the acquisition (known from the dose calibrator).
    background_mask : bool ndarray, optional
        Voxels of uniform background used for the noise estimate (default: none, noise term 0).
    """
    if not sphere_bq_per_ml > background_bq_per_ml >= 0:
        raise InputError(
            f"sphere concentration must exceed the background; got {sphere_bq_per_ml} <= "
            f"{background_bq_per_ml}"
        )
    image = np.asarray(image_bq_per_ml, dtype=np.float64)
    contrast = sphere_bq_per_ml / background_bq_per_ml if background_bq_per_ml > 0 else math.inf
    noise_sd = (
        float(image[background_mask].std()) if background_mask is not None and background_mask.any() else 0.0
    )
    out: list[SphereMeasurement] = []
    for centre, diameter in zip(centres_voxel, diameters_mm, strict=True):
        fraction = sphere_partial_volume(image.shape, spacing_mm, centre, float(diameter))
        mask = fraction >= 0.5
        if not mask.any():  # a sphere smaller than the voxels: nothing to measure
            out.append(SphereMeasurement(float(diameter), contrast, math.nan, math.nan, math.nan))
            continue
        true_mean = background_bq_per_ml + (sphere_bq_per_ml - background_bq_per_ml) * float(
            fraction[mask].mean()
        )
        excess = true_mean - background_bq_per_ml
        rc = (float(image[mask].mean()) - background_bq_per_ml) / excess
        sigma = noise_sd / math.sqrt(int(mask.sum())) / excess
        out.append(
            SphereMeasurement(
                diameter_mm=float(diameter),
                contrast=contrast,
                recovery=rc,
                recovery_sigma=sigma,
                fwhm_mm=matched_fwhm_mm(rc, fraction, mask, spacing_mm),
            )
        )
    return out


def _non_increasing(values: Sequence[float], weights: Sequence[float]) -> list[float]:
    """Weighted least-squares non-increasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [value, weight, count]
    for v, w in zip(values, weights, strict=True):
        blocks.append([v, w, 1.0])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    out: list[float] = []
    for v, _w, n in blocks:
        out.extend([v] * int(n))
    return out


@dataclass(frozen=True)
class EffectiveResolution:
    """Recovery-matched Gaussian FWHM of a reconstructed image by object size and contrast.

    Attributes
    ----------
    contrasts : tuple of float
        Fill contrasts (sphere-to-background), increasing.
    diameters_mm : tuple of tuple of float
        Per contrast, the sphere diameters with a valid FWHM, increasing.
    fwhm_mm : tuple of tuple of float
        Per contrast, the monotone (non-increasing in diameter) FWHM at those diameters.
    relative_sigma : float
        Relative standard uncertainty of an FWHM read from the table.
    source : str
        What was measured (phantom, reconstruction).
    measurements : tuple of SphereMeasurement
        The raw per-sphere values.
    """

    contrasts: tuple[float, ...]
    diameters_mm: tuple[tuple[float, ...], ...]
    fwhm_mm: tuple[tuple[float, ...], ...]
    relative_sigma: float
    source: str = ""
    measurements: tuple[SphereMeasurement, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.contrasts:
            raise InputError("an effective resolution needs at least one phantom fill")
        if list(self.contrasts) != sorted(self.contrasts):
            raise InputError(f"contrasts must be increasing; got {list(self.contrasts)}")
        for d, f in zip(self.diameters_mm, self.fwhm_mm, strict=True):
            if not d or len(d) != len(f) or any(not (v > 0) for v in f):
                raise InputError("every fill needs at least one sphere with a positive FWHM")
        if not self.relative_sigma >= 0:
            raise InputError(f"relative_sigma must be >= 0; got {self.relative_sigma}")

    @property
    def large_object_fwhm_mm(self) -> float:
        """FWHM of the largest sphere at the lowest contrast (used for large, low-contrast structures)."""
        return float(self.fwhm_mm[0][-1])

    @property
    def small_object_fwhm_mm(self) -> float:
        """Largest FWHM of the table (the smallest sphere): the response to an object near the resolution."""
        return float(max(max(f) for f in self.fwhm_mm))

    def fwhm_at(self, diameter_mm: float, contrast: float) -> float:
        """FWHM (mm) for an (equivalent) sphere of ``diameter_mm`` at ``contrast`` to its surroundings.

        Linear in diameter between the spheres, linear in log(contrast) between the fills; constant
        beyond the measured range of either.
        """
        values = [
            float(np.interp(diameter_mm, np.asarray(d), np.asarray(f)))
            for d, f in zip(self.diameters_mm, self.fwhm_mm, strict=True)
        ]
        if len(values) == 1:
            return values[0]
        q = math.log(contrast) if contrast > 0 and math.isfinite(contrast) else math.log(self.contrasts[-1])
        return float(np.interp(q, np.log(np.asarray(self.contrasts)), np.asarray(values)))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready representation (read back with :meth:`from_dict`)."""
        return {
            "format": "theradose-effective-resolution",
            "version": 1,
            "definition": (
                "FWHM of the Gaussian that reproduces each IEC sphere's background-free recovery, "
                "non-increasing in diameter, per fill contrast"
            ),
            "contrasts": list(self.contrasts),
            "diameters_mm": [list(d) for d in self.diameters_mm],
            "fwhm_mm": [list(f) for f in self.fwhm_mm],
            "relative_sigma": self.relative_sigma,
            "source": self.source,
            "measurements": [
                {
                    "diameter_mm": m.diameter_mm,
                    "contrast": m.contrast,
                    "recovery": m.recovery,
                    "recovery_sigma": m.recovery_sigma,
                    "fwhm_mm": None if not math.isfinite(m.fwhm_mm) else m.fwhm_mm,
                }
                for m in self.measurements
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "resolution") -> EffectiveResolution:
        """Validate a mapping written by :meth:`as_dict`."""
        try:
            contrasts = tuple(float(c) for c in data["contrasts"])
            diameters = tuple(tuple(float(v) for v in d) for d in data["diameters_mm"])
            fwhm = tuple(tuple(float(v) for v in f) for f in data["fwhm_mm"])
            sigma = float(data["relative_sigma"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{where} needs contrasts, diameters_mm, fwhm_mm and relative_sigma ({exc}): "
                "write it with 'theradose qa resolution'"
            ) from None
        return cls(contrasts, diameters, fwhm, sigma, str(data.get("source", "")))


def effective_resolution(
    measurements: Sequence[SphereMeasurement], *, source: str = ""
) -> EffectiveResolution:
    """Tabulate recovery-matched FWHMs by contrast and diameter (see the module docstring).

    Per fill, spheres without a valid FWHM are dropped, the rest are fitted by a non-increasing function
    of diameter (weights 1/σ² of the FWHM from the recovery noise, equal when the noise is unknown). The
    relative uncertainty is the root-mean-square relative residual of the per-sphere values about the
    fit, added in quadrature to :data:`FWHM_RELATIVE_SIGMA_FLOOR`.
    """
    by_contrast: dict[float, list[SphereMeasurement]] = {}
    for m in measurements:
        by_contrast.setdefault(m.contrast, []).append(m)
    contrasts: list[float] = []
    diameters: list[tuple[float, ...]] = []
    fwhms: list[tuple[float, ...]] = []
    residuals: list[float] = []
    for contrast in sorted(by_contrast):
        valid = sorted(
            (m for m in by_contrast[contrast] if math.isfinite(m.fwhm_mm)), key=lambda m: m.diameter_mm
        )
        if not valid:
            continue
        weights = [1.0 / max(m.recovery_sigma, 1e-3) ** 2 for m in valid]
        fitted = _non_increasing([m.fwhm_mm for m in valid], weights)
        residuals += [(m.fwhm_mm - f) / f for m, f in zip(valid, fitted, strict=True)]
        contrasts.append(contrast)
        diameters.append(tuple(m.diameter_mm for m in valid))
        fwhms.append(tuple(fitted))
    if not contrasts:
        raise InputError(
            "no sphere's recovery could be matched by a Gaussian: check the phantom image and its fill"
        )
    rms = math.sqrt(sum(r * r for r in residuals) / len(residuals)) if residuals else 0.0
    sigma = math.sqrt(FWHM_RELATIVE_SIGMA_FLOOR**2 + rms**2)
    return EffectiveResolution(
        tuple(contrasts), tuple(diameters), tuple(fwhms), sigma, source, tuple(measurements)
    )


@lru_cache(maxsize=4)
def _gauss_legendre(n: int) -> tuple[FloatArray, FloatArray]:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return np.asarray(nodes, dtype=np.float64), np.asarray(weights, dtype=np.float64)


def sphere_self_recovery(diameter_mm: float, fwhm_mm: float) -> float:
    """Fraction of a uniform sphere's counts that stay inside it after a 3-D Gaussian blur (continuous).

    The blurred sphere of radius R at distance r from its centre is (e.g. Hoffman, Huang & Phelps 1979,
    J Comput Assist Tomogr 3:299, for the line-spread analogue)::

        u(r) = ½[erf((R−r)/(√2σ)) + erf((R+r)/(√2σ))]
               − σ/(r√(2π)) · [exp(−(R−r)²/(2σ²)) − exp(−(R+r)²/(2σ²))],

    and the self-recovery is its mean over the sphere, (3/R³)∫₀ᴿ u(r) r² dr (Gauss–Legendre, 64 nodes).
    """
    if diameter_mm <= 0:
        raise InputError(f"diameter_mm must be > 0; got {diameter_mm}")
    if fwhm_mm <= 0:
        return 1.0
    from scipy.special import erf

    big_r = diameter_mm / 2.0
    sigma = fwhm_mm / FWHM_PER_SIGMA
    nodes, weights = _gauss_legendre(64)
    r = 0.5 * big_r * (nodes + 1.0)
    w = 0.5 * big_r * weights
    a = (big_r - r) / (math.sqrt(2.0) * sigma)
    b = (big_r + r) / (math.sqrt(2.0) * sigma)
    u = 0.5 * (erf(a) + erf(b)) - sigma / (r * math.sqrt(2.0 * math.pi)) * (np.exp(-(a**2)) - np.exp(-(b**2)))
    return float(3.0 / big_r**3 * np.sum(w * u * r * r))


def equivalent_sphere_diameter_mm(
    mask: BoolArray, spacing_mm: Sequence[float], *, reference_fwhm_mm: float
) -> float:
    """Diameter of the sphere whose Gaussian self-recovery at ``reference_fwhm_mm`` equals the mask's.

    The mask's self-recovery is computed on its voxel grid (:func:`self_recovery`), the sphere's
    analytically (:func:`sphere_self_recovery`); the diameter is found by bisection. To first order in the
    blur this is 6V/S (module docstring). Bounded by the diameter of the sphere of the same volume (a
    sphere is the most compact shape) and 0.1 mm.
    """
    from scipy.optimize import brentq

    target = self_recovery(mask, reference_fwhm_mm, spacing_mm)
    volume_mm3 = float(mask.sum()) * float(np.prod(spacing_mm))
    d_volume = (6.0 * volume_mm3 / math.pi) ** (1.0 / 3.0)
    lo = 0.1
    if sphere_self_recovery(d_volume, reference_fwhm_mm) <= target:
        return float(d_volume)
    if sphere_self_recovery(lo, reference_fwhm_mm) >= target:
        return lo
    return float(
        brentq(lambda d: sphere_self_recovery(d, reference_fwhm_mm) - target, lo, d_volume, xtol=0.05)
    )
