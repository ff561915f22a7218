"""Single-time-point (STP) estimates of the time-integrated activity.

Both methods assume a mono-exponential decrease :math:`A(t) = A(t_m) e^{-\\lambda (t - t_m)}` after
uptake, whose integral from 0 to ∞ is :math:`A(t_m) e^{\\lambda t_m}/\\lambda`.

* **Hänscheid** (Hänscheid H, Lapa C, Buck AK, Lassmann M, Werner RA. "Dose mapping after endoradiotherapy
  with 177Lu-DOTATATE/DOTATOC by a single measurement after 4 days." J Nucl Med 2018;59:75-81):
  :math:`\\tilde A \\approx A(t) \\cdot 2t/\\ln 2`. This is the mono-exponential integral with the
  effective half-life set equal to the measurement time, :math:`T_{eff} = t`; because
  :math:`e^{\\lambda t}/\\lambda` is stationary at :math:`\\lambda t = 1`, the estimate is insensitive to
  the true half-life when the measurement time is close to it (about 4 days for 177Lu-DOTATATE).
* **Madsen** (Madsen MT, Menda Y, O'Dorisio TM, O'Dorisio MS. "Technical Note: Single time point dose
  estimate for exponential clearance." Med Phys 2018;45:2318-2324):
  :math:`\\tilde A = A(t)\\, e^{\\lambda_{eff} t}/\\lambda_{eff}` with
  :math:`\\lambda_{eff} = \\ln 2 / T_{eff}` from a prior (population) effective half-life.
* **Individual kinetics** (:func:`stp_from_half_life`, :func:`stp_from_earlier_cycle`): Madsen's formula
  with the patient's own effective half-life of an earlier cycle and its standard uncertainty, or the
  earlier fitted curve's shape scaled to the new measurement. For
  177Lu-DOTATATE renal dosimetry, Willowson KP et al. (EJNMMI Phys 2018;5:33) found the average deviation
  of a 24 h single-time-point estimate from the full multi-point dose fall from 30 % with a population
  half-life to 2 % with the patient's cycle-1 half-life.

Uncertainty (first order, GUM): with :math:`\\tilde A = A e^{\\lambda t}/\\lambda`,
:math:`\\partial \\ln\\tilde A/\\partial \\ln\\lambda = \\lambda t - 1`, so
:math:`(\\sigma_{\\tilde A}/\\tilde A)^2 = (\\sigma_A/A)^2 + (\\lambda t - 1)^2 (\\sigma_T/T)^2` — the
half-life uncertainty vanishes at :math:`t = T/\\ln 2` and grows on either side.

Applicability window: the scan time should lie between :data:`STP_WINDOW_HALF_LIVES` = 0.75 and 2.5
effective half-lives. Within it Hänscheid's approximation deviates from the mono-exponential integral
by −12 % to +6 % (ratio :math:`R(x) = 2x\\,2^{-x}` with :math:`x = t/T_{eff}`, derived from the formula
above: R(0.75) = 0.892, R(1) = 1, R(1/ln 2) = 1.061, R(2.5) = 0.884), and the half-life uncertainty of
the individual method is amplified by at most :math:`|\\lambda t - 1| \\le 0.73`. Outside it the
result carries a warning and the flag ``stp_time_outside_window``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from theradose.errors import InputError

if TYPE_CHECKING:
    from theradose.kinetics.fit import FitResult

StpMethod = Literal["hanscheid", "madsen"]

_LN2 = math.log(2.0)

#: Scan times, in effective half-lives, within which a single-time-point estimate is applicable (see the
#: module docstring for the deviation of Hänscheid's approximation at the bounds).
STP_WINDOW_HALF_LIVES: tuple[float, float] = (0.75, 2.5)

FLAG_STP_OUTSIDE_WINDOW = "stp_time_outside_window"


def _check(value: float, name: str, *, allow_zero: bool) -> float:
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name} must be a finite number {bound}; got {value}: give a valid {name}")
    return float(value)


def hanscheid_tia_mbq_h(time_h: float, activity_mbq: float) -> float:
    """Hänscheid et al. 2018 (JNM 59:75): :math:`\\tilde A \\approx A(t)\\cdot 2t/\\ln 2` (MBq·h).

    Parameters
    ----------
    time_h : float
        Time of the single measurement after administration, h (> 0).
    activity_mbq : float
        Activity at that time, MBq (>= 0).
    """
    t = _check(time_h, "time_h", allow_zero=False)
    a = _check(activity_mbq, "activity_mbq", allow_zero=True)
    return a * 2.0 * t / _LN2


def madsen_tia_mbq_h(time_h: float, activity_mbq: float, *, effective_half_life_h: float) -> float:
    """Madsen et al. 2018 (Med Phys 45:2318): :math:`\\tilde A = A(t) e^{\\lambda t}/\\lambda` (MBq·h).

    Parameters
    ----------
    time_h : float
        Time of the single measurement after administration, h (> 0).
    activity_mbq : float
        Activity at that time, MBq (>= 0).
    effective_half_life_h : float
        Prior effective half-life :math:`T_{eff}` (e.g. a population mean), h (> 0);
        :math:`\\lambda = \\ln 2/T_{eff}`.
    """
    t = _check(time_h, "time_h", allow_zero=False)
    a = _check(activity_mbq, "activity_mbq", allow_zero=True)
    half_life = _check(effective_half_life_h, "effective_half_life_h", allow_zero=False)
    rate = _LN2 / half_life
    return a * math.exp(rate * t) / rate


def stp_tia_mbq_h(
    time_h: float,
    activity_mbq: float,
    *,
    method: StpMethod,
    effective_half_life_h: float | None = None,
) -> float:
    """Time-integrated activity (MBq·h) from one measurement by a published STP method.

    Parameters
    ----------
    time_h : float
        Time of the measurement after administration, h.
    activity_mbq : float
        Activity at that time, MBq.
    method : {"hanscheid", "madsen"}
        See :func:`hanscheid_tia_mbq_h` and :func:`madsen_tia_mbq_h`.
    effective_half_life_h : float, optional
        Prior effective half-life, h; required by ``"madsen"``, not used by ``"hanscheid"`` (giving it
        there is an error rather than silently ignored).

    Raises
    ------
    InputError
        Invalid values, an unknown method, or a missing/superfluous effective half-life.
    """
    if method == "hanscheid":
        if effective_half_life_h is not None:
            raise InputError(
                f"effective_half_life_h={effective_half_life_h} is not used by the Hänscheid method "
                "(it assumes T_eff = time_h): omit it or use method 'madsen'"
            )
        return hanscheid_tia_mbq_h(time_h, activity_mbq)
    if method == "madsen":
        if effective_half_life_h is None:
            raise InputError(
                "the Madsen method needs effective_half_life_h (a prior effective half-life in h): "
                "give --effective-half-life-h"
            )
        return madsen_tia_mbq_h(time_h, activity_mbq, effective_half_life_h=effective_half_life_h)
    raise InputError(f"method must be 'hanscheid' or 'madsen'; got {method!r}: pick one of those")


@dataclass(frozen=True)
class StpResult:
    """A single-time-point TIA with its uncertainty and applicability.

    Attributes
    ----------
    tia_mbq_h : float
        Time-integrated activity, MBq·h.
    tia_sigma_mbq_h : float or None
        Standard uncertainty (activity and half-life terms; ``None`` when neither σ was given).
    method : {"hanscheid", "madsen"}
        Formula used (``"madsen"`` for an individual or a population half-life).
    time_h, activity_mbq : float
        The measurement.
    effective_half_life_h : float or None
        Half-life used (Madsen) or assumed for the window check (Hänscheid, optional).
    effective_half_life_sigma_h : float or None
        Its standard uncertainty.
    half_life_source : str or None
        Where the half-life comes from (e.g. "patient cycle 1 fit", "population").
    relative_sigma_activity, relative_sigma_half_life : float
        The two relative terms of the TIA uncertainty (0 when not given).
    time_in_half_lives : float or None
        :math:`t/T_{eff}`.
    flags : tuple of str
        ``stp_time_outside_window`` when applicable.
    warnings : tuple of str
        In words.
    """

    tia_mbq_h: float
    tia_sigma_mbq_h: float | None
    method: StpMethod
    time_h: float
    activity_mbq: float
    effective_half_life_h: float | None
    effective_half_life_sigma_h: float | None
    half_life_source: str | None
    relative_sigma_activity: float
    relative_sigma_half_life: float
    time_in_half_lives: float | None
    flags: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "tia_mbq_h": self.tia_mbq_h,
            "tia_sigma_mbq_h": self.tia_sigma_mbq_h,
            "method": self.method,
            "time_h": self.time_h,
            "activity_mbq": self.activity_mbq,
            "effective_half_life_h": self.effective_half_life_h,
            "effective_half_life_sigma_h": self.effective_half_life_sigma_h,
            "half_life_source": self.half_life_source,
            "relative_sigma_activity": self.relative_sigma_activity,
            "relative_sigma_half_life": self.relative_sigma_half_life,
            "time_in_half_lives": self.time_in_half_lives,
            "flags": list(self.flags),
            "warnings": list(self.warnings),
        }


def _window(
    time_h: float, half_life_h: float | None
) -> tuple[float | None, tuple[str, ...], tuple[str, ...]]:
    if half_life_h is None:
        return None, (), ()
    x = time_h / half_life_h
    low, high = STP_WINDOW_HALF_LIVES
    if low <= x <= high:
        return x, (), ()
    return (
        x,
        (FLAG_STP_OUTSIDE_WINDOW,),
        (
            f"scan at {time_h:g} h is {x:.2f} effective half-lives ({half_life_h:.4g} h) after "
            f"administration, outside {low:g}-{high:g}: the single-time-point estimate is outside its range "
            "of applicability (error can exceed 12 %); image within the window or use more time points",
        ),
    )


def stp_from_half_life(
    time_h: float,
    activity_mbq: float,
    *,
    effective_half_life_h: float,
    effective_half_life_sigma_h: float | None = None,
    activity_sigma_mbq: float | None = None,
    half_life_source: str | None = None,
) -> StpResult:
    """TIA from one measurement and a known effective half-life (Madsen et al. 2018 formula), with its
    uncertainty and the applicability window.

    Parameters
    ----------
    time_h : float
        Scan time after administration, h (> 0).
    activity_mbq : float
        Activity at that time, MBq (>= 0).
    effective_half_life_h : float
        The patient's effective half-life (e.g. of cycle 1) or a population value, h (> 0).
    effective_half_life_sigma_h : float, optional
        Its standard uncertainty, h (>= 0).
    activity_sigma_mbq : float, optional
        Standard uncertainty of the activity, MBq (>= 0).
    half_life_source : str, optional
        Provenance of the half-life, recorded in the result.

    Returns
    -------
    StpResult
        :math:`\\tilde A = A e^{\\lambda t}/\\lambda` with
        :math:`(\\sigma/\\tilde A)^2 = (\\sigma_A/A)^2 + (\\lambda t - 1)^2 (\\sigma_T/T)^2`.
    """
    t = _check(time_h, "time_h", allow_zero=False)
    a = _check(activity_mbq, "activity_mbq", allow_zero=True)
    half_life = _check(effective_half_life_h, "effective_half_life_h", allow_zero=False)
    tia = madsen_tia_mbq_h(t, a, effective_half_life_h=half_life)
    rate = _LN2 / half_life
    rel_a = 0.0
    if activity_sigma_mbq is not None:
        sigma_a = _check(activity_sigma_mbq, "activity_sigma_mbq", allow_zero=True)
        rel_a = sigma_a / a if a > 0 else 0.0
    rel_t = 0.0
    if effective_half_life_sigma_h is not None:
        sigma_t = _check(effective_half_life_sigma_h, "effective_half_life_sigma_h", allow_zero=True)
        rel_t = abs(rate * t - 1.0) * sigma_t / half_life
    sigma = None
    if activity_sigma_mbq is not None or effective_half_life_sigma_h is not None:
        sigma = tia * math.hypot(rel_a, rel_t)
    x, flags, warnings = _window(t, half_life)
    return StpResult(
        tia_mbq_h=tia,
        tia_sigma_mbq_h=sigma,
        method="madsen",
        time_h=t,
        activity_mbq=a,
        effective_half_life_h=half_life,
        effective_half_life_sigma_h=effective_half_life_sigma_h,
        half_life_source=half_life_source,
        relative_sigma_activity=rel_a,
        relative_sigma_half_life=rel_t,
        time_in_half_lives=x,
        flags=flags,
        warnings=warnings,
    )


def stp_from_earlier_cycle(
    time_h: float,
    activity_mbq: float,
    earlier: FitResult,
    *,
    activity_sigma_mbq: float | None = None,
    source: str = "patient's earlier-cycle fit",
) -> StpResult:
    """Single-time-point TIA of a later cycle from the same patient's and region's earlier multi-point
    fit: the earlier curve's shape scaled to the new measurement,
    :math:`\\tilde A_2 = A_2(t)\\,\\tilde A_1 / f_1(t)` with :math:`f_1` the earlier fitted curve.

    For a mono-exponential earlier fit this is exactly Madsen's formula with the patient's own
    effective half-life (:math:`\\tilde A_1/f_1(t) = e^{\\lambda t}/\\lambda`); for a form with an uptake or
    a second phase it keeps that shape instead of reducing it to one half-life. The uncertainty of the
    ratio follows from the earlier fit's covariance (delta method, analytic gradients), combined with
    the activity's. The applicability window is checked with the earlier effective half-life.

    Raises
    ------
    InputError
        The earlier fit is not an exponential form with a covariance, or its curve is 0 at ``time_h``.
    """
    import numpy as np

    from theradose.kinetics.models import get_model

    t = _check(time_h, "time_h", allow_zero=False)
    a = _check(activity_mbq, "activity_mbq", allow_zero=True)
    if earlier.model == "trapezoid" or earlier.covariance is None:
        raise InputError(
            f"the earlier fit ({earlier.model}) has no parameter covariance: fit an exponential form with "
            "per-point sigma_mbq to the earlier cycle"
        )
    model = get_model(earlier.model, decay_constant_per_h=earlier.decay_constant_per_h)
    params = np.array([earlier.parameters[n] for n in model.parameter_names])
    at = np.array([t])
    value = float(model.evaluate(params, at)[0])
    if not value > 0:
        raise InputError(
            f"the earlier fitted curve is {value:.4g} MBq at {t:g} h: the scan time is outside the measured "
            "kinetics; scan later"
        )
    tia1 = model.integral(params)
    ratio = tia1 / value
    gradient = model.integral_gradient(params) / tia1 - model.jacobian(params, at)[0] / value  # ∂ln R/∂p
    rel_shape = math.sqrt(max(float(gradient @ earlier.covariance @ gradient), 0.0))
    rel_a = 0.0
    if activity_sigma_mbq is not None:
        sigma_a = _check(activity_sigma_mbq, "activity_sigma_mbq", allow_zero=True)
        rel_a = sigma_a / a if a > 0 else 0.0
    tia = a * ratio
    half_life = earlier.effective_half_life_h
    x, flags, warnings = _window(t, half_life)
    return StpResult(
        tia_mbq_h=tia,
        tia_sigma_mbq_h=tia * math.hypot(rel_a, rel_shape),
        method="madsen",
        time_h=t,
        activity_mbq=a,
        effective_half_life_h=half_life,
        effective_half_life_sigma_h=earlier.effective_half_life_sigma_h,
        half_life_source=f"{source} ({earlier.model}, T_eff {half_life:.4g} h)"
        if half_life is not None
        else source,
        relative_sigma_activity=rel_a,
        relative_sigma_half_life=rel_shape,
        time_in_half_lives=x,
        flags=flags,
        warnings=warnings,
    )


def hanscheid_estimate(
    time_h: float,
    activity_mbq: float,
    *,
    activity_sigma_mbq: float | None = None,
    expected_half_life_h: float | None = None,
) -> StpResult:
    """Hänscheid et al. 2018 estimate with the activity uncertainty and, when an expected (e.g.
    population) half-life is given, the applicability window; the approximation error itself (−12 % to
    +6 % inside the window) is not part of σ."""
    t = _check(time_h, "time_h", allow_zero=False)
    a = _check(activity_mbq, "activity_mbq", allow_zero=True)
    tia = hanscheid_tia_mbq_h(t, a)
    rel_a = 0.0
    sigma = None
    if activity_sigma_mbq is not None:
        sigma_a = _check(activity_sigma_mbq, "activity_sigma_mbq", allow_zero=True)
        rel_a = sigma_a / a if a > 0 else 0.0
        sigma = tia * rel_a
    expected = None
    if expected_half_life_h is not None:
        expected = _check(expected_half_life_h, "expected_half_life_h", allow_zero=False)
    x, flags, warnings = _window(t, expected)
    return StpResult(
        tia_mbq_h=tia,
        tia_sigma_mbq_h=sigma,
        method="hanscheid",
        time_h=t,
        activity_mbq=a,
        effective_half_life_h=expected,
        effective_half_life_sigma_h=None,
        half_life_source=None if expected is None else "expected half-life for the window check",
        relative_sigma_activity=rel_a,
        relative_sigma_half_life=0.0,
        time_in_half_lives=x,
        flags=flags,
        warnings=warnings,
    )
