"""Absorbed fractions in unit-density spheres: each piece against an analytic or published value."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from theradose.dosimetry import absorption
from theradose.dosimetry.absorption import (
    electron_absorbed_fraction,
    electron_csda_range_mm,
    geometric_reduction_factor,
    klein_nishina_cross_sections_cm2,
    mean_chord_photon_absorbed_fraction,
    photon_absorbed_fraction,
    sphere_radius_mm,
    water_mu_en_per_cm,
)
from theradose.errors import InputError


def test_sphere_radius_by_hand() -> None:
    # 1 g of unit density is 1 cm^3: r = (3 / 4π)^(1/3) cm = 0.62035 cm
    assert sphere_radius_mm(1.0) == pytest.approx(6.2035, rel=1e-4)
    with pytest.raises(InputError, match="mass_g"):
        sphere_radius_mm(0.0)


def test_geometric_factor_limits_and_integral() -> None:
    """psi(0)=1, psi(2R)=0, ∫0^2R psi ds = 3R/4 (mean distance from an interior point to the surface)."""
    radius = 7.0
    assert geometric_reduction_factor(0.0, radius) == pytest.approx(1.0)
    assert geometric_reduction_factor(2.0 * radius, radius) == pytest.approx(0.0, abs=1e-15)
    assert geometric_reduction_factor(3.0 * radius, radius) == 0.0
    value, _ = integrate.quad(lambda s: float(geometric_reduction_factor(s, radius)), 0.0, 2.0 * radius)
    assert value == pytest.approx(0.75 * radius, rel=1e-10)


def test_geometric_factor_against_monte_carlo(rng: np.random.Generator) -> None:
    """Random point in the sphere, random direction, step s: fraction still inside equals psi(s)."""
    n = 200_000
    radius = 1.0
    points = rng.normal(size=(n, 3))
    points *= (rng.random(n) ** (1 / 3) / np.linalg.norm(points, axis=1))[:, None]
    directions = rng.normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    for s in (0.3, 1.0, 1.6):
        inside = np.linalg.norm(points + s * directions, axis=1) <= radius
        expected = float(geometric_reduction_factor(s, radius))
        assert inside.mean() == pytest.approx(expected, abs=4.0 / math.sqrt(n))


@pytest.mark.parametrize("mu_r", [1e-3, 0.05, 0.7, 3.0, 40.0])
def test_point_pair_photon_integral_closed_form(mu_r: float) -> None:
    """∫0^L psi(s) μ e^{-μs} ds with L = 2R in closed form (integrals of s^n e^{-as} by hand)."""
    radius = 10.0
    a = mu_r / radius
    length = 2.0 * radius
    x = a * length
    i0 = 1.0 - math.exp(-x)
    i1 = (1.0 - math.exp(-x) * (1.0 + x)) / a
    i3 = (6.0 - math.exp(-x) * (x**3 + 3 * x**2 + 6 * x + 6)) / a**3
    expected = i0 - 3.0 / (4.0 * radius) * i1 + i3 / (16.0 * radius**3)
    if mu_r < 0.01:  # the closed form cancels badly; use its series 3μR/4 - ...
        expected = 0.75 * mu_r - 0.4 * mu_r**2
    got = absorption._point_pair_exponential(np.array([a]), radius)[0]
    assert got == pytest.approx(expected, rel=1e-5)


def test_photon_fraction_small_and_large_sphere_limits() -> None:
    """Small μR: φ → 3μR/4; large μR: φ → 1 − 3/(4μR) (Berger 1968)."""
    mu_per_mm = float(water_mu_en_per_cm(208.0)) / 10.0
    small = 0.001
    radius = sphere_radius_mm(small)
    assert float(photon_absorbed_fraction(208.0, mass_g=small)) == pytest.approx(
        0.75 * mu_per_mm * radius, rel=0.01
    )
    big = 1.0e8  # 100 t of water: R ≈ 2.9 m
    radius = sphere_radius_mm(big)
    assert float(photon_absorbed_fraction(208.0, mass_g=big)) == pytest.approx(
        1.0 - 0.75 / (mu_per_mm * radius), rel=1e-3
    )


def test_mean_chord_overestimates_small_spheres_by_16_over_9() -> None:
    """For μR → 0, 1 − exp(−μ 4R/3) ≈ 4μR/3 while the point-pair value is 3μR/4: ratio 16/9."""
    ratio = float(
        mean_chord_photon_absorbed_fraction(500.0, mass_g=1e-3) / photon_absorbed_fraction(500.0, mass_g=1e-3)
    )
    assert ratio == pytest.approx(16.0 / 9.0, rel=0.01)


# NIST X-ray mass energy-absorption coefficients of liquid water (Hubbell & Seltzer, NIST SRD 126),
# μ_en/ρ in cm²/g at unit density.
NIST_WATER_MU_EN = {
    10.0: 4.944,
    20.0: 0.5503,
    30.0: 0.1557,
    40.0: 0.06947,
    50.0: 0.04223,
    60.0: 0.03190,
    80.0: 0.02597,
    100.0: 0.02546,
    150.0: 0.02764,
    200.0: 0.02967,
    300.0: 0.03192,
    400.0: 0.03279,
    500.0: 0.03299,
    600.0: 0.03284,
    800.0: 0.03206,
    1000.0: 0.03103,
    1250.0: 0.02965,
    1500.0: 0.02833,
    2000.0: 0.02608,
}


def test_mu_en_water_against_nist() -> None:
    energies = np.array(list(NIST_WATER_MU_EN))
    got = water_mu_en_per_cm(energies)
    expected = np.array(list(NIST_WATER_MU_EN.values()))
    np.testing.assert_allclose(got, expected, rtol=0.015)
    # 3 MeV: pair production (neglected) is ~2-3 % of μ_en
    assert float(water_mu_en_per_cm(3000.0)) == pytest.approx(0.02281, rel=0.03)


def test_mu_en_rejects_sub_kev() -> None:
    with pytest.raises(InputError, match="energy_kev"):
        water_mu_en_per_cm(0.5)


def test_klein_nishina_against_textbook() -> None:
    """σ_KN(1 MeV) = 2.112e-25 cm²/electron; mean energy-transfer fraction 0.138, 0.440, 0.683 at
    0.1, 1, 10 MeV (Attix 1986, Introduction to Radiological Physics, table/fig. 7.5-7.6)."""
    sigma, sigma_tr = klein_nishina_cross_sections_cm2(np.array([100.0, 1000.0, 10000.0]))
    assert sigma[1] == pytest.approx(2.112e-25, rel=2e-3)
    np.testing.assert_allclose(sigma_tr / sigma, [0.138, 0.440, 0.683], rtol=4e-3)


# NIST ESTAR CSDA ranges in liquid water (g/cm² = cm at unit density) → mm.
ESTAR_CSDA_RANGE_MM = {
    10.0: 2.515e-3,
    100.0: 0.1431,
    200.0: 0.4488,
    500.0: 1.766,
    1000.0: 4.367,
    2000.0: 9.785,
}


def test_cole_range_close_to_estar() -> None:
    energies = np.array(list(ESTAR_CSDA_RANGE_MM))
    np.testing.assert_allclose(
        electron_csda_range_mm(energies), list(ESTAR_CSDA_RANGE_MM.values()), rtol=0.08
    )


def _cole_stopping_power_kev_per_um(x_um: float) -> float:
    """dE/dx of Cole's relation E = 5.9(x+0.007)^0.565 + 0.00413 x^1.33 − 0.367 (Cole 1969)."""
    return 5.9 * 0.565 * (x_um + 0.007) ** (-0.435) + 0.00413 * 1.33 * x_um**0.33


