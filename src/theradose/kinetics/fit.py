"""Weighted least-squares fits of time–activity curves, model selection, acceptance and TIA uncertainty.

Method
------
* **Library** (:mod:`theradose.kinetics.models`, :data:`~theradose.kinetics.models.LIBRARY`): sums of
  exponentials as in NUKFIT (Kletting P et al. "Molecular radiotherapy: the NUKFIT software for
  calculating the time-integrated activity coefficient", Med Phys 2013;40:102504), with the physical
  decay built in. When the nuclide is given, automatic selection considers the parameter-sparse forms
  whose terms decay physically only (``physical``, ``bi_physical``, ``mono_physical``,
  ``tri_physical``) next to ``mono``, ``bi``, ``bi_washout`` and ``tri``; without it, ``mono``, ``bi``
  and ``tri``.
* **Fit**: weighted least squares. The models are linear in their amplitudes, so these are solved in
  closed form for given rate constants and only the rates are optimised (variable projection, Golub
  GH, Pereyra V. SIAM J Numer Anal 1973;10:413) by Levenberg–Marquardt (MINPACK via
  ``scipy.optimize.leastsq``); if that fails, the full problem is solved with the analytic Jacobian.
  Residuals are :math:`(A_i - f(t_i))/\\sigma_i` with per-point standard uncertainties, else
  :math:`A_i - f(t_i)`.
* **Prior** (optional, :class:`~theradose.kinetics.priors.HalfLifePrior`): maximum a posteriori fit with
  a log-normal prior on the terminal rate constant, i.e. one more residual
  :math:`(\\ln\\lambda_T - \\ln\\lambda_{prior})/s` (needs known :math:`\\sigma_i`). The prior counts as
  one observation in the degrees of freedom and the information criterion; the posterior covariance is
  :math:`(J^T J)^{-1}` of the augmented Jacobian (Laplace approximation).
* **Covariance** :math:`C = (J^T J)^{-1}` of the weighted Jacobian with known :math:`\\sigma_i`, else
  :math:`s^2 (J^T J)^{-1}` with :math:`s^2 = RSS/(N - P)`. TIA uncertainty by the delta method
  (JCGM 100:2008 (GUM) §5.1.2): :math:`\\sigma_{\\tilde A}^2 = g^T C g`, :math:`g` analytic.
* **Goodness of fit**: with known :math:`\\sigma_i`, :math:`\\chi^2` is compared with the
  :math:`\\chi^2` distribution on :math:`N - P` degrees of freedom (Bevington PR, Robinson DK. *Data
  Reduction and Error Analysis*, 3rd ed. 2003, §11.1); :math:`p <` :data:`GOODNESS_OF_FIT_ALPHA` is
  the flag ``goodness_of_fit_failed`` (never a silent acceptance), and
  :attr:`FitResult.tia_sigma_scaled_mbq_h` scales σ by :math:`\\sqrt{\\chi^2/\\nu}` (Birge ratio).
  Without known :math:`\\sigma_i` the test is undefined (flag ``goodness_of_fit_untested``).
* **Acceptance** (Kletting et al. 2013; the criteria as stated by Hardiansyah D et al. EJNMMI Phys
  2021;8:82): coefficients of variation of the fitted parameters below :data:`CV_LIMIT` (50 %) and
  absolute correlations below :data:`CORRELATION_LIMIT` (0.8). Here a CV ≥ 50 % removes a form from the
  ranking (an unidentifiable parameter: the form is over-parameterised for these points); a correlation
  ≥ 0.8 is reported and flagged on the selected fit but does not remove it: with four time points every
  uptake form correlates its amplitude and washout rate at :math:`|r| \\approx 0.85` (noise-free curves
  at 4, 24, 96, 168 h), and removing them would force uptake curves through a mono-exponential.
  The CVs are those of the parameters as parameterised here (amplitudes in MBq, effective rate
  constants); whether a biological rate differs from 0 is decided by comparing a form with its
  physical-decay counterpart through the criterion.
* **Selection**: the *admissible* forms have at least one degree of freedom (:math:`N > P`), a
  physically valid fit and all CVs below 50 %. They are ranked by AICc (Burnham KP, Anderson DR. *Model
  Selection and Multimodel Inference*, 2nd ed. 2002, ch. 2; Glatting G et al. Med Phys 2007;34:4285):
  with known :math:`\\sigma_i` :math:`AICc = \\chi^2 + 2K + 2K(K+1)/(N-K-1)`, :math:`K = P`; without,
  :math:`N \\ln(RSS/N) + 2K + \\ldots` with :math:`K = P + 1`. AICc is undefined for :math:`N \\le K + 1`
  (e.g. the 3-parameter uptake–washout form at 4 points). **Convention**: when AICc is undefined for
  any admissible form, all admissible forms are ranked by AIC, :math:`AIC = \\chi^2 + 2K` (the known-σ
  Gaussian likelihood; Akaike 1974), and the result says so (``selection_criterion``). Akaike weights
  :math:`w_i \\propto e^{-\\Delta_i/2}`. Among the forms within :data:`PARSIMONY_DELTA` (2) of the lowest
  criterion — substantial support for both (Burnham & Anderson 2002, §2.6) — the one with the fewest
  parameters is selected. If no form is admissible only because of the CV criterion, the
  physically valid forms are ranked and the selected fit carries the flag ``parameter_cv_above_limit``.
* **Non-physical fits** are rejected with a reason, never patched: a non-positive rate constant, a
  negative terminal amplitude or TIA, and — with the nuclide — an effective terminal rate significantly
  (more than :data:`PHYSICAL_BOUND_COVERAGE_FACTOR` σ) slower than physical decay (negative biological
  clearance); within that interval the fit is kept with a note.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import FitError, InputError
from theradose.kinetics.integrate import evaluate_trapezoid, trapezoid_weights
from theradose.kinetics.models import (
    LIBRARY,
    MODELS,
    ExponentialModel,
    ModelName,
    SumOfExponentials,
    get_model,
)
from theradose.kinetics.priors import HalfLifePrior
from theradose.kinetics.tac import TimeActivityCurve

FloatArray = npt.NDArray[np.float64]

#: ``"auto"`` or a named model (the names live once, in :data:`~theradose.kinetics.models.ModelName`).
ModelChoice = Literal["auto"] | ModelName
TrapezoidTail = Literal["physical", "fitted"]
SelectionCriterion = Literal["AICc", "AIC"]

#: Coverage factor (GUM k = 2, about 95 %) within which an effective terminal rate slower than the
#: physical decay constant is still accepted as consistent with no biological clearance.
PHYSICAL_BOUND_COVERAGE_FACTOR = 2.0

#: Candidate models of automatic selection without the nuclide, in order of increasing complexity.
AUTO_CANDIDATES: tuple[str, ...] = ("mono", "bi", "tri")

#: Kletting et al. 2013 acceptance: largest coefficient of variation of a fitted parameter.
CV_LIMIT = 0.5

#: Kletting et al. 2013 acceptance: largest absolute correlation between two fitted parameters.
CORRELATION_LIMIT = 0.8

#: Forms whose criterion lies within this of the lowest have substantial support (Burnham & Anderson
#: 2002, §2.6: Δ ≤ 2); among them the one with the fewest parameters is selected (parsimony).
PARSIMONY_DELTA = 2.0

#: Significance level of the χ² goodness-of-fit test.
GOODNESS_OF_FIT_ALPHA = 0.05

FLAG_GOODNESS_OF_FIT = "goodness_of_fit_failed"
FLAG_GOODNESS_OF_FIT_UNTESTED = "goodness_of_fit_untested"
FLAG_CV = "parameter_cv_above_limit"
FLAG_CORRELATION = "parameter_correlation_above_limit"
FLAG_TOO_FEW_POINTS = "too_few_points_for_selection"
FLAG_PRIOR = "prior_used"

#: Every flag a fit can carry (stable strings for JSON, the report and the study record).
FIT_FLAGS: tuple[str, ...] = (
    FLAG_GOODNESS_OF_FIT,
    FLAG_GOODNESS_OF_FIT_UNTESTED,
    FLAG_CV,
    FLAG_CORRELATION,
    FLAG_TOO_FEW_POINTS,
    FLAG_PRIOR,
)

_LN2 = math.log(2.0)

_EPS = float(np.finfo(np.float64).eps)

#: MINPACK status codes of a converged run.
_CONVERGED = (1, 2, 3, 4)

#: Residual returned for rates at which the amplitudes cannot be solved (singular basis).
_LARGE_RESIDUAL = 1e150

#: Relative tolerance on the sum of squares and on the parameters for Levenberg-Marquardt.
_TOLERANCE = 1.49012e-08


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class Candidate:
    """One model considered in a fit.

    Attributes
    ----------
    model : str
        Model name.
    aicc : float or None
        Corrected Akaike information criterion; ``None`` if undefined (:math:`N \\le K + 1`) or the
        candidate was not fitted.
    weight : float
        Akaike weight of the criterion used for ranking (0 for candidates not ranked; the weights of a
        selection sum to 1).
    rejected_reason : str or None
        Why the candidate was not ranked (or, in the CV fallback, why it failed acceptance).
    n_parameters : int or None
        Number of fitted parameters P.
    aic : float or None
        Akaike information criterion (always defined for a fitted candidate).
    criterion : float or None
        The value that ranked it (AICc or AIC, see ``FitResult.selection_criterion``).
    chi_square : float or None
        Weighted sum of squared residuals (χ² with known σ; with a prior, including its term).
    dof : int or None
        Degrees of freedom :math:`N (+1 \\text{ with a prior}) - P`.
    p_value : float or None
        χ² goodness-of-fit p-value (known σ and dof ≥ 1 only).
    max_cv : float or None
        Largest coefficient of variation of a fitted parameter (``inf`` when the covariance is singular).
    max_abs_correlation : float or None
        Largest absolute correlation between two fitted parameters.
    tia_mbq_h : float or None
        TIA of this candidate's fit, MBq·h.
    """

    model: str
    aicc: float | None
    weight: float
    rejected_reason: str | None = None
    n_parameters: int | None = None
    aic: float | None = None
    criterion: float | None = None
    chi_square: float | None = None
    dof: int | None = None
    p_value: float | None = None
    max_cv: float | None = None
    max_abs_correlation: float | None = None
    tia_mbq_h: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (non-finite numbers as ``None``)."""
        return {
            "model": self.model,
            "n_parameters": self.n_parameters,
            "aicc": _finite_or_none(self.aicc),
            "aic": _finite_or_none(self.aic),
            "criterion": _finite_or_none(self.criterion),
            "weight": self.weight,
            "chi_square": _finite_or_none(self.chi_square),
            "dof": self.dof,
            "p_value": _finite_or_none(self.p_value),
            "max_cv": _finite_or_none(self.max_cv),
            "max_abs_correlation": _finite_or_none(self.max_abs_correlation),
            "tia_mbq_h": _finite_or_none(self.tia_mbq_h),
            "ranked": self.weight > 0 or self.criterion is not None,
            "reason_not_ranked": self.rejected_reason,
        }


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted time–activity curve and its time-integrated activity.

    Attributes
    ----------
    model : str
        The model used (the selected one in automatic mode): a name of
        :data:`~theradose.kinetics.models.LIBRARY` or ``"trapezoid"``.
    parameters : Mapping[str, float]
        Fitted parameters by name (amplitudes in MBq, effective rate constants in 1/h); for
        ``trapezoid`` the tail rate constant.
    tia_mbq_h : float
        Time-integrated activity from 0 to ∞, MBq·h.
    tia_sigma_mbq_h : float or None
        Standard uncertainty of the TIA from the parameter covariance, MBq·h; ``None`` when it cannot be
        estimated.
    effective_half_life_h : float or None
        ln 2 over the terminal rate constant, h; ``None`` when the terminal phase is not measured
        (trapezoid with a physical-decay tail).
    candidates : tuple of Candidate
        All models considered, with criterion, weight, goodness of fit and why not ranked.
    covariance : ndarray, shape (P, P), or None
        Covariance of the parameters in the order of ``parameters``.
    parameter_sigmas : Mapping[str, float] or None
        Standard uncertainties of the parameters.
    aicc : float or None
        AICc of the chosen model (``None`` where undefined).
    weighted_rss : float
        Sum of squared (weighted) data residuals of the chosen model (χ² of the data with known σ).
    tac : TimeActivityCurve
        The data fitted.
    decay_constant_per_h : float or None
        Physical decay constant, 1/h.
    notes : tuple of str
        Remarks in words (why this model, fallbacks, flags explained).
    flags : tuple of str
        Machine-readable warnings, a subset of :data:`FIT_FLAGS`.
    chi_square : float or None
        χ² of the chosen fit (with a prior: data plus prior term); ``None`` without known σ.
    dof : int or None
        Degrees of freedom of the χ² test.
    p_value : float or None
        χ² goodness-of-fit p-value; ``None`` when untested.
    selection_criterion : {"AICc", "AIC"} or None
        Criterion that ranked the candidates (``None`` for an explicit model or a fallback).
    parameter_cv : Mapping[str, float] or None
        Coefficient of variation of each fitted parameter.
    max_abs_correlation : float or None
        Largest absolute correlation between two fitted parameters.
    prior : HalfLifePrior or None
        The prior of a MAP fit.
    effective_half_life_sigma_h : float or None
        Standard uncertainty of ``effective_half_life_h`` from the covariance (0 when the terminal phase
        is the physical decay itself).
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
    flags: tuple[str, ...] = field(default=())
    chi_square: float | None = None
    dof: int | None = None
    p_value: float | None = None
    selection_criterion: SelectionCriterion | None = None
    parameter_cv: Mapping[str, float] | None = None
    max_abs_correlation: float | None = None
    prior: HalfLifePrior | None = None
    effective_half_life_sigma_h: float | None = None

    @property
    def reduced_chi_square(self) -> float | None:
        """χ²/ν, or ``None`` when untested."""
        if self.chi_square is None or not self.dof:
            return None
        return self.chi_square / self.dof

    @property
    def tia_sigma_scaled_mbq_h(self) -> float | None:
        """TIA σ scaled by :math:`\\sqrt{\\max(1, \\chi^2/\\nu)}` (Birge ratio; Particle Data Group
        scale factor): the uncertainty to carry when the model does not describe the data within the
        stated σ. Equal to :attr:`tia_sigma_mbq_h` when the fit is consistent or untested."""
        if self.tia_sigma_mbq_h is None:
            return None
        reduced = self.reduced_chi_square
        return self.tia_sigma_mbq_h * math.sqrt(max(1.0, reduced if reduced is not None else 1.0))

    @property
    def correlation(self) -> FloatArray | None:
        """Correlation matrix of the parameters (order of ``parameters``)."""
        if self.covariance is None:
            return None
        sd = np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))
        with np.errstate(all="ignore"):
            result: FloatArray = self.covariance / np.outer(sd, sd)
        return result

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
        if self.model == "trapezoid_mono":
            start = self.parameters["late_start_h"]
            late = self.parameters["a1_mbq"] * np.exp(-self.parameters["lambda1_per_h"] * t)
            knots_t = np.concatenate(([0.0], self.tac.time_h)) if self.tac.time_h[0] > 0 else self.tac.time_h
            knots_a = (
                np.concatenate(([0.0], self.tac.activity_mbq))
                if self.tac.time_h[0] > 0
                else self.tac.activity_mbq
            )
            early: FloatArray = np.interp(t, knots_t, knots_a)
            return np.where(t >= start, late, early)
        model = get_model(self.model, decay_constant_per_h=self.decay_constant_per_h)
        params = np.array([self.parameters[name] for name in model.parameter_names])
        return model.evaluate(params, t)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``theradose kinetics fit --json`` (non-finite numbers as ``None``)."""
        return {
            "model": self.model,
            "parameters": dict(self.parameters),
            "parameter_sigmas": None if self.parameter_sigmas is None else dict(self.parameter_sigmas),
            "parameter_cv": None
            if self.parameter_cv is None
            else {k: _finite_or_none(v) for k, v in self.parameter_cv.items()},
            "max_abs_correlation": _finite_or_none(self.max_abs_correlation),
            "tia_mbq_h": self.tia_mbq_h,
            "tia_sigma_mbq_h": self.tia_sigma_mbq_h,
            "tia_sigma_scaled_mbq_h": self.tia_sigma_scaled_mbq_h,
            "effective_half_life_h": self.effective_half_life_h,
            "effective_half_life_sigma_h": self.effective_half_life_sigma_h,
            "selection_criterion": self.selection_criterion,
            "aicc": _finite_or_none(self.aicc),
            "chi_square": _finite_or_none(self.chi_square),
            "dof": self.dof,
            "p_value": _finite_or_none(self.p_value),
            "flags": list(self.flags),
            "notes": list(self.notes),
            "prior": None if self.prior is None else self.prior.as_dict(),
            "candidates": [c.as_dict() for c in self.candidates],
        }


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


def aic(weighted_rss: float, n_points: int, n_parameters: int, *, variance_known: bool) -> float:
    """Akaike information criterion of a least-squares fit (Akaike 1974; Burnham & Anderson 2002).

    With known absolute uncertainties :math:`AIC = \\chi^2 + 2K`, :math:`K = P`; otherwise
    :math:`AIC = N \\ln(WRSS/N) + 2K`, :math:`K = P + 1`. Defined for any :math:`N \\ge 1`; used for
    ranking when AICc is undefined for an admissible form (see the module docstring).
    """
    k = aicc_parameter_count(n_parameters, variance_known=variance_known)
    if n_points < 1:
        raise InputError(f"n_points must be >= 1; got {n_points}")
    if variance_known:
        if not weighted_rss >= 0:
            raise InputError(f"weighted_rss must be >= 0; got {weighted_rss}: pass the chi-square of the fit")
        return float(weighted_rss + 2 * k)
    if not weighted_rss > 0:
        raise InputError(f"weighted_rss must be > 0; got {weighted_rss}: AIC needs a non-zero residual")
    return float(n_points * math.log(weighted_rss / n_points) + 2 * k)


@dataclass(frozen=True, eq=False)
class _ParametricFit:
    params: FloatArray
    covariance: FloatArray | None
    weighted_rss: float
    prior_chi_square: float = 0.0


def _terminal(model: ExponentialModel, params: FloatArray) -> tuple[float, int | None]:
    """(terminal rate constant, its position in params — ``None`` when it is the fixed physical decay)."""
    if isinstance(model, SumOfExponentials):
        if model.terminal_is_physical(params):
            return model.decay_constant_per_h, None
    index = model.terminal_rate_index(params)
    return float(params[index]), index


def _terminal_is_fitted(model: ExponentialModel) -> bool:
    """Whether the slowest phase of the form is a fitted rate (a prior on the half-life applies)."""
    if isinstance(model, SumOfExponentials):
        return all(term.rate is not None for term in model.terms)
    return True


def _fit_parametric(
    model: ExponentialModel,
    tac: TimeActivityCurve,
    previous: FloatArray | None = None,
    prior: HalfLifePrior | None = None,
) -> _ParametricFit:
    t = tac.time_h
    y = tac.activity_mbq
    w = _weights(tac)
    rate_indices = list(model.rate_indices)
    n_data = y.size
    prior_rows = 0 if prior is None else 1
    log_prior_rate = 0.0 if prior is None else math.log(prior.rate_per_h)
    prior_sigma = 1.0 if prior is None else prior.log_sigma

    def prior_residual(rates: FloatArray) -> float:
        slowest = float(np.min(rates))
        if not slowest > 0:
            return _LARGE_RESIDUAL
        return (math.log(slowest) - log_prior_rate) / prior_sigma

    def residuals(p: FloatArray) -> FloatArray:
        data = (y - model.evaluate(p, t)) * w
        if prior is None:
            return data
        return np.append(data, prior_residual(p[rate_indices]))

    def jacobian(p: FloatArray) -> FloatArray:
        data = -model.jacobian(p, t) * w[:, None]
        if prior is None:
            return data
        row = np.zeros((1, p.size))
        rates = p[rate_indices]
        slowest = int(np.argmin(rates))
        if rates[slowest] > 0:
            row[0, rate_indices[slowest]] = 1.0 / (float(rates[slowest]) * prior_sigma)
        return np.vstack((data, row))

    if not rate_indices:
        # No rate to optimise (physical decay only): linear weighted least squares.
        params = model.assemble(_linear_amplitudes(model.basis(np.zeros(0), t), tac), np.zeros(0))
        if not np.isfinite(params).all():
            raise FitError(f"the {model.name} fit did not converge: the amplitude is not finite")
    else:
        params = _optimise(model, tac, previous, prior, residuals, jacobian, prior_residual)
    with np.errstate(all="ignore"):
        final = residuals(params)
    data_rss = float(final[:n_data] @ final[:n_data])
    prior_chi2 = float(final[n_data:] @ final[n_data:]) if prior_rows else 0.0
    if not math.isfinite(data_rss + prior_chi2):
        raise FitError(f"the {model.name} fit did not converge from any starting point")
    covariance = _covariance(jacobian(params))
    n, p = tac.n_points, model.n_parameters
    if covariance is not None and tac.sigma_mbq is None:
        covariance = covariance * (data_rss / (n - p)) if n > p else None
    return _ParametricFit(
        params=params, covariance=covariance, weighted_rss=data_rss, prior_chi_square=prior_chi2
    )


def _optimise(
    model: ExponentialModel,
    tac: TimeActivityCurve,
    previous: FloatArray | None,
    prior: HalfLifePrior | None,
    residuals: Any,
    jacobian: Any,
    prior_residual: Any,
) -> FloatArray:
    """Variable projection over the rates from the best starting point, full LM as a fallback."""
    from scipy.optimize import leastsq

    t = tac.time_h
    y = tac.activity_mbq
    w = _weights(tac)
    rate_indices = list(model.rate_indices)
    # Starting points in order of their initial cost; Levenberg-Marquardt runs from the best one and
    # falls back to the next only when a run does not converge.
    starts = [x0 for x0 in _starts(model, tac, previous) if np.isfinite(x0).all()]
    ranked: list[tuple[float, int, FloatArray]] = [(0.0, 0, x0) for x0 in starts]
    if len(starts) > 1:
        with np.errstate(all="ignore"):
            costs = [float(r @ r) for r in (residuals(x0) for x0 in starts)]
        ranked = [(c, i, x0) for i, (c, x0) in enumerate(zip(costs, starts, strict=True)) if math.isfinite(c)]
        ranked.sort(key=lambda item: (item[0], item[1]))

    w2 = w * w
    n_rows = y.size + (0 if prior is None else 1)
    large = np.full(n_rows, _LARGE_RESIDUAL)

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
        if prior is not None:
            result = np.append(result, prior_residual(rates))
        return result if math.isfinite(float(result @ result)) else large

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
            rates = np.atleast_1d(np.asarray(rates, dtype=np.float64))
            if status in _CONVERGED and np.all(np.isfinite(rates)):
                amplitudes = _linear_amplitudes(model.basis(rates, t), tac)
                if np.all(np.isfinite(amplitudes)):
                    x = model.assemble(amplitudes, rates)
            if x is None:
                x, _, _, _, status = leastsq(
                    residuals, x0, Dfun=jacobian, full_output=True, ftol=_TOLERANCE, xtol=_TOLERANCE
                )
        if status in _CONVERGED and np.isfinite(x).all():
            return model.canonical(np.asarray(x, dtype=np.float64))
    label = f"{model.name}-exponential" if model.name in MODELS else model.name
    raise FitError(f"the {label} fit did not converge from any starting point")


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
        rate, index = _terminal(model, fit.params)
        sigma = None
        if index is not None and fit.covariance is not None and fit.covariance[index, index] >= 0:
            sigma = math.sqrt(float(fit.covariance[index, index]))
        if index is not None:
            reason, note = _check_physical_bound(model.name, rate, sigma, decay_constant_per_h)
    if reason is not None:
        label = f"{model.name}-exponential" if model.name in MODELS else model.name
        raise FitError(f"{label} fit rejected: {reason}")
    return _Accepted(fit=fit, notes=() if note is None else (note,))


@dataclass(frozen=True)
class _Statistics:
    n_parameters: int
    chi_square: float | None  # data (+ prior) χ² with known σ
    dof: int
    p_value: float | None
    cv: dict[str, float]
    max_cv: float
    max_abs_correlation: float | None
    aicc: float | None
    aic: float


def _statistics(
    model: ExponentialModel, fit: _ParametricFit, tac: TimeActivityCurve, prior: HalfLifePrior | None
) -> _Statistics:
    from scipy.stats import chi2 as chi2_distribution

    p = model.n_parameters
    n_obs = tac.n_points + (0 if prior is None else 1)
    dof = n_obs - p
    known = tac.sigma_mbq is not None
    total = fit.weighted_rss + fit.prior_chi_square
    chi_square = total if known else None
    p_value = float(chi2_distribution.sf(total, dof)) if known and dof >= 1 else None
    names = model.parameter_names
    if fit.covariance is None:
        cv = {name: math.inf for name in names}
        max_corr: float | None = None
    else:
        sd = np.sqrt(np.clip(np.diag(fit.covariance), 0.0, None))
        cv = {
            name: (float(s / abs(v)) if v != 0 else math.inf)
            for name, s, v in zip(names, sd, fit.params, strict=True)
        }
        max_corr = None
        if p > 1:
            with np.errstate(all="ignore"):
                corr = fit.covariance / np.outer(sd, sd)
            off = np.abs(corr[~np.eye(p, dtype=bool)])
            max_corr = float(np.max(off)) if np.all(np.isfinite(off)) else math.inf
    criterion_rss = total
    if not known:
        # An exact fit (zero residual) would give -inf; floor RSS at the round-off level of the data so
        # that exact fits tie on the likelihood term and the parameter penalty decides.
        scale = float(np.max(np.abs(tac.activity_mbq)))
        criterion_rss = max(total, n_obs * (_EPS * max(scale, 1.0)) ** 2)
    k = aicc_parameter_count(p, variance_known=known)
    aicc_value = aicc(criterion_rss, n_obs, p, variance_known=known) if n_obs - k - 1 > 0 else None
    return _Statistics(
        n_parameters=p,
        chi_square=chi_square,
        dof=dof,
        p_value=p_value,
        cv=cv,
        max_cv=max(cv.values()) if cv else 0.0,
        max_abs_correlation=max_corr,
        aicc=aicc_value,
        aic=aic(criterion_rss, n_obs, p, variance_known=known),
    )


def _quality_flags(
    stats: _Statistics, tac: TimeActivityCurve, model_name: str
) -> tuple[list[str], list[str]]:
    """(flags, notes) of a fit's goodness of fit and Kletting acceptance."""
    flags: list[str] = []
    notes: list[str] = []
    if stats.p_value is None:
        flags.append(FLAG_GOODNESS_OF_FIT_UNTESTED)
        why = (
            "no per-point uncertainties were given"
            if tac.sigma_mbq is None
            else f"{model_name} leaves no degree of freedom"
        )
        notes.append(f"goodness of fit not tested: {why}")
    elif stats.p_value < GOODNESS_OF_FIT_ALPHA:
        flags.append(FLAG_GOODNESS_OF_FIT)
        assert stats.chi_square is not None
        notes.append(
            f"goodness of fit failed: chi-square {stats.chi_square:.4g} on {stats.dof} degrees of freedom "
            f"(p = {stats.p_value:.2g} < {GOODNESS_OF_FIT_ALPHA:g}): {model_name} does not describe the data "
            "within their uncertainties; tia_sigma_scaled_mbq_h carries the Birge-scaled uncertainty"
        )
    if stats.max_cv >= CV_LIMIT:
        flags.append(FLAG_CV)
        worst = max(stats.cv, key=lambda name: stats.cv[name])
        notes.append(
            f"parameter {worst} has a coefficient of variation of {stats.cv[worst]:.3g} "
            f"(acceptance < {CV_LIMIT:g}, Kletting et al. 2013)"
        )
    if stats.max_abs_correlation is not None and stats.max_abs_correlation >= CORRELATION_LIMIT:
        flags.append(FLAG_CORRELATION)
        notes.append(
            f"largest parameter correlation {stats.max_abs_correlation:.3g} "
            f"(acceptance < {CORRELATION_LIMIT:g}, Kletting et al. 2013): the parameters are not "
            "determined independently, the TIA is (see its sigma)"
        )
    return flags, notes


