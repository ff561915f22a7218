"""Progeny in equilibrium (225Ac chain) in the self-dose S value, and RBE weighting of the alpha part."""

from __future__ import annotations

import numpy as np
import pytest

from theradose.dosimetry.organ import Region, region_doses
from theradose.dosimetry.sphere import chain_emitter, decays_per_parent_decay, self_s_value
from theradose.nuclides import equilibrium_energies, get_nuclide
from theradose.radiobiology import rbe_weighted_dose_gy

JOULE_PER_MEV = 1.602176634e-13


def _alpha_mev(counts: dict[str, float], *, recoil: bool) -> float:
    total = 0.0
    for name, count in counts.items():
        member = get_nuclide(name)
        total += count * member.alpha_energy_mev_per_decay
        if recoil:
            total += count * member.alpha_recoil_energy_mev_per_decay
    return total


def test_ac225_alpha_energy_per_parent_decay() -> None:
    """Four alphas per 225Ac decay: 5.83 (225Ac) + 6.34 (221Fr) + 7.07 (217At) + 0.978·8.38 (213Po)
    + 0.022·5.87 (213Bi) ≈ 27.6 MeV (main lines, ICRP-107), plus ~0.5 MeV of recoil nuclei."""
    counts = decays_per_parent_decay("Ac-225")
    assert counts["Po-213"] == pytest.approx(0.978, abs=0.002)  # 213Bi β⁻ branch (ICRP-107)
    assert _alpha_mev(counts, recoil=False) == pytest.approx(27.6, rel=0.01)
    s = self_s_value("Ac-225", mass_g=100.0, kind="organ")
    expected_alpha = _alpha_mev(counts, recoil=True)
    assert s.alpha_energy_mev_per_decay == pytest.approx(expected_alpha, rel=1e-9)
    assert s.s_alpha_mgy_per_mbq_s == pytest.approx(expected_alpha * JOULE_PER_MEV / 0.1 * 1e9, rel=1e-9)
    # short-lived daughters: decays per parent decay ≈ equilibrium activity ratios (within 0.5 %)
    chain = equilibrium_energies("Ac-225")
    at_equilibrium = chain.alpha_energy_mev_per_decay + chain.alpha_recoil_energy_mev_per_decay
    assert s.alpha_energy_mev_per_decay == pytest.approx(at_equilibrium, rel=0.005)
    alone = self_s_value("Ac-225", mass_g=100.0, kind="organ", include_progeny=False)
    assert alone.alpha_energy_mev_per_decay == pytest.approx(
        get_nuclide("Ac-225").alpha_energy_mev_per_decay
        + get_nuclide("Ac-225").alpha_recoil_energy_mev_per_decay
    )


def test_pb212_counts_decays_not_activity_ratio() -> None:
    """212Pb (10.6 h) → 212Bi (1.01 h): one 212Bi decay per 212Pb decay, although the transient-equilibrium
    activity ratio is 1.10. Alphas: 0.359·6.05 (212Bi) + 0.641·8.78 (212Po) = 7.80 MeV per 212Pb decay."""
    counts = decays_per_parent_decay("Pb-212")
    assert counts["Bi-212"] == pytest.approx(1.0)
    assert counts["Po-212"] + counts["Tl-208"] == pytest.approx(1.0, rel=1e-6)
    assert _alpha_mev(counts, recoil=False) == pytest.approx(7.80, rel=0.01)


def test_chain_spectrum_and_lines_weighted_by_decay_counts() -> None:
    emitter = chain_emitter("Ac-225")
    counts = decays_per_parent_decay("Ac-225")
    beta = sum(c * get_nuclide(n).beta_energy_mev_per_decay for n, c in counts.items())
    photon = sum(c * get_nuclide(n).photon_energy_mev_per_decay for n, c in counts.items())
    energy, density = emitter.beta_spectrum()
    assert float(np.trapezoid(energy * density, energy)) == pytest.approx(beta, rel=2e-3)
    photon_mev = sum(line.energy_kev * line.yield_per_decay for line in emitter.photon_lines) / 1e3
    assert photon_mev == pytest.approx(photon, rel=1e-9)


def test_no_progeny_returns_the_nuclide() -> None:
    assert chain_emitter("Lu-177") == get_nuclide("Lu-177")


def test_region_alpha_dose_and_rbe_weighting() -> None:
    """225Ac in a 300 g organ, Ã = 50 MBq·h: alpha dose = Ã·3.6e9·E_α·1.602e-13/0.3 kg; RBE 5 (MIRD 22)."""
    (dose,) = region_doses([Region(name="kidneys", kind="organ", mass_g=300.0, tia_mbq_h=50.0)], "Ac-225")
    alpha = 50.0 * 3.6e9 * _alpha_mev(decays_per_parent_decay("Ac-225"), recoil=True) * JOULE_PER_MEV / 0.3
    assert dose.alpha_dose_gy == pytest.approx(alpha, rel=1e-9)
    low_let = dose.dose_gy - dose.alpha_dose_gy
    assert 0.0 < low_let < 0.05 * dose.dose_gy
    weighted = rbe_weighted_dose_gy(alpha_dose_gy=dose.alpha_dose_gy, low_let_dose_gy=low_let)
    assert weighted == pytest.approx(5.0 * alpha + low_let, rel=1e-12)
