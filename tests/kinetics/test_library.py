"""The NUKFIT-style forms with a physical-decay term: integrals by hand, derivatives by finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.kinetics import LIBRARY, PHYSICAL_MODELS, get_model

LP = math.log(2.0) / 159.528  # 177Lu, 1/h

# (name, parameters, TIA by hand)
CASES = [
    ("physical", [50.0], 50.0 / LP),  # A1/λp
    ("bi_physical", [50.0, 0.3], 50.0 * (1 / LP - 1 / 0.3)),  # A1 (1/λp − 1/λ2)
    ("mono_physical", [80.0, 0.05, 20.0], 80.0 / 0.05 + 20.0 / LP),  # A1/λ1 + A2/λp
    ("bi_washout", [60.0, 0.01, 40.0, 0.2], 60.0 / 0.01 + 40.0 / 0.2),  # A1/λ1 + A2/λ2
    ("tri_physical", [70.0, 0.03, 10.0, 1.0], 70 / 0.03 + 10 / LP - 80 / 1.0),  # A1/λ1 + A2/λp − (A1+A2)/λ3
]


@pytest.mark.parametrize(("name", "params", "tia"), CASES)
def test_integral_by_hand_and_by_quadrature(name: str, params: list[float], tia: float) -> None:
    from scipy.integrate import quad

    model = get_model(name, decay_constant_per_h=LP)
    p = np.array(params)
    assert model.integral(p) == pytest.approx(tia, rel=1e-12)
    numeric, _ = quad(lambda t: float(model.evaluate(p, np.array([t]))[0]), 0, np.inf, limit=500)
    assert numeric == pytest.approx(tia, rel=1e-6)


@pytest.mark.parametrize(("name", "params", "tia"), CASES)
def test_jacobian_and_integral_gradient_match_finite_differences(
    name: str, params: list[float], tia: float
) -> None:
    model = get_model(name, decay_constant_per_h=LP)
    p = np.array(params)
    t = np.array([1.0, 4.0, 24.0, 96.0, 168.0])
    jac = model.jacobian(p, t)
    grad = model.integral_gradient(p)
    for i in range(p.size):
        step = 1e-6 * max(abs(p[i]), 1e-3)
        up, down = p.copy(), p.copy()
        up[i] += step
        down[i] -= step
        np.testing.assert_allclose(
            jac[:, i],
            (model.evaluate(up, t) - model.evaluate(down, t)) / (2 * step),
            rtol=1e-6,
            atol=1e-6 * float(np.abs(jac).max()),
        )
        assert grad[i] == pytest.approx((model.integral(up) - model.integral(down)) / (2 * step), rel=1e-6)


def test_uptake_forms_start_at_zero() -> None:
    for name, params in (("bi_physical", [50.0, 0.3]), ("tri_physical", [70.0, 0.03, 10.0, 1.0])):
        model = get_model(name, decay_constant_per_h=LP)
        assert model.evaluate(np.array(params), np.array([0.0]))[0] == pytest.approx(0.0, abs=1e-12)


def test_terminal_phase_and_half_life() -> None:
    bi_physical = get_model("bi_physical", decay_constant_per_h=LP)
    p = np.array([50.0, 0.3])
    assert bi_physical.terminal_rate_per_h(p) == pytest.approx(LP)  # retention: physical decay only
    mono_physical = get_model("mono_physical", decay_constant_per_h=LP)
    assert mono_physical.terminal_rate_per_h(np.array([80.0, 0.05, 20.0])) == pytest.approx(LP)


def test_non_physical_forms_are_recognised() -> None:
    bi_physical = get_model("bi_physical", decay_constant_per_h=LP)
    assert "not positive" in str(bi_physical.non_physical_reason(np.array([50.0, -0.1])))
    assert "amplitude" in str(bi_physical.non_physical_reason(np.array([-50.0, 0.3])))
    assert bi_physical.non_physical_reason(np.array([50.0, 0.3])) is None


def test_library_order_and_registry() -> None:
    sizes = [get_model(name, decay_constant_per_h=LP).n_parameters for name in LIBRARY]
    assert sizes == sorted(sizes) and sizes[0] == 1 and sizes[-1] == 5
    assert set(PHYSICAL_MODELS) < set(LIBRARY)
    with pytest.raises(InputError, match="needs decay_constant_per_h"):
        get_model("bi_physical")
    with pytest.raises(InputError, match="model must be one of"):
        get_model("quad")