def _result_from_parametric(
    model: ExponentialModel,
    accepted: _Accepted,
    tac: TimeActivityCurve,
    candidates: tuple[Candidate, ...],
    stats: _Statistics,
    decay_constant_per_h: float | None,
    notes: tuple[str, ...],
    flags: tuple[str, ...],
    selection_criterion: SelectionCriterion | None,
    prior: HalfLifePrior | None,
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
    half_life_sigma = None
    rate, index = _terminal(model, fit.params)
    if index is None:
        half_life_sigma = 0.0
    elif fit.covariance is not None and fit.covariance[index, index] >= 0:
        half_life_sigma = _LN2 / rate * math.sqrt(float(fit.covariance[index, index])) / rate
    return FitResult(
        model=model.name,  # type: ignore[arg-type]
        parameters=model.parameter_dict(fit.params),
        tia_mbq_h=tia,
        tia_sigma_mbq_h=tia_sigma,
        effective_half_life_h=_LN2 / model.terminal_rate_per_h(fit.params),
        candidates=candidates,
        covariance=fit.covariance,
        parameter_sigmas=sigmas,
        aicc=stats.aicc,
        weighted_rss=fit.weighted_rss,
        tac=tac,
        decay_constant_per_h=decay_constant_per_h,
        notes=notes,
        flags=tuple(dict.fromkeys(flags)),
        chi_square=stats.chi_square,
        dof=stats.dof,
        p_value=stats.p_value,
        selection_criterion=selection_criterion,
        parameter_cv=dict(stats.cv),
        max_abs_correlation=stats.max_abs_correlation,
        prior=prior,
        effective_half_life_sigma_h=half_life_sigma,
    )


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
    if isinstance(model, SumOfExponentials):
        generic = []
        for rates in model.start_rates(l1, peak_time):
            amplitudes = _linear_amplitudes(model.basis(rates, t), tac)
            generic.append(model.assemble(amplitudes, rates))
        return generic
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


def _fit_trapezoid(
    tac: TimeActivityCurve, decay_constant_per_h: float | None, tail: TrapezoidTail | None
) -> FitResult:
    if tail is None:
        tail = "physical" if decay_constant_per_h is not None else "fitted"
    t, a = tac.time_h, tac.activity_mbq
    notes: list[str] = []
    half_life_sigma: float | None = None
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
        if rate_sigma is not None:
            half_life_sigma = half_life * rate_sigma / rate
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
        effective_half_life_sigma_h=half_life_sigma,
    )


