"""Quantitative 177Lu SPECT simulation (208 keV photopeak) and planar whole-body imaging.

The system model (:class:`~theradose.phantoms.projector.Projector`) has attenuation (μ from the CT, see
:func:`mu_map_from_hu`), a distance-dependent Gaussian collimator–detector response of a medium-energy
general-purpose collimator and the camera sensitivity; scatter is optional (convolution model of Bailey
& Meikle 1994, Phys Med Biol 39:411). Counts are Poisson distributed (seeded). Parameters and their
sources are in ``data/phantoms/spect.toml``.

Reconstruction: :mod:`theradose.phantoms.osem`.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import DataError, InputError
from theradose.phantoms.projector import FWHM_PER_SIGMA, CollimatorResponse, Projector

FloatArray = npt.NDArray[np.float64]
ScatterModel = Literal["none", "convolution"]


@lru_cache(maxsize=1)
def _spect_data() -> dict[str, object]:
    try:
        text = resources.files("theradose.data.phantoms").joinpath("spect.toml").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise DataError("spect.toml is missing: reinstall theradose") from exc
    return tomllib.loads(text)


@dataclass(frozen=True)
class SpectSystem:
    """Camera, collimator and acquisition protocol.

    Attributes
    ----------
    photopeak_kev : float
        Photopeak energy (177Lu: 208.4 keV).
    collimator : CollimatorResponse
        FWHM(d) = a + b·d.
    sensitivity_cps_per_mbq : float
        Counts per second per MBq in air, per view (one detector head).
    n_views : int
        Number of projection angles over ``arc_deg``.
    arc_deg : float
        Total arc (360° for body SPECT).
    radius_mm : float
        Orbit radius (rotation axis to collimator face).
    time_per_view_s : float
        Acquisition time of each view.
    n_heads : int
        Heads acquiring views in parallel (acquisition duration = n_views · time_per_view_s / n_heads).
    scatter : {"none", "convolution"}
        Scatter model of the simulation.
    scatter_fraction : float
        k of the convolution scatter model (scatter counts / primary counts).
    scatter_fwhm_mm : float
        Width of the scatter kernel.
    """

    photopeak_kev: float
    collimator: CollimatorResponse
    sensitivity_cps_per_mbq: float
    n_views: int
    arc_deg: float
    radius_mm: float
    time_per_view_s: float
    n_heads: int
    scatter: ScatterModel
    scatter_fraction: float
    scatter_fwhm_mm: float

    @property
    def angles_deg(self) -> FloatArray:
        """Detector angles of the views (deg)."""
        return np.asarray(self.arc_deg * np.arange(self.n_views) / self.n_views, dtype=np.float64)

    @property
    def acquisition_duration_s(self) -> float:
        """Wall-clock duration of the acquisition (s)."""
        return self.n_views * self.time_per_view_s / self.n_heads

    def with_(self, **changes: object) -> SpectSystem:
        """A copy with some fields changed (validated)."""
        new = replace(self, **changes)  # type: ignore[arg-type]
        new.validate()
        return new

    def validate(self) -> None:
        """Raise :class:`InputError` for non-physical settings."""
        if self.n_views < 1:
            raise InputError(f"n_views must be >= 1; got {self.n_views}")
        for name in ("sensitivity_cps_per_mbq", "time_per_view_s", "radius_mm", "arc_deg"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0.0:
                raise InputError(f"{name} must be > 0; got {value}")
        if self.scatter not in ("none", "convolution"):
            raise InputError(f"scatter must be 'none' or 'convolution'; got {self.scatter!r}")


def default_system(collimator: str = "megp") -> SpectSystem:
    """The MEGP 177Lu system of ``data/phantoms/spect.toml`` (sources cited there)."""
    data = _spect_data()
    try:
        col: Mapping[str, float] = data["collimator"][collimator]  # type: ignore[index]
    except KeyError as exc:
        raise InputError(f"collimator {collimator!r} is unknown; choose 'megp'") from exc
    acq: Mapping[str, float] = data["acquisition"]  # type: ignore[assignment]
    sca: Mapping[str, float] = data["scatter"]  # type: ignore[assignment]
    system = SpectSystem(
        photopeak_kev=float(data["photopeak_kev"]),  # type: ignore[arg-type]
        collimator=CollimatorResponse(float(col["fwhm_intercept_mm"]), float(col["fwhm_slope"])),
        sensitivity_cps_per_mbq=float(col["sensitivity_cps_per_mbq"]),
        n_views=int(acq["n_views"]),
        arc_deg=float(acq["arc_deg"]),
        radius_mm=float(acq["radius_mm"]),
        time_per_view_s=float(acq["time_per_view_s"]),
        n_heads=int(acq["n_heads"]),
        scatter="none",
        scatter_fraction=float(sca["fraction"]),
        scatter_fwhm_mm=float(sca["fwhm_mm"]),
    )
    system.validate()
    return system


# --------------------------------------------------------------------------- attenuation
def mu_map_from_hu(hu: npt.ArrayLike, *, energy_kev: float = 208.366) -> FloatArray:
    """Linear attenuation coefficients (1/cm) from CT numbers, with the imaging package's conversion.

    Delegates to :func:`theradose.imaging.density.attenuation_map` (bilinear water/bone model of Brown
    et al. 2008, Appl Radiat Isot 66:1206; μ from xraydb; HU → density calibration of
    ``data/imaging/hu_density_default.csv``, cortical bone 1559 HU ↔ 1.92 g/mL), so that the simulator
    and the dosimetry pipeline use the same μ-map for the same CT.

    Parameters
    ----------
    hu : array_like
        CT numbers (Hounsfield units), any shape.
    energy_kev : float
        Photon energy (default the 208.4 keV 177Lu photopeak).

    Returns
    -------
    ndarray
        μ in 1/cm, same shape, never negative.
    """
    from theradose.imaging.density import attenuation_map
    from theradose.imaging.volume import Volume

    values = np.asarray(hu, dtype=np.float64)
    as_3d = values.reshape((1, 1, -1)) if values.ndim != 3 else values
    ct = Volume.from_spacing(as_3d, (1.0, 1.0, 1.0), unit="HU")
    mu = np.asarray(attenuation_map(ct, energy_kev=energy_kev).array, dtype=np.float64)
    return mu.reshape(values.shape)


# --------------------------------------------------------------------------- acquisition
@dataclass(frozen=True)
class SpectAcquisition:
    """Simulated SPECT projections.

    Attributes
    ----------
    counts : ndarray, shape (n_views, n_z, n)
        Measured counts (Poisson samples, or expected values when noiseless).
    expected_counts : ndarray, shape (n_views, n_z, n)
        Noise-free expectation (primary + scatter).
    scatter_counts : ndarray, shape (n_views, n_z, n)
        Expected scatter counts (zeros with ``scatter="none"``).
    system : SpectSystem
        System and protocol used.
    spacing_mm : tuple of float
        Voxel size (z, y, x) of the activity grid = detector pixel size (z, x).
    noise : bool
        Whether ``counts`` are Poisson samples.
    seed : int or None
        Seed of the noise.
    """

    counts: FloatArray
    expected_counts: FloatArray
    scatter_counts: FloatArray
    system: SpectSystem
    spacing_mm: tuple[float, float, float]
    noise: bool
    seed: int | None


def make_projector(
    mu_per_cm: FloatArray | None,
    spacing_mm: tuple[float, float, float],
    system: SpectSystem,
    *,
    shape: tuple[int, int, int] | None = None,
    resolution_modelling: bool = True,
) -> Projector:
    """The :class:`Projector` of ``system`` for this μ-map (counts per MBq = sensitivity × time per view)."""
    return Projector(
        mu_per_cm,
        spacing_mm,
        angles_deg=system.angles_deg,
        radius_mm=system.radius_mm,
        collimator=system.collimator if resolution_modelling else None,
        counts_per_mbq=system.sensitivity_cps_per_mbq * system.time_per_view_s,
        shape=shape,
    )


def scatter_from_primary(
    primary: FloatArray, system: SpectSystem, spacing_mm: tuple[float, float, float]
) -> FloatArray:
    """Convolution scatter model k·(g ∗ p) per view, g a Gaussian of ``scatter_fwhm_mm``.

    Bailey & Meikle 1994 (Phys Med Biol 39:411).
    """
    from scipy.ndimage import gaussian_filter

    sigma = (
        0.0,
        system.scatter_fwhm_mm / FWHM_PER_SIGMA / spacing_mm[0],
        system.scatter_fwhm_mm / FWHM_PER_SIGMA / spacing_mm[2],
    )
    return np.asarray(
        system.scatter_fraction * gaussian_filter(primary, sigma=sigma, mode="constant"), dtype=np.float64
    )


def simulate_spect(
    activity_mbq: FloatArray,
    mu_per_cm: FloatArray | None,
    spacing_mm: tuple[float, float, float],
    *,
    system: SpectSystem | None = None,
    noise: bool = True,
    seed: int | None = None,
    projector: Projector | None = None,
) -> SpectAcquisition:
    """Simulate a SPECT acquisition of an activity map.

    Parameters
    ----------
    activity_mbq : ndarray, shape (n_z, n, n)
        Activity per voxel (MBq) at the acquisition time (decay during the acquisition is neglected).
    mu_per_cm : ndarray, shape (n_z, n, n) or None
        Attenuation map (1/cm) at the photopeak; ``None`` for no attenuation.
    spacing_mm : tuple of float
        Voxel size (z, y, x).
    system : SpectSystem or None
        System and protocol (default :func:`default_system`).
    noise : bool
        Draw Poisson counts (seeded) or return the expectation.
    seed : int or None
        Seed of the Poisson noise.
    projector : Projector or None
        A ready system model for this μ-map and system (reused across time points).

    Returns
    -------
    SpectAcquisition
        Expected counts per view = sensitivity × time per view × Σ activity × attenuation ⊗ CDR
        (+ scatter).
    """
    system = system or default_system()
    if np.any(~np.isfinite(activity_mbq)) or np.any(activity_mbq < 0.0):
        raise InputError("activity_mbq must be finite and >= 0")
    if projector is None:
        nz, ny, nx = activity_mbq.shape
        projector = make_projector(mu_per_cm, spacing_mm, system, shape=(nz, ny, nx))
    primary = projector.forward(activity_mbq)
    scatter = (
        scatter_from_primary(primary, system, spacing_mm)
        if system.scatter == "convolution"
        else np.zeros_like(primary)
    )
    expected = np.maximum(primary + scatter, 0.0)  # FFT round-off: no negative expectations
    counts = np.random.default_rng(seed).poisson(expected).astype(np.float64) if noise else expected.copy()
    return SpectAcquisition(
        counts=counts,
        expected_counts=expected,
        scatter_counts=scatter,
        system=system,
        spacing_mm=spacing_mm,
        noise=noise,
        seed=seed,
    )


@dataclass(frozen=True)
class PlanarImages:
    """Anterior and posterior whole-body images (counts), shape (n_z, n) each."""

    anterior: FloatArray
    posterior: FloatArray
    acquisition_time_s: float


def planar_images(
    activity_mbq: FloatArray,
    mu_per_cm: FloatArray | None,
    spacing_mm: tuple[float, float, float],
    *,
    system: SpectSystem | None = None,
    acquisition_time_s: float = 600.0,
    noise: bool = True,
    seed: int | None = None,
) -> PlanarImages:
    """Conjugate anterior/posterior planar images with the same system model as SPECT.

    The posterior image is mirrored left–right so both images show the patient as seen from the front,
    as in the conjugate-view method (MIRD Pamphlet 16, Siegel et al. 1999, J Nucl Med 40:37S).

    Parameters
    ----------
    activity_mbq, mu_per_cm, spacing_mm, system, noise, seed
        As in :func:`simulate_spect`.
    acquisition_time_s : float
        Time of each planar image (equivalent to the scan-speed-dependent dwell time of a whole-body sweep).
    """
    system = system or default_system()
    if acquisition_time_s <= 0.0:
        raise InputError(f"acquisition_time_s must be > 0; got {acquisition_time_s}")
    projector = Projector(
        mu_per_cm,
        spacing_mm,
        angles_deg=[0.0, 180.0],
        radius_mm=system.radius_mm,
        collimator=system.collimator,
        counts_per_mbq=system.sensitivity_cps_per_mbq * acquisition_time_s,
        shape=activity_mbq.shape,
    )
    expected = np.maximum(projector.forward(activity_mbq), 0.0)
    counts = np.random.default_rng(seed).poisson(expected).astype(np.float64) if noise else expected
    return PlanarImages(
        anterior=counts[0], posterior=counts[1][:, ::-1].copy(), acquisition_time_s=acquisition_time_s
    )
