"""Single-time-point TIA: Hänscheid et al. 2018 (JNM 59:75) and Madsen et al. 2018 (Med Phys 45:2318)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.kinetics import hanscheid_tia_mbq_h, madsen_tia_mbq_h, stp_tia_mbq_h


def test_hanscheid_hand_calculation() -> None:
    """Hänscheid 2018: TIA ≈ A(t)·2t/ln 2. 100 MBq at 96 h: 100·192/0.69314718 = 27699.74 MBq·h."""
    assert hanscheid_tia_mbq_h(96.0, 100.0) == pytest.approx(27699.74, abs=0.01)
    assert stp_tia_mbq_h(96.0, 100.0, method="hanscheid") == pytest.approx(27699.74, abs=0.01)


def test_madsen_hand_calculation() -> None:
    """Madsen 2018: TIA = A(t)·exp(λt)/λ, λ = ln2/T_eff. 100 MBq at 96 h, T_eff = 60 h:
    λ = 0.01155245 /h, λt = 1.109035, exp = 3.031433, TIA = 100·3.031433/0.01155245 = 26240.6 MBq·h."""
    assert madsen_tia_mbq_h(96.0, 100.0, effective_half_life_h=60.0) == pytest.approx(26240.6, abs=0.1)
    assert stp_tia_mbq_h(96.0, 100.0, method="madsen", effective_half_life_h=60.0) == pytest.approx(
        26240.6, abs=0.1
    )


def test_madsen_is_exact_for_a_mono_exponential_with_the_true_half_life() -> None:
    # A(t) = 500 e^{-λt}, T_eff = 50 h: TIA = 500/λ = 500·50/ln2 = 36067.38 MBq·h from any single point.
    rate = math.log(2) / 50.0
    for t in (24.0, 72.0, 150.0):
        activity = 500.0 * math.exp(-rate * t)
        assert madsen_tia_mbq_h(t, activity, effective_half_life_h=50.0) == pytest.approx(36067.38, abs=0.01)


def test_hanscheid_equals_madsen_when_half_life_equals_measurement_time() -> None:
    """Hänscheid's approximation is Madsen's formula with T_eff = t: exp(ln2)·t/ln2 = 2t/ln2."""
    for t in (48.0, 96.0):
        assert hanscheid_tia_mbq_h(t, 37.0) == pytest.approx(
            madsen_tia_mbq_h(t, 37.0, effective_half_life_h=t)
        )


def test_hanscheid_is_insensitive_near_the_optimum() -> None:
    """exp(λt)/λ is stationary at λt = 1 (Hänscheid 2018): assuming T_eff = t when the true T_eff is
    t·ln2 (λt = 1) overestimates the TIA only by the factor (2/ln2)/e = 1.0615."""
    t = 96.0
    true_half_life = t * math.log(2)  # λ = 1/t, the stationary point
    rate = 1.0 / t
    exact = madsen_tia_mbq_h(t, 100.0 * math.exp(-rate * t), effective_half_life_h=true_half_life)
    approx = hanscheid_tia_mbq_h(t, 100.0 * math.exp(-rate * t))
    assert approx / exact - 1 == pytest.approx(2 / math.log(2) / math.e - 1, rel=1e-9)
    assert abs(approx / exact - 1) < 0.07


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "madsen"}, "needs effective_half_life_h"),
        ({"method": "hanscheid", "effective_half_life_h": 60.0}, "not used by the Hänscheid method"),
        ({"method": "other"}, "method must be 'hanscheid' or 'madsen'"),
        ({"method": "madsen", "effective_half_life_h": -1.0}, "effective_half_life_h must be"),
    ],
)
def test_stp_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        stp_tia_mbq_h(96.0, 100.0, **kwargs)


@pytest.mark.parametrize(("time_h", "activity_mbq"), [(0.0, 1.0), (-1.0, 1.0), (24.0, -1.0), (np.nan, 1.0)])
def test_stp_rejects_invalid_measurements(time_h: float, activity_mbq: float) -> None:
    with pytest.raises(InputError):
        hanscheid_tia_mbq_h(time_h, activity_mbq)
