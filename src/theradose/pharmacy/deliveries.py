"""Radionuclide deliveries and generators.

A delivery is a calibrated shipment of a radionuclide (activity at its calibration time). A generator
holds a long-lived parent whose short-lived daughter grows in between elutions. Daughter activity since
the last complete elution at ``t = 0`` follows the Bateman equation for a parent-daughter pair
(Cherry, Sorenson & Phelps, *Physics in Nuclear Medicine*, 4th ed., 2012, eq. 5-5):

``A_d(t) = A_p(t) · λd / (λd - λp) · (1 - exp(-(λd - λp) t))``
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from theradose.errors import InputError
from theradose.pharmacy._checks import (
    require_activity,
    require_aware,
    require_fraction,
    require_positive,
    require_text,
)
from theradose.pharmacy.decay import activity_at_mbq, decay_constant_per_h
from theradose.pharmacy.identifiers import check_identifier
from theradose.units import seconds_to_hours


@dataclass(frozen=True)
class Delivery:
    """A received radionuclide shipment (activity in MBq at ``calibration_time``)."""

    nuclide: str
    supplier: str
    lot: str
    activity_mbq: float
    calibration_time: datetime
    received_at: datetime

    def __post_init__(self) -> None:
        require_text(self.nuclide, "nuclide")
        require_text(self.supplier, "supplier")
        require_text(self.lot, "lot")
        require_activity(self.activity_mbq, "activity_mbq")
        require_aware(self.calibration_time, "calibration_time")
        require_aware(self.received_at, "received_at")

    def activity_at_mbq(self, time: datetime) -> float:
        """Activity at ``time`` in MBq."""
        return activity_at_mbq(self.activity_mbq, self.nuclide, from_time=self.calibration_time, to_time=time)


@dataclass(frozen=True)
class Generator:
    """A parent/daughter generator (e.g. Ge-68/Ga-68) with its parent calibration."""

    parent: str
    daughter: str
    serial: str
    parent_activity_mbq: float
    calibration_time: datetime

    def __post_init__(self) -> None:
        require_text(self.parent, "parent")
        require_text(self.daughter, "daughter")
        require_text(self.serial, "serial")
        check_identifier(self.serial, "serial")
        require_activity(self.parent_activity_mbq, "parent_activity_mbq")
        require_aware(self.calibration_time, "calibration_time")

    def parent_activity_at_mbq(self, time: datetime) -> float:
        """Parent activity at ``time`` in MBq."""
        return activity_at_mbq(
            self.parent_activity_mbq, self.parent, from_time=self.calibration_time, to_time=time
        )


def daughter_activity_mbq(
    generator: Generator,
    *,
    last_elution: datetime,
    at_time: datetime,
    branching_fraction: float = 1.0,
) -> float:
    """Daughter activity in the generator at ``at_time`` after a complete elution at ``last_elution``.

    Parameters
    ----------
    generator : Generator
        The generator.
    last_elution : datetime
        Time of the last (assumed complete) elution.
    at_time : datetime
        Time of interest, not before ``last_elution``.
    branching_fraction : float
        Fraction of parent decays that produce the daughter (1 for Ge-68 → Ga-68).

    Returns
    -------
    float
        Daughter activity in MBq (Bateman equation, see module docstring).
    """
    require_aware(last_elution, "last_elution")
    require_aware(at_time, "at_time")
    require_fraction(branching_fraction, "branching_fraction")
    if at_time < last_elution:
        raise InputError(
            f"at_time {at_time.isoformat()} is before last_elution {last_elution.isoformat()}:"
            " give a later time"
        )
    lam_p = decay_constant_per_h(generator.parent)
    lam_d = decay_constant_per_h(generator.daughter)
    if lam_d <= lam_p:
        raise InputError(
            f"daughter {generator.daughter} must be shorter-lived than parent {generator.parent} for a"
            " generator: check the nuclides"
        )
    elapsed_h = seconds_to_hours((at_time - last_elution).total_seconds())
    parent_now = generator.parent_activity_at_mbq(at_time)
    growth = lam_d / (lam_d - lam_p) * (1.0 - math.exp(-(lam_d - lam_p) * elapsed_h))
    return branching_fraction * parent_now * growth


def elution_yield_fraction(eluted_activity_mbq: float, expected_activity_mbq: float) -> float:
    """Elution efficiency: eluted / expected daughter activity (both at the elution time)."""
    require_positive(eluted_activity_mbq, "eluted_activity_mbq")
    require_positive(expected_activity_mbq, "expected_activity_mbq")
    return eluted_activity_mbq / expected_activity_mbq
