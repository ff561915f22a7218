"""Single-time-point TIA: Hänscheid et al. 2018 (JNM 59:75) and Madsen et al. 2018 (Med Phys 45:2318)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.kinetics import hanscheid_tia_mbq_h, madsen_tia_mbq_h, stp_tia_mbq_h


def test_hanscheid_hand_calculation() -> None:
    """Hänscheid 2018: TIA ≈ A(t)·2t/ln 2. 100 MBq at 96 h: 100·192/0.69314718 = 27699.74 MBq·h."""
    assert hanscheid_tia_mbq_h(96.0, 100.0) == pytest.approx(27699.74, abs=0.01)
    assert stp_tia_mbq_h(96.0, 100.0, method="hanscheid") == pytest.approx(27699.74, abs=0.01)


def test_madsen_hand_calculation() -> None:
    """Madsen 2018: TIA = A(t)·exp(λt)/λ, λ = ln2/T_eff. 100 MBq at 96 h, T_eff = 60 h:
    λ = 0.01155245 /h, λt = 1.109035, exp = 3.031433, TIA = 100·3.031433/0.01155245 = 26240.6 MBq·h."""
    assert madsen_tia_mbq_h(96.0, 100.0, effective_half_life_h=60.0) == pytest.approx(26240.6, abs=0.1)
    assert stp_tia_mbq_h(96.0, 100.0, method="madsen", effective_half_life_h=60.0) == pytest.approx(
        26240.6, abs=0.1
    )


def test_madsen_is_exact_for_a_mono_exponential_with_the_true_half_life() -> None:
    # A(t) = 500 e^{-λt}, T_eff = 50 h: TIA = 500/λ = 500·50/ln2 = 36067.38 MBq·h from any single point.
    rate = math.log(2) / 50.0
    for t in (24.0, 72.0, 150.0):
        activity = 500.0 * math.exp(-rate * t)
        assert madsen_tia_mbq_h(t, activity, effective_half_life_h=50.0) == pytest.approx(36067.38, abs=0.01)


def test_hanscheid_equals_madsen_when_half_life_equals_measurement_time() -> None:
    """Hänscheid's approximation is Madsen's formula with T_eff = t: exp(ln2)·t/ln2 = 2t/ln2."""
    for t in (48.0, 96.0):
        assert hanscheid_tia_mbq_h(t, 37.0) == pytest.approx(
            madsen_tia_mbq_h(t, 37.0, effective_half_life_h=t)
        )


def test_hanscheid_is_insensitive_near_the_optimum() -> None:
    """exp(λt)/λ is stationary at λt = 1 (Hänscheid 2018): assuming T_eff = t when the true T_eff is
    t·ln2 (λt = 1) overestimates the TIA only by the factor (2/ln2)/e = 1.0615."""
    t = 96.0
    true_half_life = t * math.log(2)  # λ = 1/t, the stationary point
    rate = 1.0 / t
    exact = madsen_tia_mbq_h(t, 100.0 * math.exp(-rate * t), effective_half_life_h=true_half_life)
    approx = hanscheid_tia_mbq_h(t, 100.0 * math.exp(-rate * t))
    assert approx / exact - 1 == pytest.approx(2 / math.log(2) / math.e - 1, rel=1e-9)
    assert abs(approx / exact - 1) < 0.07


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "madsen"}, "needs effective_half_life_h"),
        ({"method": "hanscheid", "effective_half_life_h": 60.0}, "not used by the Hänscheid method"),
        ({"method": "other"}, "method must be 'hanscheid' or 'madsen'"),
        ({"method": "madsen", "effective_half_life_h": -1.0}, "effective_half_life_h must be"),
    ],
)
def test_stp_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        stp_tia_mbq_h(96.0, 100.0, **kwargs)


@pytest.mark.parametrize(("time_h", "activity_mbq"), [(0.0, 1.0), (-1.0, 1.0), (24.0, -1.0), (np.nan, 1.0)])
def test_stp_rejects_invalid_measurements(time_h: float, activity_mbq: float) -> None:
    with pytest.raises(InputError):
        hanscheid_tia_mbq_h(time_h, activity_mbq)


# ---------------------------------------------------------------- individual half-life (cycles 2+)


def test_individual_half_life_hand_calculation() -> None:
    """96 h, 100 ± 5 MBq, T = 60 ± 6 h: TIA = 26240.6 MBq·h (Madsen form); λt = 1.109035, so
    σ/TIA = sqrt(0.05² + (0.109035·0.1)²) = 0.051175 and σ = 1342.9 MBq·h."""
    from theradose.kinetics import stp_from_half_life

    result = stp_from_half_life(
        96.0, 100.0, effective_half_life_h=60.0, effective_half_life_sigma_h=6.0, activity_sigma_mbq=5.0
    )
    assert result.tia_mbq_h == pytest.approx(26240.6, abs=0.1)
    assert result.relative_sigma_half_life == pytest.approx(0.0109035, rel=1e-4)
    assert result.tia_sigma_mbq_h == pytest.approx(1342.9, abs=0.5)
    assert result.time_in_half_lives == pytest.approx(1.6) and result.flags == ()


def test_half_life_sensitivity_matches_finite_differences() -> None:
    from theradose.kinetics import stp_from_half_life

    for t, half_life in ((24.0, 50.0), (96.0, 40.0), (168.0, 60.0)):
        step = 1e-4 * half_life
        up = madsen_tia_mbq_h(t, 10.0, effective_half_life_h=half_life + step)
        down = madsen_tia_mbq_h(t, 10.0, effective_half_life_h=half_life - step)
        result = stp_from_half_life(t, 10.0, effective_half_life_h=half_life, effective_half_life_sigma_h=1.0)
        assert result.tia_sigma_mbq_h == pytest.approx(abs(up - down) / (2 * step), rel=1e-6)


def test_applicability_window_and_hanscheid_deviation_at_its_bounds() -> None:
    """Within 0.75–2.5 T_eff Hänscheid's estimate deviates from the exact integral by 2x·2^−x − 1:
    −10.8 % at 0.75 and −11.6 % at 2.5 (hand values), at most +6.1 % in between."""
    from theradose.kinetics import hanscheid_estimate, stp_from_half_life

    for x, ratio in (
        (0.75, 1.5 * 2**-0.75),
        (2.5, 5.0 * 2**-2.5),
        (1 / math.log(2), 2 / math.log(2) / math.e),
    ):
        half_life = 40.0
        t = x * half_life
        activity = 100.0 * math.exp(-math.log(2) / half_life * t)
        exact = madsen_tia_mbq_h(t, activity, effective_half_life_h=half_life)
        assert hanscheid_tia_mbq_h(t, activity) / exact == pytest.approx(ratio, rel=1e-12)
        assert hanscheid_estimate(t, activity, expected_half_life_h=half_life).flags == ()
    assert 1.5 * 2**-0.75 == pytest.approx(0.8919, abs=1e-4) and 5.0 * 2**-2.5 == pytest.approx(
        0.8839, abs=1e-4
    )
    outside = stp_from_half_life(96.0, 10.0, effective_half_life_h=30.0)
    assert outside.flags == ("stp_time_outside_window",)
    assert "3.20 effective half-lives" in outside.warnings[0]
    early = hanscheid_estimate(4.0, 10.0, expected_half_life_h=40.0)
    assert early.flags == ("stp_time_outside_window",)


def test_stp_from_earlier_cycle_uses_the_fit_half_life_and_its_sigma() -> None:
    from theradose.kinetics import fit_tac, stp_from_earlier_cycle

    t = np.array([4.0, 24.0, 96.0, 168.0])
    lam = math.log(2) / 45.0
    a = 200.0 * np.exp(-lam * t) * np.array([1.02, 0.98, 1.01, 0.99])
    cycle1 = fit_tac(t, a, 0.03 * a, model="mono")
    assert cycle1.parameter_sigmas is not None and cycle1.effective_half_life_h is not None
    expected_sigma = cycle1.effective_half_life_h * (
        cycle1.parameter_sigmas["lambda1_per_h"] / cycle1.parameters["lambda1_per_h"]
    )
    assert cycle1.effective_half_life_sigma_h == pytest.approx(expected_sigma, rel=1e-12)
    result = stp_from_earlier_cycle(24.0, 150.0, cycle1, activity_sigma_mbq=4.5)
    assert result.effective_half_life_h == cycle1.effective_half_life_h
    assert result.tia_mbq_h == pytest.approx(
        madsen_tia_mbq_h(24.0, 150.0, effective_half_life_h=cycle1.effective_half_life_h)
    )
    assert "earlier-cycle" in str(result.half_life_source)
    # For a mono-exponential earlier fit the shape term is the half-life term |λt − 1|·σ_T/T.
    lam1 = cycle1.parameters["lambda1_per_h"]
    assert result.relative_sigma_half_life == pytest.approx(
        abs(lam1 * 24.0 - 1) * expected_sigma / cycle1.effective_half_life_h, rel=1e-9
    )


def test_own_cycle1_half_life_reduces_single_time_point_error(rng: np.random.Generator) -> None:
    """Synthetic patients with known kinetics: kidney-like uptake (0.5 h) and washout with a log-normal
    population of effective half-lives (median 45 h, log SD 0.3); the same patient's cycle-2 half-life
    differs from cycle 1 by a log-normal factor with SD 0.05 (an assumption: small intra-patient variation,
    as found by Willowson et al. 2018). Cycle 1 is fitted from 4 noisy points (3 %); cycle 2 has one
    scan at 24 h or 96 h. The error of the cycle-2 TIA against its analytic truth, with the population
    median half-life (before) and the patient's cycle-1 kinetics (after), is printed."""
    from theradose.kinetics import fit_tac, stp_from_earlier_cycle, stp_from_half_life

    lp = math.log(2) / 159.528
    schedule = np.array([4.0, 24.0, 96.0, 168.0])
    uptake = math.log(2) / 0.5
    errors: dict[float, tuple[list[float], list[float]]] = {24.0: ([], []), 96.0: ([], [])}
    for _ in range(40):
        t1 = 45.0 * math.exp(0.3 * rng.standard_normal())
        t2 = t1 * math.exp(0.05 * rng.standard_normal())
        lam1, lam2 = math.log(2) / t1, math.log(2) / t2
        c1 = 300.0 * (np.exp(-lam1 * schedule) - np.exp(-uptake * schedule))
        c1 = c1 * (1 + 0.03 * rng.standard_normal(schedule.size))
        cycle1 = fit_tac(schedule, c1, 0.03 * c1, decay_constant_per_h=lp)
        truth2 = 280.0 * (1 / lam2 - 1 / uptake)
        for scan_h, (before, after) in errors.items():
            a2 = (
                280.0
                * (math.exp(-lam2 * scan_h) - math.exp(-uptake * scan_h))
                * (1 + 0.03 * rng.standard_normal())
            )
            population = stp_from_half_life(scan_h, a2, effective_half_life_h=45.0).tia_mbq_h
            own = stp_from_earlier_cycle(scan_h, a2, cycle1).tia_mbq_h
            before.append(population / truth2 - 1)
            after.append(own / truth2 - 1)
    print("\nsingle-time-point cycle-2 kidney TIA, mean |error| (max): population half-life -> own cycle 1")
    for scan_h, (before, after) in errors.items():
        b, a = np.abs(before), np.abs(after)
        print(
            f"  scan {scan_h:g} h: {100 * b.mean():.1f} % ({100 * b.max():.0f} %) -> "
            f"{100 * a.mean():.1f} % ({100 * a.max():.0f} %)"
        )
        assert a.mean() < 0.5 * b.mean()
        assert a.mean() < 0.06
