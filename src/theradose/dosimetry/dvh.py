"""Dose–volume histograms and dose metrics per label; voxel BED maps and BED–volume histograms.

Definitions (ICRU Report 83, 2010, section 3.4 for D_x% and V_x):

* cumulative DVH V(d): volume fraction receiving a dose ≥ d; differential DVH: volume per dose bin;
* mean dose: the mass-weighted mean D̄ = Σ m_v D_v / Σ m_v (MIRD Pamphlet 21, Bolch et al. 2009, J Nucl
  Med 50:477: mean absorbed dose = energy imparted / mass), :func:`mean_dose_gy`; the one definition of a
  region's mean dose in theradose (equal voxel masses where no density is known);
* D_x% (D2, D50, D98): the minimum dose received by the x % of the volume with the highest doses — the
  dose of the k-th hottest voxel, k = ⌈x/100·N⌉ (equal voxel volumes);
* V(x Gy): volume fraction receiving ≥ x Gy;
* EUD: the radiobiological equivalent uniform dose of Niemierko 1997 (Med Phys 24:103),
  EUD = −ln(mean(e^(−αD)))/α, and the generalised EUD of Niemierko 1999 (Med Phys 26:1100),
  gEUD = (mean(D^a))^(1/a);
* BED for a mono-exponentially decaying dose rate (Dale 1985, Br J Radiol 58:515, eq. 11 with
  instantaneous uptake): BED = D·[1 + D·λ/((μ + λ)·(α/β))], λ = ln 2/T_eff, μ = ln 2/T_rep. Implemented
  here voxel-wise (``dale_bed_mono_exponential_gy``) because it must accept maps of T_eff;
  :func:`theradose.radiobiology.bed_gy` is the scalar version (the tests check that both agree).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from theradose.errors import GeometryError, InputError

if TYPE_CHECKING:
    from theradose.imaging.volume import Volume

FloatArray = npt.NDArray[np.float64]


def _values(dose_gy: npt.ArrayLike, mask: npt.ArrayLike | None) -> FloatArray:
    d = np.asarray(dose_gy, dtype=np.float64)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != d.shape:
            raise GeometryError(f"mask shape {m.shape} does not match the dose shape {d.shape}")
        d = d[m]
    d = d.ravel()
    if d.size == 0:
        raise InputError("the region is empty: the mask selects no voxel")
    if not np.all(np.isfinite(d)):
        raise InputError("dose contains NaN or infinite values in the region: fix the dose map")
    return d


def mean_dose_gy(
    dose_gy: npt.ArrayLike, mask: npt.ArrayLike, voxel_mass_g: npt.ArrayLike | float = 1.0
) -> float:
    """Mass-weighted mean absorbed dose of a region, D̄ = Σ m_v D_v / Σ m_v (MIRD Pamphlet 21).

    Parameters
    ----------
    dose_gy : array
        Voxel doses (Gy).
    mask : bool array, same shape
        The region.
    voxel_mass_g : array or float
        Voxel masses (g); a scalar means equal masses (uniform density), where the mean is the plain mean.

    Returns
    -------
    float
        NaN for a region without mass.
    """
    d = np.asarray(dose_gy, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    weights = np.broadcast_to(np.asarray(voxel_mass_g, dtype=np.float64), d.shape)[m]
    total = float(weights.sum())
    return float((d[m] * weights).sum() / total) if total > 0 else math.nan


def dose_at_volume_gy(dose_gy: npt.ArrayLike, percent: float, *, mask: npt.ArrayLike | None = None) -> float:
    """D_x%: the dose of the k-th hottest voxel, k = ⌈percent/100·N⌉ (at least 1)."""
    if not 0 < percent <= 100:
        raise InputError(f"percent must be in (0, 100]; got {percent}: e.g. 2, 50 or 98")
    d = np.sort(_values(dose_gy, mask))[::-1]
    k = max(1, math.ceil(percent / 100.0 * d.size - 1e-9))
    return float(d[k - 1])


def volume_fraction_at_dose(
    dose_gy: npt.ArrayLike, threshold_gy: float, *, mask: npt.ArrayLike | None = None
) -> float:
    """V(x Gy): fraction of the region's volume receiving a dose ≥ ``threshold_gy``."""
    d = _values(dose_gy, mask)
    return float(np.count_nonzero(d >= threshold_gy) / d.size)


