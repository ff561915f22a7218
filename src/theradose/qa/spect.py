"""SPECT calibration: calibration factor, recovery coefficients and partial-volume correction.

Calibration factor
    From a uniform phantom of known activity (EANM/SNMMI guideline for quantitative ¹⁷⁷Lu SPECT,
    Sjögreen Gleisner et al. 2022, EJNMMI Phys 9:30, §"calibration"; MIRD Pamphlet 26, Ljungberg et al.
    2016, J Nucl Med 57:151): the counts in a volume of interest that encloses the whole phantom plus a
    margin for spill-out, divided by the acquisition duration and the activity averaged over the
    acquisition, Ā = A₀ (1 − e^{−λT}) / (λT) with A₀ the activity at the start.
    Relative variance: 1/N (Poisson counts) + (σ_A/A)² (activity measurement).
Recovery coefficients
    NEMA IEC body phantom (NEMA NU 2-2018 §7.3): spheres found automatically (the two largest by
    thresholding, the others from the ring geometry), RC_mean = mean concentration in the true sphere
    volume / true concentration, RC_max likewise with the maximum; a sigmoid curve
    RC(V) = RC∞ / (1 + (V₅₀/V)^s) fitted in volume (e.g. Tran-Gia & Lassmann 2018, J Nucl Med 59:1918
    use such volume-dependent curves for ¹⁷⁷Lu).
Partial-volume correction
    A_corrected = A_measured / RC(V) for a lesion of volume V, within the calibrated volume range.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from theradose.errors import FitError, InputError
from theradose.imaging.volume import Volume
from theradose.nuclides import get_nuclide
from theradose.units import mbq_to_bq, ml_to_mm3, mm3_to_ml, seconds_to_hours

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class IecGeometry:
    """NEMA IEC body phantom sphere geometry (``data/qa/iec_phantom.toml``)."""

    sphere_diameters_mm: tuple[float, ...]
    ring_radius_mm: float
    angular_step_deg: float

    @property
    def sphere_volumes_ml(self) -> tuple[float, ...]:
        """Inner volumes of the spheres (mL)."""
        return tuple(mm3_to_ml(math.pi / 6.0 * d**3) for d in self.sphere_diameters_mm)


def iec_geometry() -> IecGeometry:
    """The shipped NEMA IEC body phantom geometry."""
    table = tomllib.loads((resources.files("theradose.data") / "qa" / "iec_phantom.toml").read_text())
    return IecGeometry(
        sphere_diameters_mm=tuple(float(d) for d in table["sphere_inner_diameters_mm"]),
        ring_radius_mm=float(table["sphere_ring_radius_mm"]),
        angular_step_deg=float(table["sphere_angular_step_deg"]),
    )


@dataclass(frozen=True)
class CalibrationFactor:
    """SPECT calibration factor with its standard uncertainty."""

    calibration_factor_cps_per_mbq: float
    sigma_cps_per_mbq: float
    counts: float
    duration_s: float
    mean_activity_mbq: float
    voi_volume_ml: float
    bqml_per_cps_per_voxel: float | None = None

    @property
    def relative_sigma(self) -> float:
        """σ / factor."""
        return self.sigma_cps_per_mbq / self.calibration_factor_cps_per_mbq


def mean_activity_during_acquisition_mbq(
    activity_at_start_mbq: float, duration_s: float, nuclide: str
) -> float:
    """Ā = A₀ (1 − e^{−λT}) / (λT): activity averaged over an acquisition of duration T."""
    lam_t = get_nuclide(nuclide).decay_constant_per_h * seconds_to_hours(duration_s)
    if lam_t == 0.0:
        return activity_at_start_mbq
    return activity_at_start_mbq * (-math.expm1(-lam_t)) / lam_t


def calibration_factor_from_counts(
    counts: float,
    *,
    duration_s: float,
    activity_at_start_mbq: float,
    nuclide: str,
    activity_relative_sigma: float = 0.02,
    voi_volume_ml: float = float("nan"),
) -> CalibrationFactor:
    """Calibration factor (cps/MBq) from total counts of a planar or tomographic acquisition.

    Parameters
    ----------
    counts
        Counts in the region enclosing the whole source (planar ROI or reconstructed VOI).
    duration_s
        Acquisition duration (s); for SPECT the total time over all projections.
    activity_at_start_mbq
        Activity at the start of the acquisition (already decay-corrected from the calibration time).
    activity_relative_sigma
        Relative standard uncertainty of the activity measurement (dose calibrator), default 2 %.
    """
    for name, value in (
        ("counts", counts),
        ("duration_s", duration_s),
        ("activity_mbq", activity_at_start_mbq),
    ):
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a positive number; got {value!r}")
    mean_activity = mean_activity_during_acquisition_mbq(activity_at_start_mbq, duration_s, nuclide)
    factor = counts / duration_s / mean_activity
    relative = math.sqrt(1.0 / counts + activity_relative_sigma**2)
    return CalibrationFactor(
        calibration_factor_cps_per_mbq=factor,
        sigma_cps_per_mbq=factor * relative,
        counts=counts,
        duration_s=duration_s,
        mean_activity_mbq=mean_activity,
        voi_volume_ml=voi_volume_ml,
    )


def phantom_mask(
    image: Volume, *, threshold_fraction: float = 0.3, margin_mm: float = 30.0
) -> npt.NDArray[np.bool_]:
    """Phantom region: voxels above ``threshold_fraction`` of the robust maximum, holes filled, dilated by
    ``margin_mm`` to collect counts spilled out by the limited resolution."""
    values = np.asarray(image.array, dtype=np.float64)
    robust_max = float(np.percentile(values, 99.5))
    if robust_max <= 0:
        raise InputError("the calibration image has no positive counts: check the series")
    mask = values > threshold_fraction * robust_max
    labels, n = ndimage.label(mask)
    if n == 0:
        raise InputError("no phantom found in the calibration image")
    largest = 1 + int(np.argmax(ndimage.sum(mask, labels, index=range(1, n + 1))))
    mask = ndimage.binary_fill_holes(labels == largest)
    if margin_mm > 0:
        spacing = np.asarray(image.spacing_mm)
        radius = np.ceil(margin_mm / spacing).astype(int)
        grid = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
        ball = sum((g * s / margin_mm) ** 2 for g, s in zip(grid, spacing, strict=True)) <= 1.0
        mask = ndimage.binary_dilation(mask, structure=ball)
    return np.asarray(mask, dtype=bool)


def calibration_factor_from_image(
    counts_image: Volume,
    *,
    duration_s: float,
    activity_at_start_mbq: float,
    nuclide: str,
    activity_relative_sigma: float = 0.02,
    margin_mm: float = 30.0,
    phantom_volume_ml: float | None = None,
) -> CalibrationFactor:
    """Calibration factor from a reconstructed image of a uniform phantom (voxel values in counts).

    The counts are summed over :func:`phantom_mask`. When ``phantom_volume_ml`` is given, the
    volumetric factor (Bq/mL per count/s/voxel) is also computed from a central region (the phantom
    eroded by 2 cm), where partial-volume effects vanish.
    """
    if counts_image.unit not in ("counts", "1"):
        raise InputError(f"calibration image must be in counts; got unit {counts_image.unit!r}")
    mask = phantom_mask(counts_image, margin_mm=margin_mm)
    values = np.asarray(counts_image.array, dtype=np.float64)
    counts = float(values[mask].sum())
    result = calibration_factor_from_counts(
        counts,
        duration_s=duration_s,
        activity_at_start_mbq=activity_at_start_mbq,
        nuclide=nuclide,
        activity_relative_sigma=activity_relative_sigma,
        voi_volume_ml=float(mask.sum()) * counts_image.voxel_volume_ml,
    )
    if phantom_volume_ml is None:
        return result
    inner = phantom_mask(counts_image, margin_mm=0.0)
    spacing = np.asarray(counts_image.spacing_mm)
    iterations = max(1, round(20.0 / float(spacing.min())))
    core = ndimage.binary_erosion(inner, iterations=iterations)
    if core.sum() < 8:
        raise InputError("phantom too small for a central region 2 cm from its edge")
    cps_per_voxel = float(values[core].mean()) / duration_s
    concentration_bq_per_ml = mbq_to_bq(result.mean_activity_mbq) / phantom_volume_ml
    return CalibrationFactor(
        **{**result.__dict__, "bqml_per_cps_per_voxel": concentration_bq_per_ml / cps_per_voxel}
    )


# --------------------------------------------------------------------------------------------------
# Recovery coefficients
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SphereRecovery:
    """Recovery of one sphere."""

    diameter_mm: float
    volume_ml: float
    centre_mm: tuple[float, float, float]
    mean_bq_per_ml: float
    max_bq_per_ml: float
    recovery: float
    recovery_max: float


@dataclass(frozen=True)
class RecoveryCurve:
    """RC(V) = rc_inf / (1 + (v50_ml / V)^slope), valid for V in [v_min_ml, v_max_ml]."""

    rc_inf: float
    v50_ml: float
    slope: float
    v_min_ml: float
    v_max_ml: float

    def __call__(self, volume_ml: FloatArray | float) -> FloatArray:
        v = np.asarray(volume_ml, dtype=np.float64)
        return self.rc_inf / (1.0 + (self.v50_ml / v) ** self.slope)

    def log_slope(self, volume_ml: float) -> float:
        """β = d ln RC/d ln V at ``volume_ml``: s·u/(1 + u) with u = (V₅₀/V)^s (derivative of the
        sigmoid above; 0 for large volumes, → s for small ones)."""
        if not volume_ml > 0:
            raise InputError(f"volume_ml must be > 0; got {volume_ml!r}")
        u = (self.v50_ml / volume_ml) ** self.slope
        return float(self.slope * u / (1.0 + u))


def recovery_fit_sigma(volume_ml: npt.ArrayLike, recovery: npt.ArrayLike, curve: RecoveryCurve) -> float:
    """Standard uncertainty of a recovery coefficient read from ``curve``: the residual standard deviation
    of the measured spheres about the fitted curve,
    :math:`s = \\sqrt{\\sum_i (RC_i - RC(V_i))^2/(n - 3)}` (three fitted parameters), in RC units. Gear
    et al. 2018 (Eur J Nucl Med Mol Imaging 45:2456) take the recovery coefficient's uncertainty from
    the fit of the recovery curve; the relative σ at a volume V is s/RC(V).

    Raises
    ------
    InputError
        Fewer than 4 spheres (no degree of freedom left to estimate the scatter).
    """
    v = np.asarray(volume_ml, dtype=np.float64)
    rc = np.asarray(recovery, dtype=np.float64)
    if v.shape != rc.shape or v.size < 4:
        raise InputError(
            f"the recovery uncertainty needs at least 4 measured spheres (3 curve parameters); got {v.size}"
        )
    residual = rc - np.asarray(curve(v), dtype=np.float64)
    return float(math.sqrt(float(np.sum(residual**2)) / (v.size - 3)))


def _sphere_mask(image: Volume, centre_mm: FloatArray, radius_mm: float, supersample: int = 3) -> FloatArray:
    """Fraction of each voxel inside a sphere (sub-voxel sampling), on the image grid."""
    centre_idx = image.index_of(centre_mm)
    spacing = np.asarray(image.spacing_mm)
    half = np.ceil(radius_mm / spacing).astype(int) + 1
    lo = np.maximum(np.floor(centre_idx).astype(int) - half, 0)
    hi = np.minimum(np.ceil(centre_idx).astype(int) + half + 1, image.shape)
    frac = np.zeros(image.shape, dtype=np.float64)
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    sub = np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), axis=-1).reshape(-1, 3)
    idx = np.stack(
        np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi, strict=True)), indexing="ij"), axis=-1
    ).reshape(-1, 3)
    points = idx[:, None, :] + sub[None, :, :]
    world = image.world_coordinates_mm(points.reshape(-1, 3)).reshape(points.shape)
    inside = np.sum((world - centre_mm) ** 2, axis=-1) <= radius_mm**2
    frac[tuple(idx.T)] = inside.mean(axis=1)
    return frac


def locate_iec_spheres(image: Volume, geometry: IecGeometry | None = None) -> list[FloatArray]:
    """Centres (LPS mm) of the six IEC spheres, ordered as ``geometry.sphere_diameters_mm``.

    The two largest spheres are found as the two largest hot connected components (above the midpoint
    between background and maximum); the ring centre follows from their centroids, the ring radius and
    the 60° spacing (two candidate centres: the one whose predicted small-sphere positions are hotter is
    kept); each centre is then refined to the intensity-weighted centroid around the prediction.
    """
    geometry = geometry or iec_geometry()
    values = np.asarray(image.array, dtype=np.float64)
    smooth = ndimage.gaussian_filter(values, 0.7)
    background = float(np.median(smooth[smooth > 0.1 * smooth.max()]))
    hot = smooth > background + 0.5 * (smooth.max() - background)
    labels, n = ndimage.label(hot)
    if n < 2:
        raise InputError("fewer than two hot spheres found: is this an IEC phantom with hot spheres?")
    sizes = ndimage.sum(hot, labels, index=range(1, n + 1))
    biggest = np.argsort(sizes)[::-1][:2] + 1
    centroids = [image.world_coordinates_mm(ndimage.center_of_mass(smooth * (labels == k))) for k in biggest]
    p_large, p_second = centroids  # 37 mm and 28 mm spheres
    radius = geometry.ring_radius_mm
    step = math.radians(geometry.angular_step_deg)
    chord = p_second - p_large
    chord_len = float(np.linalg.norm(chord))
    # the plane of the ring is the transverse plane (normal = patient z, LPS axis 2)
    normal = np.array([0.0, 0.0, 1.0])
    mid = (p_large + p_second) / 2.0
    perp = np.cross(normal, chord / chord_len)
    h = math.sqrt(max(radius**2 - (chord_len / 2.0) ** 2, 0.0))
    best: tuple[float, list[FloatArray]] | None = None
    for sign in (1.0, -1.0):
        centre = mid + sign * h * perp
        u = (p_large - centre) / np.linalg.norm(p_large - centre)
        v = np.cross(normal, u)
        # direction of travel from the largest to the second-largest sphere
        direction = 1.0 if np.dot(p_second - centre, v) > 0 else -1.0
        n_spheres = len(geometry.sphere_diameters_mm)
        predicted = []
        for i, _d in enumerate(geometry.sphere_diameters_mm):
            k = n_spheres - 1 - i  # steps from the largest sphere
            angle = direction * k * step
            predicted.append(centre + radius * (math.cos(angle) * u + math.sin(angle) * v))
        score = sum(float(np.sum(_sphere_mask(image, p, 4.0) * smooth)) for p in predicted[:3])
        if best is None or score > best[0]:
            best = (score, predicted)
    assert best is not None
    refined = []
    for p, diameter in zip(best[1], geometry.sphere_diameters_mm, strict=True):
        weights = _sphere_mask(image, p, max(diameter, 2.0 * float(max(image.spacing_mm)))) * np.clip(
            smooth - background, 0.0, None
        )
        if weights.sum() > 0:
            refined.append(image.world_coordinates_mm(ndimage.center_of_mass(weights)))
        else:
            refined.append(p)
    return refined


def iec_recovery(
    image: Volume,
    *,
    sphere_concentration_bq_per_ml: float,
    geometry: IecGeometry | None = None,
    centres_mm: list[FloatArray] | None = None,
) -> list[SphereRecovery]:
    """Recovery coefficients of the six spheres of an IEC phantom image in Bq/mL."""
    if image.unit != "Bq/mL":
        raise InputError(f"recovery needs an image in Bq/mL; got {image.unit!r}: calibrate the image first")
    if not sphere_concentration_bq_per_ml > 0:
        raise InputError(f"sphere_concentration_bq_per_ml must be > 0; got {sphere_concentration_bq_per_ml}")
    geometry = geometry or iec_geometry()
    centres = centres_mm if centres_mm is not None else locate_iec_spheres(image, geometry)
    values = np.asarray(image.array, dtype=np.float64)
    out = []
    for centre, diameter, volume_ml in zip(
        centres, geometry.sphere_diameters_mm, geometry.sphere_volumes_ml, strict=True
    ):
        frac = _sphere_mask(image, np.asarray(centre), diameter / 2.0)
        mean = float(np.sum(frac * values) / np.sum(frac))
        maximum = float(values[frac > 0].max())
        out.append(
            SphereRecovery(
                diameter_mm=diameter,
                volume_ml=volume_ml,
                centre_mm=tuple(float(c) for c in centre),  # type: ignore[arg-type]
                mean_bq_per_ml=mean,
                max_bq_per_ml=maximum,
                recovery=mean / sphere_concentration_bq_per_ml,
                recovery_max=maximum / sphere_concentration_bq_per_ml,
            )
        )
    return out


def fit_recovery_curve(volume_ml: npt.ArrayLike, recovery: npt.ArrayLike) -> RecoveryCurve:
    """Fit RC(V) = rc_inf / (1 + (v50/V)^slope) by least squares."""
    from scipy.optimize import least_squares

    v = np.asarray(volume_ml, dtype=np.float64)
    rc = np.asarray(recovery, dtype=np.float64)
    if v.shape != rc.shape or v.size < 3:
        raise InputError("recovery curve needs at least 3 (volume, recovery) pairs")
    if np.any(v <= 0) or np.any(rc <= 0):
        raise InputError("volumes and recoveries must be positive")

    def residual(p: FloatArray) -> FloatArray:
        rc_inf, log_v50, slope = p
        out: FloatArray = rc_inf / (1.0 + (math.exp(log_v50) / v) ** slope) - rc
        return out

    start = [float(rc.max()) * 1.1, math.log(float(np.median(v))), 1.0]
    result = least_squares(residual, start, bounds=([0.05, -10.0, 0.1], [3.0, 10.0, 5.0]))
    if not result.success:
        raise FitError(f"recovery curve fit failed: {result.message}")
    rc_inf, log_v50, slope = (float(x) for x in result.x)
    return RecoveryCurve(rc_inf, math.exp(log_v50), slope, float(v.min()), float(v.max()))


def partial_volume_correct(
    measured: float, volume_ml: float, curve: RecoveryCurve, *, allow_extrapolation: bool = False
) -> float:
    """Activity (or concentration) corrected for partial volume: measured / RC(V).

    Raises
    ------
    InputError
        If V lies below the smallest calibrated sphere (extrapolation is unreliable) unless
        ``allow_extrapolation``; above the largest sphere the curve's plateau is used.
    """
    if not volume_ml > 0:
        raise InputError(f"volume_ml must be > 0; got {volume_ml}")
    if volume_ml < curve.v_min_ml and not allow_extrapolation:
        raise InputError(
            f"lesion volume {volume_ml:.3g} mL is below the smallest calibrated sphere "
            f"({curve.v_min_ml:.3g} mL): partial-volume correction would extrapolate"
        )
    return measured / float(curve(volume_ml))


def sphere_volume_ml(diameter_mm: float) -> float:
    """Volume of a sphere of diameter ``diameter_mm`` (mL)."""
    return mm3_to_ml(math.pi / 6.0 * diameter_mm**3)


def sphere_diameter_mm(volume_ml: float) -> float:
    """Diameter (mm) of a sphere of volume ``volume_ml``."""
    return float((6.0 * ml_to_mm3(volume_ml) / math.pi) ** (1.0 / 3.0))


def activity_at_start_mbq(
    activity_mbq: float, *, nuclide: str, hours_from_reference_to_start: float
) -> float:
    """Activity at the acquisition start from an activity measured ``hours`` earlier."""
    return activity_mbq * math.exp(-get_nuclide(nuclide).decay_constant_per_h * hours_from_reference_to_start)


__all__ = [
    "CalibrationFactor",
    "IecGeometry",
    "RecoveryCurve",
    "SphereRecovery",
    "activity_at_start_mbq",
    "calibration_factor_from_counts",
    "calibration_factor_from_image",
    "fit_recovery_curve",
    "iec_geometry",
    "iec_recovery",
    "locate_iec_spheres",
    "mean_activity_during_acquisition_mbq",
    "partial_volume_correct",
    "phantom_mask",
    "sphere_diameter_mm",
    "sphere_volume_ml",
]
