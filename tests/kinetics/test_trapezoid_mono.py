"""The hybrid integration ``trapezoid_mono`` (MIRD Pamphlet No. 16, Siegel et al. 1999, J Nucl Med 40:37S):
trapezoids over the early points, a fitted mono-exponential from the start of the late phase.

Expected values are hand calculations (areas of trapezoids plus A·e^(−λ t_k)/λ); the uncertainty is
checked against a Monte-Carlo spread of the same estimator.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.kinetics import fit_tac

LAMBDA_P = math.log(2.0) / (6.647 * 24.0)  # Lu-177, T½ 6.647 d (ICRP 107)


def test_late_phase_starts_where_a_mono_exponential_describes_the_rest() -> None:
    # from 24 h on exactly 800·e^(−λt) with T½ = 60 h; the 1 h and 4 h points carry a fast phase on top
    lam = math.log(2.0) / 60.0
    t = np.array([1.0, 4.0, 24.0, 48.0, 96.0, 168.0])
    a = 800.0 * np.exp(-lam * t)
    a[0] += 600.0
    a[1] += 300.0
    fit = fit_tac(t, a, 0.03 * a, model="trapezoid_mono", decay_constant_per_h=LAMBDA_P)
    assert fit.parameters["late_start_h"] == 24.0
    assert fit.parameters["lambda1_per_h"] == pytest.approx(lam, rel=1e-6)
    # hand calculation: triangle 0-1 h, trapezoids 1-4 h and 4-24 h, then 800·e^(−24λ)/λ
    early = 0.5 * 1.0 * a[0] + 0.5 * 3.0 * (a[0] + a[1]) + 0.5 * 20.0 * (a[1] + a[2])
    late = 800.0 * math.exp(-lam * 24.0) / lam
    assert fit.tia_mbq_h == pytest.approx(early + late, rel=1e-6)
    assert fit.effective_half_life_h == pytest.approx(60.0, rel=1e-6)
    assert fit.p_value is not None and fit.p_value > 0.5
    # the fitted curve: measured points before the late phase, the exponential after
    assert fit.evaluate(4.0) == pytest.approx(a[1])
    assert fit.evaluate(96.0) == pytest.approx(a[4], rel=1e-6)


def test_uncertainty_matches_the_monte_carlo_spread() -> None:
    lam = math.log(2.0) / 50.0
    t = np.array([4.0, 24.0, 96.0, 168.0])
    a = 1000.0 * np.exp(-lam * t)
    sigma = 0.02 * a
    fit = fit_tac(t, a, sigma, model="trapezoid_mono", decay_constant_per_h=LAMBDA_P)
    assert fit.tia_sigma_mbq_h is not None
    rng = np.random.default_rng(11)
    draws = [
        fit_tac(t, a + sigma * rng.standard_normal(4), sigma, model="trapezoid_mono",
                decay_constant_per_h=LAMBDA_P).tia_mbq_h
        for _ in range(400)
    ]  # fmt: skip
    assert float(np.std(draws, ddof=1)) == pytest.approx(fit.tia_sigma_mbq_h, rel=0.15)


def test_too_few_points_and_a_prior_are_refused_with_the_fix() -> None:
    with pytest.raises(InputError, match="at least 3 points"):
        fit_tac([4.0, 24.0], [100.0, 80.0], [5.0, 4.0], model="trapezoid_mono", decay_constant_per_h=LAMBDA_P)
    from theradose.kinetics.priors import HalfLifePrior

    with pytest.raises(InputError, match="takes no prior"):
        fit_tac(
            [4.0, 24.0, 96.0],
            [100.0, 80.0, 40.0],
            [5.0, 4.0, 2.0],
            model="trapezoid_mono",
            decay_constant_per_h=LAMBDA_P,
            prior=HalfLifePrior(median_h=50.0, log_sigma=0.3, source="test"),
        )


def test_late_activity_that_does_not_clear_is_refused() -> None:
    from theradose.errors import FitError

    with pytest.raises(FitError, match="trapezoid_mono"):
        fit_tac(
            [4.0, 24.0, 96.0, 168.0],
            [100.0, 80.0, 90.0, 100.0],
            [3.0, 2.4, 2.7, 3.0],
            model="trapezoid_mono",
            decay_constant_per_h=LAMBDA_P,
        )


def test_a_point_at_zero_activity_still_gets_an_uncertainty() -> None:
    """A region emptied by the correction at the last scan (0 MBq): the uncertainty is propagated with a
    one-sided step there instead of stepping to a negative activity."""
    fit = fit_tac(
        [4.0, 24.0, 96.0, 168.0],
        [10.0, 5.0, 1.0, 0.0],
        [0.5, 0.25, 0.05, 0.05],
        model="trapezoid_mono",
        decay_constant_per_h=LAMBDA_P,
    )
    assert fit.tia_sigma_mbq_h is not None and 0.0 < fit.tia_sigma_mbq_h < fit.tia_mbq_h


def test_late_points_at_zero_are_refused_naming_them() -> None:
    from theradose.errors import FitError

    with pytest.raises(FitError, match=r"no mono-exponential fits the points from 24 h \(1\.4, 0, 0 MBq\)"):
        fit_tac(
            [4.0, 24.0, 96.0, 168.0],
            [3.5, 1.4, 0.0, 0.0],
            [0.175, 0.07, 0.07, 0.07],
            model="trapezoid_mono",
            decay_constant_per_h=LAMBDA_P,
        )


def test_the_pipeline_falls_back_to_the_trapezoid_with_a_note_when_the_late_phase_is_empty() -> None:
    """A small region the correction empties at the late scans: the study goes on, the region is
    integrated by trapezoids with a physical-decay tail, and its record says why (as with ``auto``)."""
    from theradose.pipeline.spec import KineticsSpec
    from theradose.pipeline.stages import fit_region

    result = fit_region(
        [4.0, 24.0, 96.0, 168.0],
        [3.5, 1.4, 0.0, 0.0],
        kinetics=KineticsSpec(model="trapezoid_mono"),
        nuclide="Lu-177",
        region="spongiosa_T10",
        relative_sigma=0.05,
    )
    assert result.model == "trapezoid"
    # hand calculation: triangle 0-4 h, trapezoid 4-24 h, zero from 96 h on
    assert result.tia_mbq_h == pytest.approx(0.5 * 4 * 3.5 + 0.5 * 20 * (3.5 + 1.4) + 0.5 * 72 * 1.4)
    assert result.record is not None
    assert any("no late mono-exponential fits this curve" in n for n in result.record.notes)
