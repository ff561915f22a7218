"""Exponential models: analytic integrals vs hand calculation and numerical quadrature; derivatives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from theradose.errors import InputError
from theradose.kinetics import (
    MODELS,
    BiExponential,
    MonoExponential,
    TriExponential,
    integrate_bi_exp,
    integrate_mono_exp,
    integrate_tri_exp,
)

# Parameter sets with integrals computed by hand:
#   mono: 1000 MBq / 0.01 h^-1 = 100000 MBq·h
#   bi:   1000 * (1/0.01 - 1/0.5) = 1000 * (100 - 2) = 98000 MBq·h
#   tri:  600/0.008 + 400/0.1 - (600 + 400)/1.0 = 75000 + 4000 - 1000 = 78000 MBq·h
HAND = [
    ("mono", [1000.0, 0.01], 100000.0),
    ("bi", [1000.0, 0.01, 0.5], 98000.0),
    ("tri", [600.0, 0.008, 400.0, 0.1, 1.0], 78000.0),
]


@pytest.mark.parametrize(("name", "params", "expected"), HAND)
def test_integral_matches_hand_calculation(name: str, params: list[float], expected: float) -> None:
    assert MODELS[name].integral(np.array(params)) == pytest.approx(expected, rel=1e-12)


def test_public_integrators_match_hand_calculation() -> None:
    assert integrate_mono_exp(1000.0, 0.01) == pytest.approx(100000.0)
    assert integrate_bi_exp(1000.0, 0.01, 0.5) == pytest.approx(98000.0)
    assert integrate_tri_exp(600.0, 0.008, 400.0, 0.1, 1.0) == pytest.approx(78000.0)


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf")])
def test_integrators_reject_non_positive_rates(bad: float) -> None:
    with pytest.raises(InputError, match="lambda1_per_h must be a positive finite number"):
        integrate_mono_exp(1000.0, bad)


@pytest.mark.parametrize(("name", "params", "expected"), HAND)
def test_integral_matches_numerical_quadrature(name: str, params: list[float], expected: float) -> None:
    model = MODELS[name]
    p = np.array(params)
    numeric, _ = quad(lambda t: float(model.evaluate(p, np.array([t]))[0]), 0.0, np.inf, limit=200)
    assert numeric == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("name", "params", "expected"), HAND)
def test_jacobian_and_integral_gradient_match_finite_differences(
    name: str, params: list[float], expected: float
) -> None:
    model = MODELS[name]
    p = np.array(params)
    t = np.array([0.5, 2.0, 6.0, 24.0, 72.0, 168.0])
    jac = model.jacobian(p, t)
    grad = model.integral_gradient(p)
    for j in range(p.size):
        step = 1e-6 * abs(p[j])
        up, down = p.copy(), p.copy()
        up[j] += step
        down[j] -= step
        fd_curve = (model.evaluate(up, t) - model.evaluate(down, t)) / (2 * step)
        np.testing.assert_allclose(jac[:, j], fd_curve, rtol=1e-6, atol=1e-9 * np.max(np.abs(fd_curve)))
        fd_integral = (model.integral(up) - model.integral(down)) / (2 * step)
        assert grad[j] == pytest.approx(fd_integral, rel=1e-6)


def test_bi_exponential_canonical_form_is_the_same_curve() -> None:
    model = BiExponential()
    swapped = np.array([-1000.0, 0.5, 0.01])
    canonical = model.canonical(swapped)
    np.testing.assert_allclose(canonical, [1000.0, 0.01, 0.5])
    t = np.linspace(0, 200, 17)
    np.testing.assert_allclose(model.evaluate(swapped, t), model.evaluate(canonical, t))
    assert model.non_physical_reason(swapped) is not None  # negative amplitude before canonicalisation
    assert model.non_physical_reason(canonical) is None


def test_tri_exponential_canonical_orders_washout_phases() -> None:
    model = TriExponential()
    p = np.array([400.0, 0.1, 600.0, 0.008, 1.0])
    canonical = model.canonical(p)
    np.testing.assert_allclose(canonical, [600.0, 0.008, 400.0, 0.1, 1.0])
    t = np.linspace(0, 200, 17)
    np.testing.assert_allclose(model.evaluate(p, t), model.evaluate(canonical, t))
    assert model.evaluate(canonical, np.array([0.0]))[0] == 0.0
    assert model.terminal_rate_per_h(canonical) == 0.008


def test_non_physical_reasons() -> None:
    assert "not positive" in str(MonoExponential().non_physical_reason(np.array([100.0, -0.01])))
    assert "not positive" in str(MonoExponential().non_physical_reason(np.array([-100.0, 0.01])))
    assert "coincide" in str(BiExponential().non_physical_reason(np.array([100.0, 0.1, 0.1])))
    reason = TriExponential().non_physical_reason(np.array([-50.0, 0.008, 400.0, 0.1, 1.0]))
    assert "terminal phase" in str(reason)


def test_growing_curve_does_not_overflow() -> None:
    values = MonoExponential().evaluate(np.array([1.0, -10.0]), np.array([1000.0]))
    assert np.all(np.isfinite(values))


@settings(max_examples=60, deadline=None)
@given(
    a0_mbq=st.floats(min_value=1e-3, max_value=1e5),
    half_life_h=st.floats(min_value=0.5, max_value=2000.0),
)
def test_mono_exp_integral_equals_numerical_integral(a0_mbq: float, half_life_h: float) -> None:
    """∫0^∞ A0 e^{-λt} dt = A0/λ for any positive A0, λ (checked by adaptive quadrature)."""
    rate = np.log(2.0) / half_life_h
    numeric, _ = quad(lambda t: a0_mbq * np.exp(-rate * t), 0.0, np.inf)
    assert integrate_mono_exp(a0_mbq, rate) == pytest.approx(numeric, rel=1e-7)
    # MIRD: the TIA equals A0 times the mean life 1.4427 T_1/2.
    assert integrate_mono_exp(a0_mbq, rate) == pytest.approx(a0_mbq * half_life_h / np.log(2.0), rel=1e-12)
