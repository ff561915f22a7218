"""MIRD organ doses against hand calculations, and EANM uncertainty propagation against sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theradose.dosimetry.absorption import electron_absorbed_fraction, photon_absorbed_fraction
from theradose.dosimetry.organ import Region, region_doses
from theradose.dosimetry.sphere import self_s_value, sphere_s_value
from theradose.dosimetry.svalues import SValueTable
from theradose.errors import InputError

JOULE_PER_MEV = 1.602176634e-13


def test_pure_electron_organ_dose_by_hand(electron_emitter) -> None:
    """100 g organ, 0.5 MeV electrons per decay absorbed locally, Ã = 1000 MBq·h:
    D = 1000 · 3.6e9 · 0.5 MeV · 1.602e-13 J/MeV / 0.1 kg = 2.8839 Gy."""
    region = Region(name="kidney", kind="organ", mass_g=100.0, tia_mbq_h=1000.0)
    (dose,) = region_doses([region], electron_emitter, administered_activity_mbq=7400.0)
    expected = 1000.0 * 3.6e9 * 0.5 * JOULE_PER_MEV / 0.1
    assert dose.dose_gy == pytest.approx(expected, rel=1e-12)
    assert dose.dose_gy == pytest.approx(2.8839, rel=1e-4)
    assert dose.dose_gy_per_gbq == pytest.approx(expected / 7.4, rel=1e-12)
    assert dose.dose_sigma_gy == 0.0


def test_s_value_units_by_hand(electron_emitter) -> None:
    """S = 0.5 MeV · 1.602e-13 J/MeV / 1e-3 kg per decay = 8.011e-11 Gy/(Bq·s) = 80.11 mGy/(MBq·s)."""
    s = self_s_value(electron_emitter, mass_g=1.0, kind="organ")
    assert s.s_value_mgy_per_mbq_s == pytest.approx(0.5 * JOULE_PER_MEV / 1e-3 * 1e6 * 1e3, rel=1e-12)
    assert s.electron_absorbed_fraction == 1.0


def test_sphere_kind_applies_both_absorbed_fractions(mixed_emitter) -> None:
    mass = 2.0
    s = sphere_s_value(mixed_emitter, mass_g=mass)
    phi_e = float(electron_absorbed_fraction(150.0, mass_g=mass))
    phi_p = float(photon_absorbed_fraction(200.0, mass_g=mass))
    by_hand = (0.150 * phi_e + 0.100 * phi_p) * JOULE_PER_MEV / 2e-3 * 1e9  # mGy/(MBq s)
    assert s.s_value_mgy_per_mbq_s == pytest.approx(by_hand, rel=1e-12)
    assert s.electron_absorbed_fraction == pytest.approx(phi_e)
    assert s.photon_absorbed_fraction == pytest.approx(phi_p)
    organ = self_s_value(mixed_emitter, mass_g=mass, kind="organ")
    assert organ.electron_absorbed_fraction == 1.0
    assert organ.photon_absorbed_fraction == pytest.approx(phi_p)
    assert organ.s_value_mgy_per_mbq_s > s.s_value_mgy_per_mbq_s


def test_beta_spectrum_weighting(make_emitter) -> None:
    """A flat spectrum on [0, 1] MeV normalised to 1 beta/decay has a mean energy of 0.5 MeV."""
    energies = tuple(np.linspace(0.0, 1.0, 201))
    emitter = make_emitter(name="flat", spectrum=(energies, tuple(np.ones(201))))
    s = self_s_value(emitter, mass_g=10.0, kind="organ")
    assert s.electron_energy_mev_per_decay == pytest.approx(0.5, rel=1e-9)
    sphere = sphere_s_value(emitter, mass_g=10.0)
    grid = np.linspace(0.0, 1000.0, 2001)
    phi = electron_absorbed_fraction(grid, mass_g=10.0)
    expected = float(np.trapezoid(grid * phi, grid) / np.trapezoid(grid, grid))
    assert sphere.electron_absorbed_fraction == pytest.approx(expected, rel=2e-3)


def test_alpha_energy_absorbed_locally(make_emitter) -> None:
    emitter = make_emitter(name="alpha", alpha_energy_mev_per_decay=5.0)
    s = sphere_s_value(emitter, mass_g=1.0)
    assert s.s_alpha_mgy_per_mbq_s == pytest.approx(5.0 * JOULE_PER_MEV / 1e-3 * 1e9, rel=1e-12)


def test_uncertainty_pure_electron_closed_form(electron_emitter) -> None:
    """D ∝ Ã/m, so (σ_D/D)² = (σ_Ã/Ã)² + (σ_m/m)² − 2ρ(σ_Ã/Ã)(σ_m/m) (Gear et al. 2018, EJNMMI 45:2456)."""
    for rho in (0.0, 0.6, -0.3):
        region = Region(
            name="liver",
            kind="organ",
            mass_g=1800.0,
            mass_sigma_g=180.0,
            tia_mbq_h=20000.0,
            tia_sigma_mbq_h=2000.0,
            tia_mass_correlation=rho,
        )
        (dose,) = region_doses([region], electron_emitter)
        relative = math.sqrt(0.1**2 + 0.1**2 - 2 * rho * 0.1 * 0.1)
        assert dose.dose_sigma_gy / dose.dose_gy == pytest.approx(relative, rel=1e-6)


def test_uncertainty_matches_monte_carlo_sampling(mixed_emitter, rng: np.random.Generator) -> None:
    """First-order σ of a sphere dose (photon φ depends on mass) against 2000 seeded samples."""
    region = Region(
        name="tumour",
        kind="sphere",
        mass_g=5.0,
        mass_sigma_g=0.4,
        tia_mbq_h=900.0,
        tia_sigma_mbq_h=60.0,
        tia_mass_correlation=0.4,
    )
    (dose,) = region_doses([region], mixed_emitter)
    cov = [[60.0**2, 0.4 * 60.0 * 0.4], [0.4 * 60.0 * 0.4, 0.4**2]]
    samples = rng.multivariate_normal([900.0, 5.0], cov, size=2000)
    doses = np.array(
        [
            tia * 3600.0 * sphere_s_value(mixed_emitter, mass_g=mass).s_value_mgy_per_mbq_s / 1e3
            for tia, mass in samples
        ]
    )
    assert doses.mean() == pytest.approx(dose.dose_gy, rel=0.01)
    assert doses.std(ddof=1) == pytest.approx(dose.dose_sigma_gy, rel=0.08)


def test_cross_dose_from_table(electron_emitter) -> None:
    """D_kidney = Ã_k S_self + Ã_liver S(kidney←liver); σ adds the liver TIA term in quadrature."""
    regions = [
        Region(name="kidney", kind="organ", mass_g=300.0, tia_mbq_h=5000.0, tia_sigma_mbq_h=300.0),
        Region(name="liver", kind="organ", mass_g=1800.0, tia_mbq_h=20000.0, tia_sigma_mbq_h=1000.0),
    ]
    table = SValueTable(values={("liver", "kidney"): 3.0e-6, ("spleen", "kidney"): 1.0}, origin="test")
    kidney, liver = region_doses(regions, electron_emitter, s_table=table)
    self_dose = 5000.0 * 3.6e9 * 0.5 * JOULE_PER_MEV / 0.3
    cross = 20000.0 * 3600.0 * 3.0e-6 / 1e3  # MBq h · s/h · mGy/(MBq s) → Gy
    assert kidney.self_dose_gy == pytest.approx(self_dose, rel=1e-12)
    assert kidney.cross_dose_gy == pytest.approx(cross, rel=1e-12)
    assert kidney.dose_gy == pytest.approx(self_dose + cross, rel=1e-12)
    expected_sigma = math.hypot(self_dose * 300.0 / 5000.0, 3600.0 * 3.0e-6 / 1e3 * 1000.0)
    assert kidney.dose_sigma_gy == pytest.approx(expected_sigma, rel=1e-9)
    assert liver.cross_dose_gy == 0.0


def test_region_errors(electron_emitter) -> None:
    with pytest.raises(InputError, match="mass_g"):
        Region(name="a", kind="organ", mass_g=-1.0, tia_mbq_h=1.0)
    with pytest.raises(InputError, match="kind"):
        Region(name="a", kind="blob", mass_g=1.0, tia_mbq_h=1.0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="tia_mass_correlation"):
        Region(name="a", kind="organ", mass_g=1.0, tia_mbq_h=1.0, tia_mass_correlation=2.0)
    regions = [Region(name="a", kind="organ", mass_g=1.0, tia_mbq_h=1.0)] * 2
    with pytest.raises(InputError, match="unique"):
        region_doses(regions, electron_emitter)
    table = SValueTable(values={("a", "a"): 1.0}, origin="t.csv")
    with pytest.raises(InputError, match="self-dose"):
        region_doses(regions[:1], electron_emitter, s_table=table)