@pytest.mark.parametrize(
    ("energy_kev", "mass_g"), [(150.0, 0.01), (500.0, 0.1), (1500.0, 1.0), (2000.0, 10.0)]
)
def test_electron_fraction_against_distance_integral(energy_kev: float, mass_g: float) -> None:
    """φ = (1/E0) ∫0^r0 psi(s) S(r0 − s) ds evaluated along the path with the stopping power."""
    radius_um = sphere_radius_mm(mass_g) * 1e3
    r0_um = float(electron_csda_range_mm(energy_kev)) * 1e3

    def integrand(s_um: float) -> float:
        return float(geometric_reduction_factor(s_um, radius_um)) * _cole_stopping_power_kev_per_um(
            r0_um - s_um
        )

    deposited, _ = integrate.quad(integrand, 0.0, r0_um, limit=200, points=[min(2 * radius_um, r0_um)])
    total, _ = integrate.quad(lambda s: _cole_stopping_power_kev_per_um(r0_um - s), 0.0, r0_um, limit=200)
    expected = deposited / total
    assert float(electron_absorbed_fraction(energy_kev, mass_g=mass_g)) == pytest.approx(expected, rel=2e-3)


def test_electron_fraction_monotonic_and_bounded() -> None:
    energies = np.array([1.0, 50.0, 200.0, 800.0, 2000.0])
    small = electron_absorbed_fraction(energies, mass_g=0.01)
    large = electron_absorbed_fraction(energies, mass_g=10.0)
    assert np.all(np.diff(small) < 0.0)
    assert np.all(large > small)
    assert np.all((small > 0.0) & (large <= 1.0))
    assert float(electron_absorbed_fraction(0.0, mass_g=1.0)) == 1.0
