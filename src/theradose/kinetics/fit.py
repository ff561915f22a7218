"""Weighted least-squares fits of time–activity curves, AICc model selection and TIA uncertainty.

Method
------
* Each exponential model (:mod:`theradose.kinetics.models`) is fitted by weighted least squares. The
  model is linear in its amplitudes, so these are solved in closed form for given rate constants and
  only the rates are optimised (variable projection, Golub GH, Pereyra V. SIAM J Numer Anal
  1973;10:413), by Levenberg–Marquardt (MINPACK via ``scipy.optimize.leastsq``); if that fails, the full
  problem is solved with the analytic Jacobian. Starting points derived from the data are tried in
  order of their initial cost until one converges. Residuals are :math:`(A_i - f(t_i))/\\sigma_i` when
  per-point standard uncertainties are given and :math:`A_i - f(t_i)` otherwise.
* Covariance of the parameters: :math:`C = (J^T J)^{-1}` of the weighted Jacobian when the
  :math:`\\sigma_i` are known absolute uncertainties; without them the residual variance is estimated,
  :math:`C = s^2 (J^T J)^{-1}` with :math:`s^2 = RSS/(N - P)`.
* TIA uncertainty by the delta method (first-order propagation, JCGM 100:2008 (GUM) §5.1.2):
  :math:`\\sigma_{\\tilde A}^2 = g^T C g` with :math:`g = \\partial \\tilde A/\\partial p` analytic.
* Model selection by the corrected Akaike information criterion with Akaike weights as in NUKFIT
  (Kletting P et al. "Molecular radiotherapy: the NUKFIT software for calculating the time-integrated
  activity coefficient", Med Phys 2013;40:102504; Glatting G et al. "Choosing the optimal fit function:
  comparison of the Akaike information criterion and the F-test", Med Phys 2007;34:4285). The
  likelihood term follows the noise model (Burnham KP, Anderson DR. Model Selection and Multimodel
  Inference, 2nd ed. 2002, ch. 2):
  with known per-point uncertainties :math:`AICc = \\chi^2 + 2K + 2K(K+1)/(N-K-1)`, :math:`K = P`;
  without them :math:`AICc = N \\ln(RSS/N) + 2K + 2K(K+1)/(N-K-1)`, :math:`K = P + 1` (the residual
  variance is estimated too). Akaike weights
  :math:`w_i = e^{-\\Delta_i/2} / \\sum_j e^{-\\Delta_j/2}`, :math:`\\Delta_i = AICc_i - \\min AICc`
  (Burnham & Anderson 2002, ch. 2). AICc is defined only for :math:`N > K + 1`.
* Non-physical fits are rejected with a :class:`~theradose.errors.FitError` stating why, never patched:
  a rate constant that is not positive (growing or flat tail, infinite TIA), a negative terminal
  amplitude or TIA, and — when the nuclide's physical decay constant is given — an effective terminal
  rate significantly (more than :data:`PHYSICAL_BOUND_COVERAGE_FACTOR` standard uncertainties) slower
  than physical decay, which would mean negative biological clearance. A terminal rate slower than
  physical decay but within that coverage interval is kept and reported in ``FitResult.notes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import FitError, InputError
from theradose.kinetics.integrate import evaluate_trapezoid, trapezoid_weights
from theradose.kinetics.models import MODELS, ExponentialModel, ExponentialModelName, ModelName
from theradose.kinetics.tac import TimeActivityCurve

FloatArray = npt.NDArray[np.float64]

ModelChoice = Literal["auto", "mono", "bi", "tri", "trapezoid"]
TrapezoidTail = Literal["physical", "fitted"]

#: Coverage factor (GUM k = 2, about 95 %) within which an effective terminal rate slower than the
#: physical decay constant is still accepted as consistent with no biological clearance.
PHYSICAL_BOUND_COVERAGE_FACTOR = 2.0

#: Candidate models of automatic selection, in order of increasing complexity.
AUTO_CANDIDATES: tuple[ExponentialModelName, ...] = ("mono", "bi", "tri")

_LN2 = math.log(2.0)

_EPS = float(np.finfo(np.float64).eps)

#: MINPACK status codes of a converged run.
_CONVERGED = (1, 2, 3, 4)

#: Residual returned for rates at which the amplitudes cannot be solved (singular basis).
_LARGE_RESIDUAL = 1e150

#: Relative tolerance on the sum of squares and on the parameters for Levenberg-Marquardt.
_TOLERANCE = 1.49012e-08


@dataclass(frozen=True)
class Candidate:
    """One model considered in a fit.

    Attributes
    ----------
    model : str
        Model name.
    aicc : float or None
        Corrected Akaike information criterion; ``None`` if undefined or the fit was rejected.
    weight : float
        Akaike weight (0 for rejected or undefined candidates; the weights of a selection sum to 1).
    rejected_reason : str or None
        Why the candidate was not usable, if it was not.
    """

    model: str
    aicc: float | None
    weight: float
    rejected_reason: str | None = None


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted time–activity curve and its time-integrated activity.

    Attributes
    ----------
    model : {"mono", "bi", "tri", "trapezoid"}
        The model used (the AICc-selected one in automatic mode).
    parameters : Mapping[str, float]
        Fitted parameters by name (amplitudes in MBq, rate constants in 1/h); for ``trapezoid`` the tail
        rate constant.
    tia_mbq_h : float
        Time-integrated activity from 0 to ∞, MBq·h.
    tia_sigma_mbq_h : float or None
        Standard uncertainty of the TIA, MBq·h; ``None`` when it cannot be estimated (e.g. as many points
        as parameters and no per-point uncertainties).
    effective_half_life_h : float or None
        ln 2 over the terminal rate constant, h; ``None`` when the terminal phase is not measured
        (trapezoid with a physical-decay tail).
    candidates : tuple of Candidate
        All models considered, with AICc and Akaike weight.
    covariance : ndarray, shape (P, P), or None
        Covariance of the parameters in the order of ``parameters``.
    parameter_sigmas : Mapping[str, float] or None
        Standard uncertainties of the parameters.
    aicc : float or None
        AICc of the chosen model.
    weighted_rss : float
        Sum of squared (weighted) residuals of the chosen model.
    tac : TimeActivityCurve
        The data fitted.
    decay_constant_per_h : float or None
        Physical decay constant used as bound or tail, 1/h.
    notes : tuple of str
        Remarks on the fit (e.g. a terminal rate close to physical decay).
    """

    model: ModelName
    parameters: Mapping[str, float]
    tia_mbq_h: float
    tia_sigma_mbq_h: float | None
    effective_half_life_h: float | None
    candidates: tuple[Candidate, ...]
    covariance: FloatArray | None
    parameter_sigmas: Mapping[str, float] | None
    aicc: float | None
    weighted_rss: float
    tac: TimeActivityCurve
    decay_constant_per_h: float | None = None
    notes: tuple[str, ...] = field(default=())

    def evaluate(self, time_h: npt.ArrayLike) -> FloatArray:
        """Fitted activity (MBq) at ``time_h`` (h, any shape)."""
        t = np.asarray(time_h, dtype=np.float64)
        if self.model == "trapezoid":
            return evaluate_trapezoid(
                self.tac.time_h,
                self.tac.activity_mbq,
                t,
                tail_decay_constant_per_h=self.parameters["tail_decay_constant_per_h"],
            )
        model = MODELS[self.model]
        params = np.array([self.parameters[name] for name in model.parameter_names])
        return model.evaluate(params, t)


