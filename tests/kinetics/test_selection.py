"""Model selection for clinical schedules (4 time points), Kletting acceptance, goodness of fit, priors.

Truths are analytic: A(t) = A0 (e^{-λ1 t} − e^{-λ2 t}) integrates to A0 (1/λ1 − 1/λ2) (MIRD Pamphlet 21).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from theradose.errors import FitError, InputError
from theradose.kinetics import HalfLifePrior, fit_tac, madsen_tia_mbq_h

LP = math.log(2.0) / 159.528  # 177Lu physical decay constant, 1/h
SCHEDULE_H = np.array([4.0, 24.0, 96.0, 168.0])  # the demo's and a common clinical 4-point schedule

# (effective half-life of washout h, uptake half-life h): tumour-like with a resolved uptake phase,
# kidney-like with fast uptake, and a slow uptake.
SHAPES = [(70.0, 2.0), (90.0, 2.0), (40.0, 0.5), (53.0, 1.0), (80.0, 8.0)]


def uptake_curve(t: np.ndarray, effective_h: float, uptake_h: float) -> tuple[np.ndarray, float]:
    l1, l2 = math.log(2) / effective_h, math.log(2) / uptake_h
    return 100.0 * (np.exp(-l1 * t) - np.exp(-l2 * t)), 100.0 * (1 / l1 - 1 / l2)


@pytest.mark.parametrize(("effective_h", "uptake_h"), SHAPES)
def test_noise_free_four_point_uptake_curves_give_the_analytic_tia(
    effective_h: float, uptake_h: float
) -> None:
    a, truth = uptake_curve(SCHEDULE_H, effective_h, uptake_h)
    result = fit_tac(SCHEDULE_H, a, 0.05 * a, decay_constant_per_h=LP)
    assert abs(result.tia_mbq_h / truth - 1) < 0.02
    assert result.selection_criterion in ("AICc", "AIC")


def test_noisy_four_point_uptake_curves_within_five_percent(rng: np.random.Generator) -> None:
    """Seeded 3 % noise (quantitative SPECT of an organ or large lesion), 25 curves per shape: the mean
    absolute TIA error of automatic selection stays within 5 % of the analytic value; forcing the
    mono-exponential (the old 4-point behaviour) biases the tumour-like curves."""
    noise = 0.03
    print("\nshape (T_eff, T_up) h: mean |error| auto / mono-forced, mean signed error auto / mono-forced")
    for effective_h, uptake_h in SHAPES:
        a, truth = uptake_curve(SCHEDULE_H, effective_h, uptake_h)
        auto_errors, mono_errors = [], []
        for _ in range(25):
            y = a * (1 + noise * rng.standard_normal(a.size))
            auto_errors.append(
                fit_tac(SCHEDULE_H, y, noise * y, decay_constant_per_h=LP).tia_mbq_h / truth - 1
            )
            try:
                mono = fit_tac(SCHEDULE_H, y, noise * y, model="mono", decay_constant_per_h=LP)
            except FitError:  # slower than physical decay: the forced mono-exponential has no answer
                continue
            mono_errors.append(mono.tia_mbq_h / truth - 1)
        auto, mono_e = np.array(auto_errors), np.array(mono_errors)
        mono_text = (
            f"{100 * np.abs(mono_e).mean():.1f} %, {100 * auto.mean():+.1f} % / {100 * mono_e.mean():+.1f} %"
            if mono_e.size
            else f"mono rejected, {100 * auto.mean():+.1f} % / -"
        )
        print(
            f"  ({effective_h:g}, {uptake_h:g}): {100 * np.abs(auto).mean():.1f} % / {mono_text}"
            f" (mono rejected in {25 - mono_e.size} of 25)"
        )
        assert np.abs(auto).mean() < 0.05
        if (effective_h, uptake_h) == (90.0, 2.0):
            assert abs(auto.mean()) < abs(mono_e.mean())


def test_selection_convention_at_four_points_is_aic_with_the_known_sigma_likelihood() -> None:
    """bi (3 parameters) at 4 points has N = K + 1: AICc undefined, so every admissible form is ranked by
    AIC = χ² + 2K (hand formula), and the result says so."""
    a, _ = uptake_curve(SCHEDULE_H, 90.0, 2.0)
    result = fit_tac(SCHEDULE_H, a, 0.05 * a, decay_constant_per_h=LP)
    assert result.model == "bi" and result.selection_criterion == "AIC"
    assert any("selected by AIC" in note for note in result.notes)
    ranked = [c for c in result.candidates if c.criterion is not None]
    assert {c.model for c in ranked} >= {"mono", "bi"}
    for c in ranked:
        assert c.chi_square is not None and c.n_parameters is not None
        assert c.criterion == pytest.approx(c.chi_square + 2 * c.n_parameters)
    mono = next(c for c in result.candidates if c.model == "mono")
    # mono: K = 2, N = 4: AICc = χ² + 4 + 2·2·3/(4 − 2 − 1) = χ² + 16
    assert mono.aicc == pytest.approx(mono.chi_square + 16.0)
    assert sum(c.weight for c in result.candidates) == pytest.approx(1.0)
    too_many = next(c for c in result.candidates if c.model == "tri")
    assert too_many.weight == 0 and "needs at least 6 points" in str(too_many.rejected_reason)


def test_unidentifiable_uptake_rate_is_not_ranked() -> None:
    """Kidney-like uptake (half-life 0.5 h) is over before the first scan at 4 h: the uptake rate of the
    bi-exponential form is not determined (CV > 50 %), so that form is not ranked (Kletting 2013)."""
    a, _ = uptake_curve(SCHEDULE_H, 40.0, 0.5)
    result = fit_tac(SCHEDULE_H, a, 0.05 * a, decay_constant_per_h=LP)
    bi = next(c for c in result.candidates if c.model == "bi")
    assert bi.weight == 0 and bi.max_cv is not None and bi.max_cv >= 0.5
    assert "not identifiable" in str(bi.rejected_reason)
    assert result.model == "mono"


def test_correlation_is_reported_and_flagged() -> None:
    a, _ = uptake_curve(SCHEDULE_H, 70.0, 2.0)
    result = fit_tac(SCHEDULE_H, a, 0.05 * a, decay_constant_per_h=LP)
    corr = result.correlation
    assert corr is not None
    off = np.abs(corr[~np.eye(corr.shape[0], dtype=bool)]).max()
    assert result.max_abs_correlation == pytest.approx(off)
    assert (off >= 0.8) == ("parameter_correlation_above_limit" in result.flags)
    assert result.parameter_cv is not None and set(result.parameter_cv) == set(result.parameters)


def test_inconsistent_curve_is_flagged_not_accepted_silently() -> None:
    """A curve no form describes (mono: χ² ≈ 197 on 2 degrees of freedom) carries the flag
    goodness_of_fit_failed, its p-value, a note, and the Birge-scaled σ."""
    a = np.array([100.0, 150.0, 40.0, 60.0])
    result = fit_tac(SCHEDULE_H, a, 0.05 * a, decay_constant_per_h=LP)
    assert "goodness_of_fit_failed" in result.flags
    assert result.p_value is not None and result.p_value < 0.05
    assert any("goodness of fit failed" in note for note in result.notes)
    assert result.tia_sigma_scaled_mbq_h is not None and result.tia_sigma_mbq_h is not None
    assert result.tia_sigma_scaled_mbq_h == pytest.approx(
        result.tia_sigma_mbq_h * math.sqrt(result.chi_square / result.dof)  # type: ignore[operator]
    )
    mono = fit_tac(SCHEDULE_H, a, 0.05 * a, model="mono", decay_constant_per_h=LP)
    assert mono.dof == 2 and mono.chi_square == pytest.approx(197.4, abs=0.1)
    assert "goodness_of_fit_failed" in mono.flags


def test_goodness_of_fit_p_value_by_hand() -> None:
    """For 2 degrees of freedom the χ² survival function is exactly exp(−χ²/2)."""
    a, _ = uptake_curve(SCHEDULE_H, 53.0, 1.0)
    y = a * np.array([1.02, 0.97, 1.03, 0.98])
    result = fit_tac(SCHEDULE_H, y, 0.03 * y, model="mono", decay_constant_per_h=LP)
    assert result.dof == 2 and result.chi_square is not None
    assert result.p_value == pytest.approx(math.exp(-result.chi_square / 2), rel=1e-9)


def test_without_sigma_goodness_of_fit_is_untested() -> None:
    a, _ = uptake_curve(SCHEDULE_H, 53.0, 1.0)
    result = fit_tac(SCHEDULE_H, a * np.array([1.02, 0.97, 1.03, 0.98]), decay_constant_per_h=LP)
    assert result.p_value is None and "goodness_of_fit_untested" in result.flags


def test_three_points_rank_the_two_parameter_uptake_forms() -> None:
    """3 time points: the 2-parameter forms (mono, uptake with physical retention) have one degree of
    freedom and are ranked; the 3-parameter ones are not, with the reason."""
    t = np.array([4.0, 24.0, 168.0])
    a = 100.0 * (np.exp(-LP * t) - np.exp(-0.1 * t))  # bi_physical truth: TIA = 100 (1/λp − 1/0.1)
    result = fit_tac(t, a, 0.05 * a, decay_constant_per_h=LP)
    by_model = {c.model: c for c in result.candidates}
    assert by_model["bi_physical"].criterion is not None and by_model["physical"].criterion is not None
    assert "needs at least 4 points" in str(by_model["bi"].rejected_reason)
    assert result.model == "bi_physical"
    assert result.tia_mbq_h == pytest.approx(100.0 * (1 / LP - 1 / 0.1), rel=1e-6)


# ----------------------------------------------------------------------------------------- priors


def test_single_point_with_prior_is_madsen_with_the_prior_median() -> None:
    """One point plus a log-normal prior: the MAP mono-exponential passes through the point with the
    prior's median rate, i.e. Madsen's formula with T = median (hand value)."""
    prior = HalfLifePrior(median_h=40.0, log_sigma=0.3, source="test")
    result = fit_tac([96.0], [30.0], [1.5], decay_constant_per_h=LP, prior=prior)
    assert result.model == "mono"
    assert result.tia_mbq_h == pytest.approx(
        madsen_tia_mbq_h(96.0, 30.0, effective_half_life_h=40.0), rel=1e-6
    )
    assert "prior_used" in result.flags and "too_few_points_for_selection" in result.flags
    assert result.effective_half_life_h == pytest.approx(40.0, rel=1e-6)


def test_prior_combines_with_data_by_precision() -> None:
    """Two points determine ln λ with σ_d; a prior adds precision: 1/σ_post² ≈ 1/σ_d² + 1/s² (Gaussian
    in ln λ, exact for a linear model), and the MAP half-life lies between data and prior."""
    t = np.array([24.0, 96.0])
    lam = math.log(2) / 50.0
    a = 100.0 * np.exp(-lam * t)
    sigma = 0.05 * a
    data_only = fit_tac(t, a, sigma, model="mono", decay_constant_per_h=LP)
    assert data_only.parameter_sigmas is not None
    s_data = data_only.parameter_sigmas["lambda1_per_h"] / lam  # σ of ln λ
    prior = HalfLifePrior(median_h=35.0, log_sigma=s_data, source="test")
    result = fit_tac(t, a, sigma, model="mono", decay_constant_per_h=LP, prior=prior)
    assert 35.0 < result.effective_half_life_h < 50.0  # type: ignore[operator]
    # Equal precisions: the MAP ln T is near the mean of ln 50 and ln 35 (linearised model).
    assert result.effective_half_life_h == pytest.approx(math.sqrt(50.0 * 35.0), rel=0.03)
    assert result.parameter_sigmas is not None
    lam_post = result.parameters["lambda1_per_h"]
    sigma_data = data_only.parameter_sigmas["lambda1_per_h"]  # absolute, 1/h
    expected = 1.0 / math.sqrt(1.0 / sigma_data**2 + 1.0 / (s_data * lam_post) ** 2)
    assert result.parameter_sigmas["lambda1_per_h"] == pytest.approx(expected, rel=0.05)


def test_prior_errors() -> None:
    prior = HalfLifePrior(median_h=40.0, log_sigma=0.3, source="test")
    with pytest.raises(InputError, match="needs sigma_mbq"):
        fit_tac([24.0, 96.0], [10.0, 5.0], prior=prior)
    with pytest.raises(InputError, match="takes no prior"):
        fit_tac(
            [24.0, 96.0], [10.0, 5.0], [1.0, 0.5], model="trapezoid", decay_constant_per_h=LP, prior=prior
        )
    with pytest.raises(InputError, match="ends in physical decay"):
        fit_tac(
            [24.0, 96.0], [10.0, 5.0], [1.0, 0.5], model="bi_physical", decay_constant_per_h=LP, prior=prior
        )


def test_fit_json_is_complete_and_serialisable() -> None:
    a, _ = uptake_curve(SCHEDULE_H, 90.0, 2.0)
    data = json.loads(json.dumps(fit_tac(SCHEDULE_H, a, 0.05 * a, decay_constant_per_h=LP).as_dict()))
    for key in ("model", "flags", "notes", "candidates", "tia_sigma_mbq_h", "selection_criterion", "p_value"):
        assert key in data
    not_ranked = [c for c in data["candidates"] if not c["ranked"]]
    assert not_ranked and all(c["reason_not_ranked"] for c in not_ranked)
