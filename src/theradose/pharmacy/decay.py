"""Decay correction for the pharmacy, delegating to :mod:`theradose.nuclides` (ICRP-107 half-lives).

All activities are in MBq and all times are timezone-aware datetimes. The decay law is
``A(t2) = A(t1) · exp(-λ (t2 - t1))`` with ``λ = ln 2 / T½`` (Cherry, Sorenson & Phelps, *Physics in
Nuclear Medicine*, 4th ed., 2012, ch. 4).
"""

from __future__ import annotations

import math
from datetime import datetime

from theradose.errors import InputError
from theradose.pharmacy._checks import require_aware, require_non_negative
from theradose.units import seconds_to_hours

#: Largest |λ·Δt| accepted: beyond it exp(±λΔt) leaves the float range in practice (e^700 ≈ 1e304).
MAX_DECAY_EXPONENT = 700.0


def canonical_nuclide(name: str) -> str:
    """Return the canonical nuclide name (``"Lu-177"``) for any accepted spelling.

    Raises
    ------
    theradose.errors.NuclideError
        If the nuclide is unknown (the message lists close matches).
    """
    from theradose.nuclides import get_nuclide

    return str(get_nuclide(name).name)


def half_life_h(nuclide: str) -> float:
    """Physical half-life of ``nuclide`` in hours (ICRP Publication 107)."""
    from theradose.nuclides import get_nuclide

    return float(get_nuclide(nuclide).half_life_h)


def decay_constant_per_h(nuclide: str) -> float:
    """Decay constant λ = ln 2 / T½ of ``nuclide`` in 1/h."""
    return math.log(2.0) / half_life_h(nuclide)


def activity_at_mbq(activity_mbq: float, nuclide: str, *, from_time: datetime, to_time: datetime) -> float:
    """Activity at ``to_time`` of a source holding ``activity_mbq`` at ``from_time``.

    Works in both directions (``to_time`` before ``from_time`` back-corrects).

    Parameters
    ----------
    activity_mbq : float
        Activity at ``from_time`` in MBq (>= 0).
    nuclide : str
        Nuclide name, any spelling accepted by :func:`theradose.nuclides.get_nuclide`.
    from_time, to_time : datetime
        Timezone-aware reference and target times.

    Returns
    -------
    float
        ``activity_mbq · exp(-λ (to_time - from_time))`` in MBq.
    """
    from theradose.nuclides import decay_correct_mbq

    require_non_negative(activity_mbq, "activity_mbq")
    require_aware(from_time, "from_time")
    require_aware(to_time, "to_time")
    elapsed_h = seconds_to_hours((to_time - from_time).total_seconds())
    if abs(elapsed_h) * decay_constant_per_h(nuclide) > MAX_DECAY_EXPONENT:
        raise InputError(
            f"to_time {to_time.isoformat()} is {elapsed_h:.4g} h from from_time {from_time.isoformat()},"
            f" too many {nuclide} half-lives for a decay correction: check the dates"
        )
    return float(decay_correct_mbq(float(activity_mbq), nuclide, from_time=from_time, to_time=to_time))


def remaining_activity_mbq(
    activity_mbq: float, nuclide: str, *, from_time: datetime, to_time: datetime
) -> float | None:
    """Activity at ``to_time`` for showing a stored record: like :func:`activity_at_mbq`, but a source
    decayed beyond the floating-point range reads 0.0 MBq and a correction too far back in time (which
    would overflow) reads ``None``; it never raises for the length of the interval, so a read of an
    old record cannot fail (a Ga-68 batch of last month has simply decayed).
    """
    require_non_negative(activity_mbq, "activity_mbq")
    require_aware(from_time, "from_time")
    require_aware(to_time, "to_time")
    exponent = seconds_to_hours((to_time - from_time).total_seconds()) * decay_constant_per_h(nuclide)
    if exponent > MAX_DECAY_EXPONENT:
        return 0.0
    if exponent < -MAX_DECAY_EXPONENT:
        return None
    return float(activity_mbq) * math.exp(-exponent)
