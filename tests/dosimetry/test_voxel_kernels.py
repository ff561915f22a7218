"""Voxel S-value kernels: ranges, point kernel, energy conservation, spheres and published VSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from theradose.dosimetry.kernels import (
    cache_directory,
    csda_range_water_g_per_cm2,
    cumulative_energy_within_radius_mev,
    electron_emissions,
    monoenergetic_emissions,
    nuclide_kernel,
    residual_energy_water_mev,
    voxel_s_value_kernel,
)
from theradose.dosimetry.materials import SOFT_TISSUE
from theradose.errors import InputError
from theradose.nuclides import get_nuclide

#: Soft-tissue density of the tissue registry (ICRU Report 46 adult average soft tissue), g/mL.
SOFT_G_PER_ML = 1.03

#: J per MeV and Bq per MBq, written out so the expected values do not reuse the code's conversions.
J_PER_MEV = 1.602176634e-13


@pytest.fixture(autouse=True)
def kernel_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("THERADOSE_CACHE_DIR", str(cache))
    return cache


def test_csda_range_matches_estar_and_inverts() -> None:
    """NIST ESTAR liquid water: R(0.1 MeV) = 1.431e-2 g/cm², R(1 MeV) = 0.4367 g/cm², R(2 MeV) = 0.9785."""
    r = csda_range_water_g_per_cm2([0.1, 1.0, 2.0])
    np.testing.assert_allclose(r, [1.431e-2, 0.4367, 0.9785], rtol=1e-9)
    energies = np.array([0.005, 0.0123, 0.25, 0.77, 3.3, 12.0])
    np.testing.assert_allclose(
        residual_energy_water_mev(csda_range_water_g_per_cm2(energies)), energies, rtol=1e-9
    )
    # a power-law extrapolation below 10 keV keeps the range monotonic and positive
    assert 0 < csda_range_water_g_per_cm2([0.005])[0] < 2.515e-4


def test_point_kernel_csda_energy_balance() -> None:
    """CSDA: within r = R(1 MeV) − R(0.5 MeV) a 1 MeV electron has deposited exactly 0.5 MeV (ESTAR)."""
    emissions = monoenergetic_emissions(1.0)
    r_cm = (0.4367 - 0.1766) / 1.0  # water, ESTAR ranges of 1 and 0.5 MeV
    w = cumulative_energy_within_radius_mev(emissions, [0.0, r_cm, 0.4367, 1.0], density_g_per_ml=1.0)
    np.testing.assert_allclose(w, [0.0, 0.5, 1.0, 1.0], atol=1e-9)
    # doubling the density halves the radius
    w2 = cumulative_energy_within_radius_mev(emissions, [r_cm / 2], density_g_per_ml=2.0)
    np.testing.assert_allclose(w2, [0.5], atol=1e-9)


def test_energy_conservation_lu177() -> None:
    """Kernel sum × voxel mass = electron energy per decay of Lu-177 (ICRP 107: 0.14792 MeV)."""
    lu = get_nuclide("Lu-177")
    kernel = nuclide_kernel("Lu-177", voxel_mm=4.0)
    mass_g = 0.4**3 * SOFT_TISSUE.density_g_per_ml
    # mGy/(MBq s) -> MeV per decay: value * 1e-3 Gy / 1e6 decays * mass_kg / J_PER_MEV
    absorbed_mev = kernel.sum_mgy_per_mbq_s * 1e-3 / 1e6 * (mass_g / 1e3) / J_PER_MEV
    assert absorbed_mev == pytest.approx(lu.electron_energy_mev_per_decay, rel=2e-3)
    assert kernel.truncated_fraction == pytest.approx(0.0, abs=1e-4)


def test_energy_conservation_anisotropic_and_truncated() -> None:
    """Anisotropic voxels conserve energy; a kernel cut to 3 voxels loses the energy beyond it."""
    emissions = electron_emissions("Y-90")
    full = voxel_s_value_kernel(emissions, voxel_mm=(2.0, 3.0, 5.0))
    assert full.absorbed_energy_mev_per_decay == pytest.approx(emissions.energy_mev_per_decay, rel=2e-3)
    # symmetric under reflection of each axis
    v = full.values_mgy_per_mbq_s
    np.testing.assert_allclose(v, v[::-1, :, :], rtol=1e-12)
    np.testing.assert_allclose(v, v[:, :, ::-1], rtol=1e-12)
    cut = voxel_s_value_kernel(emissions, voxel_mm=(2.0, 3.0, 5.0), size=3)
    assert 0.2 < cut.truncated_fraction < 0.9
    c = cut.values_mgy_per_mbq_s
    np.testing.assert_allclose(c, v[tuple(slice(n // 2 - 1, n // 2 + 2) for n in v.shape)], rtol=1e-12)


def test_short_range_emitter_is_local() -> None:
    """10 keV electrons (range 2.5 µm) in a 4 mm voxel: S = E/(ρV) = 1e-2 MeV·1.602e-13/(65.92 mg)."""
    kernel = voxel_s_value_kernel(monoenergetic_emissions(0.01), voxel_mm=4.0)
    mass_kg = 0.064 * SOFT_G_PER_ML / 1e3
    expected = 0.01 * J_PER_MEV / mass_kg * 1e6 * 1e3  # mGy per MBq s
    assert kernel.center_mgy_per_mbq_s == pytest.approx(expected, rel=2e-3)


def test_alpha_energy_stays_in_the_source_voxel() -> None:
    """Ac-225: alpha + recoil energy per decay (ICRP 107: 5.787 + recoil MeV) all in the centre voxel."""
    ac = get_nuclide("Ac-225")
    kernel = nuclide_kernel("Ac-225", voxel_mm=3.0)
    mass_kg = 0.027 * SOFT_G_PER_ML / 1e3
    local_mev = ac.alpha_energy_mev_per_decay + ac.alpha_recoil_energy_mev_per_decay
    local_mgy = local_mev * J_PER_MEV / mass_kg * 1e9
    all_mgy = (local_mev + ac.electron_energy_mev_per_decay) * J_PER_MEV / mass_kg * 1e9
    assert local_mgy < kernel.center_mgy_per_mbq_s < all_mgy


def test_point_source_radial_energy_matches_point_kernel() -> None:
    """Energy deposited by the kernel of a 0.25 mm voxel source within r ≈ W(r) of the Lu-177 DPK.

    The voxelised sum over voxel centres within r differs from the continuous W(r) by the voxel size;
    tolerance 3 %.
    """
    emissions = electron_emissions("Lu-177")
    kernel = voxel_s_value_kernel(emissions, voxel_mm=0.25)
    v = kernel.values_mgy_per_mbq_s
    c = np.array(v.shape) // 2
    idx = np.indices(v.shape)
    r_mm = np.sqrt(sum(((idx[a] - c[a]) * 0.25) ** 2 for a in range(3)))
    to_mev = kernel.voxel_mass_g / 1e3 * 1e-3 / 1e6 / J_PER_MEV
    for radius_mm in (0.6, 1.0, 1.5):
        inside = v[r_mm <= radius_mm].sum() * to_mev
        w = cumulative_energy_within_radius_mev(
            emissions,
            [radius_mm / 10.0],
            density_g_per_ml=1.04,
            electrons_per_gram_ratio_to_water=SOFT_TISSUE.electrons_per_gram_ratio_to_water(),
        )[0]
        assert inside == pytest.approx(w, rel=0.03)


def test_uniform_sphere_matches_sphere_model_with_geometric_factor() -> None:
    """Y-90 uniform in a 10 mm-radius sphere (1 mm voxels): mean dose vs the continuous sphere model.

    Sphere model: absorbed fraction φ = ∫ G(r) dW(r) / E with the geometric reduction factor of a sphere
    G(r) = 1 − 3r/(4R) + r³/(16R³) (r ≤ 2R) (Berger 1971, MIRD Pamphlet 7). Tolerance 3 % (voxelised
    surface).
    """
    from theradose.dosimetry.engines.vsv import fft_convolve_same

    emissions = electron_emissions("Y-90")
    kernel = voxel_s_value_kernel(emissions, voxel_mm=1.0)
    n = 41
    idx = np.indices((n, n, n)) - n // 2
    radius_mm = 10.0
    sphere = np.sqrt((idx**2).sum(axis=0)) <= radius_mm
    dose = fft_convolve_same(sphere.astype(np.float32), kernel.values_mgy_per_mbq_s)
    mean_per_voxel_source = float(dose[sphere].mean())  # mGy/(MBq s) with 1 MBq in every voxel
    self_dose_local = emissions.energy_mev_per_decay * J_PER_MEV / (kernel.voxel_mass_g / 1e3) * 1e9
    af_voxel = mean_per_voxel_source / self_dose_local

    r_cm = np.linspace(0.0, 1.2, 4001)
    w = cumulative_energy_within_radius_mev(
        emissions,
        r_cm,
        density_g_per_ml=1.04,
        electrons_per_gram_ratio_to_water=SOFT_TISSUE.electrons_per_gram_ratio_to_water(),
    )
    rr = 0.5 * (r_cm[1:] + r_cm[:-1]) / (radius_mm / 10.0)
    g = np.where(rr <= 2, 1 - 0.75 * rr + rr**3 / 16, 0.0)
    af_sphere = float(np.sum(g * np.diff(w)) / emissions.energy_mev_per_decay)
    assert 0.6 < af_sphere < 0.9  # a real escape fraction is being tested
    assert af_voxel == pytest.approx(af_sphere, rel=0.03)


@pytest.mark.parametrize(
    ("voxel_mm", "center", "face"),
    [
        # Lanconelli et al. 2012 (Phys Med Biol 57:517) database, 177Lu in soft tissue, 2.21 mm voxels:
        # S(0,0,0) = 1.66 mGy/(MBq s), S(0,0,1) = 4.83e-2, as tabulated in the public file
        # "s_values_lu177_2p21.txt" (github.com/luisadias02/masters-thesis, "Lu177 - 2.21mm - Soft tissue").
        (2.21, 1.66, 4.83e-2),
        # 177Lu soft tissue 6x6x6 table of the same database as embedded in a public ImageJ 177Lu
        # dosimetry plugin: S(0,0,0) = 2.26e-1, S(1,0,0) = 3.39e-3. The file does not state the voxel
        # size; 4.42 mm is our identification (the volume ratio to 2.21 mm is exactly 8 and the self-dose
        # ratio 7.35 matches the absorbed fractions).
        (4.42, 0.226, 3.39e-3),
    ],
)
def test_lu177_vsv_against_published(voxel_mm: float, center: float, face: float) -> None:
    """CSDA-kernel VSVs vs Monte Carlo VSVs: centre within 6 %, face neighbour within 20 %.

    Achieved: centre +4.4 % (2.21 mm), +5.8 % (4.42 mm); face +16 %, +16 %. The CSDA straight-ahead kernel
    penetrates slightly farther than a scattered-electron kernel; the published kernels also sum to
    ~6 % less than the emitted electron energy per voxel mass.
    """
    # the published kernels are computed in soft tissue of 1.04 g/cm³: compare in the same medium
    kernel = voxel_s_value_kernel(
        electron_emissions("Lu-177"), voxel_mm=voxel_mm, size=11, density_g_per_ml=1.04
    )
    assert kernel.center_mgy_per_mbq_s == pytest.approx(center, rel=0.06)
    assert kernel.face_neighbour_mgy_per_mbq_s == pytest.approx(face, rel=0.20)


def test_bone_kernel_has_less_dose_per_decay_than_soft_tissue() -> None:
    """Bone (1.92 g/cm³) has more mass per voxel: its self-dose is lower, its energy still conserved."""
    soft = nuclide_kernel("Lu-177", voxel_mm=3.0)
    bone = nuclide_kernel("Lu-177", voxel_mm=3.0, tissue="bone")
    assert bone.center_mgy_per_mbq_s < soft.center_mgy_per_mbq_s
    assert bone.absorbed_energy_mev_per_decay == pytest.approx(soft.absorbed_energy_mev_per_decay, rel=2e-3)
    # shorter range in bone: a larger share of the energy stays in the source voxel
    assert bone.center_mgy_per_mbq_s * bone.voxel_mass_g > soft.center_mgy_per_mbq_s * soft.voxel_mass_g


def test_kernel_cache_is_written_and_reused(kernel_cache: Path) -> None:
    first = nuclide_kernel("Lu-177", voxel_mm=3.0)
    assert cache_directory() == kernel_cache / "kernels"
    files = list((kernel_cache / "kernels").glob("*.npz"))
    assert len(files) == 1
    again = nuclide_kernel("Lu-177", voxel_mm=3.0)
    np.testing.assert_array_equal(first.values_mgy_per_mbq_s, again.values_mgy_per_mbq_s)
    # a corrupted cache file would be read: prove the second call used the file
    np.savez(files[0], values=np.full((5, 5, 5), 7.0))
    assert nuclide_kernel("Lu-177", voxel_mm=3.0).center_mgy_per_mbq_s == 7.0


def test_invalid_arguments() -> None:
    emissions = monoenergetic_emissions(0.5)
    with pytest.raises(InputError, match="voxel_mm"):
        voxel_s_value_kernel(emissions, voxel_mm=-1.0)
    with pytest.raises(InputError, match="size"):
        voxel_s_value_kernel(emissions, voxel_mm=1.0, size=4)
    with pytest.raises(InputError, match="tissue"):
        voxel_s_value_kernel(emissions, voxel_mm=1.0, tissue="lung")  # type: ignore[arg-type]


@pytest.mark.parametrize(("nuclide", "mass_g", "voxel_mm"), [("Y-90", 4.0, 1.0), ("Lu-177", 0.5, 0.5)])
def test_voxelised_sphere_vs_sphere_model_s_values(nuclide: str, mass_g: float, voxel_mm: float) -> None:
    """Electron self-dose S value of a unit-density sphere: VSV convolution over the voxelised sphere vs
    the sphere model of :mod:`theradose.dosimetry.sphere` (Cole ranges, Berger point-pair geometric
    factor; an independent implementation). Agreement within 3 % (measured: +0.7 % Y-90 4 g, −0.8 %
    Lu-177 0.5 g). The voxelised mass differs slightly from the sphere's; S is scaled by m_voxels/m."""
    from theradose.dosimetry.engines.vsv import fft_convolve_same
    from theradose.dosimetry.sphere import sphere_s_value

    model = sphere_s_value(nuclide, mass_g=mass_g, include_progeny=False)
    n = int(2 * np.ceil(model.radius_mm / voxel_mm) + 7)
    idx = np.indices((n, n, n)) - n // 2
    sphere = np.sqrt((idx**2).sum(axis=0)) * voxel_mm <= model.radius_mm
    voxel_mass_g = sphere.sum() * (voxel_mm / 10.0) ** 3
    kernel = voxel_s_value_kernel(electron_emissions(nuclide), voxel_mm=voxel_mm, density_g_per_ml=1.0)
    dose = fft_convolve_same(sphere.astype(np.float32), kernel.values_mgy_per_mbq_s)
    # 1 MBq in every voxel: mean dose per MBq of total activity
    s_ours = float(dose[sphere].mean()) / sphere.sum() * voxel_mass_g / mass_g
    assert s_ours == pytest.approx(model.s_electron_mgy_per_mbq_s, rel=0.03)
