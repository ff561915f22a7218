"""Imaging of the trial: each site's calibration phantoms and each patient at each site.

A site's camera (:class:`~theradose.phantoms.trial.sites.Site`) acquires with the shared projector
(:func:`theradose.phantoms.spect.simulate_spect`: attenuation, distance-dependent collimator response,
optional scatter, Poisson noise) and reconstructs with OSEM (:func:`theradose.phantoms.osem.reconstruct`,
attenuation correction and resolution modelling with the site's own collimator model; scatter corrected
when simulated). The reconstruction is exported as a camera does before calibration, in counts
(activity × sensitivity × scan time); the site's calibration factor is measured on its own uniform cylinder
(:func:`calibrate_site`) and applied as the site's DICOM style prescribes. Each site also fills the NEMA
IEC body phantom at two sphere-to-background ratios (10:1 and 40:1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError
from theradose.phantoms.osem import reconstruct
from theradose.phantoms.physical import PhysicalPhantom, iec_body_phantom, uniform_cylinder
from theradose.phantoms.spect import make_projector, mu_map_from_hu, simulate_spect
from theradose.phantoms.trial.anatomy import Pose, TrialGrid, TrialPatient, Voxelised, grid_for, voxelise
from theradose.phantoms.trial.kinetics import TrialKinetics, part_concentrations
from theradose.phantoms.trial.sites import Site, acquisition_duration_s

FloatArray = npt.NDArray[np.float64]

#: IEC fills of every site (sphere-to-background): the NEMA NU 2 / EARL 10:1 and a high-contrast 40:1.
IEC_CONTRASTS = (10.0, 40.0)
#: Activities (MBq) of the calibration phantoms at the acquisition.
CYLINDER_ACTIVITY_MBQ = 400.0
IEC_ACTIVITY_MBQ = 500.0
#: Margin (mm) around the cylinder in which the calibration counts are summed.
CALIBRATION_MARGIN_MM = 30.0
#: Standard deviation of the CT noise (HU) of the trial's low-dose CTs.
CT_NOISE_HU = 12.0
#: Transaxial matrix of every site (100 × 4.42-4.80 mm = 442-480 mm holds the widest trial patient).
MATRIX = 100


def reconstruct_at_site(
    activity_mbq: FloatArray, hu: FloatArray, spacing_mm: float, site: Site, *, seed: int
) -> FloatArray:
    """Acquire ``activity_mbq`` (MBq per voxel) with ``site``'s camera and reconstruct (MBq per voxel)."""
    mu = mu_map_from_hu(hu)
    spacing = (spacing_mm, spacing_mm, spacing_mm)
    system = site.system
    projector = make_projector(mu, spacing, system, shape=activity_mbq.shape)
    acquisition = simulate_spect(activity_mbq, mu, spacing, system=system, seed=seed, projector=projector)
    recon = reconstruct(
        acquisition,
        mu,
        iterations=site.iterations,
        subsets=site.subsets,
        projector=projector,
        scatter_correction="convolution" if system.scatter == "convolution" else "none",
    )
    return np.asarray(recon.activity_mbq, dtype=np.float64)


def counts_image(recon_mbq: FloatArray, site: Site) -> FloatArray:
    """The camera's uncalibrated reconstruction: activity × sensitivity × scan time (counts)."""
    return np.asarray(
        recon_mbq * site.system.sensitivity_cps_per_mbq * acquisition_duration_s(site), dtype=np.float64
    )


@dataclass(frozen=True)
class PhantomAcquisition:
    """A calibration phantom acquired at a site: the phantom (truth) and the counts reconstruction."""

    phantom: PhysicalPhantom
    counts: FloatArray
    activity_mbq: float


@dataclass(frozen=True)
class SiteCalibration:
    """A site's calibration: factor from the cylinder, IEC fills.

    Attributes
    ----------
    site : Site
    calibration_factor_cps_per_mbq : float
        Counts per second per MBq of the reconstructed cylinder (summed with a margin).
    cylinder : PhantomAcquisition
    iec : tuple of PhantomAcquisition
        One per :data:`IEC_CONTRASTS`.
    """

    site: Site
    calibration_factor_cps_per_mbq: float
    cylinder: PhantomAcquisition
    iec: tuple[PhantomAcquisition, ...]

    def to_bq_per_ml(self, counts: FloatArray) -> FloatArray:
        """Counts image → Bq/mL with this site's calibration factor."""
        voxel_ml = self.site.voxel_mm**3 / 1000.0
        t = acquisition_duration_s(self.site)
        return np.asarray(
            counts / (t * self.calibration_factor_cps_per_mbq) * 1.0e6 / voxel_ml, dtype=np.float64
        )


def _square(phantom: PhysicalPhantom) -> PhysicalPhantom:
    _nz, ny, nx = phantom.grid.shape
    if ny != nx:
        raise InputError("calibration phantoms need square slices")
    return phantom


