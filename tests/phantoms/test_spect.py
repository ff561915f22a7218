"""SPECT system model, simulation and OSEM: quantitative recovery, count scaling, physics checks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from theradose.phantoms.osem import reconstruct
from theradose.phantoms.physical import iec_body_phantom, recovery_coefficients, uniform_cylinder
from theradose.phantoms.projector import FWHM_PER_SIGMA, CollimatorResponse, Projector
from theradose.phantoms.spect import default_system, mu_map_from_hu, planar_images, simulate_spect

#: NIST XCOM, water, total attenuation with coherent scattering: 0.1370 cm²/g at 200 keV and
#: 0.1186 cm²/g at 300 keV; log–log interpolation to 208.4 keV gives 0.1351 cm²/g (ρ = 1 g/mL).
MU_WATER_208KEV_PER_CM = 0.1351


def test_water_attenuation_matches_xcom() -> None:
    assert float(mu_map_from_hu(0.0)) == pytest.approx(MU_WATER_208KEV_PER_CM, rel=0.01)
    # air: 0.0012 g/mL × μ/ρ ≈ water's
    assert float(mu_map_from_hu(-1000.0)) == pytest.approx(0.0012 * MU_WATER_208KEV_PER_CM, rel=0.05)
    # bone is denser and has calcium: μ(1559 HU = ICRU 44 cortical bone) between 1.5 and 2.2 × water
    assert 1.5 < float(mu_map_from_hu(1559.0)) / MU_WATER_208KEV_PER_CM < 2.2


def test_collimator_fwhm_matches_the_anger_formula_by_hand() -> None:
    """At 100 mm: R_g = 3.0·(56.46 + 100 + 10)/56.46 = 8.845 mm, R = sqrt(8.845² + 3.9²) = 9.667 mm."""
    system = default_system()
    assert float(system.collimator.fwhm_mm(100.0)) == pytest.approx(9.667, rel=0.02)


def test_projector_is_the_exact_transpose(rng: np.random.Generator) -> None:
    mu = np.zeros((6, 16, 16))
    mu[:, 4:12, 4:12] = 0.15
    proj = Projector(
        mu,
        (5.0, 5.0, 5.0),
        angles_deg=[0.0, 37.0, 151.0],
        radius_mm=100.0,
        collimator=CollimatorResponse(4.0, 0.05),
        counts_per_mbq=3.0,
    )
    x = rng.random((6, 16, 16))
    y = rng.random((3, 6, 16))
    assert np.vdot(proj.forward(x), y) == pytest.approx(np.vdot(x, proj.back(y)), rel=1e-10)


def test_point_source_blur_in_projection_follows_fwhm_of_distance() -> None:
    """A point 150 mm from the collimator: projected profile FWHM = a + b·150 (second moment)."""
    n, s = 64, 2.0
    act = np.zeros((9, n, n))
    act[4, 32, 32] = 1.0  # distance: radius + (32 - 31.5)·s
    col = CollimatorResponse(4.64, 0.0504)
    proj = Projector(
        None,
        (s, s, s),
        angles_deg=[0.0],
        radius_mm=150.0 - 0.5 * s,
        collimator=col,
        counts_per_mbq=1.0,
        shape=act.shape,
        depth_tolerance_voxel=0.01,
    )
    profile = proj.forward(act)[0].sum(axis=0)
    centre = (profile * np.arange(n)).sum() / profile.sum()
    sigma_vox = math.sqrt((profile * (np.arange(n) - centre) ** 2).sum() / profile.sum())
    expected = 4.64 + 0.0504 * 150.0
    # the bilinear point has a small intrinsic width; allow 8 %
    assert sigma_vox * s * FWHM_PER_SIGMA == pytest.approx(expected, rel=0.08)


def test_total_counts_scale_with_sensitivity_activity_and_time() -> None:
    """In air, total counts = sensitivity (cps/MBq) × activity (MBq) × time per view (s) × views."""
    act = np.zeros((18, 24, 24))
    act[7:11, 10:14, 10:14] = 2.0 / 64.0  # 2 MBq in the middle
    base = default_system().with_(
        n_views=8, sensitivity_cps_per_mbq=5.0, time_per_view_s=10.0, radius_mm=80.0
    )
    acq = simulate_spect(act, None, (4.8, 4.8, 4.8), system=base, noise=False)
    assert acq.counts.sum() == pytest.approx(5.0 * 2.0 * 10.0 * 8, rel=1e-3)
    mu = np.full(act.shape, 0.135)
    att = simulate_spect(act, mu, (4.8, 4.8, 4.8), system=base, noise=False).counts.sum()
    att_s = simulate_spect(
        act, mu, (4.8, 4.8, 4.8), system=base.with_(sensitivity_cps_per_mbq=10.0), noise=False
    ).counts.sum()
    att_a = simulate_spect(3.0 * act, mu, (4.8, 4.8, 4.8), system=base, noise=False).counts.sum()
    att_t = simulate_spect(
        act, mu, (4.8, 4.8, 4.8), system=base.with_(time_per_view_s=25.0), noise=False
    ).counts.sum()
    assert att < acq.counts.sum()
    assert (att_s / att, att_a / att, att_t / att) == pytest.approx((2.0, 3.0, 2.5), rel=1e-9)
    noisy = simulate_spect(act, mu, (4.8, 4.8, 4.8), system=base, noise=True, seed=5)
    assert abs(noisy.counts.sum() - att) < 4.0 * math.sqrt(att)
    assert np.all(noisy.counts == np.round(noisy.counts))


def test_conjugate_view_geometric_mean_is_independent_of_depth() -> None:
    """sqrt(I_A·I_P) = C·A·exp(−μT/2) for any source depth in a uniform slab (MIRD Pamphlet 16)."""
    n = 32
    mu = np.zeros((25, n, n))
    mu[:, 6:26, :] = 0.135
    gms = []
    for j in (9, 16, 23):
        act = np.zeros((25, n, n))
        act[12, j, 16] = 1.0
        planar = planar_images(act, mu, (4.0, 4.0, 4.0), acquisition_time_s=100.0, noise=False)
        gms.append(math.sqrt(planar.anterior.sum() * planar.posterior.sum()))
    thickness_cm = 20 * 0.4
    expected = default_system().sensitivity_cps_per_mbq * 100.0 * math.exp(-0.135 * thickness_cm / 2)
    assert gms == pytest.approx([expected] * 3, rel=1e-6)


def test_noiseless_uniform_cylinder_recovers_concentration_within_5_percent() -> None:
    """OSEM with AC + resolution modelling on noise-free data: centre within 5 % of the truth."""
    cyl = uniform_cylinder(
        diameter_mm=200.0,
        length_mm=100.0,
        concentration_bq_per_ml=40_000.0,
        spacing_mm=6.0,
        shape=(22, 44, 44),
    )
    mu = mu_map_from_hu(cyl.hu)
    system = default_system().with_(n_views=48)
    acq = simulate_spect(cyl.activity_mbq, mu, cyl.grid.spacing_mm, system=system, noise=False)
    rec = reconstruct(acq, mu, iterations=6, subsets=6)
    x_mm, y_mm, z_mm = cyl.grid.axes_mm()
    centre = (np.abs(z_mm)[:, None, None] <= 20.0) & (
        np.hypot(x_mm[None, None, :], y_mm[None, :, None]) <= 50.0
    )
    ratio = float(rec.concentration_bq_per_ml[centre].mean()) / 40_000.0
    assert ratio == pytest.approx(1.0, abs=0.05)
    # without attenuation correction the centre is strongly underestimated
    no_ac = reconstruct(acq, None, iterations=6, subsets=6, attenuation_correction=False)
    assert float(no_ac.concentration_bq_per_ml[centre].mean()) / 40_000.0 < 0.5


def test_iec_sphere_recovery_rises_with_diameter() -> None:
    iec = iec_body_phantom(spacing_mm=6.0, sphere_to_background=8.0, background_bq_per_ml=20_000.0)
    mu = mu_map_from_hu(iec.hu)
    system = default_system().with_(n_views=48)
    acq = simulate_spect(iec.activity_mbq, mu, iec.grid.spacing_mm, system=system, noise=False)
    rec = reconstruct(acq, mu, iterations=6, subsets=6)
    rc = list(recovery_coefficients(iec, rec.concentration_bq_per_ml).values())
    assert all(b > a for a, b in itertools.pairwise(rc)), rc
    assert rc[0] < 0.5 and 0.6 < rc[-1] < 1.1


def test_scatter_model_adds_k_times_primary_and_its_correction_restores_quantification() -> None:
    """Convolution scatter (Bailey & Meikle 1994): scatter counts = k·primary; modelled in OSEM it cancels."""
    cyl = uniform_cylinder(
        diameter_mm=160.0,
        length_mm=80.0,
        concentration_bq_per_ml=40_000.0,
        spacing_mm=8.0,
        shape=(24, 32, 32),
    )
    mu = mu_map_from_hu(cyl.hu)
    system = default_system().with_(n_views=32, scatter="convolution", scatter_fraction=0.3)
    acq = simulate_spect(cyl.activity_mbq, mu, cyl.grid.spacing_mm, system=system, noise=False)
    primary = acq.expected_counts - acq.scatter_counts
    assert acq.scatter_counts.sum() == pytest.approx(0.3 * primary.sum(), rel=0.02)
    x_mm, y_mm, z_mm = cyl.grid.axes_mm()
    centre = (np.abs(z_mm)[:, None, None] <= 16.0) & (
        np.hypot(x_mm[None, None, :], y_mm[None, :, None]) <= 40.0
    )

    def centre_ratio(correction: str) -> float:
        rec = reconstruct(acq, mu, iterations=6, subsets=4, scatter_correction=correction)  # type: ignore[arg-type]
        return float(rec.concentration_bq_per_ml[centre].mean()) / 40_000.0

    assert centre_ratio("model") == pytest.approx(1.0, abs=0.05)
    assert centre_ratio("none") > 1.1
    assert centre_ratio("convolution") == pytest.approx(1.0, abs=0.1)
