"""Dose-calibrator QA: tolerance edges, decay-corrected expectations, trend detection."""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.qa import dose_calibrator as dc
from theradose.qa.tolerances import load_tolerance_set

REG = load_tolerance_set("regulatory")
PRO = load_tolerance_set("professional")
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def test_shipped_tolerance_sets() -> None:
    """10 CFR 35.50 (1987): ±10 % for all four tests; professional limits ±5 % (ANSI N42.13-2004)."""
    assert (
        REG.accuracy_percent == REG.constancy_percent == REG.linearity_percent == REG.geometry_percent == 10.0
    )
    assert PRO.accuracy_percent == 5.0


@pytest.mark.parametrize(
    ("measured", "passes"),
    [(110.0, True), (90.0, True), (110.000001, False), (89.999999, False), (105.0, True)],
)
def test_accuracy_tolerance_edges_exact(measured: float, passes: bool) -> None:
    """Certified 100 MBq at the measurement time: 110 and 90 MBq sit exactly on ±10 % and pass."""
    result = dc.accuracy(
        [measured], [T0], nuclide="Cs-137", certified_activity_mbq=100.0, certificate_time=T0, tolerance=REG
    )
    assert result.readings[0].passed is passes
    assert result.readings[0].deviation_percent == pytest.approx(measured - 100.0, abs=1e-6)


def test_professional_set_is_tighter() -> None:
    result = dc.accuracy(
        [106.0], [T0], nuclide="Cs-137", certified_activity_mbq=100.0, certificate_time=T0, tolerance=PRO
    )
    assert not result.passed


def test_constancy_uses_decayed_reference() -> None:
    """Cs-137 (T½ 30.1671 y in ICRP-107) one half-life after the reference: expected 50 % of it."""
    half_life = timedelta(days=30.1671 * 365.25)
    result = dc.constancy(
        [5.0],
        [T0 + half_life],
        nuclide="Cs-137",
        reference_activity_mbq=10.0,
        reference_time=T0,
        tolerance=REG,
    )
    assert result.readings[0].expected_mbq == pytest.approx(5.0, rel=1e-4)


def test_linearity_decay_method_hand_calculation() -> None:
    """Tc-99m (T½ 6.015 h in ICRP-107): a perfect calibrator reads A0·2^(−t/T½); a 3 % high reading at
    the highest activity (saturation would read low; here a gain error) gives +3 %."""
    t_half = 6.015
    hours = np.array([0.0, 6.0, 12.0, 24.0, 48.0])
    true = 30000.0 * 2.0 ** (-hours / t_half)
    readings = true.copy()
    readings[0] *= 1.03
    times = [T0 + timedelta(hours=float(h)) for h in hours]
    result = dc.linearity_decay(readings.tolist(), times, nuclide="Tc-99m", tolerance=PRO)
    devs = [r.deviation_percent for r in result.readings]
    assert devs[0] == pytest.approx(3.0, abs=0.01)
    assert max(abs(d) for d in devs[1:]) < 0.01
    assert result.passed


def test_linearity_shield_method() -> None:
    """Sleeves with calibrated transmission 0.5 and 0.1: readings 500 and 100 of 1000 are exact."""
    result = dc.linearity_shield([1000.0, 500.0, 89.0], [1.0, 0.5, 0.1], tolerance=REG)
    assert [r.passed for r in result.readings] == [True, True, False]
    assert result.readings[2].deviation_percent == pytest.approx(-11.0)


def test_geometry_correction_factor() -> None:
    result = dc.geometry([100.0, 97.0, 104.0], ["3 mL syringe", "10 mL vial", "20 mL vial"], tolerance=PRO)
    assert [round(r.deviation_percent, 6) for r in result.readings] == [0.0, -3.0, 4.0]
    assert result.readings[1].label == "10 mL vial"


def test_bad_readings_are_rejected() -> None:
    with pytest.raises(InputError, match="row 2"):
        dc.geometry([100.0, -1.0], ["a", "b"], tolerance=REG)
    with pytest.raises(InputError, match="tolerance set 'strict' not found"):
        load_tolerance_set("strict")


def test_trend_detects_drift_before_failure(rng: np.random.Generator) -> None:
    """A stable month, then a drift of +0.15 %/day: the drift rule fires while every reading still
    passes ±10 %; a stable log with the same noise raises no drift warning."""
    days = np.arange(60.0)
    stable = rng.normal(0.0, 0.3, days.size)
    drifting = stable + np.where(days > 30, 0.15 * (days - 30), 0.0)
    times = [T0 + timedelta(days=float(d)) for d in days]

    def run(dev: np.ndarray) -> dc.QaResult:
        readings = 10.0 * (1.0 + dev / 100.0)
        return dc.constancy(
            readings.tolist(),
            times,
            nuclide="Cs-137",
            reference_activity_mbq=10.0,
            reference_time=T0,
            tolerance=REG,
        )

    drift_result = run(drifting * 1.0)
    assert drift_result.passed  # still inside tolerance …
    rules = {w.rule for w in drift_result.trend}
    assert "drift" in rules  # … but the drift is reported before failure
    assert "beyond_3_sigma" in rules
    stable_result = run(stable)
    assert "drift" not in {w.rule for w in stable_result.trend}


def test_western_electric_eight_on_one_side() -> None:
    dev = np.array([0.1, -0.1] * 6 + [0.05] * 8)
    warnings = dc.detect_trend(dev, np.arange(dev.size, dtype=float), tolerance_percent=10.0, baseline_n=12)
    assert any(w.rule == "eight_on_one_side" and w.index == dev.size - 1 for w in warnings)
    assert math.isfinite(dev.sum())