def aicc_parameter_count(n_parameters: int, *, variance_known: bool) -> int:
    """K of AICc: the fitted parameters, plus one when the residual variance is estimated."""
    return n_parameters if variance_known else n_parameters + 1


def aicc(weighted_rss: float, n_points: int, n_parameters: int, *, variance_known: bool) -> float:
    """Corrected Akaike information criterion of a least-squares fit (Burnham & Anderson 2002).

    With known absolute uncertainties (``variance_known``; ``weighted_rss`` is then χ²):
    :math:`AICc = \\chi^2 + 2K + 2K(K+1)/(N-K-1)` with :math:`K = P` (−2 ln L of a Gaussian likelihood
    with known variances, up to a constant common to all models).
    Otherwise (the residual variance is estimated by :math:`WRSS/N`):
    :math:`AICc = N \\ln(WRSS/N) + 2K + 2K(K+1)/(N-K-1)` with :math:`K = P + 1`
    (Burnham & Anderson 2002, ch. 2; the least-squares form used for time–activity curves by Glatting
    et al. 2007).

    Parameters
    ----------
    weighted_rss : float
        Sum of squared (weighted) residuals (χ² when ``variance_known``); must be > 0 otherwise.
    n_points : int
        Number of data points N.
    n_parameters : int
        Number of fitted model parameters P.
    variance_known : bool
        Whether the residuals were weighted by known absolute standard uncertainties.

    Raises
    ------
    InputError
        If :math:`N \\le K + 1` (AICc undefined) or ``weighted_rss`` is out of range.
    """
    k = aicc_parameter_count(n_parameters, variance_known=variance_known)
    if n_points - k - 1 <= 0:
        raise InputError(
            f"AICc is undefined for n_points={n_points} and {n_parameters} parameters (needs n_points > "
            f"{k + 1}): add time points or choose the model explicitly"
        )
    penalty = 2 * k + 2 * k * (k + 1) / (n_points - k - 1)
    if variance_known:
        if not weighted_rss >= 0:
            raise InputError(f"weighted_rss must be >= 0; got {weighted_rss}: pass the chi-square of the fit")
        return float(weighted_rss + penalty)
    if not weighted_rss > 0:
        raise InputError(f"weighted_rss must be > 0; got {weighted_rss}: AICc needs a non-zero residual")
    return float(n_points * math.log(weighted_rss / n_points) + penalty)


