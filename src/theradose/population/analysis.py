"""Population analytics: dose–effect, NTCP, survival by dose group, outcome prediction.

* :func:`fit_logistic` — logistic dose–effect ``P = 1/(1 + exp(-(β0 + β1·D)))`` by maximum likelihood
  (Newton–Raphson / iteratively reweighted least squares; McCullagh & Nelder 1989, *Generalized Linear
  Models*, 2nd ed., §4.4), Wald covariance from the Fisher information, D50 = −β0/β1 with its interval by
  the delta method (Casella & Berger 2002, §5.5.4), and a pointwise confidence band on the linear predictor
  mapped through the logistic function.
* :func:`fit_lkb` — Lyman–Kutcher–Burman NTCP ``Φ((gEUD − TD50)/(m·TD50))`` (Lyman 1985, Radiat Res
  Suppl 8:S13–S19; Kutcher & Burman 1989, Int J Radiat Oncol Biol Phys 16:1623–1630), with
  ``gEUD = (Σ v_i D_i^(1/n))^n`` (Niemierko 1999, Med Phys 26:1100; Mohan et al. 1992 for the LKB
  equivalence), fitted by maximum likelihood; intervals from the observed information (numerical Hessian).
* :func:`survival_by_dose_group` — Kaplan–Meier per dose group (Kaplan & Meier 1958, J Am Stat Assoc
  53:457), log-rank test, Cox proportional hazards on dose (Cox 1972, J R Stat Soc B 34:187), via
  ``lifelines``.
* :func:`predict_outcome` — scikit-learn logistic model: cross-validated AUC on the training part only,
  then AUC and Brier score (Brier 1950, Mon Weather Rev 78:1) on a stratified held-out part never used in
  fitting, and a calibration curve of the held-out predictions.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import FitError, InputError

FloatArray = npt.NDArray[np.float64]

#: Named endpoints of a registry: outcome rule and the default dose (tissue or kind, quantity).
ENDPOINTS: dict[str, tuple[str, str]] = {
    "response": ("tumour", "dose_gy"),
    "psa_response": ("tumour", "dose_gy"),
    "kidney_toxicity": ("kidney", "bed_gy"),
    "xerostomia": ("salivary_glands", "dose_gy"),
    "toxicity": ("kidney", "bed_gy"),
}


def _z(level: float) -> float:
    from scipy.stats import norm

    if not 0.0 < level < 1.0:
        raise InputError(f"confidence level must be between 0 and 1; got {level}")
    return float(norm.ppf(0.5 + level / 2.0))


def _binary(outcome: npt.ArrayLike, name: str = "outcome") -> FloatArray:
    y = np.asarray(outcome, dtype=np.float64)
    if y.ndim != 1 or not np.all(np.isin(y, (0.0, 1.0))):
        raise InputError(f"{name} must be a 1-D array of 0/1; got values {np.unique(y)[:5].tolist()}")
    return y


# ------------------------------------------------------------------------------------------ logistic
@dataclass(frozen=True)
class LogisticFit:
    """Logistic dose–effect fit.

    Attributes
    ----------
    intercept, slope_per_gy : float
        β0 and β1 (1/Gy).
    covariance : tuple of tuple of float
        2×2 covariance of (β0, β1).
    d50_gy : float
        Dose of 50 % effect, −β0/β1.
    d50_ci_gy, slope_ci_per_gy : tuple of float
        Confidence intervals (delta method for D50, Wald for β1) at ``confidence_level``.
    gamma50 : float
        Normalised slope β1·D50/4 (Bentzen & Tucker 1997, Int J Radiat Biol 71:531).
    n, events : int
    log_likelihood : float
    confidence_level : float
    """

    intercept: float
    slope_per_gy: float
    covariance: tuple[tuple[float, float], tuple[float, float]]
    d50_gy: float
    d50_ci_gy: tuple[float, float]
    slope_ci_per_gy: tuple[float, float]
    gamma50: float
    n: int
    events: int
    log_likelihood: float
    confidence_level: float

    def probability(self, dose_gy: npt.ArrayLike) -> FloatArray:
        """Fitted P(effect) at ``dose_gy``."""
        d = np.asarray(dose_gy, dtype=np.float64)
        return np.asarray(1.0 / (1.0 + np.exp(-(self.intercept + self.slope_per_gy * d))), dtype=np.float64)

    def band(self, dose_gy: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Pointwise confidence band (lower, upper) of P at ``dose_gy`` (Wald on the linear predictor)."""
        d = np.asarray(dose_gy, dtype=np.float64)
        c = np.asarray(self.covariance)
        eta = self.intercept + self.slope_per_gy * d
        se = np.sqrt(c[0, 0] + 2.0 * d * c[0, 1] + d * d * c[1, 1])
        z = _z(self.confidence_level)
        lo = 1.0 / (1.0 + np.exp(-(eta - z * se)))
        hi = 1.0 / (1.0 + np.exp(-(eta + z * se)))
        return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)

    def as_dict(self) -> dict[str, Any]:
        return {
            "intercept": self.intercept,
            "slope_per_gy": self.slope_per_gy,
            "slope_ci_per_gy": list(self.slope_ci_per_gy),
            "d50_gy": self.d50_gy,
            "d50_ci_gy": list(self.d50_ci_gy),
            "gamma50": self.gamma50,
            "n": self.n,
            "events": self.events,
            "log_likelihood": self.log_likelihood,
            "confidence_level": self.confidence_level,
        }


