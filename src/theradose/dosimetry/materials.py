"""Tissue compositions for voxel dosimetry and their derived interaction data.

Elemental mass fractions are those of ICRU Report 44 (1989, *Tissue substitutes in radiation dosimetry
and measurement*, table 4.3): skeletal muscle (used as "soft tissue"), cortical bone, lung and dry air;
water is H₂O. Densities come from the tissue registry (:mod:`theradose.tissues`, ``data/tissues.toml``):
soft tissue 1.03 g/cm³ (ICRU Report 46 adult average soft tissue), cortical bone 1.92 g/cm³, inflated
lung 0.26 g/cm³, dry air 1.205 mg/cm³; water 1.0 g/cm³.

Photon cross sections come from the Elam–Ravel–Sieber tables shipped with ``xraydb`` (photoelectric,
coherent = Rayleigh, incoherent = Compton, in cm²/g), mixed by mass fraction (Bragg additivity).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

#: eV per MeV (xraydb takes photon energies in eV).
EV_PER_MEV = 1.0e6

#: Above this energy (MeV) the incoherent cross section is taken from Klein–Nishina (free electrons).
ELAM_MAX_RELIABLE_MEV = 0.8
#: Avogadro constant (1/mol), CODATA 2018 exact.
AVOGADRO_PER_MOL = 6.02214076e23
#: Classical electron radius (cm), CODATA 2018.
CLASSICAL_ELECTRON_RADIUS_CM = 2.8179403262e-13
#: Electron rest energy (MeV), CODATA 2018.
ELECTRON_REST_ENERGY_MEV = 0.51099895

MaterialName = Literal["air", "lung", "soft", "bone", "water"]

#: Material indices used in the Monte Carlo material map (order matters: index = position).
MC_MATERIALS: tuple[MaterialName, ...] = ("air", "lung", "soft", "bone")

#: Density thresholds (g/cm³) separating air | lung | soft | bone in a density map. A voxel with
#: density < 0.05 is air, < 0.6 lung, < 1.25 soft tissue, otherwise bone. Similar to the coarse
#: segmentation of Schneider, Bortfeld & Schlegel 2000 (Phys Med Biol 45:459).
MATERIAL_DENSITY_THRESHOLDS_G_PER_ML: tuple[float, float, float] = (0.05, 0.6, 1.25)


@dataclass(frozen=True)
class Material:
    """A homogeneous medium: name, tissue of the tissue registry (its density) and elemental mass
    fractions."""

    name: MaterialName
    tissue: str
    mass_fractions: tuple[tuple[str, float], ...]

    @property
    def density_g_per_ml(self) -> float:
        """Nominal density (g/cm³) of the medium, from the tissue registry."""
        from theradose.tissues import density_g_per_ml

        return density_g_per_ml(self.tissue)

    def electrons_per_gram_ratio_to_water(self) -> float:
        """(Z/A)_medium / (Z/A)_water, the ratio of electrons per gram (atomic data from ``xraydb``)."""
        return _z_over_a(self.mass_fractions) / _z_over_a(WATER.mass_fractions)


WATER = Material("water", "water", (("H", 0.111894), ("O", 0.888106)))
SOFT_TISSUE = Material(
    "soft",
    "soft_tissue",
    (
        ("H", 0.102),
        ("C", 0.143),
        ("N", 0.034),
        ("O", 0.710),
        ("Na", 0.001),
        ("P", 0.002),
        ("S", 0.003),
        ("Cl", 0.001),
        ("K", 0.004),
    ),
)
CORTICAL_BONE = Material(
    "bone",
    "cortical_bone",
    (
        ("H", 0.034),
        ("C", 0.155),
        ("N", 0.042),
        ("O", 0.435),
        ("Na", 0.001),
        ("Mg", 0.002),
        ("P", 0.103),
        ("S", 0.003),
        ("Ca", 0.225),
    ),
)
LUNG = Material(
    "lung",
    "lung",
    (
        ("H", 0.103),
        ("C", 0.105),
        ("N", 0.031),
        ("O", 0.749),
        ("Na", 0.002),
        ("P", 0.002),
        ("S", 0.003),
        ("Cl", 0.003),
        ("K", 0.002),
    ),
)
AIR = Material("air", "air", (("C", 0.000124), ("N", 0.755268), ("O", 0.231781), ("Ar", 0.012827)))

MATERIALS: dict[MaterialName, Material] = {
    "air": AIR,
    "lung": LUNG,
    "soft": SOFT_TISSUE,
    "bone": CORTICAL_BONE,
    "water": WATER,
}


def _z_over_a(mass_fractions: tuple[tuple[str, float], ...]) -> float:
    import xraydb

    return float(sum(w * xraydb.atomic_number(el) / xraydb.atomic_mass(el) for el, w in mass_fractions))


def klein_nishina_cross_section_cm2(energy_mev: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Klein–Nishina total cross section per free electron (cm²).

    Klein & Nishina 1929; Attix 1986, *Introduction to Radiological Physics*, eq. 7.20.
    """
    k = np.asarray(energy_mev, dtype=np.float64) / ELECTRON_REST_ENERGY_MEV
    one2k = 1.0 + 2.0 * k
    term1 = (1.0 + k) / k**2 * (2.0 * (1.0 + k) / one2k - np.log(one2k) / k)
    term2 = np.log(one2k) / (2.0 * k) - (1.0 + 3.0 * k) / one2k**2
    return 2.0 * np.pi * CLASSICAL_ELECTRON_RADIUS_CM**2 * (term1 + term2)