def akaike_weights(aicc_values: Sequence[float]) -> FloatArray:
    """Akaike weights :math:`w_i = e^{-\\Delta_i/2}/\\sum_j e^{-\\Delta_j/2}` (Burnham & Anderson 2002)."""
    values = np.asarray(aicc_values, dtype=np.float64)
    if values.size == 0:
        raise InputError("aicc_values is empty: give at least one AICc value")
    relative = np.exp(-(values - values.min()) / 2.0)
    result: FloatArray = relative / relative.sum()
    return result


@dataclass(frozen=True, eq=False)
class _ParametricFit:
    params: FloatArray
    covariance: FloatArray | None
    weighted_rss: float


def _weights(tac: TimeActivityCurve) -> FloatArray:
    if tac.sigma_mbq is None:
        return np.ones(tac.n_points)
    result: FloatArray = 1.0 / tac.sigma_mbq
    return result


def _solve_amplitudes(basis: FloatArray, w2: FloatArray, y: FloatArray) -> FloatArray:
    """Weighted linear least squares for 1 or 2 amplitudes (normal equations in closed form)."""
    weighted = basis * w2[:, None]
    gram = weighted.T @ basis
    rhs = weighted.T @ y
    if basis.shape[1] == 1:
        single: FloatArray = rhs / gram[0]
        return single
    determinant = gram[0, 0] * gram[1, 1] - gram[0, 1] * gram[1, 0]
    return np.array(
        [
            (gram[1, 1] * rhs[0] - gram[0, 1] * rhs[1]) / determinant,
            (gram[0, 0] * rhs[1] - gram[1, 0] * rhs[0]) / determinant,
        ]
    )


def _linear_amplitudes(basis: FloatArray, tac: TimeActivityCurve) -> FloatArray:
    """Weighted linear least-squares amplitudes for fixed rates."""
    with np.errstate(all="ignore"):
        return _solve_amplitudes(basis, _weights(tac) ** 2, tac.activity_mbq)


def _tail_rate_guess(tac: TimeActivityCurve) -> float:
    """Log-linear slope of the points from the maximum on (a starting value only)."""
    peak = int(np.argmax(tac.activity_mbq))
    t = tac.time_h[peak:]
    a = tac.activity_mbq[peak:]
    keep = a > 0
    t, a = t[keep], a[keep]
    if t.size >= 2:
        dt = t - t.mean()
        slope = float(dt @ np.log(a) / (dt @ dt))
        if slope < 0 and math.isfinite(slope):
            return -slope
    span = float(tac.time_h[-1]) if tac.time_h[-1] > 0 else 1.0
    return _LN2 / span


