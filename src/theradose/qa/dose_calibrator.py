"""Dose-calibrator (radionuclide calibrator) quality control.

Tests (AAPM Report 181, Carey et al. 2012; IAEA TRS-454, 2006):

constancy
    Daily reading of a long-lived check source against its activity decayed from the reference date.
accuracy
    Reading of a certified source against the certificate activity decayed to the measurement time.
linearity
    Decay method: readings of a high-activity source over several half-lives against
    A_ref · exp(−λ (t − t_ref)), normalised at the lowest-activity reading (the range where the
    calibrator is linear); shield method: readings with calibrated attenuating sleeves against
    A_unshielded · f_sleeve.
geometry
    The same activity in other volumes or containers against the reference geometry; the reciprocal
    ratio is the geometry correction factor.

The deviation of a reading is 100 · (measured − expected) / expected. Trend detection for constancy
series uses a Shewhart chart with limits from a baseline period and Western Electric run rules (Western
Electric Statistical Quality Control Handbook, 1956) plus a least-squares drift that projects when the
tolerance would be crossed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from theradose.errors import InputError
from theradose.nuclides import decay_factor, elapsed_hours, get_nuclide
from theradose.qa.tolerances import DoseCalibratorTest, ToleranceSet
from theradose.units import hours_to_days


@dataclass(frozen=True)
class QaReading:
    """One graded reading: expected and measured activity, deviation and verdict."""

    index: int
    measured_mbq: float
    expected_mbq: float
    deviation_percent: float
    passed: bool
    label: str = ""


@dataclass(frozen=True)
class TrendWarning:
    """A control-chart rule or drift projection that fired, with the row where it fired."""

    rule: str
    index: int
    message: str


@dataclass(frozen=True)
class QaResult:
    """Graded readings of one test with the tolerance used and any trend warnings."""

    test: DoseCalibratorTest
    tolerance_percent: float
    tolerance_set: str
    readings: tuple[QaReading, ...]
    trend: tuple[TrendWarning, ...] = field(default=())

    @property
    def passed(self) -> bool:
        """True when every reading passed."""
        return all(r.passed for r in self.readings)


def deviation_percent(measured_mbq: float, expected_mbq: float) -> float:
    """100 · (measured − expected) / expected."""
    if not expected_mbq > 0:
        raise InputError(f"expected activity must be > 0 MBq; got {expected_mbq}")
    return 100.0 * (measured_mbq - expected_mbq) / expected_mbq


def _check_readings(name: str, values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise InputError(f"{name} must be a non-empty list of readings")
    bad = np.flatnonzero(~np.isfinite(array) | (array <= 0))
    if bad.size:
        raise InputError(
            f"{name} must be positive; got {array[bad[0]]!r} at row {bad[0] + 1}: correct the reading"
        )
    return array


def _grade(
    test: DoseCalibratorTest,
    measured: np.ndarray,
    expected: np.ndarray,
    tolerance: ToleranceSet,
    labels: Sequence[str] | None = None,
) -> tuple[QaReading, ...]:
    out = []
    for i, (m, e) in enumerate(zip(measured, expected, strict=True)):
        dev = deviation_percent(float(m), float(e))
        out.append(
            QaReading(
                index=i,
                measured_mbq=float(m),
                expected_mbq=float(e),
                deviation_percent=dev,
                passed=tolerance.passes(test, dev),
                label=labels[i] if labels else "",
            )
        )
    return tuple(out)


def decayed_reference_mbq(
    reference_activity_mbq: float, nuclide: str, reference_time: datetime, times: Sequence[datetime]
) -> np.ndarray:
    """Reference activity decayed to each of ``times`` (timezone-aware)."""
    elapsed = np.array([elapsed_hours(reference_time, t) for t in times])
    return reference_activity_mbq * np.asarray(decay_factor(nuclide, elapsed))


def constancy(
    measured_mbq: Sequence[float],
    times: Sequence[datetime],
    *,
    nuclide: str,
    reference_activity_mbq: float,
    reference_time: datetime,
    tolerance: ToleranceSet,
    baseline_n: int = 10,
) -> QaResult:
    """Grade constancy readings of a check source and look for trends.

    Parameters
    ----------
    measured_mbq, times
        Readings and their (timezone-aware) times, in chronological order.
    nuclide, reference_activity_mbq, reference_time
        The check source (e.g. ¹³⁷Cs) and its activity at a reference time.
    baseline_n
        Number of first readings that set the control-chart mean and σ.
    """
    measured = _check_readings("measured_mbq", measured_mbq)
    if len(times) != measured.size:
        raise InputError(f"times has {len(times)} entries but measured_mbq has {measured.size}")
    expected = decayed_reference_mbq(reference_activity_mbq, nuclide, reference_time, times)
    readings = _grade("constancy", measured, expected, tolerance)
    deviations = np.array([r.deviation_percent for r in readings])
    elapsed_d = np.array([hours_to_days(elapsed_hours(times[0], t)) for t in times])
    trend = detect_trend(
        deviations,
        elapsed_d,
        tolerance_percent=tolerance.tolerance_percent("constancy"),
        baseline_n=baseline_n,
    )
    return QaResult("constancy", tolerance.constancy_percent, tolerance.name, readings, trend)


def accuracy(
    measured_mbq: Sequence[float],
    times: Sequence[datetime],
    *,
    nuclide: str,
    certified_activity_mbq: float,
    certificate_time: datetime,
    tolerance: ToleranceSet,
) -> QaResult:
    """Grade readings of a certified source against its decayed certificate activity."""
    measured = _check_readings("measured_mbq", measured_mbq)
    if len(times) != measured.size:
        raise InputError(f"times has {len(times)} entries but measured_mbq has {measured.size}")
    expected = decayed_reference_mbq(certified_activity_mbq, nuclide, certificate_time, times)
    return QaResult(
        "accuracy",
        tolerance.accuracy_percent,
        tolerance.name,
        _grade("accuracy", measured, expected, tolerance),
    )


def linearity_decay(
    measured_mbq: Sequence[float], times: Sequence[datetime], *, nuclide: str, tolerance: ToleranceSet
) -> QaResult:
    """Decay-method linearity: expected = reading at the lowest activity, decayed back/forward in time."""
    measured = _check_readings("measured_mbq", measured_mbq)
    if len(times) != measured.size or measured.size < 3:
        raise InputError("linearity needs at least 3 readings, each with a time")
    get_nuclide(nuclide)
    ref = int(np.argmin(measured))
    expected = decayed_reference_mbq(float(measured[ref]), nuclide, times[ref], times)
    return QaResult(
        "linearity",
        tolerance.linearity_percent,
        tolerance.name,
        _grade("linearity", measured, expected, tolerance),
    )


def linearity_shield(
    measured_mbq: Sequence[float], shield_factors: Sequence[float], *, tolerance: ToleranceSet
) -> QaResult:
    """Shield-method linearity: the unshielded reading (factor 1) times each sleeve's calibrated factor.

    ``shield_factors`` are the calibrated transmission factors of the sleeves (1 for no sleeve).
    """
    measured = _check_readings("measured_mbq", measured_mbq)
    factors = _check_readings("shield_factor", shield_factors)
    if factors.size != measured.size:
        raise InputError("shield_factor needs one value per reading")
    unshielded = np.flatnonzero(np.isclose(factors, 1.0))
    if unshielded.size == 0:
        raise InputError("shield method needs an unshielded reading (shield_factor = 1)")
    expected = measured[unshielded[0]] * factors
    return QaResult(
        "linearity",
        tolerance.linearity_percent,
        tolerance.name,
        _grade("linearity", measured, expected, tolerance),
    )


def geometry(
    measured_mbq: Sequence[float],
    labels: Sequence[str],
    *,
    reference_index: int = 0,
    tolerance: ToleranceSet,
) -> QaResult:
    """Geometry dependence: each reading against the reference geometry's reading of the same activity.

    The geometry correction factor of a row is expected/measured = 1 / (1 + deviation/100).
    """
    measured = _check_readings("measured_mbq", measured_mbq)
    if not 0 <= reference_index < measured.size:
        raise InputError(f"reference_index {reference_index} is outside the {measured.size} readings")
    expected = np.full_like(measured, measured[reference_index])
    return QaResult(
        "geometry",
        tolerance.geometry_percent,
        tolerance.name,
        _grade("geometry", measured, expected, tolerance, labels),
    )


def detect_trend(
    deviation_percent: np.ndarray,
    elapsed_d: np.ndarray,
    *,
    tolerance_percent: float,
    baseline_n: int = 10,
    horizon_d: float = 90.0,
) -> tuple[TrendWarning, ...]:
    """Control-chart and drift warnings for a series of deviations.

    Rules (Western Electric, 1956), with mean μ and σ from the first ``baseline_n`` readings:

    1. one reading beyond μ ± 3σ;
    2. two of three consecutive readings beyond μ ± 2σ on the same side;
    3. eight consecutive readings on the same side of μ;
    4. drift: least-squares slope of deviation vs time significant at p < 0.01 and projected to reach
       the tolerance within ``horizon_d`` days of the last reading ("drift before failure").

    Series shorter than ``baseline_n + 3`` readings produce no warnings.
    """
    from scipy import stats

    dev = np.asarray(deviation_percent, dtype=np.float64)
    t = np.asarray(elapsed_d, dtype=np.float64)
    warnings: list[TrendWarning] = []
    if dev.size < baseline_n + 3 or baseline_n < 3:
        return ()
    base = dev[:baseline_n]
    mu = float(base.mean())
    sigma = float(base.std(ddof=1))
    if sigma > 0:
        z = (dev - mu) / sigma
        for i in range(baseline_n, dev.size):
            if abs(z[i]) > 3:
                warnings.append(
                    TrendWarning("beyond_3_sigma", i, f"reading {i + 1} is {z[i]:+.1f} σ from the mean")
                )
            window = z[max(0, i - 2) : i + 1]
            if window.size == 3:
                for side in (1, -1):
                    if np.sum(side * window > 2) >= 2 and side * z[i] > 2:
                        warnings.append(
                            TrendWarning(
                                "two_of_three_beyond_2_sigma", i, f"2 of 3 readings to {i + 1} beyond 2 σ"
                            )
                        )
            if i >= 7:
                run = z[i - 7 : i + 1]
                if np.all(run > 0) or np.all(run < 0):
                    warnings.append(
                        TrendWarning("eight_on_one_side", i, f"8 readings to {i + 1} on one side of the mean")
                    )
    fit = stats.linregress(t, dev)
    if fit.pvalue < 0.01 and fit.slope != 0:
        limit = tolerance_percent if fit.slope > 0 else -tolerance_percent
        fitted_now = fit.intercept + fit.slope * t[-1]
        days_to_limit = (limit - fitted_now) / fit.slope
        if 0 <= days_to_limit <= horizon_d:
            warnings.append(
                TrendWarning(
                    "drift",
                    int(dev.size - 1),
                    f"deviation drifts {fit.slope:+.3f} %/day and reaches ±{tolerance_percent:g} % "
                    f"in about {days_to_limit:.0f} days",
                )
            )
    # keep the first warning of each rule at each index only
    unique = {(w.rule, w.index): w for w in warnings}
    return tuple(unique.values())
