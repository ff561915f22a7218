"""Analytics recover the known dose–response of synthetic cohorts; formulas against hand values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from theradose.errors import FitError, InputError
from theradose.population.analysis import (
    dose_effect_plot,
    fit_lkb,
    fit_logistic,
    geud_gy,
    kaplan_meier,
    lkb_ntcp,
    predict_outcome,
    survival_by_dose_group,
    write_html_table,
)
from theradose.population.cohort import CohortTruth, generate_cohort

TRUTH = CohortTruth()


@pytest.fixture(scope="module")
def cohort() -> object:
    return generate_cohort(400, seed=7)


def test_logistic_matches_an_independent_implementation(cohort: object) -> None:
    """Same maximum-likelihood estimate as scikit-learn's unpenalised logistic regression (lbfgs)."""
    from sklearn.linear_model import LogisticRegression

    fit = fit_logistic(cohort.tumour_dose_gy, cohort.response)
    ref = LogisticRegression(C=np.inf, tol=1e-10, max_iter=5000).fit(
        cohort[["tumour_dose_gy"]], cohort.response
    )
    assert fit.intercept == pytest.approx(float(ref.intercept_[0]), rel=1e-4)
    assert fit.slope_per_gy == pytest.approx(float(ref.coef_[0, 0]), rel=1e-4)
    assert fit.d50_gy == pytest.approx(-fit.intercept / fit.slope_per_gy)
    assert fit.probability(fit.d50_gy) == pytest.approx(0.5)


def test_logistic_recovers_d50_and_slope(cohort: object) -> None:
    fit = fit_logistic(cohort.tumour_dose_gy, cohort.response)
    assert fit.d50_ci_gy[0] < TRUTH.d50_gy < fit.d50_ci_gy[1]
    assert fit.slope_ci_per_gy[0] < TRUTH.slope_per_gy < fit.slope_ci_per_gy[1]
    assert fit.d50_ci_gy[1] - fit.d50_ci_gy[0] < 8.0  # informative, not a trivially wide interval
    # the band holds the fitted curve and covers the true curve over the bulk of the doses
    grid = np.linspace(15.0, 60.0, 46)
    lo, hi = fit.band(grid)
    true_p = 1.0 / (1.0 + np.exp(-TRUTH.slope_per_gy * (grid - TRUTH.d50_gy)))
    assert np.all((lo <= true_p) & (true_p <= hi))
    assert np.all((lo < fit.probability(grid)) & (fit.probability(grid) < hi))


def test_logistic_interval_coverage_is_nominal() -> None:
    """Over 60 independent cohorts the 95 % intervals of D50 and slope cover the truth ~95 % of the time."""
    hits_d50 = hits_slope = 0
    reps = 60
    for seed in range(reps):
        c = generate_cohort(200, seed=1000 + seed)
        fit = fit_logistic(c.tumour_dose_gy, c.response)
        hits_d50 += fit.d50_ci_gy[0] < TRUTH.d50_gy < fit.d50_ci_gy[1]
        hits_slope += fit.slope_ci_per_gy[0] < TRUTH.slope_per_gy < fit.slope_ci_per_gy[1]
    # binomial(60, 0.95): P(< 52 hits) ≈ 0.4 %
    assert hits_d50 >= 52 and hits_slope >= 52