def fit_logistic(
    dose_gy: npt.ArrayLike,
    outcome: npt.ArrayLike,
    *,
    confidence_level: float = 0.95,
    max_iterations: int = 100,
) -> LogisticFit:
    """Maximum-likelihood logistic regression of a binary outcome on dose.

    Parameters
    ----------
    dose_gy : array_like, shape (N,)
        Dose (Gy, or BED in Gy) per patient.
    outcome : array_like, shape (N,)
        0/1 per patient.
    confidence_level : float
        Level of the intervals and band.
    max_iterations : int
        Newton–Raphson iterations.

    Returns
    -------
    LogisticFit

    Raises
    ------
    FitError
        Complete separation or no convergence; fewer than 2 events or non-events.
    """
    d = np.asarray(dose_gy, dtype=np.float64)
    y = _binary(outcome)
    if d.shape != y.shape or not np.all(np.isfinite(d)):
        raise InputError(f"dose_gy must be finite with the shape of outcome {y.shape}; got {d.shape}")
    events = int(y.sum())
    if events < 2 or len(y) - events < 2:
        raise FitError(
            f"need >= 2 events and >= 2 non-events for a dose–effect fit; got {events} of {len(y)}"
        )
    events_d, others_d = d[y == 1], d[y == 0]
    if events_d.min() >= others_d.max() or events_d.max() <= others_d.min():
        raise FitError(
            "complete separation: every event lies on one side of every non-event in dose, so the "
            "maximum-likelihood slope is infinite; collect more patients or use a penalised model"
        )
    x = np.column_stack([np.ones_like(d), d])
    beta = np.zeros(2)
    converged = False
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(max_iterations):
            p = 1.0 / (1.0 + np.exp(-(x @ beta)))
            w = p * (1.0 - p)
            info = x.T @ (x * w[:, None])
            try:
                step = np.linalg.solve(info, x.T @ (y - p))
            except np.linalg.LinAlgError:
                break
            beta = beta + step
            if not np.all(np.isfinite(beta)):
                break
            if np.max(np.abs(step)) < 1e-10 * (1.0 + np.max(np.abs(beta))):
                converged = True
                break
    if not converged or abs(beta[1]) < 1e-12 or not np.all(np.isfinite(beta)):
        raise FitError("logistic fit did not converge (quasi-complete separation of outcomes by dose?)")
    p = 1.0 / (1.0 + np.exp(-(x @ beta)))
    w = p * (1.0 - p)
    cov = np.linalg.inv(x.T @ (x * w[:, None]))
    b0, b1 = float(beta[0]), float(beta[1])
    d50 = -b0 / b1
    grad = np.array([-1.0 / b1, b0 / b1**2])
    se_d50 = float(np.sqrt(grad @ cov @ grad))
    z = _z(confidence_level)
    se_b1 = float(np.sqrt(cov[1, 1]))
    eps = 1e-300
    loglik = float(np.sum(y * np.log(np.maximum(p, eps)) + (1 - y) * np.log(np.maximum(1 - p, eps))))
    return LogisticFit(
        intercept=b0,
        slope_per_gy=b1,
        covariance=((float(cov[0, 0]), float(cov[0, 1])), (float(cov[1, 0]), float(cov[1, 1]))),
        d50_gy=d50,
        d50_ci_gy=(d50 - z * se_d50, d50 + z * se_d50),
        slope_ci_per_gy=(b1 - z * se_b1, b1 + z * se_b1),
        gamma50=b1 * d50 / 4.0,
        n=len(y),
        events=events,
        log_likelihood=loglik,
        confidence_level=confidence_level,
    )


