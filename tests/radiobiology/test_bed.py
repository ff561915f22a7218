"""BED/EQD2 against the defining LQ integral, analytic limits and hand calculations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from theradose.errors import InputError
from theradose.radiobiology import (
    DEFAULT_ALPHA_RBE,
    bed_fractionated_gy,
    bed_gy,
    bed_multiexponential_gy,
    eqd2_gy,
    g_factor,
    g_factor_multiexponential,
    multi_cycle_bed_gy,
    rbe_weighted_dose_gy,
)

LN2 = math.log(2.0)


def _g_by_double_integral(rate, mu: float) -> float:
    """G = 2/D² ∫0^∞ Ḋ(t) ∫0^t Ḋ(w) e^{−μ(t−w)} dw dt evaluated numerically (Dale 1985 definition)."""
    dose, _ = integrate.quad(rate, 0.0, np.inf, limit=400)

    def inner(t: float) -> float:
        value, _ = integrate.quad(lambda w: rate(w) * math.exp(-mu * (t - w)), 0.0, t, limit=200)
        return rate(t) * value

    outer, _ = integrate.quad(inner, 0.0, 4000.0, limit=400, points=[1.0, 10.0, 100.0])
    return 2.0 * outer / dose**2


def test_mono_exponential_g_against_integral() -> None:
    lam, mu = LN2 / 50.0, LN2 / 2.8
    expected = _g_by_double_integral(lambda t: math.exp(-lam * t), mu)
    assert g_factor(effective_half_life_h=50.0, repair_half_time_h=2.8) == pytest.approx(expected, rel=1e-5)
    # and Dale's closed form by hand: λ/(λ+μ) = T_rep/(T_rep + T_eff) = 2.8/52.8 = 0.0530303
    assert g_factor(effective_half_life_h=50.0, repair_half_time_h=2.8) == pytest.approx(0.0530303, rel=1e-5)


def test_bi_exponential_g_against_integral() -> None:
    """Uptake (T_up = 3 h) and washout (T_eff = 45 h): Ḋ ∝ e^{−λ_eff t} − e^{−λ_up t} (Baechler 2008)."""
    lam, lam_up, mu = LN2 / 45.0, LN2 / 3.0, LN2 / 2.8
    expected = _g_by_double_integral(lambda t: math.exp(-lam * t) - math.exp(-lam_up * t), mu)
    got = g_factor(effective_half_life_h=45.0, repair_half_time_h=2.8, uptake_half_life_h=3.0)
    assert got == pytest.approx(expected, rel=1e-5)
    # an uptake phase spreads the dose out in time, so G (and BED) is lower than without it
    assert got < g_factor(effective_half_life_h=45.0, repair_half_time_h=2.8)


def test_tri_exponential_g_against_integral() -> None:
    c, half = [2.0, 1.0, -3.0], [60.0, 10.0, 1.5]
    k = [LN2 / t for t in half]
    mu = LN2 / 1.5
    expected = _g_by_double_integral(
        lambda t: sum(ci * math.exp(-ki * t) for ci, ki in zip(c, k, strict=True)), mu
    )
    assert g_factor_multiexponential(c, k, repair_rate_per_h=mu) == pytest.approx(expected, rel=1e-5)
    bed = bed_multiexponential_gy(
        10.0, coefficients=c, half_lives_h=half, alpha_beta_gy=10.0, repair_half_time_h=1.5
    )
    assert bed == pytest.approx(10.0 * (1 + expected * 10.0 / 10.0), rel=1e-5)


def test_kidney_bed_by_hand() -> None:
    """D = 20 Gy, T_eff = 50 h, α/β = 2.6 Gy, T_rep = 2.8 h: BED = 20(1 + 0.0530303·20/2.6) = 28.1585 Gy."""
    bed = bed_gy(20.0, effective_half_life_h=50.0, alpha_beta_gy=2.6, repair_half_time_h=2.8)
    assert bed == pytest.approx(28.1585, rel=1e-5)
    # EQD2 = 28.1585 / (1 + 2/2.6) = 15.9157 Gy
    assert eqd2_gy(bed, alpha_beta_gy=2.6) == pytest.approx(15.9157, rel=1e-4)


def test_limits() -> None:
    """Instantaneous delivery → acute single fraction D(1 + D/(α/β)); very slow delivery → D."""
    acute = bed_gy(8.0, effective_half_life_h=1e-7, alpha_beta_gy=3.0, repair_half_time_h=1.0)
    assert acute == pytest.approx(8.0 * (1 + 8.0 / 3.0), rel=1e-6)
    slow = bed_gy(8.0, effective_half_life_h=1e9, alpha_beta_gy=3.0, repair_half_time_h=1.0)
    assert slow == pytest.approx(8.0, rel=1e-6)
    # fast uptake recovers the mono-exponential result
    fast_uptake = bed_gy(
        8.0, effective_half_life_h=60.0, alpha_beta_gy=3.0, repair_half_time_h=1.0, uptake_half_life_h=1e-6
    )
    mono = bed_gy(8.0, effective_half_life_h=60.0, alpha_beta_gy=3.0, repair_half_time_h=1.0)
    assert fast_uptake == pytest.approx(mono, rel=1e-6)
    assert bed_gy(0.0, effective_half_life_h=60.0, alpha_beta_gy=3.0, repair_half_time_h=1.0) == 0.0


def test_eqd2_of_2_gy_fractions_is_the_dose() -> None:
    """30 × 2 Gy: BED = 60(1 + 2/(α/β)) and EQD2 = 60 Gy for any α/β (definition of EQD2)."""
    for ab in (1.5, 3.0, 10.0):
        bed = bed_fractionated_gy(2.0, fractions=30, alpha_beta_gy=ab)
        assert bed == pytest.approx(60.0 * (1 + 2.0 / ab))
        assert eqd2_gy(bed, alpha_beta_gy=ab) == pytest.approx(60.0)


def test_multi_cycle_sums() -> None:
    doses = [5.0, 4.0, 6.0]
    halves = [40.0, 45.0, 38.0]
    total = multi_cycle_bed_gy(
        doses, effective_half_lives_h=halves, alpha_beta_gy=2.6, repair_half_time_h=2.8
    )
    by_cycle = sum(
        d * (1 + (LN2 / t) / (LN2 / t + LN2 / 2.8) * d / 2.6) for d, t in zip(doses, halves, strict=True)
    )
    assert total == pytest.approx(by_cycle, rel=1e-12)
    # one big cycle of the same total dose has a larger BED than three (quadratic term)
    one = bed_gy(15.0, effective_half_life_h=40.0, alpha_beta_gy=2.6, repair_half_time_h=2.8)
    assert one > multi_cycle_bed_gy(
        doses, effective_half_lives_h=40.0, alpha_beta_gy=2.6, repair_half_time_h=2.8
    )
    with pytest.raises(InputError, match="one per cycle"):
        multi_cycle_bed_gy(doses, effective_half_lives_h=[40.0], alpha_beta_gy=2.6, repair_half_time_h=2.8)


def test_rbe_weighted_dose() -> None:
    """MIRD Pamphlet 22 (Sgouros 2010): RBE 5 for deterministic effects; 2 Gy alpha + 1 Gy low-LET → 11 Gy."""
    assert DEFAULT_ALPHA_RBE == 5.0
    assert rbe_weighted_dose_gy(alpha_dose_gy=2.0, low_let_dose_gy=1.0) == pytest.approx(11.0)
    assert rbe_weighted_dose_gy(alpha_dose_gy=2.0, low_let_dose_gy=1.0, rbe=3.0) == pytest.approx(7.0)
    with pytest.raises(InputError, match="rbe"):
        rbe_weighted_dose_gy(alpha_dose_gy=1.0, rbe=0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"effective_half_life_h": -1.0}, "effective_half_life_h"),
        ({"alpha_beta_gy": 0.0}, "alpha_beta_gy"),
        ({"repair_half_time_h": float("nan")}, "repair_half_time_h"),
        ({"uptake_half_life_h": 50.0}, "shorter than"),
    ],
)
def test_bad_input(kwargs: dict[str, float], message: str) -> None:
    args = {"effective_half_life_h": 40.0, "alpha_beta_gy": 2.6, "repair_half_time_h": 2.8} | kwargs
    with pytest.raises(InputError, match=message):
        bed_gy(10.0, **args)


def test_bed_sigma_against_sampling(rng: np.random.Generator) -> None:
    """σ_BED = (1 + 2GD/(α/β)) σ_D; compare with the spread of BED over 100k sampled doses."""
    from theradose.radiobiology import bed_sigma_gy

    kwargs = {"effective_half_life_h": 50.0, "alpha_beta_gy": 2.6, "repair_half_time_h": 2.8}
    sigma = bed_sigma_gy(20.0, 2.0, **kwargs)
    # by hand: (1 + 2·0.0530303·20/2.6)·2 = 3.6317 Gy
    assert sigma == pytest.approx(3.6317, rel=1e-4)
    doses = rng.normal(20.0, 2.0, size=100_000)
    g = 2.8 / 52.8
    beds = doses * (1 + g * doses / 2.6)
    assert beds.std() == pytest.approx(sigma, rel=0.02)
