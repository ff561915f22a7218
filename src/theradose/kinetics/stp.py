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
"""

from __future__ import annotations

import math
from typing import Literal

from theradose.errors import InputError

StpMethod = Literal["hanscheid", "madsen"]

_LN2 = math.log(2.0)


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