def _starts(model: ExponentialModel, tac: TimeActivityCurve, previous: FloatArray | None) -> list[FloatArray]:
    t = tac.time_h
    l1 = _tail_rate_guess(tac)
    peak_time = float(t[int(np.argmax(tac.activity_mbq))])
    if model.name == "mono":
        (a1,) = _linear_amplitudes(np.exp(-l1 * t)[:, None], tac)
        return [np.array([a1, l1])]
    if model.name == "bi":
        uptake = [3.0 * l1, 10.0 * l1, 100.0 * l1]
        if peak_time > 0:
            uptake.append(max(3.0 / peak_time, 1.5 * l1))
        starts = []
        for l2 in uptake:
            (a1,) = _linear_amplitudes((np.exp(-l1 * t) - np.exp(-l2 * t))[:, None], tac)
            starts.append(np.array([a1, l1, l2]))
        return starts
    # tri: start from the bi-exponential solution when known.
    if previous is not None and previous[1] > 0 and previous[2] > previous[1]:
        slow, fast = float(previous[1]), float(previous[2])
    else:
        slow, fast = l1, 10.0 * l1
    starts = []
    for l2, l3 in (
        (math.sqrt(slow * fast), 1.5 * fast),
        (3.0 * slow, fast),
        (fast, 5.0 * fast),
    ):
        e3 = np.exp(-l3 * t)
        basis = np.column_stack((np.exp(-slow * t) - e3, np.exp(-l2 * t) - e3))
        a1, a2 = _linear_amplitudes(basis, tac)
        starts.append(np.array([a1, slow, a2, l2, l3]))
    return starts


def _covariance(jac_weighted: FloatArray) -> FloatArray | None:
    _, singular, vt = np.linalg.svd(jac_weighted, full_matrices=False)
    if singular.size == 0 or not singular[0] > 0:
        return None
    threshold = _EPS * max(jac_weighted.shape) * singular[0]
    if np.any(singular <= threshold):
        return None
    result: FloatArray = (vt.T / singular**2) @ vt
    return result


def _fit_parametric(
    model: ExponentialModel, tac: TimeActivityCurve, previous: FloatArray | None = None
) -> _ParametricFit:
    from scipy.optimize import leastsq

    t = tac.time_h
    y = tac.activity_mbq
    w = _weights(tac)

    def residuals(p: FloatArray) -> FloatArray:
        result: FloatArray = (y - model.evaluate(p, t)) * w
        return result

    def jacobian(p: FloatArray) -> FloatArray:
        result: FloatArray = -model.jacobian(p, t) * w[:, None]
        return result

    # Starting points in order of their initial cost; Levenberg-Marquardt runs from the best one and
    # falls back to the next only when a run does not converge.
    starts = [x0 for x0 in _starts(model, tac, previous) if np.isfinite(x0).all()]
    ranked: list[tuple[float, int, FloatArray]] = [(0.0, 0, x0) for x0 in starts]
    if len(starts) > 1:
        with np.errstate(all="ignore"):
            costs = [float(r @ r) for r in (residuals(x0) for x0 in starts)]
        ranked = [(c, i, x0) for i, (c, x0) in enumerate(zip(costs, starts, strict=True)) if math.isfinite(c)]
        ranked.sort(key=lambda item: (item[0], item[1]))
    rate_indices = list(model.rate_indices)

    w2 = w * w
    large = np.full(y.size, _LARGE_RESIDUAL)

    def projected_residuals(rates: FloatArray) -> FloatArray:
        # Variable projection (Golub & Pereyra 1973): amplitudes solved linearly for given rates.
        # Called inside np.errstate(all="ignore") below; a singular basis gives non-finite values.
        basis = model.basis(rates, t)
        if basis.shape[1] == 1:
            column = basis[:, 0]
            weighted = column * w2
            result: FloatArray = (y - column * (float(weighted @ y) / float(weighted @ column))) * w
        else:
            result = (y - basis @ _solve_amplitudes(basis, w2, y)) * w
        return result if math.isfinite(float(result @ result)) else large

    best: FloatArray | None = None
    for _, _, x0 in ranked:
        # Separable least squares over the rates (well conditioned, few iterations): its minimum is a
        # minimum of the full problem. If it fails, full Levenberg-Marquardt (MINPACK lmder with the
        # analytic Jacobian) from the start. Exponentials are clipped in the models so growing trial
        # curves stay finite.
        x = None
        with np.errstate(all="ignore"):
            rates, _, _, _, status = leastsq(
                projected_residuals, x0[rate_indices], full_output=True, ftol=_TOLERANCE, xtol=_TOLERANCE
            )
            if status in _CONVERGED and np.all(np.isfinite(rates)):
                amplitudes = _linear_amplitudes(model.basis(rates, t), tac)
                if np.all(np.isfinite(amplitudes)):
                    x = model.assemble(amplitudes, rates)
            if x is None:
                x, _, _, _, status = leastsq(
                    residuals, x0, Dfun=jacobian, full_output=True, ftol=_TOLERANCE, xtol=_TOLERANCE
                )
        if status in _CONVERGED and np.isfinite(x).all():
            best = np.asarray(x, dtype=np.float64)
            break
    wrss = math.inf
    if best is not None:
        params = model.canonical(best)
        with np.errstate(all="ignore"):
            final = residuals(params)
            wrss = float(final @ final)
    if best is None or not math.isfinite(wrss):
        raise FitError(f"the {model.name}-exponential fit did not converge from any starting point")
    covariance = _covariance(-jacobian(params))
    n, p = tac.n_points, model.n_parameters
    if covariance is not None and tac.sigma_mbq is None:
        covariance = covariance * (wrss / (n - p)) if n > p else None
    return _ParametricFit(params=params, covariance=covariance, weighted_rss=wrss)


