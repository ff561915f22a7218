"""Nuclear decay data (ICRP-107): half-lives, emissions, decay chains, decay correction, Γ constants.

Examples
--------
>>> from theradose.nuclides import get_nuclide, decay_factor
>>> lu = get_nuclide("177Lu")
>>> round(lu.half_life_h, 2)
159.53
>>> round(decay_factor(lu, lu.half_life_h), 6)
0.5
"""

from theradose.nuclides.chain import ChainEnergies, ChainMember, decay_chain, equilibrium_energies
from theradose.nuclides.data import ElectronLine, Nuclide, PhotonLine, available_nuclides, get_nuclide
from theradose.nuclides.decay import decay_activity_mbq, decay_correct_mbq, decay_factor, elapsed_hours
from theradose.nuclides.kerma import air_kerma_rate_constant_ugy_m2_per_gbq_h, mu_en_over_rho_air_m2_per_kg

__all__ = [
    "ChainEnergies",
    "ChainMember",
    "ElectronLine",
    "Nuclide",
    "PhotonLine",
    "air_kerma_rate_constant_ugy_m2_per_gbq_h",
    "available_nuclides",
    "decay_activity_mbq",
    "decay_chain",
    "decay_correct_mbq",
    "decay_factor",
    "elapsed_hours",
    "equilibrium_energies",
    "get_nuclide",
    "mu_en_over_rho_air_m2_per_kg",
]
