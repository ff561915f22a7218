"""Sphere S values of real nuclides (ICRP-107 data) against published values and hand bounds."""

from __future__ import annotations

import pytest

from theradose.dosimetry.sphere import self_s_value, sphere_s_value
from theradose.nuclides import get_nuclide

JOULE_PER_MEV = 1.602176634e-13

# OLINDA/EXM 2 dose factors (mGy/(MBq·h)) for 152Tb uniformly distributed in unit-density spheres,
# Table 3 of the open-access article PMC6560118 (https://pmc.ncbi.nlm.nih.gov/articles/PMC6560118/,
# table "Tab3"). 152Tb has energetic positrons (mean 1.1 MeV) and many photons, so it exercises both
# the electron and the photon model.
OLINDA2_TB152_MGY_PER_MBQ_H = {
    0.1: 6.78e2,
    0.5: 1.84e2,
    1.0: 1.11e2,
    2.0: 6.09e1,
    4.0: 3.30e1,
    6.0: 2.30e1,
    8.0: 1.78e1,
    10.0: 1.46e1,
}


@pytest.mark.parametrize(("mass_g", "published"), OLINDA2_TB152_MGY_PER_MBQ_H.items())
def test_tb152_spheres_against_olinda2(mass_g: float, published: float) -> None:
    """Within 10 % of OLINDA 2 for 0.1-10 g and within 5 % from 4 g up.

    The straight-ahead electron model lets too many electrons escape small spheres, so the S values
    are low by 2-9 % (measured: -8.4 % at 0.1 g, -2.4 % at 10 g).
    """
    got = sphere_s_value("Tb-152", mass_g=mass_g).s_value_mgy_per_mbq_s * 3600.0
    tolerance = 0.05 if mass_g >= 4.0 else 0.10
    assert got == pytest.approx(published, rel=tolerance)
    assert got < published  # the known direction of the straight-ahead bias


def test_lu177_spectrum_energy_matches_icrp107_mean() -> None:
    """∫E p(E) dE of the beta spectrum + lines equals ICRP-107's mean electron energy per decay."""
    lu = get_nuclide("Lu-177")
    s = self_s_value(lu, mass_g=1.0, kind="organ")
    assert s.electron_energy_mev_per_decay == pytest.approx(lu.electron_energy_mev_per_decay, rel=2e-3)
    assert s.photon_energy_mev_per_decay == pytest.approx(lu.photon_energy_mev_per_decay, rel=1e-9)


def test_lu177_one_gram_sphere_by_hand() -> None:
    """1 g sphere of 177Lu: electrons 0.1479 MeV/decay absorbed almost fully (CSDA range of the mean
    beta ~0.2 mm vs radius 6.2 mm), photons 0.0351 MeV/decay escape almost entirely, so
    S ≈ 0.1479·1.602e-13 J / 1e-3 kg · 1e6 Bq/MBq · 1e3 mGy/Gy ≈ 0.0237 mGy/(MBq·s), slightly less."""
    s = sphere_s_value("Lu-177", mass_g=1.0)
    full_electron = 0.14792 * JOULE_PER_MEV / 1e-3 * 1e9
    assert 0.94 * full_electron < s.s_value_mgy_per_mbq_s < full_electron
    assert 0.9 < s.electron_absorbed_fraction < 1.0
    assert 0.0 < s.photon_absorbed_fraction < 0.05


def test_lu177_mass_scaling_of_sphere_model() -> None:
    """Electron S scales as ~1/m (within the escape fraction); photon φ grows roughly as m^(1/3)."""
    small = sphere_s_value("Lu-177", mass_g=10.0)
    large = sphere_s_value("Lu-177", mass_g=1000.0)
    ratio = small.s_electron_mgy_per_mbq_s / large.s_electron_mgy_per_mbq_s
    assert ratio == pytest.approx(100.0, rel=0.03)
    photon_growth = large.photon_absorbed_fraction / small.photon_absorbed_fraction
    assert photon_growth == pytest.approx(100.0 ** (1 / 3), rel=0.25)