def _check_physical_bound(
    model_name: str,
    terminal_rate_per_h: float,
    terminal_sigma_per_h: float | None,
    decay_constant_per_h: float | None,
) -> tuple[str | None, str | None]:
    """(reason to reject, note) for a terminal rate compared with physical decay."""
    if decay_constant_per_h is None or terminal_rate_per_h >= decay_constant_per_h:
        return None, None
    effective_h = _LN2 / terminal_rate_per_h
    physical_h = _LN2 / decay_constant_per_h
    within = (
        terminal_sigma_per_h is not None
        and decay_constant_per_h - terminal_rate_per_h
        <= PHYSICAL_BOUND_COVERAGE_FACTOR * terminal_sigma_per_h
    )
    if within:
        return None, (
            f"{model_name}: effective half-life {effective_h:.4g} h exceeds the physical half-life "
            f"{physical_h:.4g} h but lies within {PHYSICAL_BOUND_COVERAGE_FACTOR:g} standard uncertainties: "
            "consistent with no biological clearance"
        )
    return (
        f"effective half-life {effective_h:.4g} h is longer than the physical half-life {physical_h:.4g} h "
        "(negative biological clearance): check decay correction and time zero, or use the trapezoid "
        "model with a physical-decay tail",
        None,
    )


@dataclass(frozen=True, eq=False)
class _Accepted:
    fit: _ParametricFit
    notes: tuple[str, ...]


def _accept(model: ExponentialModel, fit: _ParametricFit, decay_constant_per_h: float | None) -> _Accepted:
    """Raise FitError if the fit is non-physical; otherwise return it with any notes."""
    reason = model.non_physical_reason(fit.params)
    if reason is None and not math.isfinite(model.integral(fit.params)):
        reason = "the time-integrated activity is not finite"
    if reason is None and not model.integral(fit.params) > 0:
        reason = f"time-integrated activity {model.integral(fit.params):.4g} MBq·h is not positive"
    note = None
    if reason is None:
        index = model.terminal_rate_index(fit.params)
        sigma = None
        if fit.covariance is not None and fit.covariance[index, index] >= 0:
            sigma = math.sqrt(float(fit.covariance[index, index]))
        reason, note = _check_physical_bound(
            model.name, float(fit.params[index]), sigma, decay_constant_per_h
        )
    if reason is not None:
        raise FitError(f"{model.name}-exponential fit rejected: {reason}")
    return _Accepted(fit=fit, notes=() if note is None else (note,))