# ------------------------------------------------------------------------------------------------ LKB
def geud_gy(dose_gy: npt.ArrayLike, volume_fraction: npt.ArrayLike, *, n: float) -> float:
    """Generalised equivalent uniform dose ``(Σ v_i D_i^(1/n))^n`` of a differential DVH.

    Parameters
    ----------
    dose_gy : array_like, shape (K,)
        Dose of each DVH bin or sub-volume (Gy, ≥ 0).
    volume_fraction : array_like, shape (K,)
        Relative volume of each bin (normalised here to sum 1).
    n : float
        Volume-effect parameter (> 0); n = 1 gives the mean dose (Niemierko 1999, Med Phys 26:1100).
    """
    d = np.asarray(dose_gy, dtype=np.float64)
    v = np.asarray(volume_fraction, dtype=np.float64)
    if d.shape != v.shape or d.ndim != 1 or d.size == 0:
        raise InputError(f"dose_gy and volume_fraction must be 1-D of equal length; got {d.shape}, {v.shape}")
    if n <= 0 or np.any(d < 0) or np.any(v < 0) or v.sum() <= 0:
        raise InputError("gEUD needs n > 0, doses >= 0 and volume fractions >= 0 with a positive sum")
    v = v / v.sum()
    return float(np.sum(v * d ** (1.0 / n)) ** n)


def lkb_ntcp(geud: npt.ArrayLike, *, td50_gy: float, m: float) -> FloatArray:
    """LKB normal-tissue complication probability ``Φ((gEUD − TD50)/(m·TD50))`` (Lyman 1985)."""
    from scipy.stats import norm

    g = np.asarray(geud, dtype=np.float64)
    if td50_gy <= 0 or m <= 0:
        raise InputError(f"td50_gy and m must be > 0; got {td50_gy}, {m}")
    return np.asarray(norm.cdf((g - td50_gy) / (m * td50_gy)), dtype=np.float64)


@dataclass(frozen=True)
class LkbFit:
    """LKB NTCP fit.

    Attributes
    ----------
    td50_gy, m, n : float
    td50_ci_gy, m_ci, n_ci : tuple of float
        Wald intervals from the observed information (``n_ci`` is (n, n) when n was fixed).
    n_fixed : bool
    patients, events : int
    log_likelihood : float
    confidence_level : float
    """

    td50_gy: float
    m: float
    n: float
    td50_ci_gy: tuple[float, float]
    m_ci: tuple[float, float]
    n_ci: tuple[float, float]
    n_fixed: bool
    patients: int
    events: int
    log_likelihood: float
    confidence_level: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "td50_gy": self.td50_gy,
            "td50_ci_gy": list(self.td50_ci_gy),
            "m": self.m,
            "m_ci": list(self.m_ci),
            "n": self.n,
            "n_ci": list(self.n_ci),
            "n_fixed": self.n_fixed,
            "patients": self.patients,
            "events": self.events,
            "log_likelihood": self.log_likelihood,
            "confidence_level": self.confidence_level,
        }


