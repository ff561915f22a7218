"""Biologically effective dose (BED) and EQD2 for radiopharmaceutical therapy (linear-quadratic model).

For a continuously delivered dose with rate ``Ḋ(t)`` and mono-exponential repair of sublethal damage
(repair constant ``μ = ln 2 / T_rep``) the LQ model gives (Dale 1985, Br J Radiol 58:515; Dale 1996,
Acta Oncol 35:1040; Millar 1991, Br J Radiol 64:242)

.. math::
    BED = D\\left(1 + \\frac{G\\,D}{\\alpha/\\beta}\\right),\\qquad
    G = \\frac{2}{D^2}\\int_0^\\infty \\dot D(t) \\int_0^t \\dot D(w)\\, e^{-\\mu (t-w)}\\,dw\\,dt .

For a sum of exponentials ``Ḋ(t) = Σ_i c_i exp(−k_i t)`` the double integral is, in closed form,
``Σ_i Σ_j c_i c_j / ((k_i + k_j)(k_i + μ))`` and ``D = Σ_i c_i / k_i``. Special cases:

* mono-exponential decrease, ``k = λ_eff``: ``G = λ_eff / (λ_eff + μ)`` (Dale 1985, eq. 13);
* uptake and washout, ``Ḋ ∝ exp(−λ_eff t) − exp(−λ_up t)`` with ``λ_up > λ_eff``: the bi-exponential
  form of Baechler et al. 2008 (J Nucl Med 49:1966) and Wessels et al. 2008 (MIRD Pamphlet 20, J Nucl
  Med 49:1884).

``λ = ln 2 / T`` with ``T`` the effective half-life (of washout) and the uptake half-life respectively.
EQD2 (Withers 1983; Joiner & van der Kogel, Basic Clinical Radiobiology) is ``BED / (1 + 2/(α/β))``.
Across cycles BEDs add, assuming complete repair between cycles and no repopulation (Dale 1985;
Bodei et al. 2008, EJNMMI 35:1847).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError

#: Dose per fraction (Gy) of the reference schedule of EQD2.
EQD2_REFERENCE_DOSE_PER_FRACTION_GY = 2.0

#: Default relative biological effectiveness of alpha particles for deterministic effects
#: (Sgouros et al. 2010, MIRD Pamphlet 22, J Nucl Med 51:311: "an RBE of 5 is recommended").
DEFAULT_ALPHA_RBE = 5.0

LN2 = math.log(2.0)


def _positive(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0.0):
        raise InputError(f"{name} must be a positive finite number; got {value!r}")
    return float(value)


def _non_negative(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.0):
        raise InputError(f"{name} must be a non-negative finite number; got {value!r}")
    return float(value)


def g_factor_multiexponential(
    coefficients: Sequence[float] | npt.ArrayLike,
    rate_constants_per_h: Sequence[float] | npt.ArrayLike,
    *,
    repair_rate_per_h: float,
) -> float:
    """Lea–Catcheside dose-protraction factor ``G`` of a sum-of-exponentials dose rate.

    Parameters
    ----------
    coefficients : array_like, shape (n,)
        ``c_i`` of ``Ḋ(t) = Σ c_i exp(−k_i t)`` (any common unit; ``G`` is dimensionless).
    rate_constants_per_h : array_like, shape (n,)
        ``k_i`` > 0, 1/h.
    repair_rate_per_h : float
        ``μ = ln 2 / T_rep``, 1/h.

    Returns
    -------
    float
        ``G = 2 Σ_i Σ_j c_i c_j / ((k_i + k_j)(k_i + μ)) / (Σ c_i / k_i)²`` in (0, 1] for a non-negative
        dose rate (Dale 1985; Millar 1991).
    """
    c = np.asarray(coefficients, dtype=np.float64)
    k = np.asarray(rate_constants_per_h, dtype=np.float64)
    if c.shape != k.shape or c.ndim != 1 or c.size == 0:
        raise InputError("coefficients and rate_constants_per_h must be 1-D sequences of equal length")
    if np.any(~np.isfinite(k)) or np.any(k <= 0.0):
        raise InputError(f"rate_constants_per_h must be positive; got {k.tolist()}")
    mu = _positive("repair_rate_per_h", repair_rate_per_h)
    dose = float(np.sum(c / k))
    if not dose > 0.0:
        raise InputError("the dose-rate curve integrates to a non-positive dose: check the coefficients")
    integral = float(np.sum(c[:, None] * c[None, :] / ((k[:, None] + k[None, :]) * (k[:, None] + mu))))
    return 2.0 * integral / dose**2


def g_factor(
    *, effective_half_life_h: float, repair_half_time_h: float, uptake_half_life_h: float | None = None
) -> float:
    """``G`` for a mono-exponential or an uptake + washout (bi-exponential) dose rate.

    Parameters
    ----------
    effective_half_life_h : float
        Effective half-life of the (washout) phase, h.
    repair_half_time_h : float
        Repair half-time of sublethal damage, h.
    uptake_half_life_h : float, optional
        Half-life of the uptake phase, h; dose rate ``∝ exp(−λ_eff t) − exp(−λ_up t)``. Must be shorter
        than ``effective_half_life_h``.

    Returns
    -------
    float
        Mono-exponential: ``λ_eff/(λ_eff + μ)`` (Dale 1985); bi-exponential: see
        :func:`g_factor_multiexponential` (Baechler et al. 2008).
    """
    lam_eff = LN2 / _positive("effective_half_life_h", effective_half_life_h)
    mu = LN2 / _positive("repair_half_time_h", repair_half_time_h)
    if uptake_half_life_h is None:
        return lam_eff / (lam_eff + mu)
    uptake = _positive("uptake_half_life_h", uptake_half_life_h)
    if not uptake < effective_half_life_h:
        raise InputError(
            f"uptake_half_life_h ({uptake_half_life_h!r}) must be shorter than effective_half_life_h "
            f"({effective_half_life_h!r}): the uptake phase precedes the washout"
        )
    lam_up = LN2 / uptake
    return g_factor_multiexponential([1.0, -1.0], [lam_eff, lam_up], repair_rate_per_h=mu)


def bed_gy(
    dose_gy: float,
    *,
    effective_half_life_h: float,
    alpha_beta_gy: float,
    repair_half_time_h: float,
    uptake_half_life_h: float | None = None,
) -> float:
    """Biologically effective dose of a radionuclide dose delivered to complete decay.

    Parameters
    ----------
    dose_gy : float
        Absorbed dose, Gy.
    effective_half_life_h : float
        Effective half-life of the dose rate (washout phase), h.
    alpha_beta_gy : float
        α/β of the tissue, Gy.
    repair_half_time_h : float
        Repair half-time, h.
    uptake_half_life_h : float, optional
        Uptake half-life, h, for an uptake + washout dose rate (Baechler et al. 2008).

    Returns
    -------
    float
        ``BED = D (1 + G D / (α/β))`` in Gy (Dale 1985; Baechler et al. 2008, J Nucl Med 49:1966).
    """
    dose = _non_negative("dose_gy", dose_gy)
    ab = _positive("alpha_beta_gy", alpha_beta_gy)
    g = g_factor(
        effective_half_life_h=effective_half_life_h,
        repair_half_time_h=repair_half_time_h,
        uptake_half_life_h=uptake_half_life_h,
    )
    return dose * (1.0 + g * dose / ab)


def bed_sigma_gy(
    dose_gy: float,
    dose_sigma_gy: float,
    *,
    effective_half_life_h: float,
    alpha_beta_gy: float,
    repair_half_time_h: float,
    uptake_half_life_h: float | None = None,
) -> float:
    """Standard uncertainty of the BED from that of the absorbed dose (first order).

    ``σ_BED = (1 + 2 G D / (α/β)) σ_D`` with ``G`` held fixed (GUM eq. 10; the kinetics enter through
    ``D``, and the uncertainty of the tissue parameters is not included).

    Parameters
    ----------
    dose_gy, dose_sigma_gy : float
        Absorbed dose and its standard uncertainty, Gy.
    effective_half_life_h, alpha_beta_gy, repair_half_time_h, uptake_half_life_h
        As in :func:`bed_gy`.

    Returns
    -------
    float
        σ_BED in Gy.
    """
    dose = _non_negative("dose_gy", dose_gy)
    sigma = _non_negative("dose_sigma_gy", dose_sigma_gy)
    ab = _positive("alpha_beta_gy", alpha_beta_gy)
    g = g_factor(
        effective_half_life_h=effective_half_life_h,
        repair_half_time_h=repair_half_time_h,
        uptake_half_life_h=uptake_half_life_h,
    )
    return (1.0 + 2.0 * g * dose / ab) * sigma


def bed_multiexponential_gy(
    dose_gy: float,
    *,
    coefficients: Sequence[float],
    half_lives_h: Sequence[float],
    alpha_beta_gy: float,
    repair_half_time_h: float,
) -> float:
    """BED for a dose rate of any sum-of-exponentials shape (e.g. a fitted tri-exponential TAC).

    Parameters
    ----------
    dose_gy : float
        Absorbed dose, Gy (the shape only sets ``G``).
    coefficients : sequence of float
        ``c_i`` of ``Ḋ(t) ∝ Σ c_i exp(−ln2 t / T_i)``.
    half_lives_h : sequence of float
        ``T_i``, h.
    alpha_beta_gy, repair_half_time_h : float
        Tissue parameters.

    Returns
    -------
    float
        ``D (1 + G D / (α/β))`` with ``G`` from :func:`g_factor_multiexponential`.
    """
    dose = _non_negative("dose_gy", dose_gy)
    ab = _positive("alpha_beta_gy", alpha_beta_gy)
    rates = [LN2 / _positive("half_lives_h", float(t)) for t in half_lives_h]
    mu = LN2 / _positive("repair_half_time_h", repair_half_time_h)
    g = g_factor_multiexponential(coefficients, rates, repair_rate_per_h=mu)
    return dose * (1.0 + g * dose / ab)


def eqd2_gy(bed_gy: float, *, alpha_beta_gy: float) -> float:
    """Equivalent dose in 2-Gy fractions: ``EQD2 = BED / (1 + 2 Gy / (α/β))`` (Withers et al. 1983)."""
    bed = _non_negative("bed_gy", bed_gy)
    ab = _positive("alpha_beta_gy", alpha_beta_gy)
    return bed / (1.0 + EQD2_REFERENCE_DOSE_PER_FRACTION_GY / ab)


def bed_fractionated_gy(dose_per_fraction_gy: float, *, fractions: int, alpha_beta_gy: float) -> float:
    """BED of acute fractions with full repair in between: ``n d (1 + d/(α/β))`` (Fowler 1989)."""
    d = _non_negative("dose_per_fraction_gy", dose_per_fraction_gy)
    if not (isinstance(fractions, int) and fractions >= 1):
        raise InputError(f"fractions must be a positive integer; got {fractions!r}")
    ab = _positive("alpha_beta_gy", alpha_beta_gy)
    return fractions * d * (1.0 + d / ab)


def multi_cycle_bed_gy(
    doses_gy: Sequence[float],
    *,
    effective_half_lives_h: Sequence[float] | float,
    alpha_beta_gy: float,
    repair_half_time_h: float,
    uptake_half_lives_h: Sequence[float | None] | float | None = None,
) -> float:
    """Total BED over therapy cycles: the sum of each cycle's BED (complete repair between cycles).

    Parameters
    ----------
    doses_gy : sequence of float
        Absorbed dose of each cycle, Gy.
    effective_half_lives_h : float or sequence of float
        Effective half-life per cycle (or one for all), h.
    alpha_beta_gy, repair_half_time_h : float
        Tissue parameters.
    uptake_half_lives_h : float or sequence, optional
        Uptake half-life per cycle (or one for all), h.

    Returns
    -------
    float
        ``Σ_c BED_c`` in Gy (Dale 1985; Bodei et al. 2008, EJNMMI 35:1847).
    """
    n = len(doses_gy)
    if n == 0:
        raise InputError("doses_gy is empty: give the absorbed dose of at least one cycle")

    def per_cycle(name: str, value: Sequence[float | None] | float | None) -> list[float | None]:
        if value is None or isinstance(value, (int, float)):
            return [value] * n
        values = list(value)
        if len(values) != n:
            raise InputError(f"{name} has {len(values)} values for {n} cycles: give one per cycle")
        return values

    halves = per_cycle("effective_half_lives_h", effective_half_lives_h)
    uptakes = per_cycle("uptake_half_lives_h", uptake_half_lives_h)
    total = 0.0
    for dose, half, uptake in zip(doses_gy, halves, uptakes, strict=True):
        if half is None:
            raise InputError("effective_half_lives_h must be given for every cycle")
        total += bed_gy(
            float(dose),
            effective_half_life_h=float(half),
            alpha_beta_gy=alpha_beta_gy,
            repair_half_time_h=repair_half_time_h,
            uptake_half_life_h=uptake,
        )
    return total


def rbe_weighted_dose_gy(
    *, alpha_dose_gy: float, low_let_dose_gy: float = 0.0, rbe: float = DEFAULT_ALPHA_RBE
) -> float:
    """RBE-weighted absorbed dose ``RBE · D_α + D_low-LET`` (Sgouros et al. 2010, MIRD Pamphlet 22).

    Parameters
    ----------
    alpha_dose_gy : float
        Absorbed dose from alpha particles (and recoil nuclei), Gy.
    low_let_dose_gy : float
        Absorbed dose from electrons and photons (RBE 1), Gy.
    rbe : float
        Relative biological effectiveness of the alpha dose; default 5 for deterministic effects
        (MIRD Pamphlet 22).

    Returns
    -------
    float
        RBE-weighted dose, Gy (MIRD Pamphlet 22 writes the unit as Gy with the RBE stated).
    """
    alpha = _non_negative("alpha_dose_gy", alpha_dose_gy)
    low = _non_negative("low_let_dose_gy", low_let_dose_gy)
    weight = _positive("rbe", rbe)
    return weight * alpha + low
