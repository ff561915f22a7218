"""Effective resolution of a site's reconstruction from its NEMA IEC body phantom (for the model-based
partial-volume correction, :mod:`theradose.imaging.pvc`).

For each fill (sphere-to-background ratio) the spheres are located (given centres, or
:func:`theradose.qa.spect.locate_iec_spheres`), their background-free recovery measured and the
recovery-matched Gaussian FWHM found (:func:`theradose.imaging.pvc.resolution.measure_spheres`); the
fills together give an :class:`~theradose.imaging.pvc.resolution.EffectiveResolution`. The image noise
(standard deviation of background voxels away from the spheres) sets the weight of each sphere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError
from theradose.imaging.pvc.resolution import (
    EffectiveResolution,
    SphereMeasurement,
    effective_resolution,
    measure_spheres,
)
from theradose.imaging.volume import Volume

FloatArray = npt.NDArray[np.float64]

#: Background voxels for the noise estimate lie farther than this from every sphere centre (mm).
NOISE_CLEARANCE_MM = 40.0


@dataclass(frozen=True)
class IecFill:
    """One IEC acquisition: the quantitative image, the fill concentrations at the acquisition and,
    optionally, the sphere centres (LPS mm, in the order of the diameters)."""

    image: Volume
    sphere_bq_per_ml: float
    background_bq_per_ml: float
    centres_mm: Sequence[Sequence[float]] | None = None


def measure_fill(fill: IecFill) -> list[SphereMeasurement]:
    """Recovery and recovery-matched FWHM of the six spheres of one fill."""
    from theradose.qa.spect import iec_geometry, locate_iec_spheres

    image = fill.image
    if image.unit != "Bq/mL":
        raise InputError(f"the IEC image must be in Bq/mL; got {image.unit!r}: calibrate it first")
    if not fill.sphere_bq_per_ml > fill.background_bq_per_ml > 0:
        raise InputError(
            f"sphere concentration {fill.sphere_bq_per_ml} must exceed the background "
            f"{fill.background_bq_per_ml} > 0"
        )
    geometry = iec_geometry()
    centres = (
        [np.asarray(c, dtype=np.float64) for c in fill.centres_mm]
        if fill.centres_mm is not None
        else locate_iec_spheres(image, geometry)
    )
    inverse = np.linalg.inv(np.asarray(image.affine, dtype=np.float64))
    centres_vox = [(inverse @ np.array([*c, 1.0]))[:3] for c in centres]
    values = np.asarray(image.array, dtype=np.float64)
    index = np.indices(values.shape).reshape(3, -1).T.astype(np.float64)
    positions = index @ np.asarray(image.affine)[:3, :3].T + np.asarray(image.affine)[:3, 3]
    far = np.ones(values.size, dtype=bool)
    for c in centres:
        far &= np.linalg.norm(positions - np.asarray(c), axis=1) > NOISE_CLEARANCE_MM
    flat = values.ravel()
    background = far & (flat > 0.5 * fill.background_bq_per_ml) & (flat < 2.0 * fill.background_bq_per_ml)
    return measure_spheres(
        values,
        image.spacing_mm,
        centres_voxel=centres_vox,
        diameters_mm=geometry.sphere_diameters_mm,
        sphere_bq_per_ml=fill.sphere_bq_per_ml,
        background_bq_per_ml=fill.background_bq_per_ml,
        background_mask=background.reshape(values.shape),
    )


def resolution_from_iec(fills: Sequence[IecFill], *, source: str = "") -> EffectiveResolution:
    """Effective resolution from one or more IEC fills (module docstring)."""
    if not fills:
        raise InputError("give at least one IEC phantom acquisition")
    measurements: list[SphereMeasurement] = []
    for fill in fills:
        measurements += measure_fill(fill)
    return effective_resolution(measurements, source=source)
