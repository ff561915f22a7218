"""Photon transport core against analytic transport results."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import expn

from theradose.dosimetry.engines.mc import sample_compton_energy_ratio, transport_photons
from theradose.dosimetry.materials import (
    MC_MATERIALS,
    PhotonCrossSections,
    klein_nishina_cross_section_cm2,
    material_index_from_density,
    photon_cross_sections,
)


def pure_absorber(mass_coefficient_cm2_per_g: float) -> PhotonCrossSections:
    energy = np.geomspace(0.001, 3.0, 64)
    photo = np.full((len(MC_MATERIALS), energy.size), mass_coefficient_cm2_per_g)
    zeros = np.zeros_like(photo)
    return PhotonCrossSections(energy, photo, zeros, zeros, MC_MATERIALS)


def test_slab_absorption_with_woodcock_tracking() -> None:
    """Isotropic point source at the mid-plane of a slab of half-thickness a, pure absorber μ:
    absorbed fraction 1 − E₂(μa) (E₂ exponential integral). The medium outside the slab is less dense, so
    virtual interactions (Woodcock) occur inside the slab's neighbourhood."""
    n = (201, 41, 41)
    density = np.full(n, 0.6)
    density[95:106] = 1.0  # 11 voxels of 1 mm: half-thickness 5.5 mm
    source = np.zeros(n)
    source[100, 20, 20] = 1.0
    result = transport_photons(
        source,
        density,
        spacing_mm=(1.0, 5.0, 5.0),
        line_energy_mev=[0.2],
        line_yield_per_decay=[1.0],
        n_photons=200_000,
        seed=7,
        cross_sections=pure_absorber(2.0),
    )
    fraction = result.energy_mev[95:106].sum() / 0.2
    assert fraction == pytest.approx(1.0 - expn(2, 2.0 * 0.55), abs=0.004)
    assert result.n_steps > result.n_photons  # virtual steps happened


def test_sphere_escape_probability() -> None:
    """Uniform source in a sphere of radius R, pure absorber: escape probability
    P = 3/(8x³)·[2x² − 1 + (1 + 2x)e^(−2x)], x = μR (Case, de Hoffmann & Placzek 1953)."""
    n = 41
    idx = np.indices((n, n, n)) - n // 2
    sphere = np.sqrt((idx**2).sum(axis=0)) <= 15.0
    density = np.where(sphere, 1.0, 0.0012)
    mu = 1.0 / 1.5  # cm^-1 at density 1: x = μR = 1
    result = transport_photons(
        sphere.astype(float),
        density,
        spacing_mm=(1.0, 1.0, 1.0),
        line_energy_mev=[0.1],
        line_yield_per_decay=[1.0],
        n_photons=200_000,
        seed=1,
        cross_sections=pure_absorber(mu),
    )
    absorbed = result.energy_mev[sphere].sum() / (0.1 * sphere.sum())
    x = 1.0
    escape = 3.0 / (8.0 * x**3) * (2 * x**2 - 1 + (1 + 2 * x) * np.exp(-2 * x))
    assert absorbed == pytest.approx(1.0 - escape, abs=0.01)


@pytest.mark.parametrize("energy_mev", [0.05, 0.2, 1.0])
def test_klein_nishina_sampler_mean_energy_ratio(energy_mev: float) -> None:
    """Mean E′/E of Kahn's sampler vs the Klein–Nishina integral (numerical quadrature)."""
    a = energy_mev / 0.51099895

    def dsigma(mu: float) -> float:
        k = 1.0 / (1.0 + a * (1.0 - mu))
        return k * k * (k + 1.0 / k - (1.0 - mu * mu))

    total = quad(dsigma, -1, 1)[0]
    mean_ratio = quad(lambda mu: dsigma(mu) / (1.0 + a * (1.0 - mu)), -1, 1)[0] / total
    samples = sample_compton_energy_ratio(energy_mev, 200_000, seed=4)
    assert samples.min() >= 1.0 / (1.0 + 2.0 * a) - 1e-12
    assert samples.max() <= 1.0
    assert samples.mean() == pytest.approx(mean_ratio, abs=0.002)


def test_cross_sections_of_water_like_soft_tissue() -> None:
    """Soft tissue at 100 keV: μ/ρ ≈ 0.17 cm²/g (XCOM, ICRU-44 muscle: 0.1693); KN per electron at
    511 keV is 2.87e-25 cm² (Attix 1986, table 7.1: σ_KN = 0.2866 b)."""
    xs = photon_cross_sections()
    soft = MC_MATERIALS.index("soft")
    total_100kev = np.interp(0.1, xs.energy_mev, xs.total_cm2_per_g[soft])
    assert total_100kev == pytest.approx(0.1693, rel=0.03)
    assert klein_nishina_cross_section_cm2([0.51099895])[0] == pytest.approx(2.866e-25, rel=2e-3)
    bone = MC_MATERIALS.index("bone")
    photo_ratio = np.interp(0.05, xs.energy_mev, xs.photoelectric_cm2_per_g[bone]) / np.interp(
        0.05, xs.energy_mev, xs.photoelectric_cm2_per_g[soft]
    )
    assert photo_ratio > 5.0  # calcium and phosphorus


def test_material_index_from_density() -> None:
    np.testing.assert_array_equal(material_index_from_density(np.array([0.001, 0.3, 1.0, 1.9])), [0, 1, 2, 3])


def test_photon_absorbed_fraction_of_sphere_vs_sphere_model() -> None:
    """Lu-177 photons in an isolated 100 g unit-density sphere (2 mm voxels, air around): Monte Carlo
    absorbed fraction vs the point-pair model of :mod:`theradose.dosimetry.sphere` (μ_en-based, an
    independent method). Within 10 % (measured: 0.0714 vs 0.0688, +4 %)."""
    from theradose.dosimetry.sphere import sphere_s_value
    from theradose.nuclides import get_nuclide

    model = sphere_s_value("Lu-177", mass_g=100.0, include_progeny=False)
    voxel_mm = 2.0
    n = int(2 * np.ceil(model.radius_mm / voxel_mm) + 5)
    idx = np.indices((n, n, n)) - n // 2
    sphere = np.sqrt((idx**2).sum(axis=0)) * voxel_mm <= model.radius_mm
    lu = get_nuclide("Lu-177")
    energy = np.array([line.energy_kev / 1e3 for line in lu.photon_lines])
    yields = np.array([line.yield_per_decay for line in lu.photon_lines])
    keep = energy >= 0.001
    result = transport_photons(
        sphere.astype(float),
        np.where(sphere, 1.0, 0.0012),
        spacing_mm=(voxel_mm,) * 3,
        line_energy_mev=energy[keep],
        line_yield_per_decay=yields[keep],
        n_photons=300_000,
        seed=1,
    )
    emitted = sphere.sum() * float(np.sum(energy[keep] * yields[keep]))
    absorbed_fraction = float(result.energy_mev[sphere].sum()) / emitted
    assert absorbed_fraction == pytest.approx(model.photon_absorbed_fraction, rel=0.10)
