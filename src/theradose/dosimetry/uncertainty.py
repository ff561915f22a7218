"""First-order (linear) uncertainty propagation, as recommended by the EANM Dosimetry Committee.

For a result ``y = f(x_1, ..., x_n)`` with input covariance matrix ``V``, the law of propagation of
uncertainty gives ``u²(y) = gᵀ V g`` with ``g_i = ∂f/∂x_i`` (JCGM 100:2008 GUM, eq. 13; Gear et al.
2018, EANM Dosimetry Committee guidance on uncertainty analysis, EJNMMI 45:2456, eq. 1). Covariance
terms matter in dosimetry because time-integrated activity and mass come from the same volume of
interest (Gear et al. 2018, section "Absorbed dose").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError


def covariance_matrix(
    sigmas: Sequence[float], *, correlations: Sequence[tuple[int, int, float]] = ()
) -> npt.NDArray[np.float64]:
    """Covariance matrix from standard uncertainties and pairwise correlation coefficients.

    Parameters
    ----------
    sigmas : sequence of float, shape (n,)
        Standard uncertainties (>= 0).
    correlations : sequence of (i, j, rho)
        Correlation coefficient ``rho`` in [-1, 1] between inputs ``i`` and ``j``.

    Returns
    -------
    ndarray, shape (n, n)
    """
    sigma = np.asarray(sigmas, dtype=np.float64)
    if sigma.ndim != 1 or np.any(~np.isfinite(sigma)) or np.any(sigma < 0.0):
        raise InputError(f"sigmas must be non-negative finite numbers; got {list(sigmas)!r}")
    cov = np.diag(sigma**2)
    for i, j, rho in correlations:
        if not -1.0 <= rho <= 1.0:
            raise InputError(f"correlation between inputs {i} and {j} must lie in [-1, 1]; got {rho!r}")
        cov[i, j] = cov[j, i] = rho * sigma[i] * sigma[j]
    return cov


def propagate_first_order(gradient: Sequence[float] | npt.ArrayLike, covariance: npt.ArrayLike) -> float:
    """Standard uncertainty ``sqrt(gᵀ V g)`` of a function with gradient ``g`` and input covariance ``V``.

    Parameters
    ----------
    gradient : array_like, shape (n,)
        Sensitivity coefficients ∂f/∂x_i at the estimate.
    covariance : array_like, shape (n, n)
        Symmetric covariance matrix of the inputs.

    Returns
    -------
    float
        Standard uncertainty of the result (GUM eq. 13; Gear et al. 2018 eq. 1).
    """
    g = np.asarray(gradient, dtype=np.float64)
    v = np.asarray(covariance, dtype=np.float64)
    if v.shape != (g.size, g.size):
        raise InputError(f"covariance must have shape ({g.size}, {g.size}); got {v.shape}")
    variance = float(g @ v @ g)
    if variance < 0.0:
        if variance > -1e-12 * float(np.abs(g) @ np.abs(v) @ np.abs(g)):
            return 0.0
        raise InputError("covariance is not positive semi-definite: check the correlation coefficients")
    return math.sqrt(variance)
