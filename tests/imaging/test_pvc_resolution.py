"""Effective resolution: sphere partial volume, Gaussian self-recovery, recovery-matched FWHM, the table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.imaging.pvc.resolution import (
    EffectiveResolution,
    SphereMeasurement,
    blur,
    effective_resolution,
    equivalent_sphere_diameter_mm,
    gaussian_sphere_recovery,
    matched_fwhm_mm,
    measure_spheres,
    self_recovery,
    sphere_partial_volume,
    sphere_self_recovery,
)


def test_sphere_partial_volume_sums_to_the_sphere_volume() -> None:
    # 4/3 π (11 mm)³ = 5575.28 mm³; 2 mm voxels, centre off the grid points
    frac = sphere_partial_volume((20, 20, 20), (2.0, 2.0, 2.0), (9.3, 10.1, 9.7), 22.0, supersampling=8)
    assert float(frac.sum()) * 8.0 == pytest.approx(4.0 / 3.0 * math.pi * 11.0**3, rel=0.005)
    assert frac.max() == 1.0 and frac.min() == 0.0


def test_sphere_self_recovery_limits_and_first_order() -> None:
    assert sphere_self_recovery(30.0, 0.0) == 1.0
    # first order for a large sphere: 1 − 6σ/(√(2π) d); d = 400 mm, FWHM 10 mm: σ = 4.2466, 1 − 0.02541
    sigma = 10.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    assert sphere_self_recovery(400.0, 10.0) == pytest.approx(
        1.0 - 6.0 * sigma / (math.sqrt(2 * math.pi) * 400.0), abs=2e-4
    )
    # tiny sphere: only the fraction of a Gaussian within r remains ~ (4/3 π r³)/( (2π)^1.5 σ³ ) · ... → small
    assert sphere_self_recovery(2.0, 20.0) < 0.01


def test_voxel_self_recovery_matches_the_continuous_sphere() -> None:
    frac = sphere_partial_volume((60, 60, 60), (1.0, 1.0, 1.0), (29.5, 29.5, 29.5), 30.0)
    assert self_recovery(frac > 0.5, 8.0, (1.0, 1.0, 1.0)) == pytest.approx(
        sphere_self_recovery(30.0, 8.0), abs=0.005
    )


def test_matched_fwhm_recovers_the_blur_that_made_the_recovery() -> None:
    spacing = (4.0, 4.0, 4.0)
    frac = sphere_partial_volume((30, 30, 30), spacing, (14.6, 15.2, 14.9), 22.0)
    mask = frac >= 0.5
    rc = gaussian_sphere_recovery(frac, mask, 11.0, spacing)
    assert matched_fwhm_mm(rc, frac, mask, spacing) == pytest.approx(11.0, abs=0.02)
    assert math.isnan(matched_fwhm_mm(1.5, frac, mask, spacing))  # above every Gaussian's recovery


def test_measure_spheres_on_a_blurred_phantom() -> None:
    spacing = (4.0, 4.0, 4.0)
    shape = (36, 60, 60)
    centres = [(18.0, 18.0, 20.0), (18.2, 40.0, 22.0), (17.7, 30.0, 42.0)]
    diameters = [17.0, 28.0, 37.0]
    bg, sphere = 1000.0, 10000.0
    truth = np.full(shape, bg)
    for c, d in zip(centres, diameters, strict=True):
        truth += (sphere - bg) * sphere_partial_volume(shape, spacing, c, d)
    image = blur(truth, 9.0, spacing)
    out = measure_spheres(
        image,
        spacing,
        centres_voxel=centres,
        diameters_mm=diameters,
        sphere_bq_per_ml=sphere,
        background_bq_per_ml=bg,
    )
    # far from the array edge the blurred background stays 1000, so every sphere gives back 9 mm
    for m in out:
        assert m.fwhm_mm == pytest.approx(9.0, abs=0.1)
        assert m.contrast == 10.0
    with pytest.raises(InputError, match="exceed"):
        measure_spheres(
            image,
            spacing,
            centres_voxel=centres,
            diameters_mm=diameters,
            sphere_bq_per_ml=10.0,
            background_bq_per_ml=bg,
        )


def test_table_is_non_increasing_and_interpolates_in_log_contrast() -> None:
    def m(d: float, c: float, f: float) -> SphereMeasurement:
        return SphereMeasurement(d, c, 0.5, 0.01, f)

    # 10:1 fill: 14, 10, 12 (violates monotony) → pooled 14, 11, 11; 40:1: 8, 6, nan (dropped)
    res = effective_resolution(
        [m(10, 10, 14), m(20, 10, 10), m(30, 10, 12), m(10, 40, 8), m(20, 40, 6), m(30, 40, math.nan)]
    )
    assert res.contrasts == (10.0, 40.0)
    assert res.fwhm_mm[0] == pytest.approx((14.0, 11.0, 11.0))
    assert res.diameters_mm[1] == (10.0, 20.0)
    # residuals of the pooled fit: 0, −1/11, +1/11 and 0, 0: RMS = sqrt(2/121/5); σ = sqrt(0.05² + that)
    assert res.relative_sigma == pytest.approx(math.sqrt(0.05**2 + 2.0 / 121.0 / 5.0))
    assert res.fwhm_at(15.0, 10.0) == pytest.approx(12.5)
    # √(10·40) = 20:1 lies halfway in log contrast between 12.5 and 7 → 9.75
    assert res.fwhm_at(15.0, 20.0) == pytest.approx(9.75)
    assert res.fwhm_at(100.0, 1000.0) == pytest.approx(6.0)  # held constant beyond the table
    assert res.large_object_fwhm_mm == pytest.approx(11.0)
    again = EffectiveResolution.from_dict(res.as_dict())
    assert again.fwhm_mm == res.fwhm_mm and again.relative_sigma == res.relative_sigma
    with pytest.raises(InputError, match="contrasts"):
        EffectiveResolution.from_dict({"fwhm_mm": []})


def test_equivalent_sphere_of_a_sphere_and_of_an_ellipsoid() -> None:
    spacing = (2.0, 2.0, 2.0)
    frac = sphere_partial_volume((40, 40, 40), spacing, (19.5, 19.5, 19.5), 40.0)
    assert equivalent_sphere_diameter_mm(frac > 0.5, spacing, reference_fwhm_mm=8.0) == pytest.approx(
        40.0, rel=0.03
    )
    # ellipsoid with semi-axes 15, 45, 55 mm: V = 155 509 mm³, S ≈ 18 435 mm² (Knud Thomsen's formula,
    # p = 1.6075), 6V/S = 50.6 mm; the equivalent sphere follows V/S to first order in the blur
    k, j, i = np.indices((80, 80, 80)) * 2.0 - 79.0
    ellipsoid = (k / 15.0) ** 2 + (j / 45.0) ** 2 + (i / 55.0) ** 2 <= 1.0
    assert equivalent_sphere_diameter_mm(ellipsoid, spacing, reference_fwhm_mm=6.0) == pytest.approx(
        50.6, rel=0.06
    )