def _result_from_parametric(
    model: ExponentialModel,
    accepted: _Accepted,
    tac: TimeActivityCurve,
    candidates: tuple[Candidate, ...],
    aicc_value: float | None,
    decay_constant_per_h: float | None,
    notes: tuple[str, ...],
) -> FitResult:
    fit = accepted.fit
    tia = model.integral(fit.params)
    tia_sigma = None
    sigmas = None
    if fit.covariance is not None:
        gradient = model.integral_gradient(fit.params)
        variance = float(gradient @ fit.covariance @ gradient)
        tia_sigma = math.sqrt(variance) if variance >= 0 else None
        diagonal = np.diag(fit.covariance)
        sigmas = {
            name: math.sqrt(float(v)) if v >= 0 else math.nan
            for name, v in zip(model.parameter_names, diagonal, strict=True)
        }
    return FitResult(
        model=model.name,
        parameters=model.parameter_dict(fit.params),
        tia_mbq_h=tia,
        tia_sigma_mbq_h=tia_sigma,
        effective_half_life_h=_LN2 / model.terminal_rate_per_h(fit.params),
        candidates=candidates,
        covariance=fit.covariance,
        parameter_sigmas=sigmas,
        aicc=aicc_value,
        weighted_rss=fit.weighted_rss,
        tac=tac,
        decay_constant_per_h=decay_constant_per_h,
        notes=notes,
    )


def _aicc_or_none(fit: _ParametricFit, tac: TimeActivityCurve, n_parameters: int) -> float | None:
    n_points = tac.n_points
    known = tac.sigma_mbq is not None
    if n_points - aicc_parameter_count(n_parameters, variance_known=known) - 1 <= 0:
        return None
    if known:
        return aicc(fit.weighted_rss, n_points, n_parameters, variance_known=True)
    # An exact fit (zero residual) would give -inf; floor RSS at the round-off level of the data so that
    # exact fits tie on the likelihood term and the parameter penalty decides.
    scale = float(np.max(np.abs(tac.activity_mbq)))
    floor = n_points * (np.finfo(np.float64).eps * max(scale, 1.0)) ** 2
    return aicc(max(fit.weighted_rss, floor), n_points, n_parameters, variance_known=False)


def _fit_trapezoid(
    tac: TimeActivityCurve, decay_constant_per_h: float | None, tail: TrapezoidTail | None
) -> FitResult:
    if tail is None:
        tail = "physical" if decay_constant_per_h is not None else "fitted"
    t, a = tac.time_h, tac.activity_mbq
    notes: list[str] = []
    if tail == "physical":
        if decay_constant_per_h is None:
            raise InputError(
                "the trapezoid model with a physical-decay tail needs decay_constant_per_h: give the nuclide "
                "(--nuclide) or use the fitted tail"
            )
        rate = decay_constant_per_h
        weights = trapezoid_weights(t, tail_decay_constant_per_h=rate)
        gradient = weights
        half_life = None
    else:
        if tac.n_points < 2:
            raise InputError(
                f"the trapezoid model with a fitted tail needs at least 2 points; got {tac.n_points}: "
                "add a time point or give the nuclide for a physical-decay tail"
            )
        step = float(t[-1] - t[-2])
        if not (a[-1] > 0 and a[-2] > 0):
            raise FitError(
                f"trapezoid tail cannot be fitted: the last two activities are {a[-2]:.4g} and "
                f"{a[-1]:.4g} MBq (need both > 0): use the physical-decay tail"
            )
        rate = math.log(float(a[-2] / a[-1])) / step
        if not rate > 0:
            raise FitError(
                f"trapezoid fit rejected: activity does not decrease between the last two points "
                f"({a[-2]:.4g} MBq at {t[-2]:g} h, {a[-1]:.4g} MBq at {t[-1]:g} h), the tail would grow: "
                "add a later time point or use the physical-decay tail"
            )
        rate_sigma = None
        if tac.sigma_mbq is not None:
            s = tac.sigma_mbq
            rate_sigma = math.hypot(float(s[-1] / a[-1]), float(s[-2] / a[-2])) / step
        reason, note = _check_physical_bound("trapezoid", rate, rate_sigma, decay_constant_per_h)
        if reason is not None:
            raise FitError(f"trapezoid fit rejected: tail {reason}")
        if note is not None:
            notes.append(note)
        weights = trapezoid_weights(t, tail_decay_constant_per_h=rate)
        gradient = weights.copy()
        tail_value = float(a[-1]) / rate
        # d(A_n/λ)/dA_n and d(A_n/λ)/dA_{n-1} through λ = ln(A_{n-1}/A_n)/Δt.
        gradient[-1] += tail_value / (rate * step * float(a[-1]))
        gradient[-2] -= tail_value / (rate * step * float(a[-2]))
        half_life = _LN2 / rate
    tia = float(weights @ a)
    tia_sigma = None
    if tac.sigma_mbq is not None:
        tia_sigma = float(np.sqrt(np.sum((gradient * tac.sigma_mbq) ** 2)))
    else:
        notes.append("no per-point uncertainties given: the trapezoid TIA uncertainty is undefined")
    return FitResult(
        model="trapezoid",
        parameters={"tail_decay_constant_per_h": float(rate)},
        tia_mbq_h=tia,
        tia_sigma_mbq_h=tia_sigma,
        effective_half_life_h=half_life,
        candidates=(Candidate(model="trapezoid", aicc=None, weight=1.0),),
        covariance=None,
        parameter_sigmas=None,
        aicc=None,
        weighted_rss=0.0,
        tac=tac,
        decay_constant_per_h=decay_constant_per_h,
        notes=tuple(notes),
    )


