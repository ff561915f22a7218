"""Dosage check against the prescription (10 CFR 35.63(d)) for the pharmacy.

10 CFR 35.63(d): a licensee may not use a dosage that differs from the prescribed dosage by more than
20 percent unless otherwise directed by the authorized user physician. The rule itself (thresholds,
jurisdiction, exact decimal comparison at the edge) lives in :mod:`theradose.planning.regulatory`;
this module is the pharmacy's entry point and returns fractions, as the rest of the pharmacy does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from theradose.pharmacy._checks import require_fraction, require_positive

#: Allowed relative deviation of a unit dosage from the prescribed dosage, 10 CFR 35.63(d).
CFR_35_63_TOLERANCE_FRACTION = 0.20


@dataclass(frozen=True)
class DosageCheck:
    """Result of comparing an activity with the prescribed activity.

    ``deviation_fraction`` is ``(activity - prescribed) / prescribed``; ``within_limits`` is true when
    its magnitude does not exceed ``tolerance_fraction``; ``basis`` names the rule applied.
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
        Allowed relative deviation (0.20 by 10 CFR 35.63(d)); a site may be stricter.

    Returns
    -------
    DosageCheck
    """
    from theradose.planning.regulatory import check_dosage as regulatory_check
    from theradose.planning.regulatory import load_rules

    require_positive(activity_mbq, "activity_mbq")
    require_positive(prescribed_activity_mbq, "prescribed_activity_mbq")
    require_fraction(tolerance_fraction, "tolerance_fraction")
    rules = load_rules("us_nrc")
    if tolerance_fraction != CFR_35_63_TOLERANCE_FRACTION:
        rules = dataclasses.replace(rules, dosage_max_deviation_percent=tolerance_fraction * 100.0)
    result = regulatory_check(prescribed_activity_mbq, activity_mbq, rules=rules)
    return DosageCheck(
        within_limits=result.ok,
        deviation_fraction=(activity_mbq - prescribed_activity_mbq) / prescribed_activity_mbq,
        tolerance_fraction=tolerance_fraction,
        basis=result.rule,
    )
