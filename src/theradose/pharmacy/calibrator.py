"""Dose-calibrator (radionuclide calibrator) quality assurance: constancy, accuracy, linearity, geometry.

Tests and their usual frequency follow AAPM Report of Task Group 181, *The selection, use, calibration,
and quality assurance of radionuclide calibrators used in nuclear medicine* (Carey et al., 2012):
constancy (daily, long-lived check source, e.g. Cs-137), accuracy (annually, traceable sources),
linearity (quarterly, decaying Tc-99m source) and geometry (at acceptance, volume dependence). TG-181
gives ±10 % as the action level used by regulators and recommends ±5 % where achievable; here every
tolerance is a parameter (default 10 %).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from theradose.errors import InputError
from theradose.pharmacy._checks import require_aware, require_fraction, require_positive
from theradose.pharmacy.decay import activity_at_mbq, decay_constant_per_h
from theradose.units import seconds_to_hours

QaTest = Literal["constancy", "accuracy", "linearity", "geometry"]

#: Default tolerance (fraction), the ±10 % action level of AAPM TG-181.
DEFAULT_TOLERANCE_FRACTION = 0.10


@dataclass(frozen=True)
class QaResult:
    """Outcome of one calibrator QA test.

    ``deviations`` holds the relative deviation of each reading from its expected value
    (``measured / expected - 1``); ``max_abs_deviation`` is the largest magnitude; ``passed`` is true when
    it does not exceed ``tolerance_fraction``.
    """

    test: str
    passed: bool
    max_abs_deviation: float
    tolerance_fraction: float
    deviations: tuple[float, ...]
    expected_mbq: tuple[float, ...]


def _result(test: str, measured: Sequence[float], expected: Sequence[float], tolerance: float) -> QaResult:
    deviations = tuple(m / e - 1.0 for m, e in zip(measured, expected, strict=True))
    worst = max(abs(d) for d in deviations)
    return QaResult(
        test=test,
        passed=worst <= tolerance + 1e-12,
        max_abs_deviation=worst,
        tolerance_fraction=tolerance,
        deviations=deviations,
        expected_mbq=tuple(expected),
    )


def source_check(
    measured_mbq: float,
    *,
    nuclide: str,
    certified_activity_mbq: float,
    certified_at: datetime,
    measured_at: datetime,
    test: Literal["constancy", "accuracy"] = "constancy",
    tolerance_fraction: float = DEFAULT_TOLERANCE_FRACTION,
) -> QaResult:
    """Constancy or accuracy test: a reading of a check source against its decay-corrected activity.

    Parameters
    ----------
    measured_mbq : float
        Calibrator reading in MBq.
    nuclide : str
        Source nuclide (Cs-137, Co-57, Ba-133 ...).
    certified_activity_mbq : float
        Source activity on its certificate (accuracy) or at the constancy baseline, in MBq.
    certified_at, measured_at : datetime
        Certificate (baseline) time and reading time.
    test : {"constancy", "accuracy"}
        Which test the reading is recorded as.
    tolerance_fraction : float
        Allowed relative deviation.
    """
    require_positive(measured_mbq, "measured_mbq")
    require_positive(certified_activity_mbq, "certified_activity_mbq")
    require_fraction(tolerance_fraction, "tolerance_fraction")
    expected = activity_at_mbq(certified_activity_mbq, nuclide, from_time=certified_at, to_time=measured_at)
    return _result(test, [measured_mbq], [expected], tolerance_fraction)


def linearity(
    readings: Sequence[tuple[datetime, float]],
    *,
    nuclide: str,
    tolerance_fraction: float = DEFAULT_TOLERANCE_FRACTION,
) -> QaResult:
    """Linearity by the decaying-source method.

    The expected reading at ``t_i`` is ``A0 · exp(-λ (t_i - t_0))``; ``A0`` is the least-squares fit in
    log space, ``ln A0 = mean(ln m_i + λ (t_i - t_0))``, so the deviations are relative to the best
    straight line of ``ln m`` against time with the known slope ``-λ`` (TG-181, section on linearity).

    Parameters
    ----------
    readings : sequence of (datetime, float)
        Reading times and calibrator readings in MBq (at least 3).
    nuclide : str
        Source nuclide (usually Tc-99m).
    tolerance_fraction : float
        Allowed relative deviation of any reading.
    """
    require_fraction(tolerance_fraction, "tolerance_fraction")
    if len(readings) < 3:
        raise InputError(f"linearity needs at least 3 readings; got {len(readings)}: measure over 2-3 days")
    t0 = require_aware(readings[0][0], "readings[0] time")
    lam = decay_constant_per_h(nuclide)
    elapsed_h = [
        seconds_to_hours((require_aware(t, "reading time") - t0).total_seconds()) for t, _ in readings
    ]
    measured = [require_positive(m, "reading_mbq") for _, m in readings]
    ln_a0 = math.fsum(math.log(m) + lam * t for m, t in zip(measured, elapsed_h, strict=True)) / len(measured)
    expected = [math.exp(ln_a0 - lam * t) for t in elapsed_h]
    return _result("linearity", measured, expected, tolerance_fraction)


def geometry(
    readings_by_volume_ml: Mapping[float, float],
    *,
    reference_volume_ml: float,
    tolerance_fraction: float = DEFAULT_TOLERANCE_FRACTION,
) -> QaResult:
    """Geometry (volume) dependence: readings of the same activity diluted to different volumes.

    Readings are taken within minutes of each other (or already decay-corrected to one time). The
    expected value of every reading is the reading at ``reference_volume_ml``; the correction factor for
    volume ``v`` is ``reading(ref) / reading(v)`` (``1 / (1 + deviation)``).

    Parameters
    ----------
    readings_by_volume_ml : mapping of float to float
        Volume in mL → calibrator reading in MBq.
    reference_volume_ml : float
        Volume at which the calibrator is calibrated; must be among the readings.
    tolerance_fraction : float
        Allowed relative deviation.
    """
    require_fraction(tolerance_fraction, "tolerance_fraction")
    if reference_volume_ml not in readings_by_volume_ml:
        raise InputError(
            f"reference_volume_ml {reference_volume_ml:g} has no reading; got volumes "
            f"{sorted(readings_by_volume_ml)}: add a reading at the reference volume"
        )
    volumes = sorted(readings_by_volume_ml)
    measured = [require_positive(readings_by_volume_ml[v], "reading_mbq") for v in volumes]
    reference = readings_by_volume_ml[reference_volume_ml]
    return _result("geometry", measured, [reference] * len(measured), tolerance_fraction)
