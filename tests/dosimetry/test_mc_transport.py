"""Photon transport core against analytic transport results."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import expn
from scipy.stats import chi2 as chi2_distribution

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


def test_alias_table_reproduces_the_weights(rng: np.random.Generator) -> None:
    """Walker/Vose alias table: bin i is drawn with probability (P_i + Σ_{j: alias_j = i} (1 − P_j))/n,
    which must equal w_i/Σw for any weights (including zeros and one dominant weight)."""
    from theradose.dosimetry.engines.mc import _alias_table

    weights = rng.random(1001) ** 4
    weights[[3, 500]] = 0.0
    weights[17] = 300.0
    probability, alias = _alias_table(weights)
    n = weights.size
    implied = probability.copy()
    np.add.at(implied, alias, 1.0 - probability)
    np.testing.assert_allclose(implied / n, weights / weights.sum(), rtol=1e-9, atol=1e-15)
    assert np.all((probability >= 0) & (probability <= 1 + 1e-12))


def test_uniform_generator_is_xoshiro256_plus() -> None:
    """The compiled generator against a plain-integer transcription of xoshiro256+ (Blackman & Vigna
    2021, ACM Trans Math Softw 47:36, the reference algorithm), and its first two moments."""
    import numba

    from theradose.dosimetry.engines.mc import _rng_kernels

    uniform, _, _ = _rng_kernels()

    @numba.njit
    def draw(state: np.ndarray, n: int) -> np.ndarray:
        out = np.empty(n)
        for i in range(n):
            out[i] = uniform(state)
        return out

    start = [0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x0F1E2D3C4B5A6978, 0x8796A5B4C3D2E1F0]
    ours = draw(np.array(start, dtype=np.uint64), 200_000)
    mask = (1 << 64) - 1
    s = list(start)
    for k in range(1000):
        result = (s[0] + s[3]) & mask
        t = (s[1] << 17) & mask
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = ((s[3] << 45) | (s[3] >> 19)) & mask
        assert ours[k] == (result >> 11) / 2.0**53
    assert ours.mean() == pytest.approx(0.5, abs=0.003)
    assert ours.var() == pytest.approx(1 / 12, abs=0.002)


def test_source_sampling_follows_decays(rng: np.random.Generator) -> None:
    """In an absorber with a mean free path of 10 nm a photon deposits its energy in the voxel it is
    emitted from (unless emitted within ~10 nm of a face: ~1e-6 of them), so the energy per voxel counts
    the sampled sources: a χ² test against the decays."""
    decays = np.zeros((6, 6, 6))
    decays[1:5, 1:5, 1:5] = rng.random((4, 4, 4)) ** 2 + 0.05
    n = 200_000
    result = transport_photons(
        decays,
        np.full(decays.shape, 1.0),
        spacing_mm=(5.0, 5.0, 5.0),
        line_energy_mev=[0.2],
        line_yield_per_decay=[1.0],
        n_photons=n,
        n_batches=4,
        seed=3,
        cross_sections=pure_absorber(1e6),
        workers=2,
    )
    # energy per voxel = (photons sampled there) × 0.2 MeV × (decays per simulated photon)
    counts = result.energy_mev / 0.2 * n / decays.sum()
    expected = n * decays / decays.sum()
    inside = decays > 0
    assert counts[~inside].sum() <= 5
    assert counts.sum() == pytest.approx(n, rel=1e-9)
    chi2 = float(np.sum((counts[inside] - expected[inside]) ** 2 / expected[inside]))
    dof = int(inside.sum()) - 1
    assert chi2 < chi2_distribution.ppf(0.999, dof)
    assert chi2 > chi2_distribution.ppf(0.0001, dof)  # not suspiciously perfect either


def test_worker_threads_agree_statistically() -> None:
    """Batches on 1 or 2 threads with different seeds: total energy and per-voxel energies agree within
    their batch uncertainties (z-scores of a normal sample)."""
    n = 24
    idx = np.indices((n, n, n)) - (n - 1) / 2
    source = (np.sqrt((idx**2).sum(axis=0)) <= 5).astype(float)
    kwargs = {
        "spacing_mm": (4.0, 4.0, 4.0),
        "line_energy_mev": [0.2084, 0.1129],
        "line_yield_per_decay": [0.104, 0.062],
        "n_photons": 200_000,
        "n_batches": 10,
    }
    density = np.full(source.shape, 1.04)
    serial = transport_photons(source, density, seed=21, workers=1, **kwargs)
    parallel = transport_photons(source, density, seed=22, workers=2, **kwargs)
    hot = source > 0
    a, b = serial.energy_mev[hot], parallel.energy_mev[hot]
    sa, sb = a * serial.relative_uncertainty[hot], b * parallel.relative_uncertainty[hot]
    z = (a - b) / np.sqrt(sa**2 + sb**2)
    assert abs(float(np.mean(z))) < 4.0 / np.sqrt(z.size)
    assert 0.6 < float(np.std(z)) < 1.5  # batch-variance estimates from 10 batches scatter
    assert a.sum() == pytest.approx(b.sum(), rel=0.01)


def test_azimuth_sampler_is_uniform() -> None:
    """(cos φ, sin φ) from the unit-disc rejection method: unit vectors whose angle φ = atan2(sin, cos)
    is uniform on (−π, π] (χ² over 36 bins, 99.9 % quantile) with E[cos²φ] = 1/2 and E[cos φ sin φ] = 0."""
    import numba

    from theradose.dosimetry.engines.mc import _rng_kernels, _rng_state

    _, _, azimuth = _rng_kernels()

    @numba.njit
    def draw(state: np.ndarray, n: int) -> np.ndarray:
        out = np.empty((n, 2))
        for i in range(n):
            c, s = azimuth(state)
            out[i, 0] = c
            out[i, 1] = s
        return out

    n = 360_000
    cs = draw(_rng_state(np.random.SeedSequence(8)), n)
    np.testing.assert_allclose(np.hypot(cs[:, 0], cs[:, 1]), 1.0, rtol=1e-12)
    counts, _ = np.histogram(np.arctan2(cs[:, 1], cs[:, 0]), bins=36, range=(-np.pi, np.pi))
    expected = n / 36
    assert float(np.sum((counts - expected) ** 2 / expected)) < chi2_distribution.ppf(0.999, 35)
    assert float(np.mean(cs[:, 0] ** 2)) == pytest.approx(0.5, abs=0.005)
    assert float(np.mean(cs[:, 0] * cs[:, 1])) == pytest.approx(0.0, abs=0.005)
