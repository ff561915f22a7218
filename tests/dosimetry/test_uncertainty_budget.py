"""Uncertainty budget (Gear et al. 2018): a hand-calculated case, Monte Carlo agreement, JSON, planning."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theradose.dosimetry.uncertainty_budget import (
    BudgetInputs,
    UncertaintyBudget,
    fit_components,
    max_activity_for_confidence,
    monte_carlo_budget,
    plan_confidence,
    propagate_budget,
    volume_relative_sigma,
    volume_relative_sigma_from_mask,
)
from theradose.errors import InputError

HAND = {
    "region": "tumour_1",
    "dose_gy": 2.0,
    "calibration_rel_sigma": 0.05,
    "recovery_rel_sigma": 0.03,
    "volume_rel_sigma": 0.10,
    "recovery_volume_slope": 0.2,
    "fit_tia_rel_sigma": 0.04,
    "s_value_rel_sigma": 0.02,
}


def test_hand_calculated_budget() -> None:
    """Sensitivities −1, −1, −(0.2 + 1), +1, +1: u² = 0.05² + 0.03² + 0.12² + 0.04² + 0.02² = 0.0198,
    u = 0.140712, σ = 0.281425 Gy; variance shares 0.0144/0.0198 = 0.72727 (volume), 0.12626
    (calibration), ...; the dominant terms are volume then calibration (0.8535 ≥ 0.8)."""
    budget = propagate_budget(BudgetInputs(**HAND))  # type: ignore[arg-type]
    assert budget.dose_relative_sigma == pytest.approx(0.140712, abs=1e-6)
    assert budget.dose_sigma_gy == pytest.approx(0.281425, abs=1e-6)
    assert budget.component("volume").sensitivity == pytest.approx(-1.2)
    assert budget.component("volume").relative_contribution == pytest.approx(0.12)
    assert budget.component("volume").variance_share == pytest.approx(0.72727, abs=1e-5)
    assert budget.component("calibration").variance_share == pytest.approx(0.12626, abs=1e-5)
    assert sum(c.variance_share for c in budget.components) == pytest.approx(1.0)
    assert budget.dominant == ("volume", "calibration")
    assert set(budget.not_assessed) == {"density", "registration", "fit_half_life", "decay_data"}
    assert budget.bed_gy is None


def test_correlation_adds_the_covariance_term() -> None:
    """ρ(calibration, recovery) = 0.5: u² = 0.0198 + 2·(−1)(−1)·0.5·0.05·0.03 = 0.0213, u = 0.145945."""
    budget = propagate_budget(BudgetInputs(**HAND, correlations={("calibration", "recovery"): 0.5}))  # type: ignore[arg-type]
    assert budget.dose_relative_sigma == pytest.approx(0.145945, abs=1e-6)
    assert budget.correlations == (("calibration", "recovery", 0.5),)
    assert sum(c.variance_share for c in budget.components) == pytest.approx(1.0)


def test_bed_budget_by_hand_and_against_radiobiology() -> None:
    """T = 40 h, α/β = 2.6 Gy, T_rep = 2.8 h: G = 2.8/42.8 = 0.0654206, q = G·2/2.6 = 0.0503235,
    BED = 2.100647 Gy; ∂lnBED/∂lnD = 1.100647/1.050324 = 1.047912, ∂lnBED/∂lnT = −0.044778; with
    u(T) = 5 % correlated 0.6 with the fit's TIA: u_BED² = 1.047912²·0.0198 + 0.044778²·0.0025
    − 2·1.047912·0.044778·0.6·0.04·0.05 → u_BED = 0.147089."""
    from theradose.radiobiology import bed_gy

    inputs = BudgetInputs(
        **HAND,  # type: ignore[arg-type]
        effective_half_life_h=40.0,
        fit_half_life_rel_sigma=0.05,
        fit_tia_half_life_correlation=0.6,
        alpha_beta_gy=2.6,
        repair_half_time_h=2.8,
    )
    budget = propagate_budget(inputs)
    assert budget.bed_gy == pytest.approx(2.100647, abs=1e-6)
    assert budget.bed_gy == pytest.approx(
        bed_gy(2.0, effective_half_life_h=40.0, alpha_beta_gy=2.6, repair_half_time_h=2.8), rel=1e-12
    )
    assert budget.bed_relative_sigma == pytest.approx(0.147089, abs=2e-6)
    assert budget.dose_relative_sigma == pytest.approx(0.140712, abs=1e-6)  # the half-life does not enter D
    assert budget.component("fit_half_life").bed_sensitivity == pytest.approx(-0.044778, abs=1e-6)


def kidney_inputs() -> BudgetInputs:
    return BudgetInputs(
        region="kidneys",
        dose_gy=4.31,
        calibration_rel_sigma=0.05,
        recovery_rel_sigma=0.05,
        volume_rel_sigma=0.08,
        density_rel_sigma=0.01,
        registration_rel_sigma=0.03,
        fit_tia_rel_sigma=0.025,
        s_value_rel_sigma=0.02,
        decay_data_rel_sigma=0.001,
        recovery_volume_slope=0.1,
        effective_half_life_h=40.0,
        fit_half_life_rel_sigma=0.04,
        fit_tia_half_life_correlation=0.6,
        alpha_beta_gy=2.6,
        repair_half_time_h=2.8,
        correlations={("calibration", "recovery"): 0.3},
    )


def test_first_order_agrees_with_monte_carlo() -> None:
    """GUM Supplement 1 cross-check: the exact model sampled 200 000 times (correlated inputs) gives the
    same σ of dose and BED as first-order propagation within 5 % (the difference is the curvature of
    1/Q, 1/RC and V^−1.1 at 5–8 % input uncertainties)."""
    inputs = kidney_inputs()
    analytic = propagate_budget(inputs)
    mc = monte_carlo_budget(inputs, n_samples=200_000, seed=7)
    assert mc.dose_sigma_gy == pytest.approx(analytic.dose_sigma_gy, rel=0.05)
    assert mc.bed_sigma_gy == pytest.approx(analytic.bed_sigma_gy, rel=0.05)
    assert mc.dose_mean_gy == pytest.approx(inputs.dose_gy, rel=0.03)
    # Small inputs: the model is nearly linear, agreement within 1 %.
    small = BudgetInputs(
        region="r", dose_gy=1.0, calibration_rel_sigma=0.01, volume_rel_sigma=0.01, fit_tia_rel_sigma=0.01
    )
    assert monte_carlo_budget(small, n_samples=200_000, seed=3).dose_sigma_gy == pytest.approx(
        propagate_budget(small).dose_sigma_gy, rel=0.01
    )


def test_kidney_budget_is_in_the_published_range() -> None:
    """With component values of the order reported for 177Lu kidney dosimetry, the total is ≈ 10–20 %
    (Gear et al. 2018; Staanum et al. 2021 EJNMMI Phys 8:78: ≈ 13 % with 3 SPECT/CTs) — against the
    2.5 % of the fit term alone."""
    budget = propagate_budget(kidney_inputs())
    assert 0.10 < budget.dose_relative_sigma < 0.20
    assert budget.component("fit_tia").relative_contribution == pytest.approx(0.025)
    assert budget.dominant[0] == "volume"


def test_json_round_trip_and_schema_check() -> None:
    budget = propagate_budget(kidney_inputs())
    text = budget.to_json()
    assert UncertaintyBudget.from_json(text) == budget
    data = budget.to_dict()
    data["schema_version"] = 99
    with pytest.raises(InputError, match="schema_version 99"):
        UncertaintyBudget.from_dict(data)
    with pytest.raises(InputError, match="cannot be parsed"):
        UncertaintyBudget.from_json("{")


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(InputError, match="no component assessed"):
        BudgetInputs(region="r", dose_gy=1.0)
    with pytest.raises(InputError, match="calibration_rel_sigma must be"):
        BudgetInputs(region="r", dose_gy=1.0, calibration_rel_sigma=-0.1)
    with pytest.raises(InputError, match="BED needs"):
        BudgetInputs(region="r", dose_gy=1.0, calibration_rel_sigma=0.1, effective_half_life_h=40.0)
    with pytest.raises(InputError, match="must name two different components"):
        BudgetInputs(
            region="r", dose_gy=1.0, calibration_rel_sigma=0.1, correlations={("calibration", "x"): 0.1}
        )
    bad = BudgetInputs(
        region="r",
        dose_gy=1.0,
        calibration_rel_sigma=0.1,
        recovery_rel_sigma=0.1,
        s_value_rel_sigma=0.1,
        correlations={
            ("calibration", "recovery"): 0.9,
            ("recovery", "s_value"): 0.9,
            ("calibration", "s_value"): -0.9,
        },
    )
    with pytest.raises(InputError, match="not a valid correlation matrix"):
        propagate_budget(bad)


def test_volume_sigma_from_one_voxel_dilation_and_erosion() -> None:
    """A 5×5×5 cube: dilation by one voxel (6-connected) adds the 6 faces (6·25 = 150 voxels), erosion
    leaves 3×3×3 = 27: σ_V/V = (275 − 27)/(2·125) = 0.992 (a small VOI is dominated by its boundary)."""
    mask = np.zeros((9, 9, 9), dtype=bool)
    mask[2:7, 2:7, 2:7] = True
    assert volume_relative_sigma_from_mask(mask) == pytest.approx((275 - 27) / 250)
    assert volume_relative_sigma(100.0, 112.0, 89.0) == pytest.approx(0.115)
    with pytest.raises(InputError):
        volume_relative_sigma(100.0, 90.0, 80.0)


def test_fit_components_agree_with_refits(rng: np.random.Generator) -> None:
    """The fit's TIA σ, half-life σ and their correlation (delta method from the covariance) against
    300 seeded noisy refits of a 4-point mono-exponential."""
    from theradose.kinetics import fit_tac

    t = np.array([4.0, 24.0, 96.0, 168.0])
    truth = 200.0 * np.exp(-math.log(2) / 45.0 * t)
    sigma = 0.05 * truth
    components = fit_components(fit_tac(t, truth, sigma, model="mono"))
    tias, half_lives = [], []
    for _ in range(300):
        refit = fit_tac(t, truth + sigma * rng.standard_normal(t.size), sigma, model="mono")
        tias.append(refit.tia_mbq_h)
        half_lives.append(refit.effective_half_life_h)
    tias_a, hl_a = np.array(tias), np.array(half_lives)
    assert components.tia_rel_sigma == pytest.approx(np.std(tias_a) / np.mean(tias_a), rel=0.15)
    assert components.half_life_rel_sigma == pytest.approx(np.std(hl_a) / np.mean(hl_a), rel=0.15)
    assert components.correlation == pytest.approx(np.corrcoef(tias_a, hl_a)[0, 1], abs=0.1)


def test_fit_components_scale_a_failed_goodness_of_fit() -> None:
    from theradose.kinetics import fit_tac

    t = np.array([4.0, 24.0, 96.0, 168.0])
    a = np.array([100.0, 150.0, 40.0, 60.0])
    fit = fit_tac(t, a, 0.05 * a, model="mono")
    components = fit_components(fit)
    assert components.scaled
    assert components.tia_rel_sigma == pytest.approx(
        fit.tia_sigma_scaled_mbq_h / fit.tia_mbq_h  # type: ignore[operator]
    )


def test_plan_confidence_by_hand() -> None:
    """Delivered 10 ± 1 Gy, 2 Gy/GBq × 5 GBq planned, budget u = 10 %, limit 23 Gy.
    Random budget (fit only): σ = sqrt(1 + 1) → Φ(3/√2) = 0.983053; with 10 % cycle-to-cycle
    variability σ = sqrt(1 + 2) → Φ(√3) = 0.958368. Systematic budget (calibration only): the errors
    share 1 Gy each, cov = 10·0.1·min(1, 1) = 1, σ = sqrt(1 + 1 + 2) = 2 → Φ(1.5) = 0.933193."""
    random = propagate_budget(BudgetInputs(region="kidneys", dose_gy=1.0, fit_tia_rel_sigma=0.1))
    systematic = propagate_budget(BudgetInputs(region="kidneys", dose_gy=1.0, calibration_rel_sigma=0.1))
    common = {"delivered_dose_gy": 10.0, "delivered_sigma_gy": 1.0, "gy_per_gbq": 2.0, "limit_gy": 23.0}
    assert plan_confidence(**common, activity_gbq=5.0, budget=random) == pytest.approx(0.983053, abs=1e-6)
    assert plan_confidence(**common, activity_gbq=5.0, budget=random, inter_cycle_cv=0.1) == pytest.approx(
        0.958368, abs=1e-6
    )
    assert plan_confidence(**common, activity_gbq=5.0, budget=systematic) == pytest.approx(0.933193, abs=1e-6)
    # The largest activity at 95 % solves 10 + 2A + 1.644854·sqrt(1 + (0.2 A)²) = 23 (random budget).
    a_max = max_activity_for_confidence(**common, budget=random, confidence=0.95)
    assert 10 + 2 * a_max + 1.6448536 * math.sqrt(1 + (0.2 * a_max) ** 2) == pytest.approx(23.0, abs=1e-6)
    assert (
        max_activity_for_confidence(**{**common, "delivered_dose_gy": 23.0}, budget=random, confidence=0.95)
        == 0.0
    )


def test_registration_sigma_matches_a_shifted_ball_counted_voxel_by_voxel() -> None:
    """A body ball (radius 30 voxels) and a region ball (radius 8) translated together by 2 voxels along x:
    the body Dice and the fraction of the region's (uniform) activity that leaves its VOI are counted on the
    grid; the formula (1 − Dice)·u_region/u_body predicts that fraction from the Dice alone."""
    from theradose.dosimetry.uncertainty_budget import registration_relative_sigma

    k, j, i = np.indices((72, 72, 72))

    def ball(cx: float, radius: float) -> np.ndarray:
        return (k - 36) ** 2 + (j - 36) ** 2 + (i - cx) ** 2 <= radius**2

    body, moved_body = ball(36, 30), ball(38, 30)
    dice = 2 * np.count_nonzero(body & moved_body) / (np.count_nonzero(body) + np.count_nonzero(moved_body))
    region, moved_region = ball(36, 8), ball(38, 8)
    lost = np.count_nonzero(moved_region & ~region) / np.count_nonzero(region)
    predicted = registration_relative_sigma(dice, body, region)
    assert predicted == pytest.approx(lost, rel=0.15)
    assert registration_relative_sigma(1.0, body, region) == 0.0


def test_boundary_sigma_scales_the_one_voxel_volume_sigma() -> None:
    from theradose.dosimetry.uncertainty_budget import (
        VOXELISATION_SIGMA_VOXELS,
        volume_relative_sigma_from_mask,
    )

    mask = np.zeros((20, 20, 20), dtype=bool)
    mask[5:15, 5:15, 5:15] = True  # 10³ cube: dilated 10³ + 6·100 = 1600, eroded 8³ = 512
    one = volume_relative_sigma_from_mask(mask)
    assert one == pytest.approx((1600 - 512) / 2000)
    assert volume_relative_sigma_from_mask(
        mask, boundary_sigma_voxels=VOXELISATION_SIGMA_VOXELS
    ) == pytest.approx(one / np.sqrt(12.0))


def test_rounded_budget_keeps_six_digits_and_round_trips() -> None:
    from theradose.dosimetry.uncertainty_budget import UncertaintyBudget

    budget = propagate_budget(
        BudgetInputs(
            region="kidneys", dose_gy=4.305891234, calibration_rel_sigma=0.0312345678, fit_tia_rel_sigma=0.025
        )
    ).rounded()
    assert budget.dose_gy == 4.30589 and budget.component("calibration").relative_sigma == 0.0312346
    assert UncertaintyBudget.from_json(budget.to_json()) == budget
