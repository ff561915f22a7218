"""Conversions between a :class:`Volume` affine and DICOM image-plane attributes.

DICOM image plane (PS3.3 C.7.6.2.1.1): the centre of pixel (column i, row j) of a plane lies at
``S + i·Δcolumn·X + j·Δrow·Y`` where S = ``ImagePositionPatient``, (X, Y) = ``ImageOrientationPatient``
(row direction, column direction) and (Δrow, Δcolumn) = ``PixelSpacing``. With the Volume array axis
order (slice, row, column) the affine columns are therefore (slice step, Y·Δrow, X·Δcolumn, S).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from theradose.errors import GeometryError
from theradose.imaging.volume import Volume

#: Largest |cos| between the two in-plane axes that still counts as orthogonal.
ORTHOGONALITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class PlaneGeometry:
    """Image-plane description of a volume: one entry per slice plus the shared in-plane vectors."""

    row_direction: npt.NDArray[np.float64]  # X: along a row (increasing column index)
    column_direction: npt.NDArray[np.float64]  # Y: down a column (increasing row index)
    row_spacing_mm: float  # Δrow: distance between adjacent rows (PixelSpacing[0])
    column_spacing_mm: float  # Δcolumn: distance between adjacent columns (PixelSpacing[1])
    positions_mm: npt.NDArray[np.float64]  # (n_slices, 3) ImagePositionPatient of each slice
    slice_step_mm: npt.NDArray[np.float64]  # (3,) vector from one slice to the next

    @property
    def normal(self) -> npt.NDArray[np.float64]:
        """Unit normal X × Y of the image planes."""
        n = np.cross(self.row_direction, self.column_direction)
        return np.asarray(n / np.linalg.norm(n), dtype=np.float64)

    @property
    def slice_spacing_mm(self) -> float:
        """Distance between adjacent planes measured along the normal."""
        return float(abs(np.dot(self.slice_step_mm, self.normal)))

    @property
    def orientation(self) -> list[float]:
        """ImageOrientationPatient (X then Y), six direction cosines."""
        return [float(v) for v in (*self.row_direction, *self.column_direction)]


def plane_geometry(volume: Volume) -> PlaneGeometry:
    """Image-plane attributes of every slice of ``volume``.

    Raises
    ------
    GeometryError
        If the in-plane axes (array axes 1 and 2) are not orthogonal: DICOM image planes cannot carry a
        sheared pixel grid.
    """
    affine = volume.affine
    y_step = affine[:3, 1]
    x_step = affine[:3, 2]
    row_spacing = float(np.linalg.norm(y_step))
    column_spacing = float(np.linalg.norm(x_step))
    x_dir = x_step / column_spacing
    y_dir = y_step / row_spacing
    if abs(float(np.dot(x_dir, y_dir))) > ORTHOGONALITY_TOLERANCE:
        raise GeometryError(
            "volume row and column axes are not orthogonal (cos = "
            f"{float(np.dot(x_dir, y_dir)):.2e}): resample onto an orthogonal grid before writing DICOM"
        )
    n = volume.shape[0]
    step = affine[:3, 0].copy()
    positions = affine[:3, 3][None, :] + np.arange(n, dtype=np.float64)[:, None] * step[None, :]
    return PlaneGeometry(x_dir, y_dir, row_spacing, column_spacing, positions, step)


def affine_from_planes(
    orientation: npt.ArrayLike,
    pixel_spacing_mm: npt.ArrayLike,
    first_position_mm: npt.ArrayLike,
    slice_step_mm: npt.ArrayLike,
) -> npt.NDArray[np.float64]:
    """Volume affine from ImageOrientationPatient, PixelSpacing, the first slice position and the step.

    Parameters
    ----------
    orientation : array_like, shape (6,)
        Row direction X then column direction Y (direction cosines, LPS).
    pixel_spacing_mm : array_like, shape (2,)
        (Δrow, Δcolumn) in mm, as DICOM PixelSpacing.
    first_position_mm : array_like, shape (3,)
        ImagePositionPatient of slice 0.
    slice_step_mm : array_like, shape (3,)
        Vector from slice k to slice k+1 in mm.
    """
    iop = np.asarray(orientation, dtype=np.float64)
    x_dir = iop[:3] / np.linalg.norm(iop[:3])
    y_dir = iop[3:] / np.linalg.norm(iop[3:])
    spacing = np.asarray(pixel_spacing_mm, dtype=np.float64)
    affine = np.eye(4)
    affine[:3, 0] = np.asarray(slice_step_mm, dtype=np.float64)
    affine[:3, 1] = y_dir * spacing[0]
    affine[:3, 2] = x_dir * spacing[1]
    affine[:3, 3] = np.asarray(first_position_mm, dtype=np.float64)
    return affine


def normalised_for_stack(volume: Volume) -> Volume:
    """The same image with slices ordered along +normal (X × Y), as a multi-frame NM stack needs.

    Multi-frame objects without per-frame positions (NM, RT Dose) place frame k at
    ``S + k·spacing·(X × Y)``. A volume whose slice axis points the other way is flipped (array reversed
    along axis 0, origin moved to the last slice); voxel positions are unchanged.

    Raises
    ------
    GeometryError
        If the slice axis is not perpendicular to the image planes (gantry tilt).
    """
    geometry = plane_geometry(volume)
    step = geometry.slice_step_mm
    along = float(np.dot(step, geometry.normal))
    off_axis = float(np.linalg.norm(step - along * geometry.normal))
    if volume.shape[0] > 1 and off_axis > 1e-3 * max(abs(along), 1e-12):
        raise GeometryError(
            "volume slice axis is not perpendicular to its image planes (tilted stack): "
            "resample it onto a perpendicular grid before writing a multi-frame object"
        )
    if along >= 0:
        return volume
    affine = volume.affine.copy()
    affine[:3, 3] = affine[:3, 3] + (volume.shape[0] - 1) * affine[:3, 0]
    affine[:3, 0] = -affine[:3, 0]
    return Volume(
        np.ascontiguousarray(volume.array[::-1]),
        affine,
        volume.unit,
        frame_uid=volume.frame_uid,
        acquisition_datetime=volume.acquisition_datetime,
    )


__all__ = ["PlaneGeometry", "affine_from_planes", "normalised_for_stack", "plane_geometry"]
