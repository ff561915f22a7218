"""Dosage check against the prescription (10 CFR 35.63(d)).

10 CFR 35.63(d): a licensee may not use a dosage that differs from the prescribed dosage by more than
20 percent unless otherwise directed by the authorized user physician.

Joining note: the planning package provides the site-wide regulatory checks in
``theradose.planning.regulatory``; when both are on main this function is the one pharmacy entry point
and delegates to that module, keeping this signature.
"""

from __future__ import annotations

from dataclasses import dataclass

from theradose.pharmacy._checks import require_fraction, require_positive

#: Allowed relative deviation of a unit dosage from the prescribed dosage, 10 CFR 35.63(d).
CFR_35_63_TOLERANCE_FRACTION = 0.20


@dataclass(frozen=True)
class DosageCheck:
    """Result of comparing an activity with the prescribed activity.

    ``deviation_fraction`` is ``(activity - prescribed) / prescribed``; ``within_limits`` is true when
    its magnitude does not exceed ``tolerance_fraction``.
    """

    within_limits: bool
    deviation_fraction: float
    tolerance_fraction: float
    basis: str


def check_dosage(
    activity_mbq: float,
    prescribed_activity_mbq: float,
    *,
    tolerance_fraction: float = CFR_35_63_TOLERANCE_FRACTION,
) -> DosageCheck:
    """Check a unit dosage (or administered activity) against the prescribed activity.

    Parameters
    ----------
    activity_mbq : float
        Dosage measured or administered in MBq.
    prescribed_activity_mbq : float
        Prescribed activity in MBq (written directive).
    tolerance_fraction : float
        Allowed relative deviation (0.20 by 10 CFR 35.63(d)).

    Returns
    -------
    DosageCheck
    """
    require_positive(activity_mbq, "activity_mbq")
    require_positive(prescribed_activity_mbq, "prescribed_activity_mbq")
    require_fraction(tolerance_fraction, "tolerance_fraction")
    deviation = (activity_mbq - prescribed_activity_mbq) / prescribed_activity_mbq
    return DosageCheck(
        within_limits=abs(deviation) <= tolerance_fraction + 1e-12,
        deviation_fraction=deviation,
        tolerance_fraction=tolerance_fraction,
        basis="10 CFR 35.63(d)",
    )