def _trapezoid_mono_tia(t: FloatArray, a: FloatArray, start: int, amplitude: float, rate: float) -> float:
    """Trapezoid from (0, 0) through the points up to index ``start``, then the mono-exponential
    A·e^(−λt) integrated from ``t[start]`` to ∞."""
    knots_t = np.concatenate(([0.0], t[: start + 1]))
    knots_a = np.concatenate(([0.0], a[: start + 1]))
    early = float(np.sum(np.diff(knots_t) * (knots_a[1:] + knots_a[:-1]) / 2.0))
    return early + amplitude * math.exp(-rate * float(t[start])) / rate


def _fit_trapezoid_mono(tac: TimeActivityCurve, decay: float | None) -> FitResult:
    """Hybrid integration (MIRD Pamphlet No. 16, Siegel et al. 1999, J Nucl Med 40:37S, "hybrid"
    methods): the trapezoid rule over the early points, where a curve sampled at few times has phases
    (vascular, uptake, fast washout) that no form with a degree of freedom left can represent, and a
    mono-exponential fitted by weighted least squares to the late points, integrated analytically from
    the first late point to ∞.

    The late phase starts at the earliest point (from the second on) from which at least three points
    are left and the mono-exponential passes the χ² test (p ≥ :data:`GOODNESS_OF_FIT_ALPHA`); without
    per-point σ at the second point; if no start passes, at the third-last point, with the goodness-of-fit
    flag. The TIA uncertainty propagates every point's σ through the whole estimator (the late fit
    included) by central differences."""
    from scipy.stats import chi2 as chi2_distribution

    t, a, sigma = tac.time_h, tac.activity_mbq, tac.sigma_mbq
    n = tac.n_points
    if n < 3:
        raise InputError(
            f"the trapezoid_mono model needs at least 3 points (one early, two late); got {n}: "
            "use the trapezoid model or add a time point"
        )
    mono = get_model("mono", decay_constant_per_h=decay)

    def late_fit(values: FloatArray, start: int) -> _ParametricFit:
        late = TimeActivityCurve(t[start:], values[start:], None if sigma is None else sigma[start:])
        return _fit_parametric(mono, late)

    starts = list(range(1, n - 2)) if n >= 4 else [1]
    chosen: int | None = None
    fits: dict[int, _ParametricFit] = {}
    for k in starts:
        try:
            fits[k] = late_fit(a, k)
        except FitError:
            continue
        if sigma is None:
            chosen = k
            break
        dof = n - k - 2
        if dof >= 1 and float(chi2_distribution.sf(fits[k].weighted_rss, dof)) >= GOODNESS_OF_FIT_ALPHA:
            chosen = k
            break
    if chosen is None:
        chosen = starts[-1]
        if chosen not in fits:
            try:
                fits[chosen] = late_fit(a, chosen)
            except FitError as exc:
                raise FitError(
                    f"trapezoid_mono fit rejected: no mono-exponential fits the points from {t[chosen]:g} h "
                    f"({', '.join(f'{v:.4g}' for v in a[chosen:])} MBq): {exc}"
                ) from None
    fit = fits[chosen]
    amplitude, rate = float(fit.params[0]), float(fit.params[1])
    if not (rate > 0 and amplitude > 0):
        raise FitError(
            f"trapezoid_mono fit rejected: the late mono-exponential from {t[chosen]:g} h has amplitude "
            f"{amplitude:.4g} MBq and rate {rate:.4g} /h (both must be > 0): the activity does not clear "
            "after that time; use the trapezoid model with a physical-decay tail"
        )
    rate_sigma = math.sqrt(max(float(fit.covariance[1, 1]), 0.0)) if fit.covariance is not None else None
    reason, note = _check_physical_bound("trapezoid_mono", rate, rate_sigma, decay)
    if reason is not None:
        raise FitError(f"trapezoid_mono fit rejected: late phase {reason}")
    notes = [
        f"trapezoid over 0-{t[chosen]:g} h, mono-exponential fitted to the {n - chosen} points from "
        f"{t[chosen]:g} h (MIRD 16 hybrid integration)"
    ]
    if note is not None:
        notes.append(note)
    tia = _trapezoid_mono_tia(t, a, chosen, amplitude, rate)
    dof = n - chosen - 2
    known = sigma is not None
    chi_square = fit.weighted_rss if known else None
    p_value = float(chi2_distribution.sf(fit.weighted_rss, dof)) if known and dof >= 1 else None
    flags: list[str] = []
    if p_value is None:
        flags.append(FLAG_GOODNESS_OF_FIT_UNTESTED)
        notes.append(
            "goodness of fit not tested: "
            + (
                "no per-point uncertainties were given"
                if not known
                else "two late points leave no degree of freedom"
            )
        )
    elif p_value < GOODNESS_OF_FIT_ALPHA:
        flags.append(FLAG_GOODNESS_OF_FIT)
        notes.append(
            "goodness of fit failed: the late mono-exponential has chi-square "
            f"{fit.weighted_rss:.4g} on {dof} "
            f"degrees of freedom (p = {p_value:.2g} < {GOODNESS_OF_FIT_ALPHA:g}); tia_sigma_scaled_mbq_h "
            "carries the Birge-scaled uncertainty"
        )
    tia_sigma: float | None = None
    if sigma is not None:
        gradient = np.zeros(n)
        for i in range(n):
            h = 1e-4 * max(abs(float(a[i])), float(sigma[i]), 1e-12)
            # central differences; forward at a point too close to 0 to step below it
            steps = (1.0, -1.0) if float(a[i]) - h >= 0.0 else (1.0, 0.0)
            values = []
            for sign in steps:
                shifted = a.copy()
                shifted[i] += sign * h
                if i >= chosen:
                    f2 = late_fit(shifted, chosen)
                    values.append(
                        _trapezoid_mono_tia(t, shifted, chosen, float(f2.params[0]), float(f2.params[1]))
                    )
                else:
                    values.append(_trapezoid_mono_tia(t, shifted, chosen, amplitude, rate))
            gradient[i] = (values[0] - values[1]) / ((steps[0] - steps[1]) * h)
        tia_sigma = float(np.sqrt(np.sum((gradient * sigma) ** 2)))
    else:
        notes.append("no per-point uncertainties given: the trapezoid_mono TIA uncertainty is undefined")
    half_life = _LN2 / rate
    return FitResult(
        model="trapezoid_mono",
        parameters={"late_start_h": float(t[chosen]), "a1_mbq": amplitude, "lambda1_per_h": rate},
        tia_mbq_h=tia,
        tia_sigma_mbq_h=tia_sigma,
        effective_half_life_h=half_life,
        candidates=(
            Candidate(
                model="trapezoid_mono",
                aicc=None,
                weight=1.0,
                n_parameters=2,
                chi_square=chi_square,
                dof=dof,
                p_value=p_value,
                tia_mbq_h=tia,
            ),
        ),
        covariance=None,
        parameter_sigmas=None,
        aicc=None,
        weighted_rss=fit.weighted_rss,
        tac=tac,
        decay_constant_per_h=decay,
        notes=tuple(notes),
        flags=tuple(flags),
        chi_square=chi_square,
        dof=dof,
        p_value=p_value,
        effective_half_life_sigma_h=None if rate_sigma is None else half_life * rate_sigma / rate,
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
    prior: HalfLifePrior | None = None,
) -> FitResult:
    """Fit a time–activity curve and integrate it from 0 to ∞.

    Parameters
    ----------
    time_h : array_like, shape (n,)
        Times after administration, h (non-negative, strictly increasing).
    activity_mbq : array_like, shape (n,)
        Measured activities (not decay-corrected), MBq.
    sigma_mbq : array_like, shape (n,), optional
        Standard uncertainties of the activities, MBq. Without them the fit is unweighted, the residual
        variance is estimated from the scatter and goodness of fit cannot be tested.
    model : str
        ``"auto"`` ranks the admissible forms of the library (see the module docstring); or one of
        :data:`~theradose.kinetics.models.LIBRARY`, or ``"trapezoid"``.
    decay_constant_per_h : float, optional
        Physical decay constant of the nuclide, 1/h: the forms with a physical-decay term, the bound for
        the effective terminal rate and the tail of the trapezoid model.
    trapezoid_tail : {"physical", "fitted"}, optional
        Tail of the trapezoid model: physical decay (default when ``decay_constant_per_h`` is given) or a
        mono-exponential through the last two points.
    prior : HalfLifePrior, optional
        Log-normal prior of the effective half-life (population or the patient's earlier cycle): a MAP
        fit; needs ``sigma_mbq``. Forms whose terminal phase is physical decay are not fitted with it.

    Returns
    -------
    FitResult

    Raises
    ------
    InputError
        Invalid data, fewer points than the parameters of the requested model, a prior without
        ``sigma_mbq``, or a physical-decay form without the nuclide.
    FitError
        The fit is non-physical (explained in the message) or no candidate model is usable.
    """
    tac = TimeActivityCurve(
        np.asarray(time_h, dtype=np.float64),
        np.asarray(activity_mbq, dtype=np.float64),
        None if sigma_mbq is None else np.asarray(sigma_mbq, dtype=np.float64),
    )
    decay = _check_decay_constant(decay_constant_per_h)
    if prior is not None and tac.sigma_mbq is None:
        raise InputError(
            "a half-life prior needs sigma_mbq (per-point standard uncertainties): without them the weight "
            "of the data against the prior is undefined"
        )
    if model == "trapezoid":
        if prior is not None:
            raise InputError("the trapezoid model takes no prior: fit an exponential form or omit the prior")
        return _fit_trapezoid(tac, decay, trapezoid_tail)
    if model == "trapezoid_mono":
        if prior is not None:
            raise InputError(
                "the trapezoid_mono model takes no prior: fit an exponential form or omit the prior"
            )
        return _fit_trapezoid_mono(tac, decay)
    if model == "auto":
        return _fit_auto(tac, decay, prior)
    if model not in LIBRARY:
        raise InputError(
            f"model must be one of auto, {', '.join(LIBRARY)}, trapezoid, trapezoid_mono; got {model!r}: "
            "pick one of those"
        )
    chosen = get_model(model, decay_constant_per_h=decay)
    if prior is not None and not _terminal_is_fitted(chosen):
        raise InputError(
            f"model {model!r} ends in physical decay: a prior on the effective half-life does not apply; "
            "omit the prior or choose a form with a fitted terminal rate (mono, bi, bi_washout, tri)"
        )
    n_obs = tac.n_points + (0 if prior is None else 1)
    if n_obs < chosen.n_parameters:
        raise InputError(
            f"the TAC has {tac.n_points} points but model {model!r} has {chosen.n_parameters} "
            "parameters: add time points or choose a model with fewer parameters (mono has 2)"
        )
    accepted = _accept(chosen, _fit_parametric(chosen, tac, None, prior), decay)
    stats = _statistics(chosen, accepted.fit, tac, prior)
    flags, notes = _quality_flags(stats, tac, chosen.name)
    if prior is not None:
        flags.append(FLAG_PRIOR)
        notes.append(_prior_note(prior))
    candidate = _candidate(chosen, accepted, stats, weight=1.0, criterion=None)
    return _result_from_parametric(
        chosen,
        accepted,
        tac,
        (candidate,),
        stats,
        decay,
        (*accepted.notes, *notes),
        tuple(flags),
        None,
        prior,
    )


