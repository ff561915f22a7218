"""Voxel dose engines: local deposition by hand, FFT convolution, engine agreement, lung/bone physics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from theradose.dosimetry.engines import (
    density_from_hu,
    dose_from_dose_rates,
    dose_rate_or_dose,
    monte_carlo_dose,
)
from theradose.dosimetry.engines.vsv import fft_convolve_same
from theradose.errors import GeometryError, InputError
from theradose.imaging.volume import Volume
from theradose.nuclides import get_nuclide

#: Soft-tissue density of the tissue registry (ICRU Report 46 adult average soft tissue), g/mL.
SOFT_G_PER_ML = 1.03

J_PER_MEV = 1.602176634e-13


@pytest.fixture(autouse=True)
def kernel_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("THERADOSE_CACHE_DIR", str(cache))
    return cache


def sphere_phantom(
    n: int = 40, spacing_mm: float = 4.0, radius_mm: float = 40.0
) -> tuple[Volume, np.ndarray]:
    idx = np.indices((n, n, n)) - (n - 1) / 2
    sphere = np.sqrt((idx**2).sum(axis=0)) * spacing_mm <= radius_mm
    tia = Volume.from_spacing(np.where(sphere, 10.0, 0.0), (spacing_mm,) * 3, unit="MBq·h")
    return tia, sphere


def test_local_engine_by_hand() -> None:
    """1 MBq·h of Lu-177 in one 4 mm soft-tissue voxel: D = 3.6e9 decays · 0.14792 MeV / 65.92 mg."""
    array = np.zeros((3, 3, 3))
    array[1, 1, 1] = 1.0
    tia = Volume.from_spacing(array, (4.0, 4.0, 4.0), unit="MBq·h")
    dose = dose_rate_or_dose(tia, None, "Lu-177", engine="local")
    e_mev = get_nuclide("Lu-177").electron_energy_mev_per_decay
    expected = 3.6e9 * e_mev * J_PER_MEV / (0.064 * SOFT_G_PER_ML * 1e-3)
    assert dose.unit == "Gy"
    assert dose.array[1, 1, 1] == pytest.approx(expected, rel=2e-3)
    assert dose.array.sum() == pytest.approx(dose.array[1, 1, 1])
    # activity in MBq gives a dose rate in Gy/h with the same number
    rate = dose_rate_or_dose(tia.with_array(array, unit="MBq"), None, "Lu-177", engine="local")
    assert rate.unit == "Gy/h"
    assert rate.array[1, 1, 1] == pytest.approx(dose.array[1, 1, 1])
    # a photon fraction of 1 adds the photon energy (0.0351 MeV per decay)
    with_photons = dose_rate_or_dose(tia, None, "Lu-177", engine="local", photon_absorbed_fraction=1.0)
    photon_mev = get_nuclide("Lu-177").photon_energy_mev_per_decay
    assert with_photons.array[1, 1, 1] / dose.array[1, 1, 1] == pytest.approx(
        (e_mev + photon_mev) / e_mev, rel=2e-3
    )


def test_local_engine_is_density_aware() -> None:
    """D = E/(ρV): half the density, twice the dose."""
    array = np.ones((2, 2, 2))
    tia = Volume.from_spacing(array, (4.0, 4.0, 4.0), unit="MBq·h")
    density = tia.with_array(np.array([0.52, 1.04] * 4).reshape(2, 2, 2), unit="g/mL")
    dose = dose_rate_or_dose(tia, density, "Lu-177", engine="local").array.ravel()
    assert dose[0] / dose[1] == pytest.approx(2.0)


def test_fft_convolution_matches_scipy(rng: np.random.Generator) -> None:
    from scipy.signal import fftconvolve

    array = rng.random((23, 30, 17)).astype(np.float32)
    kernel = rng.random((7, 5, 9))
    ours = fft_convolve_same(array, kernel, workers=1)
    reference = fftconvolve(array.astype(np.float64), kernel, mode="same")
    np.testing.assert_allclose(ours, reference, rtol=2e-4, atol=2e-4 * float(np.abs(reference).max()))
    # a second call uses the cached kernel spectrum and gives the same result
    np.testing.assert_array_equal(fft_convolve_same(array, kernel, workers=1), ours)
    # a kernel larger than the array (offsets that cannot occur are dropped)
    big = rng.random((31, 3, 41))
    np.testing.assert_allclose(
        fft_convolve_same(array, big, workers=1),
        fftconvolve(array.astype(np.float64), big, mode="same"),
        rtol=2e-4,
        atol=2e-4 * float(np.abs(fftconvolve(array.astype(np.float64), big, mode="same")).max()),
    )
    # zero border planes are trimmed without changing the result
    padded = np.zeros((11, 9, 15))
    padded[2:9, 2:7, 3:12] = kernel
    np.testing.assert_allclose(fft_convolve_same(array, padded, workers=1), ours, rtol=1e-5, atol=1e-5)


def test_engines_agree_in_uniform_phantom() -> None:
    """Lu-177 sphere (r = 40 mm) in soft tissue: local, VSV and MC organ means within 5 %."""
    tia, sphere = sphere_phantom()
    means = {
        engine: float(
            dose_rate_or_dose(tia, None, "Lu-177", engine=engine, n_photons=200_000).array[sphere].mean()
        )
        for engine in ("local", "vsv", "mc")
    }
    reference = means["local"]
    for engine, value in means.items():
        assert value == pytest.approx(reference, rel=0.05), (engine, means)
    # electrons leave the sphere only at its surface: VSV slightly below local; photons add to MC
    assert means["vsv"] < means["local"] < means["mc"]


def test_lung_and_bone_follow_density() -> None:
    """Same activity per voxel in lung (0.26 g/cm³) / bone (1.92 g/cm³) slabs: the dose per voxel scales
    as 1/ρ in the slab interiors for the local and VSV engines (energy per decay kept, mass changed)."""
    n = 24
    array = np.ones((n, n, n))
    density = np.full((n, n, n), 1.04)
    density[2:10] = 0.26
    density[14:22] = 1.92
    tia = Volume.from_spacing(array, (4.0, 4.0, 4.0), unit="MBq·h")
    ct = tia.with_array(density, unit="g/mL")
    for engine in ("local", "vsv"):
        dose = dose_rate_or_dose(tia, ct, "Lu-177", engine=engine).array
        soft = dose[12, 12, 12]
        lung = dose[6, 12, 12]
        bone = dose[18, 12, 12]
        assert lung / soft == pytest.approx(1.04 / 0.26, rel=0.02)
        assert bone / soft == pytest.approx(1.04 / 1.92, rel=0.02)


def test_mc_photon_dose_higher_in_bone_than_soft_tissue() -> None:
    """Photoelectric absorption in calcium: μen/ρ of bone exceeds soft tissue below ~150 keV, so a bone
    slab next to a Lu-177 source gets more photon dose (Gy) than the same slab of soft tissue."""
    n = 32
    array = np.zeros((n, n, n))
    array[4:12, 8:24, 8:24] = 1.0
    tia = Volume.from_spacing(array, (4.0, 4.0, 4.0), unit="MBq·h")
    soft = np.full((n, n, n), 1.04)
    bone = soft.copy()
    bone[14:16] = 1.92
    results = [
        monte_carlo_dose(tia, tia.with_array(d, unit="g/mL"), "Lu-177", n_photons=300_000, seed=3)
        for d in (soft, bone)
    ]
    slab_soft = results[0].photon_dose.array[14:16, 8:24, 8:24].mean()
    slab_bone = results[1].photon_dose.array[14:16, 8:24, 8:24].mean()
    assert slab_bone > 1.1 * slab_soft


def test_mc_lung_photon_dose_lower_than_soft_tissue() -> None:
    """In lung (0.26 g/cm³) a Lu-177 source region absorbs a smaller fraction of its photon energy than in
    soft tissue: fewer interactions per unit path. Photon energy imparted inside the source region
    (dose × mass) is lower in lung."""
    tia, sphere = sphere_phantom(n=32, radius_mm=40.0)
    mass = {}
    for rho in (1.04, 0.26):
        ct = tia.with_array(np.full(tia.shape, rho), unit="g/mL")
        result = monte_carlo_dose(tia, ct, "Lu-177", n_photons=200_000, seed=5)
        mass[rho] = float(result.photon_dose.array[sphere].sum() * rho)
    assert mass[0.26] < 0.5 * mass[1.04]


def test_mc_reproducible_by_seed_and_workers() -> None:
    tia, _ = sphere_phantom(n=24, radius_mm=30.0)
    a = monte_carlo_dose(tia, None, "Lu-177", n_photons=50_000, seed=11, workers=1)
    b = monte_carlo_dose(tia, None, "Lu-177", n_photons=50_000, seed=11, workers=2)
    c = monte_carlo_dose(tia, None, "Lu-177", n_photons=50_000, seed=12, workers=2)
    np.testing.assert_array_equal(a.dose.array, b.dose.array)
    assert not np.array_equal(a.photon_dose.array, c.photon_dose.array)
    assert a.n_photons == 50_000


def test_mc_uncertainty_falls_as_one_over_sqrt_n() -> None:
    tia, sphere = sphere_phantom(n=24, radius_mm=30.0)
    small = monte_carlo_dose(tia, None, "Lu-177", n_photons=40_000, seed=1, electrons="local")
    large = monte_carlo_dose(tia, None, "Lu-177", n_photons=640_000, seed=2, electrons="local")
    rel_small = np.nanmedian(small.relative_uncertainty.array[sphere] * small.dose.array[sphere])
    rel_large = np.nanmedian(large.relative_uncertainty.array[sphere] * large.dose.array[sphere])
    # 16x the histories: 4x smaller standard error (batch estimate, ±30 %)
    assert rel_small / rel_large == pytest.approx(4.0, rel=0.3)
    assert small.relative_uncertainty.unit == "1"


def test_mc_kernel_electrons_equal_vsv() -> None:
    tia, _ = sphere_phantom(n=20, radius_mm=20.0)
    mc = monte_carlo_dose(tia, None, "Lu-177", electrons="kernel", include_photons=False)
    vsv = dose_rate_or_dose(tia, None, "Lu-177", engine="vsv")
    # photon lines below the 1 keV transport cut-off (L/M X-rays) are absorbed where emitted
    sub_kev_mev = sum(
        line.energy_kev / 1e3 * line.yield_per_decay
        for line in get_nuclide("Lu-177").photon_lines
        if line.energy_kev < 1.0
    )
    local_sub_kev = tia.array * 3.6e9 * sub_kev_mev * J_PER_MEV / (0.064 * SOFT_G_PER_ML * 1e-3)
    np.testing.assert_allclose(mc.dose.array, vsv.array + local_sub_kev, rtol=1e-6, atol=1e-9)
    assert mc.n_photons == 0


def test_density_from_hu() -> None:
    """Default calibration: air −1000 HU → 0.001205 g/mL, water 0 → 1.0, ICRU-44 muscle 43 HU → 1.05,
    cortical bone 1559 HU → 1.92; halfway points by linear interpolation."""
    np.testing.assert_allclose(
        density_from_hu([-1000.0, -500.0, 0.0, 43.0, 801.0, 1559.0]),
        [0.001205, 0.5006025, 1.0, 1.05, 1.485, 1.92],
        rtol=1e-9,
    )


def test_bad_inputs() -> None:
    tia, _ = sphere_phantom(n=8, radius_mm=8.0)
    with pytest.raises(InputError, match="unit"):
        dose_rate_or_dose(tia.with_array(tia.array, unit="Bq/mL"), None, "Lu-177")
    with pytest.raises(InputError, match="engine"):
        dose_rate_or_dose(tia, None, "Lu-177", engine="pencil")  # type: ignore[arg-type]
    other = Volume.from_spacing(np.ones((8, 8, 8)), (2.0, 2.0, 2.0), unit="g/mL")
    with pytest.raises(GeometryError):
        dose_rate_or_dose(tia, other, "Lu-177")
    with pytest.raises(InputError, match="negative"):
        dose_rate_or_dose(tia.with_array(-np.ones(tia.shape)), None, "Lu-177")


def test_dose_rate_integration_order_matches_tia_order() -> None:
    """Local engine is linear: integrating dose rates equals the dose of the TIA integrated by the same
    rule; both approach the analytic A0/λ_phys dose for a physically decaying source."""
    from theradose.kinetics.voxel import integrate_dose_rate_voxels

    lu = get_nuclide("Lu-177")
    times = [4.0, 24.0, 72.0, 168.0]
    base = np.zeros((6, 6, 6))
    base[2:4, 2:4, 2:4] = 100.0
    activities = [
        Volume.from_spacing(base * np.exp(-lu.decay_constant_per_h * t), (4.0, 4.0, 4.0), unit="MBq")
        for t in times
    ]
    dose = dose_from_dose_rates(activities, times, None, "Lu-177", engine="local", tail="physical")
    assert dose.unit == "Gy"
    tia = integrate_dose_rate_voxels(
        np.array(times),
        np.stack([a.array for a in activities]),
        decay_constant_per_h=lu.decay_constant_per_h,
        tail="physical",
    )
    via_tia = dose_rate_or_dose(activities[0].with_array(tia, unit="MBq·h"), None, "Lu-177", engine="local")
    np.testing.assert_allclose(dose.array, via_tia.array, rtol=1e-12)
    analytic = dose_rate_or_dose(
        activities[0].with_array(base / lu.decay_constant_per_h, unit="MBq·h"), None, "Lu-177", engine="local"
    )
    np.testing.assert_allclose(dose.array[2:4, 2:4, 2:4], analytic.array[2:4, 2:4, 2:4], rtol=0.02)


def test_vsv_with_photon_kernel_matches_mc() -> None:
    """Electron VSV + Monte Carlo photon kernel (soft tissue) vs the hybrid MC with kernel electrons in a
    uniform phantom: organ mean within 2 %. The photon kernel conserves energy: its sum × voxel mass is
    the photon energy absorbed within the 51³ kernel, below the emitted 0.0351 MeV per decay."""
    from theradose.dosimetry.kernels import photon_voxel_kernel

    tia, sphere = sphere_phantom(n=24, radius_mm=30.0)
    vsv = dose_rate_or_dose(tia, None, "Lu-177", engine="vsv", vsv_photons=True, vsv_photon_histories=100_000)
    electrons_only = dose_rate_or_dose(tia, None, "Lu-177", engine="vsv")
    mc = monte_carlo_dose(tia, None, "Lu-177", electrons="kernel", n_photons=100_000, seed=9)
    photon_vsv = float((vsv.array - electrons_only.array)[sphere].mean())
    photon_mc = float(mc.photon_dose.array[sphere].mean())
    assert photon_vsv == pytest.approx(photon_mc, rel=0.15)
    assert float(vsv.array[sphere].mean()) == pytest.approx(float(mc.dose.array[sphere].mean()), rel=0.02)
    kernel = photon_voxel_kernel("Lu-177", voxel_mm=4.0, n_photons=100_000)
    mass_kg = 0.064 * SOFT_G_PER_ML * 1e-3
    absorbed_mev = kernel.values_mgy_per_mbq_s.sum() * 1e-9 * mass_kg / J_PER_MEV
    emitted_mev = get_nuclide("Lu-177").photon_energy_mev_per_decay
    assert 0.3 * emitted_mev < absorbed_mev < emitted_mev
