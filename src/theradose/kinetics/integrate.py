"""Time-integrated activity (TIA) from 0 to ∞, analytic for exponentials and by trapezoids for data.

References
----------
Bolch WE et al. MIRD Pamphlet No. 21. J Nucl Med 2009;50:477-484 (time-integrated activity
:math:`\\tilde A = \\int_0^\\infty A(t)\\,dt`; for :math:`A_1 e^{-\\lambda t}` it is :math:`A_1/\\lambda`).
Siegel JA et al. MIRD Pamphlet No. 16. J Nucl Med 1999;40:37S-61S (trapezoidal integration of
measured points with an exponential extrapolation beyond the last point, by physical decay when no
further clearance is assumed).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError
from theradose.kinetics.models import BiExponential, MonoExponential, TriExponential
from theradose.kinetics.tac import TimeActivityCurve

FloatArray = npt.NDArray[np.float64]


def _positive(value: float, name: str) -> float:
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a positive finite number; got {value}: give a positive value")
    return float(value)


def integrate_mono_exp(a1_mbq: float, lambda1_per_h: float) -> float:
    """TIA of :math:`A_1 e^{-\\lambda_1 t}` from 0 to ∞: :math:`A_1/\\lambda_1` (MBq·h).

    Parameters
    ----------
    a1_mbq : float
        Activity at t = 0, MBq.
    lambda1_per_h : float
        Effective rate constant, 1/h (> 0).
    """
    rate = _positive(lambda1_per_h, "lambda1_per_h")
    return MonoExponential().integral(np.array([a1_mbq, rate]))


def integrate_bi_exp(a1_mbq: float, lambda1_per_h: float, lambda2_per_h: float) -> float:
    """TIA of :math:`A_1 (e^{-\\lambda_1 t} - e^{-\\lambda_2 t})`: :math:`A_1 (1/\\lambda_1 - 1/\\lambda_2)`.

    Parameters
    ----------
    a1_mbq : float
        Amplitude, MBq.
    lambda1_per_h, lambda2_per_h : float
        Washout and uptake rate constants, 1/h (> 0).
    """
    l1 = _positive(lambda1_per_h, "lambda1_per_h")
    l2 = _positive(lambda2_per_h, "lambda2_per_h")
    return BiExponential().integral(np.array([a1_mbq, l1, l2]))


def integrate_tri_exp(
    a1_mbq: float, lambda1_per_h: float, a2_mbq: float, lambda2_per_h: float, lambda3_per_h: float
) -> float:
    """TIA of :math:`A_1 e^{-\\lambda_1 t} + A_2 e^{-\\lambda_2 t} - (A_1+A_2) e^{-\\lambda_3 t}`.

    Equal to :math:`A_1/\\lambda_1 + A_2/\\lambda_2 - (A_1 + A_2)/\\lambda_3` (MBq·h); rates in 1/h (> 0).
    """
    l1 = _positive(lambda1_per_h, "lambda1_per_h")
    l2 = _positive(lambda2_per_h, "lambda2_per_h")
    l3 = _positive(lambda3_per_h, "lambda3_per_h")
    return TriExponential().integral(np.array([a1_mbq, l1, a2_mbq, l2, l3]))


def trapezoid_weights(time_h: npt.ArrayLike, *, tail_decay_constant_per_h: float) -> FloatArray:
    """Weights :math:`w_i` (h) with :math:`\\tilde A = \\sum_i w_i A_i` for :func:`integrate_trapezoid`.

    Because the trapezoidal TIA with a fixed tail rate is linear in the activities, these weights are
    also its gradient, used to propagate per-point uncertainties:
    :math:`\\sigma_{\\tilde A}^2 = \\sum_i w_i^2 \\sigma_i^2`.

    Parameters
    ----------
    time_h : array_like, shape (n,)
        Measurement times, h (non-negative, strictly increasing).
    tail_decay_constant_per_h : float
        Rate constant of the exponential extrapolation after the last point, 1/h (> 0).

    Returns
    -------
    ndarray, shape (n,)
    """
    rate = _positive(tail_decay_constant_per_h, "tail_decay_constant_per_h")
    t = TimeActivityCurve(np.asarray(time_h, dtype=np.float64), np.zeros(np.size(time_h))).time_h
    weights = np.zeros(t.size)
    # Linear rise from A(0) = 0 to the first measurement.
    weights[0] += t[0] / 2.0
    steps = np.diff(t)
    weights[:-1] += steps / 2.0
    weights[1:] += steps / 2.0
    weights[-1] += 1.0 / rate
    return weights


def integrate_trapezoid(
    time_h: npt.ArrayLike, activity_mbq: npt.ArrayLike, *, tail_decay_constant_per_h: float
) -> float:
    """TIA from measured points by trapezoids plus an exponential tail (MIRD Pamphlet 16).

    :math:`\\tilde A = A_0 t_0/2 + \\sum_{i} (A_i + A_{i+1})(t_{i+1} - t_i)/2 + A_{n-1}/\\lambda_{tail}`:
    a linear rise from zero activity at administration to the first point, trapezoids between points,
    and :math:`A(t) = A_{n-1} e^{-\\lambda_{tail}(t - t_{n-1})}` after the last point.

    Parameters
    ----------
    time_h : array_like, shape (n,)
        Measurement times, h.
    activity_mbq : array_like, shape (n,)
        Activities, MBq.
    tail_decay_constant_per_h : float
        Tail rate constant, 1/h: the nuclide's physical decay constant (no biological clearance after
        the last point) or a rate fitted to the last points.

    Returns
    -------
    float
        TIA, MBq·h.
    """
    tac = TimeActivityCurve(np.asarray(time_h, dtype=np.float64), np.asarray(activity_mbq, dtype=np.float64))
    weights = trapezoid_weights(tac.time_h, tail_decay_constant_per_h=tail_decay_constant_per_h)
    return float(weights @ tac.activity_mbq)


def evaluate_trapezoid(
    time_h: npt.ArrayLike,
    activity_mbq: npt.ArrayLike,
    at_time_h: npt.ArrayLike,
    *,
    tail_decay_constant_per_h: float,
) -> FloatArray:
    """The curve integrated by :func:`integrate_trapezoid`, evaluated at ``at_time_h`` (h), in MBq."""
    tac = TimeActivityCurve(np.asarray(time_h, dtype=np.float64), np.asarray(activity_mbq, dtype=np.float64))
    rate = _positive(tail_decay_constant_per_h, "tail_decay_constant_per_h")
    query = np.asarray(at_time_h, dtype=np.float64)
    knots_t = np.concatenate(([0.0], tac.time_h)) if tac.time_h[0] > 0 else tac.time_h
    knots_a = np.concatenate(([0.0], tac.activity_mbq)) if tac.time_h[0] > 0 else tac.activity_mbq
    inside = np.interp(query, knots_t, knots_a)
    t_last = tac.time_h[-1]
    tail = tac.activity_mbq[-1] * np.exp(-rate * np.maximum(query - t_last, 0.0))
    result: FloatArray = np.where(query > t_last, tail, inside)
    return result