def calibrate_site(
    site: Site, *, seed: int = 1, progress: Callable[[str], None] | None = None
) -> SiteCalibration:
    """Simulate the site's cylinder (calibration factor) and IEC fills (recovery, resolution)."""
    say = progress or (lambda _m: None)
    say(f"site {site.name}: cylinder")
    cyl = _square(uniform_cylinder(spacing_mm=site.voxel_mm, diameter_mm=200.0, length_mm=200.0))
    total = float(cyl.activity_mbq.sum())
    cyl_activity = cyl.activity_mbq * (CYLINDER_ACTIVITY_MBQ / total)
    recon = reconstruct_at_site(cyl_activity, cyl.hu.astype(np.float64), site.voxel_mm, site, seed=seed)
    counts = counts_image(recon, site)
    from scipy import ndimage

    margin = max(1, round(CALIBRATION_MARGIN_MM / site.voxel_mm))
    voi = ndimage.binary_dilation(cyl.labels > 0, iterations=margin)
    cf = float(counts[voi].sum()) / (acquisition_duration_s(site) * CYLINDER_ACTIVITY_MBQ)
    cylinder = PhantomAcquisition(cyl, counts, CYLINDER_ACTIVITY_MBQ)
    fills: list[PhantomAcquisition] = []
    for k, ratio in enumerate(IEC_CONTRASTS):
        say(f"site {site.name}: IEC {ratio:g}:1")
        ph = _square(
            iec_body_phantom(
                spacing_mm=site.voxel_mm, sphere_to_background=ratio, activity_mbq=IEC_ACTIVITY_MBQ
            )
        )
        rec = reconstruct_at_site(
            ph.activity_mbq, ph.hu.astype(np.float64), site.voxel_mm, site, seed=seed * 100 + k + 1
        )
        fills.append(PhantomAcquisition(ph, counts_image(rec, site), IEC_ACTIVITY_MBQ))
    return SiteCalibration(site, cf, cylinder, tuple(fills))


@dataclass(frozen=True)
class TimepointImage:
    """One time point of a patient at a site: the CT (HU, with noise) and the counts reconstruction."""

    time_h: float
    pose: Pose
    hu: npt.NDArray[np.float32]
    counts: FloatArray
    true_activity_mbq: float


@dataclass(frozen=True)
class PatientAtSite:
    """A patient imaged at a site.

    Attributes
    ----------
    grid : TrialGrid
    reference : Voxelised
        The patient in the reference pose (first time point): truth and segmentation.
    timepoints : tuple of TimepointImage
    """

    grid: TrialGrid
    reference: Voxelised
    timepoints: tuple[TimepointImage, ...]
    motion: Mapping[int, Pose] = field(default_factory=dict)


def activity_map_mbq(vox: Voxelised, concentrations_bq_per_ml: Mapping[str, float]) -> FloatArray:
    """Activity per voxel (MBq) from part concentrations (Bq/mL) and the partial-volume fractions."""
    return np.asarray(vox.map_of(concentrations_bq_per_ml) * vox.grid.voxel_ml / 1.0e6, dtype=np.float64)


def image_patient(
    patient: TrialPatient,
    kinetics: TrialKinetics,
    site: Site,
    *,
    times_h: Sequence[float],
    motion: Mapping[int, Pose] | None = None,
    seed: int,
    reference: Voxelised | None = None,
    progress: Callable[[str], None] | None = None,
) -> PatientAtSite:
    """Image ``patient`` at ``site`` at each time (with the poses of ``motion`` by time-point index)."""
    say = progress or (lambda _m: None)
    motion = dict(motion or {})
    if 0 in motion:
        raise InputError("the first time point is the reference pose: move a later one")
    grid = reference.grid if reference is not None else grid_for(patient, n=MATRIX, spacing_mm=site.voxel_mm)
    if reference is None:
        say(f"site {site.name}: voxelising patient {patient.seed}")
        reference = voxelise(patient, grid)
    rng = np.random.default_rng(seed)
    points: list[TimepointImage] = []
    for i, t in enumerate(times_h):
        pose = motion.get(i, Pose())
        vox = reference if pose.is_identity else voxelise(patient, grid, pose=pose)
        activity = activity_map_mbq(vox, part_concentrations(patient, kinetics, t))
        say(f"site {site.name}: patient {patient.seed} SPECT {t:g} h")
        recon = reconstruct_at_site(
            activity, vox.hu.astype(np.float64), site.voxel_mm, site, seed=seed * 1000 + i
        )
        hu = (vox.hu + rng.normal(0.0, CT_NOISE_HU, vox.hu.shape) * (vox.hu > -900)).astype(np.float32)
        points.append(TimepointImage(float(t), pose, hu, counts_image(recon, site), float(activity.sum())))
    return PatientAtSite(grid, reference, tuple(points), motion)


def motion_for(patient_seed: int, site_index: int) -> dict[int, Pose]:
    """The trial's motion plan: every third patient-site acquisition (by (seed + site) mod 3 == 1) has the
    patient shifted and turned at the third time point (6-14 mm, 2-4° about z and 1-2° about x)."""
    if (patient_seed + site_index) % 3 != 1:
        return {}
    rng = np.random.default_rng(30_000 + 10 * patient_seed + site_index)
    shift = tuple(float(v) for v in rng.uniform(-1.0, 1.0, 3) * np.array([8.0, 6.0, 10.0]))
    norm = math.sqrt(sum(v * v for v in shift))
    if norm < 6.0:
        shift = tuple(v * 6.0 / max(norm, 1e-6) for v in shift)
    return {
        2: Pose(
            rotation_z_deg=float(rng.choice([-1, 1]) * rng.uniform(2.0, 4.0)),
            rotation_x_deg=float(rng.choice([-1, 1]) * rng.uniform(1.0, 2.0)),
            shift_mm=(shift[0], shift[1], shift[2]),
        )
    }
