"""Kinetics: time–activity curves, a NUKFIT-style library of exponential forms with model selection,
acceptance and goodness of fit, population and individual half-life priors, integration, single time
point.

Public API::

    from theradose.kinetics import fit_tac, get_prior, stp_from_earlier_cycle, TimeActivityCurve
    result = fit_tac(time_h, activity_mbq, sigma_mbq, model="auto", decay_constant_per_h=lam)
    result.model, result.tia_mbq_h, result.tia_sigma_mbq_h, result.flags, result.candidates
    fit_tac(t, a, s, decay_constant_per_h=lam, prior=get_prior("psma", "kidneys"))   # MAP
    stp_from_earlier_cycle(96.0, activity_mbq, cycle1_result)                    # cycles 2+
"""

from __future__ import annotations

from theradose.kinetics.fit import (
    CORRELATION_LIMIT,
    CV_LIMIT,
    FIT_FLAGS,
    GOODNESS_OF_FIT_ALPHA,
    Candidate,
    FitResult,
    ModelChoice,
    SelectionCriterion,
    TrapezoidTail,
    aic,
    aicc,
    akaike_weights,
    fit_tac,
)
from theradose.kinetics.integrate import (
    evaluate_trapezoid,
    integrate_bi_exp,
    integrate_mono_exp,
    integrate_trapezoid,
    integrate_tri_exp,
    trapezoid_weights,
)
from theradose.kinetics.models import (
    LIBRARY,
    MODELS,
    PHYSICAL_MODELS,
    BiExponential,
    ExponentialModel,
    MonoExponential,
    SumOfExponentials,
    TriExponential,
    get_model,
)
from theradose.kinetics.priors import HalfLifePrior, available_priors, get_prior
from theradose.kinetics.stp import (
    STP_WINDOW_HALF_LIVES,
    StpMethod,
    StpResult,
    hanscheid_estimate,
    hanscheid_tia_mbq_h,
    madsen_tia_mbq_h,
    stp_from_earlier_cycle,
    stp_from_half_life,
    stp_tia_mbq_h,
)
from theradose.kinetics.tac import TimeActivityCurve, read_tac_csv

__all__ = [
    "CORRELATION_LIMIT",
    "CV_LIMIT",
    "FIT_FLAGS",
    "GOODNESS_OF_FIT_ALPHA",
    "LIBRARY",
    "MODELS",
    "PHYSICAL_MODELS",
    "STP_WINDOW_HALF_LIVES",
    "BiExponential",
    "Candidate",
    "ExponentialModel",
    "FitResult",
    "HalfLifePrior",
    "ModelChoice",
    "MonoExponential",
    "SelectionCriterion",
    "StpMethod",
    "StpResult",
    "SumOfExponentials",
    "TimeActivityCurve",
    "TrapezoidTail",
    "TriExponential",
    "aic",
    "aicc",
    "akaike_weights",
    "available_priors",
    "evaluate_trapezoid",
    "fit_tac",
    "get_model",
    "get_prior",
    "hanscheid_estimate",
    "hanscheid_tia_mbq_h",
    "integrate_bi_exp",
    "integrate_mono_exp",
    "integrate_trapezoid",
    "integrate_tri_exp",
    "madsen_tia_mbq_h",
    "read_tac_csv",
    "stp_from_earlier_cycle",
    "stp_from_half_life",
    "stp_tia_mbq_h",
    "trapezoid_weights",
]