def _prior_note(prior: HalfLifePrior) -> str:
    return (
        f"MAP fit with a log-normal prior on the effective half-life: median {prior.median_h:.4g} h, "
        f"log SD {prior.log_sigma:.3g} ({prior.source})"
    )


def _candidate(
    model: ExponentialModel,
    accepted: _Accepted,
    stats: _Statistics,
    *,
    weight: float,
    criterion: float | None,
    reason: str | None = None,
) -> Candidate:
    return Candidate(
        model=model.name,
        aicc=stats.aicc,
        weight=weight,
        rejected_reason=reason,
        n_parameters=stats.n_parameters,
        aic=stats.aic,
        criterion=criterion,
        chi_square=stats.chi_square,
        dof=stats.dof,
        p_value=stats.p_value,
        max_cv=stats.max_cv,
        max_abs_correlation=stats.max_abs_correlation,
        tia_mbq_h=model.integral(accepted.fit.params),
    )


def _fit_too_few_for_selection(
    tac: TimeActivityCurve,
    decay: float | None,
    prior: HalfLifePrior | None,
    names: Sequence[str],
    reasons: dict[str, str],
) -> FitResult:
    """Automatic mode with too few points for any form with a degree of freedom (e.g. 2 points): the
    mono-exponential through the points is used — the usual clinical choice for few late time points
    (EANM guidance on 177Lu dosimetry, Sjögreen Gleisner et al. 2022) — and the result says so. A
    non-physical mono-exponential fit is still rejected."""
    mono = MODELS["mono"]
    accepted = _accept(mono, _fit_parametric(mono, tac, None, prior), decay)
    stats = _statistics(mono, accepted.fit, tac, prior)
    candidates = tuple(
        _candidate(mono, accepted, stats, weight=1.0, criterion=None)
        if name == "mono"
        else Candidate(model=name, aicc=None, weight=0.0, rejected_reason=reasons.get(name, "not fitted"))
        for name in names
    )
    flags, notes = _quality_flags(stats, tac, "mono")
    note = (
        f"too few points for model selection by AICc ({tac.n_points}): the mono-exponential model, the "
        "simplest form with a fitted clearance, is used without a degree of freedom"
    )
    flags.insert(0, FLAG_TOO_FEW_POINTS)
    if prior is not None:
        flags.append(FLAG_PRIOR)
        notes.append(_prior_note(prior))
    return _result_from_parametric(
        mono,
        accepted,
        tac,
        candidates,
        stats,
        decay,
        (*accepted.notes, note, *notes),
        tuple(flags),
        None,
        prior,
    )