def _hessian(f: Any, x: FloatArray) -> FloatArray:
    """Central-difference Hessian of a scalar function."""
    k = len(x)
    h = 1e-4 * np.maximum(np.abs(x), 1e-2)
    out = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            ei = np.zeros(k)
            ej = np.zeros(k)
            ei[i] = h[i]
            ej[j] = h[j]
            val = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4.0 * h[i] * h[j])
            out[i, j] = out[j, i] = val
    return out


def fit_lkb(
    dvh_dose_gy: Sequence[npt.ArrayLike],
    dvh_volume_fraction: Sequence[npt.ArrayLike],
    complication: npt.ArrayLike,
    *,
    n: float | None = None,
    confidence_level: float = 0.95,
) -> LkbFit:
    """Fit TD50, m (and n unless fixed) of the LKB model by maximum likelihood.

    Parameters
    ----------
    dvh_dose_gy, dvh_volume_fraction : sequence of array_like
        Per patient, the differential DVH of the organ (dose per bin, relative volume per bin). A single
        bin holding the mean dose with ``n = 1`` fits the mean-dose Lyman model.
    complication : array_like, shape (N,)
        0/1 per patient (e.g. CTCAE grade ≥ 2 of the organ's toxicity).
    n : float, optional
        Fixed volume parameter; None fits it too (> 0). n is weakly identified unless the DVHs are
        heterogeneous and the cohort large: expect a wide interval.
    confidence_level : float

    Returns
    -------
    LkbFit
    """
    from scipy.optimize import minimize
    from scipy.stats import norm

    y = _binary(complication, "complication")
    if len(dvh_dose_gy) != len(y) or len(dvh_volume_fraction) != len(y):
        raise InputError("one DVH (doses and volume fractions) per patient is required")
    events = int(y.sum())
    if events < 2 or len(y) - events < 2:
        raise FitError(f"need >= 2 complications and >= 2 without; got {events} of {len(y)}")
    doses = [np.asarray(d, dtype=np.float64) for d in dvh_dose_gy]
    vols = [np.asarray(v, dtype=np.float64) / np.sum(v) for v in dvh_volume_fraction]

    def geuds(n_value: float) -> FloatArray:
        return np.array(
            [float(np.sum(v * dd ** (1.0 / n_value)) ** n_value) for dd, v in zip(doses, vols, strict=True)]
        )

    fixed_geud = geuds(float(n)) if n is not None else None

    def nll(theta: FloatArray) -> float:
        td50, m = float(theta[0]), float(theta[1])
        n_value = float(theta[2]) if n is None else float(n)
        if td50 <= 0 or m <= 0 or n_value <= 0:
            return 1e300
        g = fixed_geud if fixed_geud is not None else geuds(n_value)
        p = norm.cdf((g - td50) / (m * td50))
        p = np.clip(p, 1e-12, 1.0 - 1e-12)
        return float(-np.sum(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))

    start_geud = geuds(n if n is not None else 1.0)
    start = [float(np.median(start_geud)), 0.3] + ([0.5] if n is None else [])
    bounds = [(1e-3, None), (1e-3, 5.0)] + ([(0.05, None)] if n is None else [])
    best = minimize(nll, np.array(start), method="L-BFGS-B", bounds=bounds)
    best = minimize(
        nll, best.x, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 5000}
    )
    if not best.success:
        raise FitError(f"LKB fit did not converge: {best.message}")
    theta = np.asarray(best.x, dtype=np.float64)
    hess = _hessian(nll, theta)
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        raise FitError("LKB fit: singular information matrix (too few events near TD50?)") from None
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    z = _z(confidence_level)
    n_value = float(theta[2]) if n is None else float(n)
    n_ci = (n_value - z * float(se[2]), n_value + z * float(se[2])) if n is None else (n_value, n_value)
    return LkbFit(
        td50_gy=float(theta[0]),
        m=float(theta[1]),
        n=n_value,
        td50_ci_gy=(float(theta[0] - z * se[0]), float(theta[0] + z * se[0])),
        m_ci=(float(theta[1] - z * se[1]), float(theta[1] + z * se[1])),
        n_ci=n_ci,
        n_fixed=n is not None,
        patients=len(y),
        events=events,
        log_likelihood=-float(best.fun),
        confidence_level=confidence_level,
    )