def eud_gy(dose_gy: npt.ArrayLike, *, alpha_per_gy: float, mask: npt.ArrayLike | None = None) -> float:
    """Radiobiological EUD (Niemierko 1997): −ln(mean(exp(−α·D)))/α, in Gy."""
    if alpha_per_gy <= 0:
        raise InputError(f"alpha_per_gy must be positive; got {alpha_per_gy}: e.g. 0.3")
    d = _values(dose_gy, mask)
    # log-mean-exp, stable for large α·D
    x = -alpha_per_gy * d
    top = float(x.max())
    return float(-(top + math.log(float(np.mean(np.exp(x - top))))) / alpha_per_gy)


def generalized_eud_gy(dose_gy: npt.ArrayLike, *, a: float, mask: npt.ArrayLike | None = None) -> float:
    """Generalised EUD (Niemierko 1999): (mean(D^a))^(1/a), in Gy."""
    if a == 0:
        raise InputError("a must be non-zero: a = 1 is the mean dose, large a approaches the maximum")
    d = _values(dose_gy, mask)
    if a < 0 and np.any(d <= 0):
        raise InputError("gEUD with negative a needs positive doses in every voxel of the region")
    return float(np.mean(d**a) ** (1.0 / a))


@dataclass(frozen=True)
class Dvh:
    """Cumulative dose–volume histogram of one region: the one DVH type of theradose.

    The cumulative DVH of ICRU Report 83 (2010), section 2.3: for each dose the fraction of the region's
    volume receiving at least that dose. Valid once constructed: as many fractions as doses (at least 2),
    doses non-decreasing, fractions within [0, 1] and non-increasing.

    Attributes
    ----------
    dose_gy : tuple of float
        Dose points (Gy); from :func:`dose_volume_histogram` the bin edges from 0 to the maximum dose.
    cumulative_fraction : tuple of float
        Fraction of the volume with a dose ≥ each point.
    volume_ml : float or None
        Region volume (mL), when known.
    """

    dose_gy: tuple[float, ...]
    cumulative_fraction: tuple[float, ...]
    volume_ml: float | None = None

    def __post_init__(self) -> None:
        d, f = self.dose_gy, self.cumulative_fraction
        if len(d) != len(f) or len(d) < 2:
            raise InputError(
                f"a DVH needs as many fractions as doses, at least 2; got {len(d)} doses and {len(f)} "
                "fractions"
            )
        if not all(math.isfinite(v) for v in (*d, *f)):
            raise InputError("a DVH holds finite numbers only: fix the DVH")
        if any(b < a for a, b in itertools.pairwise(d)) or any(not 0.0 <= v <= 1.0 for v in f):
            raise InputError("DVH doses must increase and fractions lie in [0, 1]: fix the DVH")
        if any(b > a + 1e-9 for a, b in itertools.pairwise(f)):
            raise InputError("a cumulative DVH cannot increase with dose: give the cumulative fractions")

    @property
    def differential_ml(self) -> FloatArray:
        """Volume (mL) with a dose in each bin [d_i, d_i+1) (last bin closed); needs ``volume_ml``."""
        if self.volume_ml is None:
            raise InputError("the differential DVH needs the region volume: give volume_ml")
        c = np.asarray(self.cumulative_fraction, dtype=np.float64)
        fractions = np.append(c[:-2] - c[1:-1], c[-2])
        return np.asarray(fractions * self.volume_ml, dtype=np.float64)


def dose_volume_histogram(
    dose_gy: npt.ArrayLike,
    *,
    mask: npt.ArrayLike | None = None,
    voxel_volume_ml: float = 1.0,
    n_bins: int = 100,
    max_dose_gy: float | None = None,
) -> Dvh:
    """Cumulative DVH with ``n_bins`` equal bins from 0 to ``max_dose_gy`` (default: the maximum dose)."""
    if n_bins < 1:
        raise InputError(f"n_bins must be ≥ 1; got {n_bins}")
    d = _values(dose_gy, mask)
    top = float(d.max()) if max_dose_gy is None else float(max_dose_gy)
    if top <= 0:
        top = 1.0
    edges = np.linspace(0.0, top, n_bins + 1)
    sorted_d = np.sort(np.clip(d, None, top))
    at_least = d.size - np.searchsorted(sorted_d, edges, side="left")
    return Dvh(
        dose_gy=tuple(edges.tolist()),
        cumulative_fraction=tuple((at_least / d.size).tolist()),
        volume_ml=d.size * voxel_volume_ml,
    )


@dataclass(frozen=True)
class DoseMetrics:
    """Dose metrics of one region (Gy, mL)."""

    dmean_gy: float
    dmax_gy: float
    dmin_gy: float
    d2_gy: float
    d50_gy: float
    d98_gy: float
    volume_ml: float
    n_voxels: int


