"""Air-kerma-rate constant from the photon lines and the mass energy-absorption coefficient of air.

Γ_δ = (1 / 4π) Σ_i y_i E_i (μ_en/ρ)_air(E_i), summed over photon lines with E_i > δ, per unit activity at
unit distance in vacuum (ICRU Report 85 (2011), section 4.4, "air-kerma-rate constant"). The energy
cut-off δ defaults to 20 keV as is customary for diagnostic and therapy nuclides (e.g. Smith & Stabin
2012, Health Phys 102:271).

``xraydb`` provides the photon interaction cross sections (Elam, Ravel & Sieber 2002: photoelectric,
coherent, incoherent) but not μ_en/ρ, which is derived here as (Attix 1986, ch. 7; Hubbell 1982):

    μ_en/ρ ≈ τ/ρ + (σ_incoh/ρ) · ⟨T⟩/E

with ⟨T⟩/E the Klein–Nishina mean fraction of the photon energy given to the Compton electron. The
fluorescence escape after photoabsorption and the radiative (bremsstrahlung) fraction g are neglected;
both are below 0.3 % for air between 20 keV and 2 MeV. The result agrees with the NIST table of
Hubbell & Seltzer (NISTIR 5632) for dry air within 2 % from 30 keV to 1.5 MeV (tested).
"""

from __future__ import annotations

import math

import numpy as np

from theradose.nuclides.chain import decay_chain
from theradose.nuclides.data import Nuclide, get_nuclide
from theradose.units import (
    GRAM_PER_KG,
    MBQ_PER_GBQ,
    decays_from_tia_mbq_h,
    gy_to_mgy,
    kev_to_mev,
    mev_to_joule,
)

#: Default energy cut-off δ (keV) below which photons are ignored.
DEFAULT_CUTOFF_KEV = 20.0
_CM2_PER_M2 = 1.0e4
_UGY_PER_MGY = 1.0e3


#: Electron rest energy m_e c² in keV (CODATA 2018).
ELECTRON_REST_ENERGY_KEV = 510.99895
_EV_PER_KEV = 1.0e3


def klein_nishina_energy_transfer_fraction(energy_kev: float) -> float:
    """Mean fraction ⟨T⟩/E of a photon's energy given to the electron in a free-electron Compton event.

    Klein–Nishina differential cross section (Klein & Nishina 1929; Attix 1986 eq. 7.7) integrated over
    the scattering angle by 96-point Gauss–Legendre quadrature in cos θ.
    """
    k = energy_kev / ELECTRON_REST_ENERGY_KEV
    mu, weights = np.polynomial.legendre.leggauss(96)
    ratio = 1.0 / (1.0 + k * (1.0 - mu))  # E'/E
    dsigma = ratio**2 * (ratio + 1.0 / ratio - (1.0 - mu**2))
    return float(np.sum(weights * dsigma * (1.0 - ratio)) / np.sum(weights * dsigma))


def klein_nishina_cross_section_cm2_per_electron(energy_kev: float) -> float:
    """Total Klein–Nishina cross section per free electron (cm²) (Attix 1986, eq. 7.9)."""
    k = energy_kev / ELECTRON_REST_ENERGY_KEV
    r_e_cm = 2.8179403262e-13  # classical electron radius (CODATA 2018)
    log_term = math.log(1.0 + 2.0 * k)
    term1 = (1.0 + k) / k**2 * (2.0 * (1.0 + k) / (1.0 + 2.0 * k) - log_term / k)
    term2 = log_term / (2.0 * k) - (1.0 + 3.0 * k) / (1.0 + 2.0 * k) ** 2
    return 2.0 * math.pi * r_e_cm**2 * (term1 + term2)