def test_logistic_refuses_degenerate_data() -> None:
    with pytest.raises(FitError, match="events"):
        fit_logistic([1.0, 2.0, 3.0, 4.0], [0, 0, 0, 1])
    with pytest.raises(FitError, match="separation"):
        fit_logistic([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [0, 0, 0, 1, 1, 1])
    with pytest.raises(InputError, match="0/1"):
        fit_logistic([1.0, 2.0], [0, 2])


def test_geud_and_lkb_hand_values() -> None:
    assert geud_gy([20.0, 20.0, 20.0], [0.2, 0.3, 0.5], n=0.3) == pytest.approx(20.0)  # uniform dose
    assert geud_gy([10.0, 30.0], [1.0, 3.0], n=1.0) == pytest.approx(25.0)  # n = 1: mean dose
    # n = 0.5, equal halves at 10 and 20 Gy: (0.5·10² + 0.5·20²)^0.5 = √250
    assert geud_gy([10.0, 20.0], [0.5, 0.5], n=0.5) == pytest.approx(math.sqrt(250.0))
    assert lkb_ntcp(28.0, td50_gy=28.0, m=0.15) == pytest.approx(0.5)
    # one m·TD50 above TD50: Φ(1) = 0.841345 (standard normal table)
    assert lkb_ntcp(28.0 * 1.15, td50_gy=28.0, m=0.15) == pytest.approx(0.841345, abs=1e-6)
    with pytest.raises(InputError):
        geud_gy([10.0], [1.0, 2.0], n=1.0)


def test_lkb_recovers_td50_and_m(cohort: object) -> None:
    fit = fit_lkb(
        cohort.kidney_dvh_dose_gy, cohort.kidney_dvh_volume_fraction, cohort.kidney_toxicity, n=TRUTH.n
    )
    assert fit.td50_gy == pytest.approx(TRUTH.td50_gy, rel=0.05)
    assert fit.td50_ci_gy[0] < TRUTH.td50_gy < fit.td50_ci_gy[1]
    assert fit.m_ci[0] < TRUTH.m < fit.m_ci[1]
    free = fit_lkb(cohort.kidney_dvh_dose_gy, cohort.kidney_dvh_volume_fraction, cohort.kidney_toxicity)
    assert not free.n_fixed and free.td50_gy == pytest.approx(TRUTH.td50_gy, rel=0.10)
    assert free.log_likelihood >= fit.log_likelihood - 1e-6  # one more free parameter never fits worse


def test_kaplan_meier_hand_example() -> None:
    """Times 1, 2+, 3, 4 (2 censored): S = 3/4 after t=1, 3/4·1/2 = 3/8 after t=3, 0 after t=4."""
    times, surv = kaplan_meier([1.0, 2.0, 3.0, 4.0], [1, 0, 1, 1])
    lookup = dict(zip(times.tolist(), surv.tolist(), strict=True))
    assert lookup[1.0] == pytest.approx(0.75)
    assert lookup[3.0] == pytest.approx(0.375)
    assert lookup[4.0] == pytest.approx(0.0)


def test_survival_recovers_the_hazard_ratio(cohort: object, tmp_path: Path) -> None:
    png = tmp_path / "km.png"
    result = survival_by_dose_group(
        cohort.survival_time_months, cohort.survival_event, cohort.tumour_dose_gy, plot_path=png
    )
    lo, hi = result.log_hazard_ratio_ci
    assert lo < TRUTH.log_hazard_ratio_per_gy < hi
    assert result.cox_p < 0.01 and result.logrank_p < 0.01
    low, high = result.groups
    assert low.patients + high.patients == 400 and low.dose_max_gy <= high.dose_min_gy
    assert high.median_survival > low.median_survival  # higher tumour dose, longer survival
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_prediction_metrics_are_held_out(cohort: object, tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    features = cohort[["tumour_dose_gy", "age_years"]]
    png = tmp_path / "calibration.png"
    result = predict_outcome(features, cohort.response, seed=3, plot_path=png)
    assert result.n_test == 120 and result.n_train == 280
    # the best possible AUC on the same held-out patients: the true response probabilities
    _, p_test, _, y_test = train_test_split(
        cohort.response_probability, cohort.response, test_size=0.3, stratify=cohort.response, random_state=3
    )
    oracle_auc = roc_auc_score(y_test, p_test)
    assert result.test_auc == pytest.approx(oracle_auc, abs=0.05)
    assert abs(result.cv_auc_mean - result.test_auc) < 0.1
    assert 0.0 < result.test_brier < 0.25
    assert result.coefficients["tumour_dose_gy"] > abs(result.coefficients["age_years"])
    assert png.read_bytes()[:4] == b"\x89PNG"
    # labels unrelated to the features: an honest held-out AUC stays near chance
    rng = np.random.default_rng(5)
    null = predict_outcome(features, rng.integers(0, 2, len(features)), seed=3)
    assert abs(null.test_auc - 0.5) < 0.15


def test_plot_and_html(cohort: object, tmp_path: Path) -> None:
    fit = fit_logistic(cohort.tumour_dose_gy, cohort.response)
    png = dose_effect_plot(fit, cohort.tumour_dose_gy, cohort.response, tmp_path / "de.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    page = write_html_table(
        "D50 <fit>", {"d50_gy": 30.1234567, "ci": [1.0, 2.0]}, tmp_path / "t.html"
    ).read_text()
    assert "D50 &lt;fit&gt;" in page and "30.12" in page and "[1, 2]" in page


def test_endpoint_dose_selection_rules() -> None:
    """Exact region, then the plural aggregate (kidneys), else the tissue/kind mass-weighted."""
    import pandas as pd

    from theradose.population.analysis import endpoint_table

    rows = [
        # region, kind, tissue, mass_g, dose_gy
        ("kidney_left", "organ", "kidney", 150.0, 4.0),
        ("kidney_right", "organ", "kidney", 150.0, 6.0),
        ("kidneys", "organ", "kidney", 300.0, 5.5),  # aggregate as the pipeline writes it
        ("lesion_a", "tumour", "tumour", 10.0, 20.0),
        ("lesion_b", "tumour", "tumour", 30.0, 40.0),
    ]
    frame = pd.DataFrame(
        [
            {
                "study_id": "s1",
                "patient_id": "p1",
                "region": r,
                "kind": k,
                "tissue": t,
                "mass_g": m,
                "dose_gy": d,
                "response_category": "PR",
            }
            for r, k, t, m, d in rows
        ]
    )
    assert endpoint_table(frame, "response", dose="kidney:dose_gy").dose[0] == 5.5
    assert endpoint_table(frame, "response", dose="kidney_left:dose_gy").dose[0] == 4.0
    # no region "tumour" nor "tumours": (10·20 + 30·40) / 40 = 35 Gy
    assert endpoint_table(frame, "response", dose="tumour:dose_gy").dose[0] == pytest.approx(35.0)
