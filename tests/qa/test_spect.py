"""SPECT calibration factor, IEC recovery and partial-volume correction on images with known truth."""

import itertools
import math

import numpy as np
import pytest
from scipy import ndimage, special

from theradose.errors import InputError
from theradose.imaging.volume import Volume
from theradose.qa import spect


def test_mean_activity_during_acquisition() -> None:
    """Ā = A0 (1 − e^−λT)/(λT); Lu-177, T = 30 min: λT = ln2·0.5/159.528 = 2.1725e-3 → Ā/A0 = 0.998915."""
    value = spect.mean_activity_during_acquisition_mbq(100.0, 1800.0, "Lu-177")
    lam_t = math.log(2) * 0.5 / 159.528
    assert value == pytest.approx(100.0 * (1 - math.exp(-lam_t)) / lam_t, rel=1e-12)
    assert value == pytest.approx(99.8915, abs=1e-3)


def test_calibration_factor_from_counts_hand_calculation() -> None:
    """1.2e7 counts in 1800 s from Ā = 99.8915 MBq → 66.74 cps/MBq; σ/CF = √(1/1.2e7 + 0.02²)."""
    cf = spect.calibration_factor_from_counts(
        1.2e7, duration_s=1800.0, activity_at_start_mbq=100.0, nuclide="Lu-177"
    )
    assert cf.calibration_factor_cps_per_mbq == pytest.approx(1.2e7 / 1800.0 / 99.89148, rel=1e-5)
    assert cf.relative_sigma == pytest.approx(math.sqrt(1 / 1.2e7 + 0.02**2), rel=1e-9)


def _cylinder_counts(cf_cps_per_mbq: float, activity_mbq: float, duration_s: float) -> tuple[Volume, float]:
    """A blurred uniform cylinder (radius 100 mm, length 120 mm) whose total counts are cf·Ā·T."""
    shape, spacing = (48, 64, 64), 4.0
    k, j, i = np.indices(shape)
    z, y, x = (k - 23.5) * spacing, (j - 31.5) * spacing, (i - 31.5) * spacing
    cylinder = ((x**2 + y**2) <= 100.0**2) & (np.abs(z) <= 60.0)
    image = ndimage.gaussian_filter(cylinder.astype(float), 12.0 / 2.355 / spacing)
    mean_activity = spect.mean_activity_during_acquisition_mbq(activity_mbq, duration_s, "Lu-177")
    image *= cf_cps_per_mbq * mean_activity * duration_s / image.sum()
    volume_ml = math.pi * 10.0**2 * 12.0
    return Volume.from_spacing(image, spacing_mm=(spacing,) * 3, unit="counts"), volume_ml


def test_calibration_factor_from_uniform_cylinder_image() -> None:
    image, volume_ml = _cylinder_counts(9.5, 500.0, 1200.0)
    cf = spect.calibration_factor_from_image(
        image, duration_s=1200.0, activity_at_start_mbq=500.0, nuclide="Lu-177", phantom_volume_ml=volume_ml
    )
    assert cf.calibration_factor_cps_per_mbq == pytest.approx(9.5, rel=0.005)
    # central region is flat: Bq/mL per cps/voxel = C / (CF · C · voxel mL) = 1/(CF·Vvox)
    expected = 1e6 / (9.5 * image.voxel_volume_ml)
    assert cf.bqml_per_cps_per_voxel == pytest.approx(expected, rel=0.02)


def test_calibration_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="duration_s"):
        spect.calibration_factor_from_counts(1e6, duration_s=0.0, activity_at_start_mbq=1.0, nuclide="Lu-177")
    image, _ = _cylinder_counts(9.5, 500.0, 1200.0)
    with pytest.raises(InputError, match="counts"):
        spect.calibration_factor_from_image(
            image.with_array(image.array, unit="Bq/mL"),
            duration_s=1.0,
            activity_at_start_mbq=1.0,
            nuclide="Lu-177",
        )


def _iec_image(
    fwhm_mm: float, spacing: float, background: float, sphere: float, angle0: float = 0.3
) -> Volume:
    """Ideal IEC spheres (fractional voxel occupancy) in a uniform background, blurred by a Gaussian."""
    geometry = spect.iec_geometry()
    n_xy = round(260 / spacing)
    n_z = round(80 / spacing)
    shape = (n_z, n_xy, n_xy)
    sub = 3
    k, j, i = np.indices(shape, dtype=float)
    image = np.zeros(shape)
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    centre = np.array([(n_z - 1) / 2, (n_xy - 1) / 2, (n_xy - 1) / 2])
    body = ((j - centre[1]) ** 2 + (i - centre[2]) ** 2) * spacing**2 <= 110.0**2
    image[body] = background
    for idx, d in enumerate(geometry.sphere_diameters_mm):
        angle = angle0 + math.radians(geometry.angular_step_deg) * idx
        cx = geometry.ring_radius_mm * math.cos(angle)
        cy = geometry.ring_radius_mm * math.sin(angle)
        occupancy = np.zeros(shape)
        for a in offsets:
            for b in offsets:
                for c in offsets:
                    z = (k + a - centre[0]) * spacing
                    y = (j + b - centre[1]) * spacing - cy
                    x = (i + c - centre[2]) * spacing - cx
                    occupancy += (x**2 + y**2 + z**2) <= (d / 2) ** 2
        occupancy /= sub**3
        image = image * (1 - occupancy) + sphere * occupancy
    blurred = ndimage.gaussian_filter(image, fwhm_mm / 2.355 / spacing)
    origin = (-centre[2] * spacing, -centre[1] * spacing, -centre[0] * spacing)  # LPS x, y, z
    return Volume.from_spacing(blurred, spacing_mm=(spacing,) * 3, origin_mm=origin, unit="Bq/mL")


