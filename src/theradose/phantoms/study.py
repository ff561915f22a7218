"""A virtual patient's serial SPECT/CT study with its truth.

:func:`simulate_patient_study` builds the anatomy (:mod:`~theradose.phantoms.anatomy`), samples the
kinetics (:mod:`~theradose.phantoms.kinetics`), computes the truth (TIA per voxel and region, absorbed
dose), and for each imaging time point simulates a SPECT acquisition (:mod:`~theradose.phantoms.spect`)
and reconstructs it with OSEM (:mod:`~theradose.phantoms.osem`) into Bq/mL — the images a clinic would
have. Writing it to disk as DICOM is done by :mod:`~theradose.io.phantoms`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from theradose.dosimetry.engines.registry import DoseEngine
from theradose.errors import InputError
from theradose.phantoms.anatomy import Anatomy, make_anatomy, make_grid, slices_to_cover_anatomy
from theradose.phantoms.kinetics import (
    PatientKinetics,
    RegionTruth,
    TruthDose,
    patient_kinetics,
    region_truth,
    truth_dose,
)
from theradose.phantoms.osem import Reconstruction, reconstruct
from theradose.phantoms.spect import (
    SpectSystem,
    default_system,
    make_projector,
    mu_map_from_hu,
    simulate_spect,
)

FloatArray = npt.NDArray[np.float64]

#: Margin (mm) between the body outline and the edge of the transaxial field of view.
FOV_MARGIN_MM = 20.0
#: Half-width (mm) of the reference trunk (anatomy module) — the widest part of the body.
_TRUNK_HALF_WIDTH_MM = 175.0


@dataclass(frozen=True)
class TimePoint:
    """One imaging time point: truth activity, acquisition counts and the reconstructed image."""

    time_h: float
    true_activity_mbq: FloatArray
    total_counts: float
    reconstruction: Reconstruction


@dataclass(frozen=True)
class PatientStudy:
    """A simulated serial SPECT/CT study and its truth.

    Attributes
    ----------
    anatomy : Anatomy
    kinetics : PatientKinetics
    mu_per_cm : ndarray
        Attenuation map at 208 keV derived from the CT.
    timepoints : tuple of TimePoint
    tia_map_mbq_h : ndarray
        Truth TIA per voxel.
    dose : TruthDose
        Truth absorbed dose.
    regions : tuple of RegionTruth
        Per-region mass, TIA and dose.
    system : SpectSystem
    seed : int
    """

    anatomy: Anatomy
    kinetics: PatientKinetics
    mu_per_cm: FloatArray
    timepoints: tuple[TimePoint, ...]
    tia_map_mbq_h: FloatArray
    dose: TruthDose
    regions: tuple[RegionTruth, ...]
    system: SpectSystem
    seed: int
    iterations: int
    subsets: int


def minimum_voxel_mm(grid: int, *, body_scale: float = 1.16) -> float:
    """Smallest voxel size (mm) at which ``grid`` columns hold the widest body of the population."""
    return 2.0 * (_TRUNK_HALF_WIDTH_MM * body_scale + FOV_MARGIN_MM) / grid


def simulate_patient_study(
    *,
    tracer: str = "psma",
    seed: int = 1,
    grid: int = 128,
    voxel_mm: float = 4.8,
    slices: int | None = None,
    timepoints_h: Sequence[float] = (4.0, 24.0, 96.0, 168.0),
    activity_mbq: float = 7400.0,
    tumours: int = 3,
    system: SpectSystem | None = None,
    iterations: int = 4,
    subsets: int = 10,
    noise: bool = True,
    dose_engine: DoseEngine | str = DoseEngine.VSV,
    progress: Callable[[str], None] | None = None,
) -> PatientStudy:
    """Simulate one virtual patient's serial quantitative SPECT/CT study.

    Parameters
    ----------
    tracer : str
        Kinetics library of the radiopharmaceutical
        (:func:`~theradose.phantoms.kinetics.available_tracers`, e.g. 177Lu-PSMA-617 or 177Lu-DOTATATE).
    seed : int
        Seeds anatomy size, kinetics variability, tumour placement and Poisson noise.
    grid : int
        Transaxial matrix (columns = rows).
    voxel_mm : float
        Isotropic voxel size (CT and SPECT share the grid).
    slices : int or None
        Number of slices; default covers the whole anatomy (pelvis to vertex), like a stitched
        multi-bed acquisition.
    timepoints_h : sequence of float
        Imaging times after injection (h).
    activity_mbq : float
        Injected activity.
    tumours : int
        Number of tumours.
    system : SpectSystem or None
        Camera and protocol (default :func:`~theradose.phantoms.spect.default_system`). With
        ``system.scatter == "convolution"`` the projections contain scatter and the reconstruction
        corrects it with the convolution estimate from the measured projections.
    iterations, subsets : int
        OSEM settings (attenuation correction and resolution modelling on).
    noise : bool
        Poisson noise in the projections.
    dose_engine : DoseEngine or str
        Method of the truth dose (see :func:`~theradose.phantoms.kinetics.truth_dose`).
    progress : callable or None
        Called with a short message before each stage.
    """
    say = progress or (lambda _msg: None)
    if grid < 8:
        raise InputError(f"grid must be >= 8; got {grid}")
    if not math.isfinite(voxel_mm) or voxel_mm <= 0.0:
        raise InputError(f"voxel_mm must be > 0; got {voxel_mm}")
    if voxel_mm < minimum_voxel_mm(grid):
        raise InputError(
            f"field of view {grid} × {voxel_mm} mm = {grid * voxel_mm:.0f} mm is narrower than the body plus "
            f"margins; use voxel_mm >= {minimum_voxel_mm(grid):.2f} or a larger grid"
        )
    times = [float(t) for t in timepoints_h]
    if not times or any(not math.isfinite(t) or t <= 0.0 for t in times):
        raise InputError(f"timepoints_h must be positive hours after injection; got {list(timepoints_h)}")
    if sorted(set(times)) != times:
        raise InputError(f"timepoints_h must be strictly increasing; got {times}: sort them")
    system = system or default_system()
    n_slices = slices if slices is not None else slices_to_cover_anatomy(voxel_mm)
    say("anatomy")
    anatomy = make_anatomy(make_grid((n_slices, grid, grid), voxel_mm), seed=seed, tumours=tumours)
    say("kinetics and truth")
    kinetics = patient_kinetics(anatomy, tracer, injected_activity_mbq=activity_mbq, seed=seed)
    tia = kinetics.tia_map_mbq_h()
    say(f"truth dose ({dose_engine})")
    dose = truth_dose(anatomy, tia, nuclide=kinetics.nuclide, engine=dose_engine, seed=seed)
    regions = tuple(region_truth(anatomy, tia, dose.dose_gy))
    mu = mu_map_from_hu(anatomy.hu)
    spacing = anatomy.grid.spacing_mm
    projector = make_projector(mu, spacing, system, shape=anatomy.grid.shape)
    points: list[TimePoint] = []
    for index, time_h in enumerate(times):
        say(f"SPECT {time_h:g} h")
        activity = kinetics.activity_map_mbq(time_h)
        acquisition = simulate_spect(
            activity,
            mu,
            spacing,
            system=system,
            noise=noise,
            seed=None if not noise else seed * 1000 + index,
            projector=projector,
        )
        recon = reconstruct(
            acquisition,
            mu,
            iterations=iterations,
            subsets=subsets,
            projector=projector,
            scatter_correction="convolution" if system.scatter == "convolution" else "none",
        )
        points.append(TimePoint(time_h, activity, float(acquisition.counts.sum()), recon))
    return PatientStudy(
        anatomy=anatomy,
        kinetics=kinetics,
        mu_per_cm=mu,
        timepoints=tuple(points),
        tia_map_mbq_h=tia,
        dose=dose,
        regions=regions,
        system=system,
        seed=seed,
        iterations=iterations,
        subsets=subsets,
    )