@dataclass(frozen=True, eq=False)
class _Fitted:
    model: ExponentialModel
    accepted: _Accepted
    stats: _Statistics


def _fit_auto(tac: TimeActivityCurve, decay: float | None, prior: HalfLifePrior | None) -> FitResult:
    n = tac.n_points
    n_obs = n + (0 if prior is None else 1)
    names = LIBRARY if decay is not None else AUTO_CANDIDATES
    fitted: dict[str, _Fitted] = {}
    reasons: dict[str, str] = {}
    previous: FloatArray | None = None
    for name in names:
        form = get_model(name, decay_constant_per_h=decay)
        p = form.n_parameters
        if prior is not None and not _terminal_is_fitted(form):
            reasons[name] = "ends in physical decay: the half-life prior does not apply to this form"
            continue
        if n_obs - p < 1:
            reasons[name] = (
                f"needs at least {p + 1 - (n_obs - n)} points ({p} parameters and one degree of freedom); "
                f"has {n}"
            )
            continue
        try:
            fit = _fit_parametric(form, tac, previous if name == "tri" else None, prior)
            if name == "bi":
                previous = fit.params
            accepted = _accept(form, fit, decay)
        except FitError as exc:
            reasons[name] = str(exc)
            continue
        fitted[name] = _Fitted(form, accepted, _statistics(form, accepted.fit, tac, prior))
    admissible = [name for name in fitted if fitted[name].stats.max_cv < CV_LIMIT]
    for name in fitted:
        if name not in admissible:
            stats = fitted[name].stats
            worst = max(stats.cv, key=lambda key: stats.cv[key])
            reasons[name] = (
                f"parameter {worst} not identifiable from these points: coefficient of variation "
                f"{stats.cv[worst]:.3g} >= {CV_LIMIT:g} (Kletting et al. 2013 acceptance)"
            )
    fallback_cv = False
    ranked = admissible
    if not admissible:
        if fitted:
            ranked = list(fitted)
            fallback_cv = True
        elif n_obs >= MODELS["mono"].n_parameters and reasons.get("mono", "").startswith("needs at least"):
            return _fit_too_few_for_selection(tac, decay, prior, names, reasons)
        else:
            detail = "; ".join(f"{name}: {reason}" for name, reason in reasons.items())
            raise FitError(
                f"no model could be selected for {n} points ({detail}): choose a model explicitly "
                "(mono needs 2 points, trapezoid 1 with a nuclide)"
            )
    use_aicc = all(fitted[name].stats.aicc is not None for name in ranked)
    criterion_name: SelectionCriterion = "AICc" if use_aicc else "AIC"
    values = {
        name: float(fitted[name].stats.aicc if use_aicc else fitted[name].stats.aic)  # type: ignore[arg-type]
        for name in ranked
    }
    weights = akaike_weights([values[name] for name in ranked])
    weight_of = dict(zip(ranked, (float(w) for w in weights), strict=True))
    candidates = tuple(
        _candidate(
            fitted[name].model,
            fitted[name].accepted,
            fitted[name].stats,
            weight=weight_of[name],
            criterion=values[name],
            reason=reasons.get(name) if fallback_cv else None,
        )
        if name in ranked
        else (
            _candidate(
                fitted[name].model,
                fitted[name].accepted,
                fitted[name].stats,
                weight=0.0,
                criterion=None,
                reason=reasons[name],
            )
            if name in fitted
            else Candidate(model=name, aicc=None, weight=0.0, rejected_reason=reasons[name])
        )
        for name in names
    )
    lowest = min(values.values())
    supported = [name for name in ranked if values[name] - lowest <= PARSIMONY_DELTA]
    best = min(supported, key=lambda name: (fitted[name].stats.n_parameters, values[name]))
    chosen = fitted[best]
    flags, quality_notes = _quality_flags(chosen.stats, tac, best)
    notes: list[str] = [note for name in ranked for note in fitted[name].accepted.notes]
    if not use_aicc:
        undefined = [name for name in ranked if fitted[name].stats.aicc is None]
        notes.append(
            f"selected by AIC: AICc is undefined for {', '.join(undefined)} at {n} points (N <= K + 1), so "
            "every admissible form is ranked by AIC with the known-sigma likelihood"
            if tac.sigma_mbq is not None
            else f"selected by AIC: AICc is undefined for {', '.join(undefined)} at {n} points (N <= K + 1)"
        )
    if len(ranked) == 1 and len(names) > 1:
        flags.insert(0, FLAG_TOO_FEW_POINTS)
        notes.append(
            f"too few points for model selection among several forms ({n}): only {best} could be ranked"
        )
    if fallback_cv:
        notes.append(
            "no form met the coefficient-of-variation acceptance (< 50 %): the physically valid forms were "
            "ranked and the selected fit is flagged"
        )
    if prior is not None:
        flags.append(FLAG_PRIOR)
        notes.append(_prior_note(prior))
    return _result_from_parametric(
        chosen.model,
        chosen.accepted,
        tac,
        candidates,
        chosen.stats,
        decay,
        (*notes, *quality_notes),
        tuple(flags),
        criterion_name,
        prior,
    )