# ------------------------------------------------------------------------------------------- survival
@dataclass(frozen=True)
class DoseGroup:
    """One dose group's Kaplan–Meier summary."""

    label: str
    dose_min_gy: float
    dose_max_gy: float
    patients: int
    events: int
    median_survival: float | None


@dataclass(frozen=True)
class SurvivalAnalysis:
    """Survival by dose group and Cox proportional hazards on dose.

    Attributes
    ----------
    groups : tuple of DoseGroup
    logrank_p : float
        Multivariate log-rank test across groups.
    hazard_ratio_per_gy : float
        exp(β) of the Cox model on dose.
    log_hazard_ratio_per_gy : float
    log_hazard_ratio_ci : tuple of float
    cox_p : float
    concordance : float
    """

    groups: tuple[DoseGroup, ...]
    logrank_p: float
    hazard_ratio_per_gy: float
    log_hazard_ratio_per_gy: float
    log_hazard_ratio_ci: tuple[float, float]
    cox_p: float
    concordance: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "groups": [g.__dict__ for g in self.groups],
            "logrank_p": self.logrank_p,
            "hazard_ratio_per_gy": self.hazard_ratio_per_gy,
            "log_hazard_ratio_per_gy": self.log_hazard_ratio_per_gy,
            "log_hazard_ratio_ci": list(self.log_hazard_ratio_ci),
            "cox_p": self.cox_p,
            "concordance": self.concordance,
        }


