"""ICRP-107 data access against published values."""

import pytest

from theradose.errors import NuclideError
from theradose.nuclides import get_nuclide


@pytest.mark.parametrize("spelling", ["Lu-177", "Lu177", "177Lu", "lu-177", "LU177", "177-Lu", " lu177 "])
def test_spellings_resolve_to_canonical(spelling: str) -> None:
    assert get_nuclide(spelling).name == "Lu-177"


@pytest.mark.parametrize("spelling", ["Tc-99m", "tc99m", "99mTc"])
def test_metastable_spellings(spelling: str) -> None:
    assert get_nuclide(spelling).name == "Tc-99m"


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(NuclideError, match=r"Lu-17[0-9].*Element-Mass"):
        get_nuclide("Lu-178x")
    with pytest.raises(NuclideError, match="not in ICRP-107"):
        get_nuclide("Unobtainium")


def test_lu177_energies_match_published_table() -> None:
    """Alcocer-Ávila et al. 2020, EJNMMI Phys 7:33, Table 1 (from ICRP-107): 177Lu mean β 133.3 keV,
    CE 13.52 keV, Auger 1.13 keV, total electrons 147.9 keV, photons 35.1 keV per decay; T½ 6.647 d."""
    lu = get_nuclide("Lu-177")
    assert lu.half_life_h == pytest.approx(6.647 * 24.0, rel=1e-4)
    assert lu.beta_energy_mev_per_decay * 1e3 == pytest.approx(133.3, abs=0.05)
    assert lu.ce_energy_mev_per_decay * 1e3 == pytest.approx(13.52, abs=0.01)
    assert lu.auger_energy_mev_per_decay * 1e3 == pytest.approx(1.13, abs=0.01)
    assert lu.electron_energy_mev_per_decay * 1e3 == pytest.approx(147.9, abs=0.05)
    assert lu.photon_energy_mev_per_decay * 1e3 == pytest.approx(35.1, abs=0.05)
    assert lu.alpha_energy_mev_per_decay == 0.0


def test_lu177_imaging_lines() -> None:
    """ICRP-107: 177Lu γ 208.366 keV (11.0 %) and 112.950 keV (6.4 %)."""
    lines = get_nuclide("Lu-177").photon_lines

    def yield_near(energy_kev: float) -> float:
        return next(line.yield_per_decay for line in lines if abs(line.energy_kev - energy_kev) < 0.1)

    assert yield_near(208.366) == pytest.approx(0.110, abs=1e-3)
    assert yield_near(112.950) == pytest.approx(0.064, abs=1e-3)


def test_beta_spectrum_mean_matches_mean_energy() -> None:
    """∫E p(E) dE of the tabulated spectrum equals the mean β energy from the line data (< 0.5 %)."""
    import numpy as np

    for name in ("Lu-177", "Y-90", "I-131"):
        nuclide = get_nuclide(name)
        energy, density = nuclide.beta_spectrum()
        assert float(np.trapezoid(density, energy)) == pytest.approx(nuclide.beta_yield_per_decay, rel=1e-9)
        mean = float(np.trapezoid(energy * density, energy))
        assert mean == pytest.approx(nuclide.beta_energy_mev_per_decay, rel=5e-3)


def test_y90_is_pure_beta() -> None:
    """ICRP-107: 90Y mean β energy 0.9327 MeV per decay, T½ 64.10 h."""
    y90 = get_nuclide("Y90")
    assert y90.beta_energy_mev_per_decay == pytest.approx(0.9327, abs=5e-4)
    assert y90.half_life_h == pytest.approx(64.10, abs=0.01)
    assert y90.photon_energy_mev_per_decay < 1e-5