def dose_metrics(
    dose_gy: npt.ArrayLike,
    *,
    mask: npt.ArrayLike | None = None,
    voxel_volume_ml: float = 1.0,
    voxel_mass_g: npt.ArrayLike | float = 1.0,
) -> DoseMetrics:
    """Mean (mass-weighted, :func:`mean_dose_gy`; equal masses by default), max, min, D2, D50, D98 and
    volume of a region."""
    d = _values(dose_gy, mask)
    whole = np.asarray(dose_gy, dtype=np.float64)
    region = np.ones(whole.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    return DoseMetrics(
        dmean_gy=mean_dose_gy(whole, region, voxel_mass_g),
        dmax_gy=float(d.max()),
        dmin_gy=float(d.min()),
        d2_gy=dose_at_volume_gy(d, 2.0),
        d50_gy=dose_at_volume_gy(d, 50.0),
        d98_gy=dose_at_volume_gy(d, 98.0),
        volume_ml=float(d.size * voxel_volume_ml),
        n_voxels=int(d.size),
    )


def dale_bed_mono_exponential_gy(
    dose_gy: npt.ArrayLike,
    *,
    effective_half_life_h: npt.ArrayLike,
    alpha_beta_gy: float,
    repair_half_time_h: float,
) -> FloatArray:
    """Voxel-wise BED (Gy) for a mono-exponentially decaying dose rate (Dale 1985, see module docstring).

    Parameters
    ----------
    dose_gy : array_like
        Absorbed dose map (Gy).
    effective_half_life_h : array_like, broadcastable to ``dose_gy``
        Effective half-life (h) per voxel or one value.
    alpha_beta_gy : float
        α/β (Gy).
    repair_half_time_h : float
        Sub-lethal damage repair half-time (h).
    """
    d = np.asarray(dose_gy, dtype=np.float64)
    t_eff = np.broadcast_to(np.asarray(effective_half_life_h, dtype=np.float64), d.shape)
    if alpha_beta_gy <= 0 or repair_half_time_h <= 0:
        raise InputError(
            "alpha_beta_gy and repair_half_time_h must be positive; "
            f"got {alpha_beta_gy}, {repair_half_time_h}"
        )
    if np.any(t_eff <= 0):
        raise InputError("effective_half_life_h must be positive in every voxel: mask voxels without a fit")
    lam = math.log(2.0) / t_eff
    mu = math.log(2.0) / repair_half_time_h
    return np.asarray(d * (1.0 + d * lam / ((mu + lam) * alpha_beta_gy)), dtype=np.float64)


def bed_volume(
    dose: Volume,
    *,
    effective_half_life_h: float | npt.NDArray[np.floating],
    alpha_beta_gy: float,
    repair_half_time_h: float,
) -> Volume:
    """Voxel BED map (unit ``Gy``) of a dose volume with :func:`dale_bed_mono_exponential_gy`.

    Pass the result to :func:`dose_metrics_by_label` for BED–volume histograms and BED metrics.
    """
    if dose.unit != "Gy":
        raise InputError(f"dose must be in Gy; got unit {dose.unit!r}: integrate dose rates first")
    bed = dale_bed_mono_exponential_gy(
        np.asarray(dose.array, dtype=np.float64),
        effective_half_life_h=effective_half_life_h,
        alpha_beta_gy=alpha_beta_gy,
        repair_half_time_h=repair_half_time_h,
    )
    return dose.with_array(bed, unit="Gy")


@dataclass(frozen=True)
class LabelDose:
    """Metrics and DVH of one label."""

    label: int
    metrics: DoseMetrics
    dvh: Dvh


def dose_metrics_by_label(
    dose: Volume, labels: Volume, *, n_bins: int = 100, include_background: bool = False
) -> dict[int, LabelDose]:
    """Dose metrics and DVH for every label of ``labels`` (a ``label`` volume on the dose grid).

    Works for dose (``Gy``) and BED maps alike. Label 0 is background and skipped unless
    ``include_background``.
    """
    if labels.unit != "label":
        raise InputError(f"labels must be a 'label' volume; got unit {labels.unit!r}")
    if not dose.same_grid(labels):
        raise GeometryError("labels are not on the dose grid: resample the label map onto the dose grid")
    lab = np.asarray(labels.array)
    out: dict[int, LabelDose] = {}
    for value in np.unique(lab):
        label = int(value)
        if label == 0 and not include_background:
            continue
        mask = lab == value
        out[label] = LabelDose(
            label=label,
            metrics=dose_metrics(dose.array, mask=mask, voxel_volume_ml=dose.voxel_volume_ml),
            dvh=dose_volume_histogram(
                dose.array, mask=mask, voxel_volume_ml=dose.voxel_volume_ml, n_bins=n_bins
            ),
        )
    return out
