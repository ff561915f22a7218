"""Weighted fits, AICc model selection, delta-method TIA uncertainty and rejection of non-physical fits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theradose.errors import FitError, InputError
from theradose.kinetics import aicc, akaike_weights, fit_tac

BI_TRUE = {"a1_mbq": 1000.0, "lambda1_per_h": 0.01, "lambda2_per_h": 0.5}  # TIA 98000 MBq·h by hand
TRI_TRUE = {
    "a1_mbq": 600.0,
    "lambda1_per_h": 0.008,
    "a2_mbq": 400.0,
    "lambda2_per_h": 0.1,
    "lambda3_per_h": 1.0,
}


def mono(t: np.ndarray, a1: float = 800.0, l1: float = 0.02) -> np.ndarray:
    return a1 * np.exp(-l1 * t)


def bi(t: np.ndarray) -> np.ndarray:
    return 1000.0 * (np.exp(-0.01 * t) - np.exp(-0.5 * t))


def tri(t: np.ndarray) -> np.ndarray:
    return 600.0 * np.exp(-0.008 * t) + 400.0 * np.exp(-0.1 * t) - 1000.0 * np.exp(-1.0 * t)


# ---------------------------------------------------------------- AICc and Akaike weights by hand


def test_aicc_with_known_variance_hand_calculation() -> None:
    # chi2 = 10, N = 6, P = K = 2: 10 + 2*2 + 2*2*3/(6-2-1) = 10 + 4 + 4 = 18
    assert aicc(10.0, 6, 2, variance_known=True) == pytest.approx(18.0)


def test_aicc_with_estimated_variance_hand_calculation() -> None:
    # RSS = 12, N = 6, P = 2, K = 3: 6 ln(2) + 6 + 2*3*4/(6-3-1) = 4.158883 + 6 + 12 = 22.158883
    assert aicc(12.0, 6, 2, variance_known=False) == pytest.approx(22.158883, abs=1e-6)


def test_aicc_undefined_for_too_few_points() -> None:
    with pytest.raises(InputError, match="AICc is undefined for n_points=4"):
        aicc(1.0, 4, 2, variance_known=False)  # K = 3, needs N > 4
    with pytest.raises(InputError, match="weighted_rss must be > 0"):
        aicc(0.0, 6, 2, variance_known=False)


def test_akaike_weights_hand_calculation() -> None:
    # Delta = (0, 2): w = (1, e^-1)/(1 + e^-1) = (0.731059, 0.268941)
    np.testing.assert_allclose(akaike_weights([10.0, 12.0]), [0.731059, 0.268941], atol=1e-6)
    w = akaike_weights([3.0, 7.5, 4.2, 30.0])
    assert w.sum() == pytest.approx(1.0)


# ---------------------------------------------------------------- recovery of known parameters


def test_noiseless_mono_recovers_parameters(organ_times_h: np.ndarray) -> None:
    result = fit_tac(organ_times_h, mono(organ_times_h), model="mono")
    assert result.parameters["a1_mbq"] == pytest.approx(800.0, rel=1e-8)
    assert result.parameters["lambda1_per_h"] == pytest.approx(0.02, rel=1e-8)
    assert result.tia_mbq_h == pytest.approx(800.0 / 0.02, rel=1e-8)  # 40000 MBq·h
    assert result.effective_half_life_h == pytest.approx(math.log(2) / 0.02, rel=1e-8)


def test_noiseless_bi_recovers_parameters(organ_times_h: np.ndarray) -> None:
    result = fit_tac(organ_times_h, bi(organ_times_h), model="bi")
    for name, value in BI_TRUE.items():
        assert result.parameters[name] == pytest.approx(value, rel=1e-7)
    assert result.tia_mbq_h == pytest.approx(98000.0, rel=1e-8)
    np.testing.assert_allclose(result.evaluate(np.array([2.0, 300.0])), bi(np.array([2.0, 300.0])), rtol=1e-7)


def test_noiseless_tri_recovers_parameters() -> None:
    t = np.array([0.5, 2.0, 6.0, 24.0, 48.0, 96.0, 168.0, 240.0])
    result = fit_tac(t, tri(t), model="tri")
    for name, value in TRI_TRUE.items():
        assert result.parameters[name] == pytest.approx(value, rel=1e-5)
    assert result.tia_mbq_h == pytest.approx(78000.0, rel=1e-7)


def test_noisy_bi_recovers_tia_within_uncertainty(
    organ_times_h: np.ndarray, rng: np.random.Generator
) -> None:
    sigma = 0.05 * bi(organ_times_h)
    activity = bi(organ_times_h) + sigma * rng.standard_normal(organ_times_h.size)
    result = fit_tac(organ_times_h, activity, sigma, model="bi")
    assert result.tia_sigma_mbq_h is not None
    assert abs(result.tia_mbq_h - 98000.0) < 3 * result.tia_sigma_mbq_h
    assert result.tia_sigma_mbq_h / result.tia_mbq_h < 0.1
    assert result.parameter_sigmas is not None
    assert abs(result.parameters["lambda1_per_h"] - 0.01) < 3 * result.parameter_sigmas["lambda1_per_h"]


# ---------------------------------------------------------------- model selection


def test_auto_selects_mono_for_mono_data(organ_times_h: np.ndarray, rng: np.random.Generator) -> None:
    sigma = 0.03 * mono(organ_times_h)
    activity = mono(organ_times_h) + sigma * rng.standard_normal(organ_times_h.size)
    result = fit_tac(organ_times_h, activity, sigma)
    assert result.model == "mono"
    weights = [c.weight for c in result.candidates]
    assert sum(weights) == pytest.approx(1.0)
    assert [c.model for c in result.candidates] == ["mono", "bi", "tri"]
    tri_candidate = result.candidates[2]
    # tri (5 parameters) at 6 points: AICc undefined (N <= K + 1); its fit is not ranked here because it
    # is non-physical or not identifiable, so every ranked form has an AICc and AICc ranks them.
    assert tri_candidate.weight == 0.0 and tri_candidate.rejected_reason is not None
    assert result.selection_criterion == "AICc"


def test_auto_selects_bi_for_uptake_washout_data(organ_times_h: np.ndarray, rng: np.random.Generator) -> None:
    sigma = 0.05 * bi(organ_times_h)
    activity = bi(organ_times_h) + sigma * rng.standard_normal(organ_times_h.size)
    result = fit_tac(organ_times_h, activity, sigma)
    assert result.model == "bi"
    assert result.candidates[1].weight > 0.99
    assert sum(c.weight for c in result.candidates) == pytest.approx(1.0)
    # The reported AICc is the hand formula applied to the fit's chi-square (K = P = 3, N = 6).
    assert result.aicc == pytest.approx(result.weighted_rss + 2 * 3 + 2 * 3 * 4 / (6 - 3 - 1))


def test_auto_selects_tri_for_three_phase_data(rng: np.random.Generator) -> None:
    t = np.array([0.5, 2.0, 6.0, 24.0, 48.0, 96.0, 168.0, 240.0])
    sigma = 0.01 * tri(t)
    result = fit_tac(t, tri(t) + sigma * rng.standard_normal(t.size), sigma)
    assert result.model == "tri"
    assert result.tia_sigma_mbq_h is not None
    assert abs(result.tia_mbq_h - 78000.0) < 3 * result.tia_sigma_mbq_h


def test_auto_without_sigma_uses_estimated_variance(
    organ_times_h: np.ndarray, rng: np.random.Generator
) -> None:
    activity = mono(organ_times_h) * (1 + 0.02 * rng.standard_normal(organ_times_h.size))
    result = fit_tac(organ_times_h, activity)
    by_model = {c.model: c for c in result.candidates}
    for name, n_parameters in (("mono", 2), ("bi", 3)):
        fitted = fit_tac(organ_times_h, activity, model=name)
        # N ln(RSS/N) + 2K + 2K(K+1)/(N-K-1) with K = P + 1, N = 6
        k = n_parameters + 1
        expected = 6 * math.log(fitted.weighted_rss / 6) + 2 * k + 2 * k * (k + 1) / (6 - k - 1)
        assert by_model[name].aicc == pytest.approx(expected)
    assert result.model == min(("mono", "bi"), key=lambda name: by_model[name].aicc or math.inf)


def test_auto_with_too_few_points_uses_mono_and_says_so(organ_times_h: np.ndarray) -> None:
    """3 points (the common clinical schedule) leave AICc undefined for every model: automatic mode fits
    the simplest model, mono-exponential, and notes why; the TIA of noiseless mono data is exact."""
    t = organ_times_h[:3]
    result = fit_tac(t, mono(t))
    assert result.model == "mono"
    assert any("too few points for model selection" in note for note in result.notes)
    reference = fit_tac(t, mono(t), model="mono")
    assert result.tia_mbq_h == pytest.approx(reference.tia_mbq_h, rel=1e-9)
    with pytest.raises(FitError, match="no model could be selected for 1 points"):
        fit_tac(t[:1], mono(t[:1]))


# ---------------------------------------------------------------- uncertainty vs Monte Carlo


def test_delta_method_sigma_matches_monte_carlo(organ_times_h: np.ndarray, rng: np.random.Generator) -> None:
    """The delta-method TIA σ agrees with the spread of refits of seeded noisy replicas."""
    t = organ_times_h
    sigma = 0.05 * bi(t)
    delta = fit_tac(t, bi(t), sigma, model="bi").tia_sigma_mbq_h
    assert delta is not None
    tias = [
        fit_tac(t, bi(t) + sigma * rng.standard_normal(t.size), sigma, model="bi").tia_mbq_h
        for _ in range(300)
    ]
    assert np.std(tias, ddof=1) == pytest.approx(delta, rel=0.15)


def test_unweighted_sigma_scales_with_residual_scatter(
    organ_times_h: np.ndarray, rng: np.random.Generator
) -> None:
    t = organ_times_h
    noise = rng.standard_normal(t.size)
    small = fit_tac(t, mono(t) + 0.2 * noise, model="mono").tia_sigma_mbq_h
    large = fit_tac(t, mono(t) + 2.0 * noise, model="mono").tia_sigma_mbq_h
    assert small is not None and large is not None
    assert large / small == pytest.approx(10.0, rel=0.05)


def test_exact_fit_without_sigma_has_undefined_uncertainty() -> None:
    t = np.array([4.0, 24.0])
    result = fit_tac(t, mono(t), model="mono")
    assert result.tia_sigma_mbq_h is None
    assert result.tia_mbq_h == pytest.approx(40000.0, rel=1e-8)


# ---------------------------------------------------------------- non-physical fits


def test_growing_tail_is_rejected() -> None:
    with pytest.raises(FitError, match=r"lambda1_per_h=.* is not positive.*growing or flat tail"):
        fit_tac([1.0, 24.0, 48.0, 96.0], [10.0, 50.0, 60.0, 70.0], model="mono")


def test_effective_half_life_longer_than_physical_is_rejected(lu177_decay_constant_per_h: float) -> None:
    t = np.array([1.0, 24.0, 48.0, 96.0])
    activity = 100.0 * np.exp(-0.5 * lu177_decay_constant_per_h * t)  # T_eff = 2 x physical
    sigma = 0.01 * activity
    with pytest.raises(FitError, match=r"longer than the physical half-life 159.5 h"):
        fit_tac(t, activity, sigma, model="mono", decay_constant_per_h=lu177_decay_constant_per_h)
    # Without the nuclide the same curve is a valid fit.
    assert fit_tac(t, activity, sigma, model="mono").effective_half_life_h == pytest.approx(2 * 159.528)


def test_terminal_rate_within_two_sigma_of_physical_is_kept_with_note(
    lu177_decay_constant_per_h: float,
) -> None:
    t = np.array([1.0, 24.0, 48.0, 96.0])
    activity = 100.0 * np.exp(-0.97 * lu177_decay_constant_per_h * t)
    sigma = 0.05 * activity
    result = fit_tac(t, activity, sigma, model="mono", decay_constant_per_h=lu177_decay_constant_per_h)
    assert result.notes and "consistent with no biological clearance" in result.notes[0]


def test_auto_with_slower_than_physical_data_flags_the_fit(
    organ_times_h: np.ndarray, lu177_decay_constant_per_h: float
) -> None:
    """Data that decay at half the physical rate: every form with a fitted terminal rate is rejected
    (negative biological clearance); a physical-decay form is the only one left, and its goodness of fit
    fails — a flag, never a silent acceptance."""
    t = organ_times_h
    activity = 100.0 * np.exp(-0.5 * lu177_decay_constant_per_h * t)
    result = fit_tac(t, activity, 0.01 * activity, decay_constant_per_h=lu177_decay_constant_per_h)
    by_model = {c.model: c for c in result.candidates}
    assert "mono-exponential fit rejected" in str(by_model["mono"].rejected_reason)
    assert "negative biological clearance" in str(by_model["mono"].rejected_reason)
    assert result.model in ("physical", "bi_physical")
    assert "goodness_of_fit_failed" in result.flags
    assert result.p_value is not None and result.p_value < 1e-10
    # Without the nuclide there is no physical bound: the same curve is a valid mono-exponential.
    assert fit_tac(t, activity, 0.01 * activity).model == "mono"


def test_fewer_points_than_parameters_is_an_input_error() -> None:
    with pytest.raises(InputError, match="the TAC has 2 points but model 'bi' has 3 parameters"):
        fit_tac([4.0, 24.0], [10.0, 5.0], model="bi")


def test_bad_decay_constant_is_an_input_error() -> None:
    with pytest.raises(InputError, match="decay_constant_per_h must be a positive finite number"):
        fit_tac([4.0, 24.0], [10.0, 5.0], model="mono", decay_constant_per_h=-1.0)


# ---------------------------------------------------------------- trapezoid model


def test_trapezoid_with_physical_tail(lu177_decay_constant_per_h: float) -> None:
    t = np.array([2.0, 6.0])
    a = np.array([10.0, 6.0])
    sigma = np.array([1.0, 0.5])
    result = fit_tac(t, a, sigma, model="trapezoid", decay_constant_per_h=lu177_decay_constant_per_h)
    # 10*2/2 + 16/2*4 + 6/λ; σ² = (w0·1)² + (w1·0.5)² with w0 = 1 + 2 = 3, w1 = 2 + 1/λ
    w1 = 2.0 + 1.0 / lu177_decay_constant_per_h
    assert result.tia_mbq_h == pytest.approx(10.0 + 32.0 + 6.0 / lu177_decay_constant_per_h)
    assert result.tia_sigma_mbq_h == pytest.approx(math.hypot(3.0, 0.5 * w1))
    assert result.effective_half_life_h is None
    assert [(c.model, c.aicc, c.weight) for c in result.candidates] == [("trapezoid", None, 1.0)]
    assert result.evaluate(np.array([4.0]))[0] == pytest.approx(8.0)


def test_trapezoid_with_fitted_tail() -> None:
    t = np.array([2.0, 6.0, 16.0])
    a = np.array([10.0, 8.0, 4.0])
    result = fit_tac(t, a, model="trapezoid")
    rate = math.log(2.0) / 10.0  # 8 -> 4 MBq in 10 h
    assert result.parameters["tail_decay_constant_per_h"] == pytest.approx(rate)
    assert result.effective_half_life_h == pytest.approx(10.0)
    assert result.tia_mbq_h == pytest.approx(10.0 + 36.0 + 60.0 + 4.0 / rate)
    assert result.tia_sigma_mbq_h is None


def test_trapezoid_fitted_tail_gradient_matches_finite_differences() -> None:
    t = np.array([2.0, 6.0, 16.0])
    a = np.array([10.0, 8.0, 4.0])
    sigma = np.array([1e-12, 0.3, 1e-12])  # only the middle point effectively uncertain
    result = fit_tac(t, a, sigma, model="trapezoid")
    step = 1e-6
    up = fit_tac(t, a + np.array([0.0, step, 0.0]), model="trapezoid").tia_mbq_h
    down = fit_tac(t, a - np.array([0.0, step, 0.0]), model="trapezoid").tia_mbq_h
    assert result.tia_sigma_mbq_h == pytest.approx(abs(up - down) / (2 * step) * 0.3, rel=1e-5)


def test_trapezoid_growing_fitted_tail_is_rejected() -> None:
    with pytest.raises(FitError, match="does not decrease between the last two points"):
        fit_tac([2.0, 6.0, 16.0], [10.0, 4.0, 8.0], model="trapezoid")


def test_trapezoid_physical_tail_needs_decay_constant() -> None:
    with pytest.raises(InputError, match="needs decay_constant_per_h"):
        fit_tac([2.0, 6.0], [10.0, 4.0], model="trapezoid", trapezoid_tail="physical")


def test_two_sigma_coverage_over_random_organ_curves(
    organ_times_h: np.ndarray, rng: np.random.Generator
) -> None:
    """Over seeded random bi-exponential curves (5 % noise), |TIA − true| < 2σ in about 95 % of fits."""
    t = organ_times_h
    covered = 0
    n_curves = 120
    for _ in range(n_curves):
        washout = rng.uniform(0.005, 0.03)
        uptake = rng.uniform(0.2, 2.0)
        amplitude = rng.uniform(50.0, 2000.0)
        truth = amplitude * (np.exp(-washout * t) - np.exp(-uptake * t))
        sigma = 0.05 * truth
        result = fit_tac(t, truth + sigma * rng.standard_normal(t.size), sigma, model="bi")
        assert result.tia_sigma_mbq_h is not None
        true_tia = amplitude * (1 / washout - 1 / uptake)
        covered += abs(result.tia_mbq_h - true_tia) < 2 * result.tia_sigma_mbq_h
    # Binomial(120, 0.95): mean 114, sd 2.4; 105 is about 3.7 sd below.
    assert covered >= 105
