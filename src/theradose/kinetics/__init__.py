"""Kinetics: time–activity curves, fitting with AICc model selection, integration, single time point.

Public API::

    from theradose.kinetics import fit_tac, stp_tia_mbq_h, TimeActivityCurve
    result = fit_tac(time_h, activity_mbq, sigma_mbq, model="auto", decay_constant_per_h=lam)
    result.tia_mbq_h, result.tia_sigma_mbq_h, result.evaluate(time_h)
"""

from __future__ import annotations

from theradose.kinetics.fit import (
    Candidate,
    FitResult,
    ModelChoice,
    TrapezoidTail,
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
    MODELS,
    BiExponential,
    ExponentialModel,
    MonoExponential,
    TriExponential,
    get_model,
)
from theradose.kinetics.stp import StpMethod, hanscheid_tia_mbq_h, madsen_tia_mbq_h, stp_tia_mbq_h
from theradose.kinetics.tac import TimeActivityCurve, read_tac_csv

__all__ = [
    "MODELS",
    "BiExponential",
    "Candidate",
    "ExponentialModel",
    "FitResult",
    "ModelChoice",
    "MonoExponential",
    "StpMethod",
    "TimeActivityCurve",
    "TrapezoidTail",
    "TriExponential",
    "aicc",
    "akaike_weights",
    "evaluate_trapezoid",
    "fit_tac",
    "get_model",
    "hanscheid_tia_mbq_h",
    "integrate_bi_exp",
    "integrate_mono_exp",
    "integrate_trapezoid",
    "integrate_tri_exp",
    "madsen_tia_mbq_h",
    "read_tac_csv",
    "stp_tia_mbq_h",
    "trapezoid_weights",
]