def _check_decay_constant(decay_constant_per_h: float | None) -> float | None:
    if decay_constant_per_h is None:
        return None
    value = float(decay_constant_per_h)
    if not (math.isfinite(value) and value > 0):
        raise InputError(
            f"decay_constant_per_h must be a positive finite number; got {decay_constant_per_h}: "
            "give ln 2 / physical half-life in 1/h"
        )
    return value


def fit_tac(
    time_h: npt.ArrayLike,
    activity_mbq: npt.ArrayLike,
    sigma_mbq: npt.ArrayLike | None = None,
    *,
    model: ModelChoice = "auto",
    decay_constant_per_h: float | None = None,
    trapezoid_tail: TrapezoidTail | None = None,
) -> FitResult:
    """Fit a time–activity curve and integrate it from 0 to ∞.

    Parameters
    ----------
    time_h : array_like, shape (n,)
        Times after administration, h (non-negative, strictly increasing).
    activity_mbq : array_like, shape (n,)
        Measured activities (not decay-corrected), MBq.
    sigma_mbq : array_like, shape (n,), optional
        Standard uncertainties of the activities, MBq. Without them the fit is unweighted and the
        residual variance is estimated from the scatter.
    model : {"auto", "mono", "bi", "tri", "trapezoid"}
        ``"auto"`` fits mono-, bi- and tri-exponential models and selects the lowest AICc (Kletting et al.
        2013); candidates whose AICc is undefined for the number of points, or whose fit is non-physical,
        get weight 0 and a reason.
    decay_constant_per_h : float, optional
        Physical decay constant of the nuclide, 1/h: the bound for the effective terminal rate and the
        tail of the trapezoid model.
    trapezoid_tail : {"physical", "fitted"}, optional
        Tail of the trapezoid model: physical decay (default when ``decay_constant_per_h`` is given) or a
        mono-exponential through the last two points.

    Returns
    -------
    FitResult

    Raises
    ------
    InputError
        Invalid data, or fewer points than the parameters of the requested model.
    FitError
        The fit is non-physical (explained in the message) or no candidate model is usable.
    """
    tac = TimeActivityCurve(
        np.asarray(time_h, dtype=np.float64),
        np.asarray(activity_mbq, dtype=np.float64),
        None if sigma_mbq is None else np.asarray(sigma_mbq, dtype=np.float64),
    )
    decay = _check_decay_constant(decay_constant_per_h)
    if model == "trapezoid":
        return _fit_trapezoid(tac, decay, trapezoid_tail)
    if model in MODELS:
        chosen = MODELS[model]
        if tac.n_points < chosen.n_parameters:
            raise InputError(
                f"the TAC has {tac.n_points} points but model {model!r} has {chosen.n_parameters} "
                "parameters: add time points or choose a model with fewer parameters (mono has 2)"
            )
        accepted = _accept(chosen, _fit_parametric(chosen, tac), decay)
        value = _aicc_or_none(accepted.fit, tac, chosen.n_parameters)
        candidate = Candidate(model=chosen.name, aicc=value, weight=1.0)
        return _result_from_parametric(chosen, accepted, tac, (candidate,), value, decay, accepted.notes)
    if model != "auto":
        raise InputError(
            f"model must be one of auto, mono, bi, tri, trapezoid; got {model!r}: pick one of those"
        )
    return _fit_auto(tac, decay)


