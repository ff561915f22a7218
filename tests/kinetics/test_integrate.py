"""Trapezoidal integration with an exponential tail (MIRD Pamphlet 16)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theradose.errors import InputError
from theradose.kinetics import evaluate_trapezoid, integrate_trapezoid, trapezoid_weights


def test_trapezoid_hand_calculation() -> None:
    # Rise from 0 to 10 MBq over 2 h: 10*2/2 = 10; trapezoid 2->6 h: (10+6)/2*4 = 32;
    # tail 6 MBq / 0.1 h^-1 = 60. Total 102 MBq·h.
    assert integrate_trapezoid([2.0, 6.0], [10.0, 6.0], tail_decay_constant_per_h=0.1) == pytest.approx(102.0)


def test_trapezoid_with_point_at_time_zero() -> None:
    # No rise segment: (8+4)/2*10 = 60, tail 4/0.2 = 20.
    assert integrate_trapezoid([0.0, 10.0], [8.0, 4.0], tail_decay_constant_per_h=0.2) == pytest.approx(80.0)


def test_weights_are_the_linear_form() -> None:
    w = trapezoid_weights([2.0, 6.0, 10.0], tail_decay_constant_per_h=0.5)
    # w0 = 2/2 + 4/2 = 3, w1 = 4/2 + 4/2 = 4, w2 = 4/2 + 1/0.5 = 4
    np.testing.assert_allclose(w, [3.0, 4.0, 4.0])


def test_trapezoid_rejects_bad_tail() -> None:
    with pytest.raises(InputError, match="tail_decay_constant_per_h"):
        integrate_trapezoid([1.0, 2.0], [1.0, 1.0], tail_decay_constant_per_h=0.0)


def test_evaluate_trapezoid_is_piecewise_linear_then_exponential() -> None:
    values = evaluate_trapezoid(
        [2.0, 6.0], [10.0, 6.0], [0.0, 1.0, 4.0, 6.0, 16.0], tail_decay_constant_per_h=0.1
    )
    np.testing.assert_allclose(values, [0.0, 5.0, 8.0, 6.0, 6.0 * np.exp(-1.0)])


@settings(max_examples=80, deadline=None)
@given(
    steps_h=st.lists(st.floats(min_value=0.1, max_value=100.0), min_size=1, max_size=8),
    activities_mbq=st.lists(st.floats(min_value=0.0, max_value=1e4), min_size=9, max_size=9),
    tail_rate_per_h=st.floats(min_value=1e-3, max_value=1.0),
)
def test_trapezoid_integral_lies_between_step_bounds(
    steps_h: list[float], activities_mbq: list[float], tail_rate_per_h: float
) -> None:
    """Each trapezoid lies between the lower and upper step (Riemann) sums of its interval."""
    t = np.cumsum(steps_h)
    a = np.asarray(activities_mbq[: t.size])
    tia = integrate_trapezoid(t, a, tail_decay_constant_per_h=tail_rate_per_h)
    knots_t = np.concatenate(([0.0], t))
    knots_a = np.concatenate(([0.0], a))
    dt = np.diff(knots_t)
    tail = a[-1] / tail_rate_per_h
    lower = np.sum(np.minimum(knots_a[:-1], knots_a[1:]) * dt) + tail
    upper = np.sum(np.maximum(knots_a[:-1], knots_a[1:]) * dt) + tail
    assert lower * (1 - 1e-12) - 1e-9 <= tia <= upper * (1 + 1e-12) + 1e-9


@settings(max_examples=60, deadline=None)
@given(
    a0_mbq=st.floats(min_value=1.0, max_value=1e4),
    half_life_h=st.floats(min_value=5.0, max_value=500.0),
    steps_h=st.lists(st.floats(min_value=0.5, max_value=72.0), min_size=1, max_size=6),
)
def test_trapezoid_of_sampled_mono_exp_overestimates_by_convexity(
    a0_mbq: float, half_life_h: float, steps_h: list[float]
) -> None:
    """Sampling A0 e^{-λt} from t=0 with the exact tail: chords of a convex curve lie above it, so the
    trapezoid TIA is >= A0/λ and exceeds it by at most the largest chord error sum."""
    rate = np.log(2.0) / half_life_h
    t = np.concatenate(([0.0], np.cumsum(steps_h)))
    a = a0_mbq * np.exp(-rate * t)
    tia = integrate_trapezoid(t, a, tail_decay_constant_per_h=rate)
    exact = a0_mbq / rate
    assert tia >= exact * (1 - 1e-12)
    # On each interval the chord minus the curve integrates to at most (A_i - A_{i+1}) * dt / 2.
    bound = np.sum((a[:-1] - a[1:]) * np.diff(t) / 2.0)
    assert tia - exact <= bound * (1 + 1e-9) + 1e-9
