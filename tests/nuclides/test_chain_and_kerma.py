"""Decay chains (225Ac) and air-kerma-rate constants against independent values."""

import pytest

from theradose.nuclides import air_kerma_rate_constant_ugy_m2_per_gbq_h, decay_chain, equilibrium_energies
from theradose.nuclides.kerma import klein_nishina_energy_transfer_fraction, mu_en_over_rho_air_m2_per_kg


def test_ac225_chain_members_and_branching() -> None:
    """225Ac → 221Fr → 217At → 213Bi → (97.8 %) 213Po / (2.2 %) 209Tl → 209Pb (ICRP-107 branching)."""
    members = {m.name: m for m in decay_chain("Ac-225")}
    assert set(members) >= {"Ac-225", "Fr-221", "At-217", "Bi-213", "Po-213", "Tl-209", "Pb-209"}
    # secular equilibrium: short-lived daughters have ratio ≈ 1 (λd/(λd − λp) ≈ 1.0003 for 221Fr)
    assert members["Fr-221"].activity_ratio == pytest.approx(1.0, abs=1e-3)
    assert members["Po-213"].activity_ratio + members["Tl-209"].activity_ratio == pytest.approx(
        members["Bi-213"].activity_ratio, rel=1e-3
    )
    assert members["Tl-209"].activity_ratio == pytest.approx(0.0209, abs=2e-3)


def test_ac225_alpha_energy_per_parent_decay() -> None:
    """Four α per 225Ac decay at equilibrium: 5.79 (225Ac) + 6.30 (221Fr) + 7.07 (217At) + 8.38 (213Po)
    ≈ 27.5 MeV (ICRP-107 mean α energies; Sgouros et al. 2010, JNM 51:311 quote ≈ 28 MeV in total)."""
    energies = equilibrium_energies("Ac-225")
    assert energies.alpha_energy_mev_per_decay == pytest.approx(27.5, abs=0.15)
    assert energies.total_energy_mev_per_decay > energies.alpha_energy_mev_per_decay


def test_transient_equilibrium_ratio_hand_calculation() -> None:
    """99Mo → 99mTc (branching 0.8775 in ICRP-107): A_Tc/A_Mo = b·λTc/(λTc − λMo)."""
    import math

    from theradose.nuclides import get_nuclide

    mo, tc = get_nuclide("Mo-99"), get_nuclide("Tc-99m")
    branching = dict(mo.progeny)["Tc-99m"]
    lam_mo, lam_tc = math.log(2) / mo.half_life_h, math.log(2) / tc.half_life_h
    members = {m.name: m for m in decay_chain("Mo-99")}
    assert members["Tc-99m"].activity_ratio == pytest.approx(branching * lam_tc / (lam_tc - lam_mo), rel=1e-9)
    assert 0.94 < members["Tc-99m"].activity_ratio < 0.97


@pytest.mark.parametrize(
    ("energy_kev", "nist_cm2_per_g"),
    # Hubbell & Seltzer, NIST X-ray mass attenuation coefficients (NISTIR 5632), Table 4, air (dry)
    [
        (30, 0.1537),
        (60, 0.03041),
        (100, 0.02325),
        (200, 0.02672),
        (500, 0.02966),
        (1000, 0.02789),
        (1250, 0.02666),
    ],
)
def test_mu_en_air_against_nist(energy_kev: float, nist_cm2_per_g: float) -> None:
    assert mu_en_over_rho_air_m2_per_kg(energy_kev) * 10.0 == pytest.approx(nist_cm2_per_g, rel=0.02)


def test_klein_nishina_transfer_fraction_limits() -> None:
    """⟨T⟩/E → 0 at low energy (≈ k for k ≪ 1) and 0.44 at 1 MeV (Attix 1986, Fig. 7.7)."""
    assert klein_nishina_energy_transfer_fraction(1.0) == pytest.approx(1.0 / 511.0, rel=0.05)
    assert klein_nishina_energy_transfer_fraction(1000.0) == pytest.approx(0.44, abs=0.01)


# Exposure-rate constants (R·cm²/(mCi·h)), e.g. Radiological Health Handbook (1970): 60Co 13.2, 137Cs
# (with 137mBa) 3.3. Converted with 1 R = 8.76e-3 Gy air kerma (W/e = 33.97 J/C) and 1 mCi = 0.037 GBq:
# factor 8.76e3 µGy/R · 1e-4 m²/cm² / 0.037 GBq/mCi = 23.68.
@pytest.mark.parametrize(("name", "exposure_constant"), [("Co-60", 13.2), ("Cs-137", 3.3)])
def test_air_kerma_constant_matches_exposure_rate_constants(name: str, exposure_constant: float) -> None:
    expected = exposure_constant * 23.68
    computed = air_kerma_rate_constant_ugy_m2_per_gbq_h(name, include_progeny=True)
    assert computed == pytest.approx(expected, rel=0.03)


def test_lu177_air_kerma_constant_hand_sum() -> None:
    """Hand sum Γ = Σ y·E·(μen/ρ)/(4π) over the 177Lu lines above 50 keV (ICRP-107 yields), with μen/ρ of
    air read from the NIST table (Hubbell & Seltzer) and interpolated by hand:
    208.4 keV 11.0 % 0.02670; 113.0 keV 6.4 % 0.02360; Hf Kα/Kβ 54.7–71.6 keV, y·E = 3.26 keV, 0.0330;
    249.7 + 321.3 keV, y·E = 1.23 keV, 0.0285 (cm²/g). Sum ≈ 4.24 µGy·m²/(GBq·h)."""
    import math

    lines = ((22.92, 0.002670), (7.229, 0.002360), (3.26, 0.00330), (1.23, 0.00285))  # (y·E keV, m²/kg)
    gy_m2_per_decay = sum(ye * 1.602176634e-16 * mu for ye, mu in lines) / (4 * math.pi)
    hand = gy_m2_per_decay * 3.6e12 * 1e6
    assert hand == pytest.approx(4.24, abs=0.02)
    assert air_kerma_rate_constant_ugy_m2_per_gbq_h("Lu-177") == pytest.approx(hand, rel=0.02)


def test_decays_per_parent_decay_differ_from_activity_ratio_in_transient_equilibrium() -> None:
    """212Pb (T½ 10.64 h) → 212Bi (T½ 60.55 min): one 212Bi decay per 212Pb decay, but at transient
    equilibrium A_Bi/A_Pb = λBi/(λBi − λPb) = 10.64/(10.64 − 1.0092) = 1.105 (hand calculation)."""
    members = {m.name: m for m in decay_chain("Pb-212")}
    bi = members["Bi-212"]
    assert bi.decays_per_parent_decay == pytest.approx(1.0, rel=1e-9)
    assert bi.activity_ratio == pytest.approx(10.64 / (10.64 - 60.55 / 60), rel=2e-3)
    energies = equilibrium_energies("Pb-212")
    from theradose.nuclides import get_nuclide

    by_hand = sum(
        m.decays_per_parent_decay * get_nuclide(m.name).alpha_energy_mev_per_decay for m in members.values()
    )
    assert energies.alpha_energy_mev_per_decay == pytest.approx(by_hand, rel=1e-12)