def _fit_too_few_for_selection(
    tac: TimeActivityCurve, decay: float | None, reasons: dict[str, str]
) -> FitResult:
    """Automatic mode with too few points for AICc (e.g. the common 3 time points): the simplest model,
    mono-exponential, is fitted and reported with a note — the usual clinical choice for few late time
    points (e.g. EANM guidance on 177Lu dosimetry, Sjögreen Gleisner et al. 2022) — rather than stopping.
    A non-physical mono-exponential fit is still rejected."""
    mono = MODELS["mono"]
    accepted = _accept(mono, _fit_parametric(mono, tac, None), decay)
    candidates = tuple(
        Candidate(model=name, aicc=None, weight=1.0 if name == "mono" else 0.0, rejected_reason=None)
        if name == "mono"
        else Candidate(model=name, aicc=None, weight=0.0, rejected_reason=reasons.get(name, "not fitted"))
        for name in AUTO_CANDIDATES
    )
    note = (
        f"too few points for model selection by AICc ({tac.n_points}): the mono-exponential model, the "
        "simplest, is used"
    )
    return _result_from_parametric(mono, accepted, tac, candidates, None, decay, (*accepted.notes, note))


def _fit_auto(tac: TimeActivityCurve, decay: float | None) -> FitResult:
    n = tac.n_points
    fits: dict[str, tuple[_Accepted, float]] = {}
    reasons: dict[str, str] = {}
    previous: FloatArray | None = None
    for name in AUTO_CANDIDATES:
        candidate_model = MODELS[name]
        k = aicc_parameter_count(candidate_model.n_parameters, variance_known=tac.sigma_mbq is not None)
        if n - k - 1 <= 0:
            reasons[name] = f"AICc undefined for {n} points (needs more than {k + 1})"
            continue
        try:
            fit = _fit_parametric(candidate_model, tac, previous)
            if name == "bi":
                previous = fit.params
            accepted = _accept(candidate_model, fit, decay)
        except FitError as exc:
            reasons[name] = str(exc)
            continue
        value = _aicc_or_none(accepted.fit, tac, candidate_model.n_parameters)
        if value is None:  # pragma: no cover - excluded above
            reasons[name] = "AICc undefined"
            continue
        fits[name] = (accepted, value)
    if not fits and n >= MODELS["mono"].n_parameters and reasons.get("mono", "").startswith("AICc undefined"):
        return _fit_too_few_for_selection(tac, decay, reasons)
    if not fits:
        detail = "; ".join(f"{name}: {reason}" for name, reason in reasons.items())
        raise FitError(
            f"no model could be selected for {n} points ({detail}): choose a model explicitly "
            "(mono needs 2 points, trapezoid 1 with a nuclide)"
        )
    names = list(fits)
    weights = akaike_weights([fits[name][1] for name in names])
    weight_of = dict(zip(names, (float(w) for w in weights), strict=True))
    candidates = tuple(
        Candidate(model=name, aicc=fits[name][1], weight=weight_of[name])
        if name in fits
        else Candidate(model=name, aicc=None, weight=0.0, rejected_reason=reasons[name])
        for name in AUTO_CANDIDATES
    )
    best = min(names, key=lambda name: fits[name][1])
    accepted, value = fits[best]
    notes = tuple(note for name in names for note in fits[name][0].notes)
    return _result_from_parametric(MODELS[best], accepted, tac, candidates, value, decay, notes)  # type: ignore[index]
