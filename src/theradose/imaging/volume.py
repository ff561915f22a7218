"""A 3-D image with its geometry: :class:`Volume`.

Array axis order
----------------
The array of every :class:`Volume` has exactly three axes. For data derived from DICOM (and everything
theradose builds itself) the order is **(slice, row, column) = (k, j, i)**: ``array[k, j, i]`` is the
pixel in column ``i`` and row ``j`` of the ``k``-th image plane. This is the order of
``SimpleITK.GetArrayFromImage`` and of a plain stack of DICOM ``PixelData`` frames.

The geometry is carried by :attr:`Volume.affine`, a 4×4 matrix that maps an index vector written **in the
array axis order** to the DICOM patient coordinate system (LPS: x towards the patient's left, y towards
posterior, z towards head), in millimetres::

    [x_mm, y_mm, z_mm, 1]ᵀ = affine @ [index0, index1, index2, 1]ᵀ

so column ``a`` of ``affine[:3, :3]`` is the step in millimetres taken by one voxel along array axis ``a``,
and ``affine[:3, 3]`` is the centre of voxel ``(0, 0, 0)``. For an image plane described by DICOM
``ImagePositionPatient`` S, ``ImageOrientationPatient`` (X, Y) and ``PixelSpacing`` (Δrow, Δcolumn)
(DICOM PS3.3 C.7.6.2.1.1), the columns are ``(slice step vector, Y·Δrow, X·Δcolumn, S)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from theradose.errors import GeometryError, InputError
from theradose.units import mm3_to_ml

#: Number of array axes of every volume.
NDIM = 3
#: Names of the array axes, in order (see the module docstring).
AXIS_ORDER: tuple[str, str, str] = ("slice", "row", "column")

Unit = Literal["Bq/mL", "HU", "g/mL", "Gy", "Gy/h", "MBq·h", "MBq", "label", "counts", "1/cm", "SUV", "1"]
#: The units a :class:`Volume` may carry.
UNITS: tuple[str, ...] = get_args(Unit)

#: Relative tolerance used to decide that two grids are the same.
_GRID_ATOL_MM = 1.0e-3


def _as_affine(affine: npt.ArrayLike) -> npt.NDArray[np.float64]:
    try:
        matrix = np.array(affine, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GeometryError(f"affine must be a 4x4 numeric matrix; got {affine!r}: pass a 4x4 array") from exc
    if matrix.shape != (4, 4):
        raise GeometryError(
            f"affine must have shape (4, 4); got {matrix.shape}: pass a 4x4 homogeneous matrix"
        )
    if not np.all(np.isfinite(matrix)):
        raise GeometryError("affine contains NaN or infinite values: pass a finite 4x4 matrix")
    if not np.allclose(matrix[3], (0.0, 0.0, 0.0, 1.0), atol=1e-12):
        raise GeometryError(
            f"affine last row must be [0, 0, 0, 1]; got {matrix[3].tolist()}: pass a homogeneous affine"
        )
    step = matrix[:3, :3]
    spacing = np.linalg.norm(step, axis=0)
    if np.any(spacing <= 0.0):
        raise GeometryError(
            f"affine has a zero-length voxel step along array axis {int(np.argmin(spacing))}: "
            "every voxel spacing must be positive"
        )
    # Volume of the voxel parallelepiped relative to a box with the same edge lengths; tiny means
    # (almost) coplanar axes, i.e. a singular geometry.
    if abs(np.linalg.det(step)) <= 1e-6 * float(np.prod(spacing)):
        raise GeometryError("affine axes are (nearly) coplanar: the 3x3 part must be invertible")
    matrix.flags.writeable = False
    return matrix


def _as_array(array: npt.ArrayLike, unit: str) -> npt.NDArray[Any]:
    values = np.asarray(array)
    if values.ndim != NDIM:
        raise GeometryError(
            f"array must have {NDIM} axes {AXIS_ORDER}; got shape {values.shape}: "
            "add a slice axis (array[np.newaxis]) or select one volume"
        )
    if any(n == 0 for n in values.shape):
        raise GeometryError(f"array must not be empty; got shape {values.shape}")
    kind = values.dtype.kind
    if kind not in "biuf":
        raise InputError(f"array dtype must be boolean, integer or floating; got {values.dtype}: convert it")
    if unit == "label" and kind not in "biu":
        raise InputError(
            f"a 'label' volume needs an integer or boolean array; got {values.dtype}: "
            "round and cast it (array.astype(np.int32))"
        )
    view = values.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D image: array, geometry (LPS mm), unit, frame of reference and acquisition time.

    Parameters
    ----------
    array : ndarray, shape (n0, n1, n2)
        Voxel values in axis order (slice, row, column) = (k, j, i) for DICOM-derived data. Stored as a
        read-only view; use :meth:`with_array` to make a volume with new values.
    affine : ndarray, shape (4, 4)
        Maps ``(index0, index1, index2, 1)`` in array axis order to LPS millimetres.
    unit : str
        One of :data:`UNITS`. ``"label"`` requires an integer or boolean array.
    frame_uid : str or None
        DICOM Frame of Reference UID; volumes in the same frame share one patient coordinate system.
    acquisition_datetime : datetime or None
        Acquisition (reference) time of the data, timezone-aware when known.

    Raises
    ------
    GeometryError
        If the array is not 3-D or the affine is not a finite, invertible, homogeneous 4×4 matrix.
    InputError
        If the unit is unknown or the dtype does not fit the unit.
    """

    array: npt.NDArray[Any]
    affine: npt.NDArray[np.float64]
    unit: Unit
    frame_uid: str | None = None
    acquisition_datetime: datetime | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise InputError(f"unit must be one of {', '.join(UNITS)}; got {self.unit!r}")
        object.__setattr__(self, "array", _as_array(self.array, self.unit))
        object.__setattr__(self, "affine", _as_affine(self.affine))
        if self.frame_uid is not None and (not isinstance(self.frame_uid, str) or not self.frame_uid):
            raise InputError(f"frame_uid must be a non-empty string or None; got {self.frame_uid!r}")
        if self.acquisition_datetime is not None and not isinstance(self.acquisition_datetime, datetime):
            raise InputError(
                "acquisition_datetime must be a datetime or None; "
                f"got {type(self.acquisition_datetime).__name__}"
            )
        assert self.array.ndim == NDIM, "Volume arrays are (slice, row, column)"

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_spacing(
        cls,
        array: npt.ArrayLike,
        spacing_mm: Sequence[float],
        origin_mm: Sequence[float] = (0.0, 0.0, 0.0),
        *,
        unit: Unit,
        frame_uid: str | None = None,
        acquisition_datetime: datetime | None = None,
    ) -> Volume:
        """Make an axis-aligned volume in the standard axial orientation.

        Array axis 0 (slice) runs along +z (towards head), axis 1 (row) along +y (posterior) and axis 2
        (column) along +x (patient's left): the geometry of an axial DICOM series with
        ``ImageOrientationPatient = [1, 0, 0, 0, 1, 0]`` and increasing slice position.

        Parameters
        ----------
        array : array_like, shape (n0, n1, n2)
            Voxel values in (slice, row, column) order.
        spacing_mm : sequence of 3 floats
            Voxel spacing in mm **per array axis**: (slice spacing, row spacing, column spacing).
        origin_mm : sequence of 3 floats
            LPS position (x, y, z) in mm of the centre of voxel (0, 0, 0).
        unit, frame_uid, acquisition_datetime
            As for :class:`Volume`.
        """
        spacing = np.asarray(spacing_mm, dtype=np.float64)
        origin = np.asarray(origin_mm, dtype=np.float64)
        if spacing.shape != (3,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
            raise GeometryError(
                f"spacing_mm must be 3 positive finite numbers (slice, row, column); got {list(spacing_mm)}"
            )
        if origin.shape != (3,) or not np.all(np.isfinite(origin)):
            raise GeometryError(f"origin_mm must be 3 finite numbers (x, y, z) in mm; got {list(origin_mm)}")
        affine = np.eye(4)
        affine[:3, :3] = 0.0
        affine[2, 0] = spacing[0]  # slice axis -> z
        affine[1, 1] = spacing[1]  # row axis -> y
        affine[0, 2] = spacing[2]  # column axis -> x
        affine[:3, 3] = origin
        return cls(
            np.asarray(array),
            affine,
            unit,
            frame_uid=frame_uid,
            acquisition_datetime=acquisition_datetime,
        )

    def with_array(self, array: npt.ArrayLike, *, unit: Unit | None = None) -> Volume:
        """A volume on the same grid (affine, frame, time) with new values and optionally a new unit.

        Raises
        ------
        GeometryError
            If ``array`` does not have this volume's shape.
        """
        values = np.asarray(array)
        if values.shape != self.shape:
            raise GeometryError(
                f"array shape {values.shape} does not match the volume shape {self.shape}: "
                "resample it onto this grid first"
            )
        return Volume(
            values,
            self.affine,
            self.unit if unit is None else unit,
            frame_uid=self.frame_uid,
            acquisition_datetime=self.acquisition_datetime,
        )

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape (n_slices, n_rows, n_columns)."""
        n0, n1, n2 = self.array.shape
        return (int(n0), int(n1), int(n2))

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel spacing in mm per array axis (slice, row, column)."""
        s = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(s[0]), float(s[1]), float(s[2]))

    @property
    def origin_mm(self) -> tuple[float, float, float]:
        """LPS position (x, y, z) in mm of the centre of voxel (0, 0, 0)."""
        o = self.affine[:3, 3]
        return (float(o[0]), float(o[1]), float(o[2]))

    @property
    def direction(self) -> npt.NDArray[np.float64]:
        """Unit direction vectors (LPS) of the array axes as the columns of a 3×3 matrix."""
        step = self.affine[:3, :3]
        return np.asarray(step / np.linalg.norm(step, axis=0), dtype=np.float64)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL: |det(affine[:3, :3])| mm³ converted with :func:`mm3_to_ml`."""
        return float(mm3_to_ml(abs(float(np.linalg.det(self.affine[:3, :3])))))

    @property
    def n_voxels(self) -> int:
        """Number of voxels."""
        return int(self.array.size)

    def world_coordinates_mm(self, indices: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """LPS coordinates in mm of (possibly fractional) array indices.

        Parameters
        ----------
        indices : array_like, shape (..., 3)
            Indices in array axis order (slice, row, column).

        Returns
        -------
        ndarray, shape (..., 3)
            (x, y, z) in mm.
        """
        idx = np.asarray(indices, dtype=np.float64)
        if idx.shape[-1:] != (3,):
            raise GeometryError(f"indices must have a last axis of length 3; got shape {idx.shape}")
        return np.asarray(idx @ self.affine[:3, :3].T + self.affine[:3, 3], dtype=np.float64)

    def index_of(self, point_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Fractional array indices (slice, row, column) of LPS points.

        Parameters
        ----------
        point_mm : array_like, shape (..., 3)
            (x, y, z) in mm.

        Returns
        -------
        ndarray, shape (..., 3)
            Continuous indices in array axis order; round them (``np.rint``) for the nearest voxel.
            Points outside the volume give indices outside ``[0, n)``.
        """
        pts = np.asarray(point_mm, dtype=np.float64)
        if pts.shape[-1:] != (3,):
            raise GeometryError(f"point_mm must have a last axis of length 3; got shape {pts.shape}")
        inverse = np.linalg.inv(self.affine)
        return np.asarray(pts @ inverse[:3, :3].T + inverse[:3, 3], dtype=np.float64)

    def same_grid(self, other: Volume, *, atol_mm: float = _GRID_ATOL_MM) -> bool:
        """True if ``other`` has the same shape and its voxel centres lie within ``atol_mm`` of these."""
        if self.shape != other.shape:
            return False
        # Compare the far corner too so that a small direction error over a large volume is caught.
        corner = np.array(self.shape, dtype=np.float64) - 1.0
        points = np.array([[0.0, 0.0, 0.0], corner])
        return bool(
            np.allclose(
                self.world_coordinates_mm(points), other.world_coordinates_mm(points), atol=atol_mm, rtol=0
            )
            and np.allclose(self.affine[:3, :3], other.affine[:3, :3], atol=atol_mm, rtol=0)
        )

    def crop(self, start: Sequence[int], stop: Sequence[int]) -> Volume:
        """The sub-volume ``array[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]]`` with its geometry.

        Raises
        ------
        GeometryError
            If the box is empty or leaves the volume.
        """
        lo = [int(v) for v in start]
        hi = [int(v) for v in stop]
        if len(lo) != 3 or len(hi) != 3:
            raise GeometryError(
                f"start and stop need 3 indices (slice, row, column); got {start!r}, {stop!r}"
            )
        for axis, (a, b, n) in enumerate(zip(lo, hi, self.shape, strict=True)):
            if not 0 <= a < b <= n:
                raise GeometryError(
                    f"crop box on axis {axis} must satisfy 0 <= start < stop <= {n}; got start={a}, stop={b}"
                )
        affine = self.affine.copy()
        affine[:3, 3] = self.world_coordinates_mm(np.array(lo, dtype=np.float64))
        return Volume(
            np.array(self.array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], copy=True),
            affine,
            self.unit,
            frame_uid=self.frame_uid,
            acquisition_datetime=self.acquisition_datetime,
        )

    def __repr__(self) -> str:
        return (
            f"Volume(shape={self.shape}, spacing_mm={tuple(round(s, 4) for s in self.spacing_mm)}, "
            f"origin_mm={tuple(round(o, 3) for o in self.origin_mm)}, unit={self.unit!r}, "
            f"dtype={self.array.dtype}, frame_uid={self.frame_uid!r}, "
            f"acquisition_datetime={self.acquisition_datetime!r})"
        )


__all__ = ["AXIS_ORDER", "NDIM", "UNITS", "Unit", "Volume"]
