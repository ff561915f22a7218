"""Radioactive decay and decay correction.

A(t) = A₀ · exp(−λ t), λ = ln 2 / T½ (the decay law; e.g. MIRD Pamphlet 21, Bolch et al. 2009,
J Nucl Med 50:477).
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar, overload

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError
from theradose.nuclides.data import Nuclide, get_nuclide
from theradose.units import seconds_to_hours

FloatOrArray = TypeVar("FloatOrArray", float, npt.NDArray[np.float64])

#: Largest exponent λ·|t| of a correction back in time: exp(700) ≈ 1e304 is close to the largest
#: double (≈ 1.8e308), so a larger one would overflow to infinity.
MAX_BACK_CORRECTION_EXPONENT = 700.0


@overload
def decay_factor(nuclide: str | Nuclide, elapsed_h: float) -> float: ...
@overload
def decay_factor(nuclide: str | Nuclide, elapsed_h: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
def decay_factor(
    nuclide: str | Nuclide, elapsed_h: float | npt.NDArray[np.float64]
) -> float | npt.NDArray[np.float64]:
    """Fraction of activity remaining after ``elapsed_h`` hours: exp(−λ t).

    Negative ``elapsed_h`` gives the factor > 1 that corrects back in time.
    """
    lam = get_nuclide(nuclide).decay_constant_per_h
    t = np.asarray(elapsed_h, dtype=np.float64)
    if not np.all(np.isfinite(t)):
        raise InputError(f"elapsed_h must be finite; got {elapsed_h!r}: give the time difference in hours")
    exponent = -lam * t
    if np.any(exponent > MAX_BACK_CORRECTION_EXPONENT):
        worst = float(np.min(t))
        raise InputError(
            f"elapsed_h {worst:.6g} h is {-worst * lam / np.log(2.0):.4g} half-lives back in time: the decay "
            "correction leaves the floating-point range; check the dates"
        )
    result = np.exp(exponent)  # far forward: underflows to 0, the activity that is left
    if result.ndim == 0:
        return float(result)
    return result


def decay_activity_mbq(
    activity_mbq: FloatOrArray, nuclide: str | Nuclide, elapsed_h: float | npt.NDArray[np.float64]
) -> FloatOrArray:
    """Activity (MBq) after ``elapsed_h`` hours of decay from ``activity_mbq``."""
    return activity_mbq * decay_factor(nuclide, elapsed_h)  # type: ignore[return-value]


def elapsed_hours(from_time: datetime, to_time: datetime) -> float:
    """Hours from ``from_time`` to ``to_time``; both must be timezone-aware.

    Raises
    ------
    InputError
        If either datetime is naive (a naive time is ambiguous across daylight-saving changes and sites).
    """
    for label, value in (("from_time", from_time), ("to_time", to_time)):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise InputError(
                f"{label} must be timezone-aware; got {value.isoformat()}: add a UTC offset, e.g. +01:00"
            )
    return seconds_to_hours((to_time - from_time).total_seconds())


def decay_correct_mbq(
    activity_mbq: float, nuclide: str | Nuclide, *, from_time: datetime, to_time: datetime
) -> float:
    """Activity at ``to_time`` of a source that had ``activity_mbq`` at ``from_time``.

    ``to_time`` may be before ``from_time`` (correction back in time). Both datetimes must be
    timezone-aware.
    """
    if not np.isfinite(activity_mbq) or activity_mbq < 0:
        raise InputError(f"activity_mbq must be finite and >= 0; got {activity_mbq!r}")
    return float(activity_mbq * decay_factor(nuclide, elapsed_hours(from_time, to_time)))
