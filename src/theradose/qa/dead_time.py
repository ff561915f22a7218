"""Dead-time models for count-rate losses (Knoll 2010, Radiation Detection and Measurement, §4.VII).

With true rate n and dead time τ the observed rate m is

* non-paralysable: m = n / (1 + n τ), inverted as n = m / (1 − m τ);
* paralysable: m = n · exp(−n τ), inverted on the low-rate branch as n = −W₀(−m τ) / τ
  (W₀: principal branch of the Lambert W function; defined for m τ ≤ 1/e).

For a SPECT camera the true rate is proportional to activity, n = s · A, with the sensitivity s (cps/MBq)
fitted together with τ from a decaying-source or multiple-source count-rate series (MIRD Pamphlet 26,
Ljungberg et al. 2016, J Nucl Med 57:151, §"dead time").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import FitError, InputError

DeadTimeModel = Literal["paralysable", "non-paralysable"]
FloatArray = npt.NDArray[np.float64]


def observed_rate_cps(
    true_rate_cps: FloatArray | float, dead_time_s: float, model: DeadTimeModel
) -> FloatArray:
    """Observed count rate for a true rate and dead time."""
    n = np.asarray(true_rate_cps, dtype=np.float64)
    if model == "non-paralysable":
        return n / (1.0 + n * dead_time_s)
    return n * np.exp(-n * dead_time_s)


def true_rate_cps(
    observed_rate_cps: FloatArray | float, dead_time_s: float, model: DeadTimeModel
) -> FloatArray:
    """Dead-time-corrected (true) count rate from an observed rate.

    Raises
    ------
    InputError
        When the observed rate is beyond what the model can produce (m τ ≥ 1 non-paralysable,
        m τ > 1/e paralysable).
    """
    from scipy.special import lambertw

    m = np.asarray(observed_rate_cps, dtype=np.float64)
    x = m * dead_time_s
    if model == "non-paralysable":
        if np.any(x >= 1.0):
            raise InputError("observed rate × dead time must be < 1 for the non-paralysable model")
        return m / (1.0 - x)
    if np.any(x > np.exp(-1.0)):
        raise InputError("observed rate × dead time must be <= 1/e for the paralysable model")
    corrected: FloatArray = np.real(-lambertw(-x, 0)) / dead_time_s
    return corrected


@dataclass(frozen=True)
class DeadTimeFit:
    """Fitted dead time and sensitivity with standard uncertainties."""

    model: DeadTimeModel
    dead_time_s: float
    dead_time_sigma_s: float
    sensitivity_cps_per_mbq: float
    sensitivity_sigma_cps_per_mbq: float
    residual_rms_percent: float

    def correction_factor(self, observed_rate_cps: float) -> float:
        """Factor n/m that multiplies an observed rate to give the true rate."""
        return float(true_rate_cps(observed_rate_cps, self.dead_time_s, self.model) / observed_rate_cps)


def fit_dead_time(
    activity_mbq: npt.ArrayLike, rate_cps: npt.ArrayLike, *, model: DeadTimeModel
) -> DeadTimeFit:
    """Fit sensitivity and dead time to observed count rates at known activities.

    Relative least squares (each rate weighted by 1/m, i.e. equal relative error).
    """
    from scipy.optimize import least_squares

    a = np.asarray(activity_mbq, dtype=np.float64)
    m = np.asarray(rate_cps, dtype=np.float64)
    if a.shape != m.shape or a.ndim != 1 or a.size < 3:
        raise InputError("activity_mbq and rate_cps need the same length, at least 3 points")
    if np.any(a <= 0) or np.any(m <= 0):
        raise InputError("activities and count rates must be positive")
    order = np.argsort(a)
    low = order[: max(2, a.size // 4)]
    s0 = float(np.mean(m[low] / a[low]))
    loss_max = float(np.max(1.0 - m / (s0 * a)))
    tau0 = max(loss_max, 1e-3) / float(np.max(s0 * a))

    def residual(p: FloatArray) -> FloatArray:
        return (observed_rate_cps(p[0] * a, p[1], model) - m) / m

    result = least_squares(residual, x0=[s0, tau0], bounds=([0.0, 0.0], [np.inf, np.inf]), x_scale=[s0, tau0])
    if not result.success:
        raise FitError(f"dead-time fit did not converge: {result.message}")
    dof = max(a.size - 2, 1)
    rss = float(np.sum(result.fun**2))
    jac = result.jac
    try:
        cov = np.linalg.inv(jac.T @ jac) * rss / dof
    except np.linalg.LinAlgError as exc:
        raise FitError("dead-time fit is degenerate: measure over a wider range of count rates") from exc
    s, tau = (float(v) for v in result.x)
    return DeadTimeFit(
        model=model,
        dead_time_s=tau,
        dead_time_sigma_s=float(np.sqrt(cov[1, 1])),
        sensitivity_cps_per_mbq=s,
        sensitivity_sigma_cps_per_mbq=float(np.sqrt(cov[0, 0])),
        residual_rms_percent=100.0 * float(np.sqrt(rss / a.size)),
    )