def kaplan_meier(time: npt.ArrayLike, event: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Kaplan–Meier survival function: event times and S(t) just after each (lifelines)."""
    from lifelines import KaplanMeierFitter

    km = KaplanMeierFitter().fit(np.asarray(time, dtype=np.float64), np.asarray(event, dtype=np.float64))
    sf = km.survival_function_
    return np.asarray(sf.index, dtype=np.float64), np.asarray(sf.iloc[:, 0], dtype=np.float64)


def survival_by_dose_group(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    dose_gy: npt.ArrayLike,
    *,
    groups: int = 2,
    confidence_level: float = 0.95,
    plot_path: str | Path | None = None,
) -> SurvivalAnalysis:
    """Kaplan–Meier by dose quantile group, log-rank test, and Cox regression on continuous dose.

    Parameters
    ----------
    time : array_like, shape (N,)
        Follow-up (e.g. months), ≥ 0.
    event : array_like, shape (N,)
        1 = event, 0 = censored.
    dose_gy : array_like, shape (N,)
    groups : int
        Number of dose groups (quantiles; 2 = below/above the median).
    confidence_level : float
    plot_path : path, optional
        PNG of the Kaplan–Meier curves.
    """
    import pandas as pd
    from lifelines import CoxPHFitter, KaplanMeierFitter
    from lifelines.statistics import multivariate_logrank_test

    t = np.asarray(time, dtype=np.float64)
    e = _binary(event, "event")
    d = np.asarray(dose_gy, dtype=np.float64)
    if not (t.shape == e.shape == d.shape) or np.any(t < 0):
        raise InputError("time, event and dose_gy must have equal length and time must be >= 0")
    if groups < 2 or len(t) < 2 * groups:
        raise InputError(f"groups must be >= 2 with >= 2 patients each; got {groups} for {len(t)} patients")
    edges = np.quantile(d, np.linspace(0.0, 1.0, groups + 1))
    index = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, groups - 1)
    summaries = []
    curves = []
    for g in range(groups):
        sel = index == g
        km = KaplanMeierFitter().fit(t[sel], e[sel], label=f"{edges[g]:.3g}–{edges[g + 1]:.3g} Gy")
        median = float(km.median_survival_time_)
        summaries.append(
            DoseGroup(
                label=f"{edges[g]:.3g}–{edges[g + 1]:.3g} Gy",
                dose_min_gy=float(d[sel].min()),
                dose_max_gy=float(d[sel].max()),
                patients=int(sel.sum()),
                events=int(e[sel].sum()),
                median_survival=median if math.isfinite(median) else None,
            )
        )
        curves.append(km)
    logrank = multivariate_logrank_test(t, index, e)
    frame = pd.DataFrame({"time": t, "event": e, "dose_gy": d})
    cox = CoxPHFitter(alpha=1.0 - confidence_level).fit(frame, duration_col="time", event_col="event")
    beta = float(cox.params_["dose_gy"])
    ci = cox.confidence_intervals_.loc["dose_gy"]
    if plot_path is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for km in curves:
            km.plot_survival_function(ax=ax, ci_show=True)
        ax.set_xlabel("time")
        ax.set_ylabel("survival probability")
        ax.set_title(f"Kaplan–Meier by dose group (log-rank p = {float(logrank.p_value):.3g})")
        fig.tight_layout()
        fig.savefig(plot_path, dpi=100)
        plt.close(fig)
    return SurvivalAnalysis(
        groups=tuple(summaries),
        logrank_p=float(logrank.p_value),
        hazard_ratio_per_gy=math.exp(beta),
        log_hazard_ratio_per_gy=beta,
        log_hazard_ratio_ci=(float(ci.iloc[0]), float(ci.iloc[1])),
        cox_p=float(cox.summary.loc["dose_gy", "p"]),
        concordance=float(cox.concordance_index_),
    )


# ------------------------------------------------------------------------------------------ prediction
@dataclass(frozen=True)
class PredictionResult:
    """Cross-validated and held-out performance of an outcome model.

    Attributes
    ----------
    features : tuple of str
    cv_auc_mean, cv_auc_sd : float
        ROC AUC over the cross-validation folds of the training part.
    test_auc, test_brier : float
        On the held-out part (never used in fitting or model selection).
    n_train, n_test : int
    calibration : tuple of (float, float)
        (mean predicted, observed fraction) per bin of the held-out predictions.
    coefficients : dict
        Standardised coefficients of the final model.
    """

    features: tuple[str, ...]
    cv_auc_mean: float
    cv_auc_sd: float
    test_auc: float
    test_brier: float
    n_train: int
    n_test: int
    calibration: tuple[tuple[float, float], ...]
    coefficients: Mapping[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "cv_auc_mean": self.cv_auc_mean,
            "cv_auc_sd": self.cv_auc_sd,
            "test_auc": self.test_auc,
            "test_brier": self.test_brier,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "calibration": [list(c) for c in self.calibration],
            "coefficients": dict(self.coefficients),
        }


def predict_outcome(
    features: Any,
    outcome: npt.ArrayLike,
    *,
    seed: int,
    test_fraction: float = 0.3,
    folds: int = 5,
    calibration_bins: int = 5,
    plot_path: str | Path | None = None,
) -> PredictionResult:
    """Train a standardised logistic model; report cross-validated and honest held-out metrics.

    Parameters
    ----------
    features : pandas.DataFrame, shape (N, F)
        Numeric predictors (e.g. tumour dose, kidney BED, age).
    outcome : array_like, shape (N,)
        0/1.
    seed : int
        Seed of the split and the folds.
    test_fraction : float
        Fraction held out (stratified) before any fitting.
    folds : int
        Stratified cross-validation folds on the training part.
    calibration_bins : int
    plot_path : path, optional
        PNG of the held-out calibration curve.
    """
    from sklearn.calibration import calibration_curve
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = _binary(outcome).astype(int)
    names = tuple(
        str(c) for c in getattr(features, "columns", [f"x{i}" for i in range(np.shape(features)[1])])
    )
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(y) or not np.all(np.isfinite(x)):
        raise InputError(f"features must be a finite (N, F) table with N = {len(y)}; got shape {x.shape}")
    if not 0.1 <= test_fraction <= 0.5:
        raise InputError(f"test_fraction must be within [0.1, 0.5]; got {test_fraction}")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(model, x_train, y_train, cv=cv, scoring="roc_auc")
    model.fit(x_train, y_train)
    p_test = model.predict_proba(x_test)[:, 1]
    frac, mean_pred = calibration_curve(y_test, p_test, n_bins=calibration_bins, strategy="quantile")
    coef = model[-1].coef_[0]
    result = PredictionResult(
        features=names,
        cv_auc_mean=float(np.mean(scores)),
        cv_auc_sd=float(np.std(scores, ddof=1)),
        test_auc=float(roc_auc_score(y_test, p_test)),
        test_brier=float(brier_score_loss(y_test, p_test)),
        n_train=len(y_train),
        n_test=len(y_test),
        calibration=tuple((float(a), float(b)) for a, b in zip(mean_pred, frac, strict=True)),
        coefficients={n: float(c) for n, c in zip(names, coef, strict=True)},
    )
    if plot_path is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect")
        ax.plot(mean_pred, frac, marker="o", label=f"held-out (AUC {result.test_auc:.2f})")
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed fraction")
        ax.set_title("Calibration on the held-out set")
        ax.legend()
        fig.tight_layout()
        fig.savefig(plot_path, dpi=100)
        plt.close(fig)
    return result


# ------------------------------------------------------------------------------------------- registry
def endpoint_table(
    registry: Any,
    endpoint: str,
    *,
    dose: str | None = None,
    threshold: int = 1,
    per: Literal["patient", "study"] = "patient",
) -> Any:
    """Dose and binary outcome of a registry for one endpoint, per patient (default) or per study.

    Parameters
    ----------
    registry : pandas.DataFrame
        From :func:`theradose.population.registry.build_registry` (or its Parquet file).
    endpoint : str
        ``response`` (CR/PR vs SD/PD), ``psa_response`` (PCWG3 confirmed response vs not),
        ``kidney_toxicity`` (worst creatinine/eGFR CTCAE grade ≥ ``threshold``), ``xerostomia`` (worst
        grade ≥ ``threshold``), ``toxicity`` (``toxicity_grade`` ≥ ``threshold``), or any 0/1 column.
    dose : str, optional
        ``"<region, tissue or kind>:<quantity>"``, e.g. ``"tumour:dose_gy"``, ``"kidney:bed_gy"``; default
        per endpoint (:data:`ENDPOINTS`). The region of that name is used, else its plural aggregate
        (``kidneys``, ``tumours``, as the study pipeline writes them), else every region of that tissue or
        kind combined mass-weighted (which assumes they do not overlap).
    threshold : int
        CTCAE grade that counts as an event.
    per : {"patient", "study"}
        ``patient``: one row per patient, the dose summed over the patient's studies (cycles) — the
        cumulative absorbed dose, or the total BED, which adds over cycles delivered well apart (Dale
        1985, Br J Radiol 58:515) — and the patient-level outcome; counting each cycle as a separate
        observation would repeat the same outcome and make the intervals too narrow. ``study``: one row
        per study (for outcomes recorded per cycle).

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``study_id`` (the patient's first study when ``per="patient"``), ``studies``
        (count), ``dose`` and ``outcome`` (0/1); rows without either dropped.
    """
    import pandas as pd

    region_key, quantity = dose.split(":", 1) if dose else ENDPOINTS.get(endpoint, ("tumour", "dose_gy"))
    if quantity not in registry.columns:
        raise InputError(f"--dose quantity {quantity!r} is not a registry column: use dose_gy, bed_gy, ...")
    names = set(registry["region"])
    if region_key in names:
        sel = registry["region"] == region_key
    elif f"{region_key}s" in names:  # the aggregate region the pipeline writes: kidneys, tumours
        sel = registry["region"] == f"{region_key}s"
    else:
        sel = (registry["tissue"] == region_key) | (registry["kind"] == region_key)
    if not sel.any():
        raise InputError(f"no region with tissue/kind/name {region_key!r} in the registry: choose --dose")
    part = registry[sel].copy()
    part["weight"] = part["mass_g"].fillna(1.0)
    part["wq"] = part[quantity] * part["weight"]
    doses = part.groupby("study_id").agg(wq=("wq", "sum"), w=("weight", "sum"))
    dose_by_study = (doses["wq"] / doses["w"]).rename("dose")
    studies = registry.groupby("study_id").first()
    if endpoint in {"response"}:
        values = studies["response_category"].map(lambda c: None if c is None else float(c in ("CR", "PR")))
    elif endpoint == "psa_response":
        values = studies["psa_response"].map(lambda c: None if c is None else float(c == "response"))
    elif endpoint in {"kidney_toxicity", "xerostomia", "toxicity"}:
        cols = {
            "kidney_toxicity": ["ctcae_creatinine_worst_grade", "ctcae_egfr_worst_grade"],
            "xerostomia": ["ctcae_xerostomia_worst_grade"],
            "toxicity": ["toxicity_grade"],
        }[endpoint]
        present = [c for c in cols if c in studies.columns]
        if not present:
            raise InputError(f"endpoint {endpoint!r} needs column(s) {', '.join(cols)}: export with --labs")
        worst = studies[present].astype("float64").max(axis=1, skipna=True)
        values = worst.map(lambda g: None if pd.isna(g) else float(g >= threshold))
    elif endpoint in studies.columns:
        values = studies[endpoint].astype("float64")
    else:
        known = ", ".join([*ENDPOINTS, "or a 0/1 column"])
        raise InputError(f"--endpoint {endpoint!r} is unknown: use {known}")
    table = pd.DataFrame({"patient_id": studies["patient_id"], "outcome": values}).join(dose_by_study)
    table = table.reset_index()
    if per == "study":
        table["studies"] = 1
    elif per == "patient":
        table = (
            table.sort_values("study_id")
            .groupby("patient_id", sort=True)
            .agg(
                study_id=("study_id", "first"),
                studies=("study_id", "size"),
                dose=("dose", lambda x: x.sum(min_count=len(x))),
                outcome=("outcome", "max"),
            )
            .reset_index()
        )
    else:
        raise InputError(f"per must be 'patient' or 'study'; got {per!r}")
    table = table.dropna(subset=["dose", "outcome"]).reset_index(drop=True)
    return table[["patient_id", "study_id", "studies", "dose", "outcome"]]


def dose_effect_plot(
    fit: LogisticFit,
    dose_gy: npt.ArrayLike,
    outcome: npt.ArrayLike,
    path: str | Path,
    *,
    label: str = "dose (Gy)",
) -> Path:
    """PNG of the fitted curve, its confidence band and the observed rate in dose quintiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = np.asarray(dose_gy, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    grid = np.linspace(0.0, float(d.max()) * 1.1, 200)
    lo, hi = fit.band(grid)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.fill_between(grid, lo, hi, alpha=0.25, label=f"{fit.confidence_level:.0%} band")
    ax.plot(grid, fit.probability(grid), label=f"logistic, D50 = {fit.d50_gy:.3g} Gy")
    edges = np.quantile(d, np.linspace(0, 1, 6))
    idx = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, 4)
    centres = [float(d[idx == i].mean()) for i in range(5) if np.any(idx == i)]
    rates = [float(y[idx == i].mean()) for i in range(5) if np.any(idx == i)]
    ax.plot(centres, rates, "o", color="black", label="observed (quintiles)")
    ax.set_xlabel(label)
    ax.set_ylabel("probability of effect")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="best")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def write_html_table(title: str, rows: Mapping[str, Any], path: str | Path) -> Path:
    """A minimal HTML page with one key/value table (values escaped)."""
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows.items()
    )
    text = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><table border='1'>{body}</table></body></html>\n"
    )
    out = Path(path)
    out.write_text(text, encoding="utf-8")
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)
