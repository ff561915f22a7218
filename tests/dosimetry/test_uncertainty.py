"""First-order propagation (GUM eq. 13) against closed forms and sampling."""

from __future__ import annotations

import numpy as np
import pytest

from theradose.dosimetry.uncertainty import covariance_matrix, propagate_first_order
from theradose.errors import InputError


def test_linear_function_exact(rng: np.random.Generator) -> None:
    """For a linear function first order is exact: compare with the sample std of 200k draws."""
    gradient = np.array([2.0, -1.0, 0.5])
    cov = covariance_matrix([1.0, 2.0, 3.0], correlations=[(0, 1, 0.5), (1, 2, -0.2)])
    sigma = propagate_first_order(gradient, cov)
    samples = rng.multivariate_normal(np.zeros(3), cov, size=200_000) @ gradient
    assert sigma == pytest.approx(samples.std(), rel=0.01)
    # by hand: 4·1 + 1·4 + 0.25·9 + 2·2·(−1)·(0.5·1·2) + 2·(−1)·0.5·(−0.2·2·3)
    assert sigma**2 == pytest.approx(4 + 4 + 2.25 - 4 + 1.2)


def test_errors() -> None:
    with pytest.raises(InputError, match="correlation"):
        covariance_matrix([1.0, 1.0], correlations=[(0, 1, 1.5)])
    with pytest.raises(InputError, match="sigmas"):
        covariance_matrix([-1.0])
    with pytest.raises(InputError, match="shape"):
        propagate_first_order([1.0, 2.0], np.eye(3))
