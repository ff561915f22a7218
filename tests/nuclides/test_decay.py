"""Decay correction: hand calculations and properties."""

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from theradose.errors import InputError
from theradose.nuclides import decay_activity_mbq, decay_correct_mbq, decay_factor, get_nuclide

LU = get_nuclide("Lu-177")


def test_one_half_life_halves() -> None:
    assert decay_factor("Lu-177", LU.half_life_h) == pytest.approx(0.5, rel=1e-12)


def test_hand_calculation_7400_mbq_after_24_h() -> None:
    # 7400 · exp(−ln2 · 24 / 159.528) = 7400 · 0.900973 = 6667.2 MBq (hand calculation)
    expected = 7400.0 * math.exp(-math.log(2) * 24.0 / 159.528)
    assert decay_activity_mbq(7400.0, "Lu-177", 24.0) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(6667.2, abs=0.1)


def test_vectorised_factor() -> None:
    t = np.array([0.0, LU.half_life_h, 2 * LU.half_life_h])
    np.testing.assert_allclose(decay_factor(LU, t), [1.0, 0.5, 0.25], rtol=1e-12)


def test_timezone_aware_correction_across_offsets() -> None:
    calibration = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    # 14:00 at UTC+02:00 is 12:00 UTC: no decay.
    same_instant = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert decay_correct_mbq(1000.0, "Lu-177", from_time=calibration, to_time=same_instant) == 1000.0
    later = calibration + timedelta(hours=LU.half_life_h)
    assert decay_correct_mbq(1000.0, "Lu-177", from_time=calibration, to_time=later) == pytest.approx(500.0)
    # back in time doubles
    assert decay_correct_mbq(500.0, "Lu-177", from_time=later, to_time=calibration) == pytest.approx(1000.0)


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(InputError, match="timezone-aware"):
        decay_correct_mbq(1.0, "Lu-177", from_time=datetime(2026, 1, 1), to_time=datetime.now(UTC))


def test_negative_activity_is_rejected() -> None:
    now = datetime.now(UTC)
    with pytest.raises(InputError, match="activity_mbq"):
        decay_correct_mbq(-1.0, "Lu-177", from_time=now, to_time=now)


@given(
    t1=st.floats(min_value=0.0, max_value=2000.0),
    t2=st.floats(min_value=0.0, max_value=2000.0),
    activity=st.floats(min_value=1e-6, max_value=1e5),
)
def test_decay_composes_and_inverts(t1: float, t2: float, activity: float) -> None:
    """Property: decaying t1 then t2 equals decaying t1 + t2; decaying back restores the activity."""
    a1 = decay_activity_mbq(decay_activity_mbq(activity, LU, t1), LU, t2)
    assert a1 == pytest.approx(decay_activity_mbq(activity, LU, t1 + t2), rel=1e-9)
    assert decay_activity_mbq(decay_activity_mbq(activity, LU, t1), LU, -t1) == pytest.approx(
        activity, rel=1e-9
    )
    assert decay_activity_mbq(activity, LU, t1) <= activity


def test_correction_back_beyond_the_float_range_is_refused_forward_decays_to_zero() -> None:
    import math

    import pytest

    from theradose.errors import InputError
    from theradose.nuclides.decay import decay_factor

    # F-18 (T½ = 109.77 min): 45 years back is ~2e5 half-lives, e^(λt) overflows
    with pytest.raises(InputError, match="half-lives back in time"):
        decay_factor("F-18", -45 * 365.25 * 24.0)
    assert decay_factor("F-18", 45 * 365.25 * 24.0) == 0.0
    assert math.isclose(decay_factor("F-18", -109.77 / 60.0), 2.0, rel_tol=1e-3)