def material_index_from_density(density_g_per_ml: npt.NDArray[np.floating]) -> npt.NDArray[np.int8]:
    """Material index (into :data:`MC_MATERIALS`) of every voxel of a density map (g/cm³)."""
    thresholds = np.asarray(MATERIAL_DENSITY_THRESHOLDS_G_PER_ML)
    return np.searchsorted(thresholds, np.asarray(density_g_per_ml), side="right").astype(np.int8)


@dataclass(frozen=True)
class PhotonCrossSections:
    """Mass interaction coefficients (cm²/g) on a log-spaced energy grid, one row per material.

    Arrays have shape ``(n_materials, n_energies)``; ``energy_mev`` has shape ``(n_energies,)``.
    """

    energy_mev: npt.NDArray[np.float64]
    photoelectric_cm2_per_g: npt.NDArray[np.float64]
    compton_cm2_per_g: npt.NDArray[np.float64]
    rayleigh_cm2_per_g: npt.NDArray[np.float64]
    materials: tuple[MaterialName, ...]

    @property
    def total_cm2_per_g(self) -> npt.NDArray[np.float64]:
        """Total mass attenuation coefficient (cm²/g), shape ``(n_materials, n_energies)``."""
        return self.photoelectric_cm2_per_g + self.compton_cm2_per_g + self.rayleigh_cm2_per_g


def photon_cross_sections(
    materials: tuple[MaterialName, ...] = MC_MATERIALS,
    *,
    energy_min_mev: float = 0.001,
    energy_max_mev: float = 3.0,
    n_energies: int = 600,
) -> PhotonCrossSections:
    """Tabulate photoelectric, Compton and Rayleigh mass coefficients of ``materials`` once.

    Elemental data: Elam, Ravel & Sieber 2002 (Radiat Phys Chem 63:121) via ``xraydb.mu_elam``;
    mixtures by the mass-fraction rule.
    """
    import xraydb

    energy_mev = np.geomspace(energy_min_mev, energy_max_mev, n_energies)
    energy_ev = energy_mev * EV_PER_MEV
    tables = {kind: np.zeros((len(materials), n_energies)) for kind in ("photo", "incoh", "coh")}
    high = energy_mev >= ELAM_MAX_RELIABLE_MEV
    with warnings.catch_warnings():
        # xraydb warns that Elam tables are unreliable above 800 keV; there Compton scattering (replaced
        # below by Klein-Nishina) dominates and photoelectric/Rayleigh terms are below 0.1 % in tissue.
        warnings.simplefilter("ignore", UserWarning)
        for m, name in enumerate(materials):
            for element, fraction in MATERIALS[name].mass_fractions:
                for kind, table in tables.items():
                    table[m] += fraction * np.asarray(xraydb.mu_elam(element, energy_ev, kind=kind))
    for m, name in enumerate(materials):
        electrons_per_gram = AVOGADRO_PER_MOL * _z_over_a(MATERIALS[name].mass_fractions)
        tables["incoh"][m, high] = electrons_per_gram * klein_nishina_cross_section_cm2(energy_mev[high])
    return PhotonCrossSections(
        energy_mev=energy_mev,
        photoelectric_cm2_per_g=tables["photo"],
        compton_cm2_per_g=tables["incoh"],
        rayleigh_cm2_per_g=tables["coh"],
        materials=materials,
    )
