"""Dead-time models against hand calculations (Knoll 2010, §4.VII)."""

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.qa.dead_time import fit_dead_time, observed_rate_cps, true_rate_cps


def test_hand_calculation() -> None:
    """n = 1e5 cps, τ = 1 µs (Knoll 2010, eqs. 4.23 and 4.24):
    non-paralysable m = 1e5/1.1 = 90909.09; paralysable m = 1e5·e^−0.1 = 90483.74."""
    assert float(observed_rate_cps(1e5, 1e-6, "non-paralysable")) == pytest.approx(90909.0909, rel=1e-9)
    assert float(observed_rate_cps(1e5, 1e-6, "paralysable")) == pytest.approx(90483.7418, rel=1e-9)


@pytest.mark.parametrize("model", ["paralysable", "non-paralysable"])
def test_correction_inverts_model(model: str) -> None:
    n = np.array([1e3, 5e4, 2e5])
    m = observed_rate_cps(n, 2e-6, model)  # type: ignore[arg-type]
    np.testing.assert_allclose(true_rate_cps(m, 2e-6, model), n, rtol=1e-10)  # type: ignore[arg-type]


def test_paralysable_beyond_maximum_rejected() -> None:
    with pytest.raises(InputError, match="1/e"):
        true_rate_cps(4e5, 1e-6, "paralysable")


@pytest.mark.parametrize("model", ["paralysable", "non-paralysable"])
def test_fit_recovers_known_parameters(model: str, rng: np.random.Generator) -> None:
    activity = np.geomspace(50.0, 20000.0, 12)
    tau, s = 3e-6, 9.0
    m = observed_rate_cps(s * activity, tau, model) * (1.0 + rng.normal(0, 0.002, activity.size))  # type: ignore[arg-type]
    fit = fit_dead_time(activity, m, model=model)  # type: ignore[arg-type]
    assert fit.dead_time_s == pytest.approx(tau, rel=0.05)
    assert fit.sensitivity_cps_per_mbq == pytest.approx(s, rel=0.01)
    assert abs(fit.dead_time_s - tau) < 4 * fit.dead_time_sigma_s