def electrons_per_gram(material: str) -> float:
    """Electron density Σ w_i Z_i / A_i · N_A of an ``xraydb`` material, in electrons per gram."""
    import xraydb

    formula, _density = xraydb.get_material(material) or (material, None)
    composition = xraydb.chemparse(formula)
    mass = {el: n * xraydb.atomic_mass(el) for el, n in composition.items()}
    total_mass = sum(mass.values())
    avogadro = 6.02214076e23
    return avogadro * float(
        sum((m / total_mass) * xraydb.atomic_number(el) / xraydb.atomic_mass(el) for el, m in mass.items())
    )


#: Above this energy (keV) the incoherent cross section is the free-electron Klein–Nishina value times
#: the electron density (binding corrections < 0.1 % for Z ≤ 20); below it xraydb's Elam values are used.
FREE_ELECTRON_COMPTON_ABOVE_KEV = 500.0
#: xraydb warns that its Elam tables are unreliable above this energy (keV).
ELAM_RELIABLE_MAX_KEV = 800.0


def mu_en_over_rho_m2_per_kg(material: str, energy_kev: float) -> float:
    """Mass energy-absorption coefficient (m²/kg) of an ``xraydb`` material at ``energy_kev``.

    See the module docstring for the approximation and its accuracy. Above 800 keV the photoelectric
    term is evaluated at 800 keV and scaled by (800/E)³ (its Z-independent energy dependence at high
    energy is weaker, so this over-estimates a term that is already < 0.1 % of μ_en for Z ≤ 20).
    """
    import xraydb

    photo_energy_kev = min(energy_kev, ELAM_RELIABLE_MAX_KEV)
    photo = float(xraydb.material_mu(material, _EV_PER_KEV * photo_energy_kev, density=1.0, kind="photo"))
    photo *= (photo_energy_kev / energy_kev) ** 3
    if energy_kev > FREE_ELECTRON_COMPTON_ABOVE_KEV:
        incoherent = electrons_per_gram(material) * klein_nishina_cross_section_cm2_per_electron(energy_kev)
    else:
        incoherent = float(xraydb.material_mu(material, _EV_PER_KEV * energy_kev, density=1.0, kind="incoh"))
    value_cm2_per_g = photo + incoherent * klein_nishina_energy_transfer_fraction(energy_kev)
    return value_cm2_per_g * GRAM_PER_KG / _CM2_PER_M2


def mu_en_over_rho_air_m2_per_kg(energy_kev: float) -> float:
    """Mass energy-absorption coefficient of dry air (m²/kg) at ``energy_kev``."""
    return mu_en_over_rho_m2_per_kg("air", energy_kev)


def air_kerma_rate_constant_ugy_m2_per_gbq_h(
    nuclide: str | Nuclide, *, cutoff_kev: float = DEFAULT_CUTOFF_KEV, include_progeny: bool = False
) -> float:
    """Air-kerma-rate constant Γ_δ in µGy·m²/(GBq·h).

    Parameters
    ----------
    nuclide
        Nuclide or its name.
    cutoff_kev
        Photons at or below this energy are excluded (δ).
    include_progeny
        Add the photons of daughters in equilibrium (e.g. ¹³⁷Cs with ¹³⁷ᵐBa), weighted by their
        equilibrium activity ratio.
    """
    members = decay_chain(nuclide) if include_progeny else ()
    weighted = [(get_nuclide(nuclide), 1.0)]
    weighted += [(get_nuclide(m.name), m.activity_ratio) for m in members[1:] if m.in_equilibrium]
    gy_m2_per_decay = 0.0
    for member, ratio in weighted:
        for line in member.photon_lines_above(cutoff_kev):
            energy_j = mev_to_joule(kev_to_mev(line.energy_kev))
            gy_m2_per_decay += (
                ratio * line.yield_per_decay * energy_j * mu_en_over_rho_air_m2_per_kg(line.energy_kev)
            )
    gy_m2_per_decay /= 4.0 * math.pi
    decays_per_gbq_h = decays_from_tia_mbq_h(MBQ_PER_GBQ)
    return gy_to_mgy(gy_m2_per_decay * decays_per_gbq_h) * _UGY_PER_MGY