@pytest.fixture(scope="module")
def iec_cold() -> Volume:
    return _iec_image(fwhm_mm=10.0, spacing=2.0, background=0.0, sphere=1000.0)


def test_sphere_localisation(iec_cold: Volume) -> None:
    geometry = spect.iec_geometry()
    centres = spect.locate_iec_spheres(iec_cold)
    for idx, c in enumerate(centres):
        angle = 0.3 + math.radians(geometry.angular_step_deg) * idx
        truth = np.array(
            [geometry.ring_radius_mm * math.cos(angle), geometry.ring_radius_mm * math.sin(angle), 0.0]
        )
        # LPS world axes: x is column (index 2), y row (index 1), z slice (index 0)
        assert np.linalg.norm(np.asarray(c) - truth) < 1.5


def test_recovery_max_matches_analytic_blurred_sphere(iec_cold: Volume) -> None:
    """Centre value of a uniform sphere (radius R) blurred by a Gaussian (σ):
    erf(R/(σ√2)) − √(2/π)(R/σ)·exp(−R²/2σ²) (convolution of a ball with a 3-D Gaussian, radial integral)."""
    sigma = 10.0 / 2.355
    for rec in spect.iec_recovery(iec_cold, sphere_concentration_bq_per_ml=1000.0):
        r = rec.diameter_mm / 2
        analytic = special.erf(r / (sigma * math.sqrt(2))) - math.sqrt(2 / math.pi) * (r / sigma) * math.exp(
            -(r**2) / (2 * sigma**2)
        )
        assert rec.recovery_max == pytest.approx(analytic, abs=0.03)


def test_recovery_rises_with_size_and_pvc_restores_2cm_tumour() -> None:
    image = _iec_image(fwhm_mm=12.0, spacing=3.0, background=100.0, sphere=1000.0)
    recoveries = spect.iec_recovery(image, sphere_concentration_bq_per_ml=1000.0)
    rcs = [r.recovery for r in recoveries]
    assert all(b > a for a, b in itertools.pairwise(rcs))
    curve = spect.fit_recovery_curve([r.volume_ml for r in recoveries], rcs)
    # an independent 20 mm "tumour" (not one of the calibration spheres), 8:1 to background, same imaging:
    # the mean in its true volume divided by RC(V) is within 10 % of the truth, uncorrected it is not
    spacing = 3.0
    k, j, i = np.indices((30, 60, 60), dtype=float)
    occupancy = np.zeros((30, 60, 60))
    offsets = (np.arange(3) + 0.5) / 3 - 0.5
    for a in offsets:
        for b in offsets:
            for c in offsets:
                r2 = ((k + a - 14.5) ** 2 + (j + b - 29.5) ** 2 + (i + c - 29.5) ** 2) * spacing**2
                occupancy += r2 <= 10.0**2
    occupancy /= 27
    truth = 100.0 * (1 - occupancy) + 800.0 * occupancy
    blurred = ndimage.gaussian_filter(truth, 12.0 / 2.355 / spacing)
    inside = occupancy > 0.5
    measured = float(blurred[inside].mean())
    v20 = spect.sphere_volume_ml(20.0)
    corrected = spect.partial_volume_correct(measured, v20, curve)
    assert abs(measured / 800.0 - 1) > 0.2
    assert corrected == pytest.approx(800.0, rel=0.10)
    with pytest.raises(InputError, match="below the smallest calibrated sphere"):
        spect.partial_volume_correct(100.0, 0.1, curve)
    assert curve(v20) < curve(100.0)


def test_recovery_curve_log_slope_and_fit_sigma_by_hand() -> None:
    """β = d ln RC/d ln V of RC = 0.9/(1 + (5/V)^1.5) against a central difference; the residual SD of
    six spheres about the curve with residuals +0.02, −0.02, +0.01, −0.01, 0, 0: sqrt(0.001/3)."""
    import math

    from theradose.qa.spect import RecoveryCurve, recovery_fit_sigma

    curve = RecoveryCurve(0.9, 5.0, 1.5, 0.5, 30.0)
    h = 1e-5
    numeric = (math.log(float(curve(4.0 * (1 + h)))) - math.log(float(curve(4.0 * (1 - h))))) / (
        math.log(1 + h) - math.log(1 - h)
    )
    assert curve.log_slope(4.0) == pytest.approx(numeric, rel=1e-6)
    volumes = [0.5, 1.0, 2.5, 5.0, 11.0, 26.0]
    residuals = [0.02, -0.02, 0.01, -0.01, 0.0, 0.0]
    measured = [float(curve(v)) + r for v, r in zip(volumes, residuals, strict=True)]
    assert recovery_fit_sigma(volumes, measured, curve) == pytest.approx(math.sqrt(0.001 / 3))
