"""Physical QA phantoms in software: NEMA IEC body phantom and a uniform cylinder.

NEMA IEC body phantom (NEMA NU 2-2012 section 7.3 and IEC 61675-1; the "IEC body phantom"): interior
cross-section made of a half-circle of radius 147 mm (anterior) joined to a 294 mm wide base with rounded
corners of radius 77 mm (posterior), interior length 180 mm; a lung insert of 51 mm outer diameter on the
axis (density ~0.3 g/mL, no activity); six fillable spheres of inner diameters 10, 13, 17, 22, 28 and
37 mm with centres on a circle of radius 57.2 mm around the axis, in a transverse plane 70 mm from the
end wall. Plastic walls are neglected (they are thin, ~1 mm, and their attenuation small at 208 keV).

The truth activity of the spheres uses the exact fraction of each voxel inside the sphere (supersampled
``supersampling``³ points per voxel), so recovery coefficients refer to the true sphere volume.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError
from theradose.phantoms.anatomy import Grid, make_grid
from theradose.units import bq_to_mbq, mbq_to_bq, mm3_to_ml

FloatArray = npt.NDArray[np.float64]

#: Inner sphere diameters of the IEC body phantom (mm), NEMA NU 2-2012 section 7.3.
IEC_SPHERE_DIAMETERS_MM: tuple[float, ...] = (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)
#: Radius of the circle of sphere centres (mm).
IEC_SPHERE_RING_RADIUS_MM = 57.2
#: Interior length of the phantom (mm) and distance of the sphere plane from the end wall (mm).
IEC_INTERIOR_LENGTH_MM = 180.0
IEC_SPHERE_PLANE_FROM_END_MM = 70.0
#: Half-circle radius, corner radius of the base (mm).
IEC_HALF_CIRCLE_RADIUS_MM = 147.0
IEC_CORNER_RADIUS_MM = 77.0
#: Lung insert outer diameter (mm).
IEC_LUNG_INSERT_DIAMETER_MM = 51.0

#: CT numbers: water-filled compartments 0 HU (definition), lung insert ~ −700 HU (0.3 g/mL).
_HU_WATER = 0.0
_HU_LUNG_INSERT = -700.0
_HU_AIR = -1000.0

LABEL_BACKGROUND = 1
LABEL_LUNG_INSERT = 2
#: Sphere i (0-based, in IEC_SPHERE_DIAMETERS_MM order) has label LABEL_SPHERE_OFFSET + i.
LABEL_SPHERE_OFFSET = 10


@dataclass(frozen=True)
class PhysicalPhantom:
    """A voxelised physical phantom with its truth.

    Attributes
    ----------
    name : str
        ``"nema_iec_body"`` or ``"uniform_cylinder"``.
    grid : Grid
        Geometry.
    labels : ndarray of int16
        0 air, 1 background (water), 2 lung insert, 10+i sphere i.
    hu : ndarray of float32
        CT numbers.
    concentration_bq_per_ml : ndarray of float64
        True activity concentration per voxel (partial-volume exact for spheres).
    label_table : dict
        Name → label.
    sphere_diameters_mm : tuple of float
        Inner diameters (empty for the cylinder).
    sphere_centres_mm : tuple of (x, y, z)
        LPS centres.
    sphere_concentration_bq_per_ml, background_concentration_bq_per_ml : float
        Filling concentrations.
    """

    name: str
    grid: Grid
    labels: npt.NDArray[np.int16]
    hu: npt.NDArray[np.float32]
    concentration_bq_per_ml: FloatArray
    label_table: Mapping[str, int]
    sphere_diameters_mm: tuple[float, ...]
    sphere_centres_mm: tuple[tuple[float, float, float], ...]
    sphere_concentration_bq_per_ml: float
    background_concentration_bq_per_ml: float

    @property
    def activity_mbq(self) -> FloatArray:
        """True activity per voxel (MBq)."""
        return np.asarray(
            bq_to_mbq(self.concentration_bq_per_ml * self.grid.voxel_volume_ml), dtype=np.float64
        )

    def sphere_mask(self, index: int) -> npt.NDArray[np.bool_]:
        """Voxels whose centre is inside sphere ``index``."""
        return np.asarray(self.labels == LABEL_SPHERE_OFFSET + index)


def _iec_interior(x: FloatArray, y: FloatArray) -> npt.NDArray[np.bool_]:
    """Cross-section of the IEC body phantom interior (axis at the origin, y posterior)."""
    r_half = IEC_HALF_CIRCLE_RADIUS_MM
    r_corner = IEC_CORNER_RADIUS_MM
    anterior = (y <= 0.0) & (x * x + y * y <= r_half * r_half)
    yy = np.clip(y, 0.0, r_corner)
    half_width = (r_half - r_corner) + np.sqrt(np.maximum(r_corner * r_corner - yy * yy, 0.0))
    posterior = (y > 0.0) & (y <= r_corner) & (np.abs(x) <= half_width)
    return np.asarray(anterior | posterior)


def _sphere_fraction(
    grid: Grid, centre: tuple[float, float, float], radius_mm: float, supersampling: int
) -> tuple[tuple[slice, slice, slice], FloatArray]:
    """Fraction of each voxel inside a sphere, on the sphere's bounding box."""
    x_mm, y_mm, z_mm = grid.axes_mm()
    sz, sy, sx = grid.spacing_mm

    def box(axis: FloatArray, c: float, s: float) -> slice:
        idx = np.nonzero(np.abs(axis - c) <= radius_mm + s)[0]
        return slice(int(idx[0]), int(idx[-1]) + 1) if idx.size else slice(0, 0)

    bx, by, bz = box(x_mm, centre[0], sx), box(y_mm, centre[1], sy), box(z_mm, centre[2], sz)
    offsets = (np.arange(supersampling) + 0.5) / supersampling - 0.5
    xs = (x_mm[bx][:, None] + offsets[None, :] * sx).ravel()
    ys = (y_mm[by][:, None] + offsets[None, :] * sy).ravel()
    zs = (z_mm[bz][:, None] + offsets[None, :] * sz).ravel()
    inside = (
        (xs[None, None, :] - centre[0]) ** 2
        + (ys[None, :, None] - centre[1]) ** 2
        + (zs[:, None, None] - centre[2]) ** 2
        <= radius_mm * radius_mm
    ).astype(np.float64)
    m = supersampling
    nz, ny, nx = inside.shape[0] // m, inside.shape[1] // m, inside.shape[2] // m
    fraction = inside.reshape(nz, m, ny, m, nx, m).mean(axis=(1, 3, 5))
    return (bz, by, bx), fraction


def iec_body_phantom(
    *,
    spacing_mm: float = 4.8,
    shape: Sequence[int] | None = None,
    sphere_to_background: float = 10.0,
    activity_mbq: float | None = None,
    background_bq_per_ml: float = 50_000.0,
    supersampling: int = 3,
) -> PhysicalPhantom:
    """Voxelised NEMA IEC body phantom (geometry in the module docstring).

    Parameters
    ----------
    spacing_mm : float
        Isotropic voxel size.
    shape : sequence of 3 int or None
        Grid (slices, rows, columns); default just covers the phantom with a margin.
    sphere_to_background : float
        Sphere-to-background concentration ratio (≥ 0; 0 = cold spheres).
    activity_mbq : float or None
        Total activity in the phantom; if given, it sets the background concentration.
    background_bq_per_ml : float
        Background concentration when ``activity_mbq`` is None.
    supersampling : int
        Points per voxel edge used for the sphere partial-volume truth.
    """
    if not math.isfinite(sphere_to_background) or sphere_to_background < 0.0:
        raise InputError(f"sphere_to_background must be >= 0; got {sphere_to_background}")
    if supersampling < 1:
        raise InputError(f"supersampling must be >= 1; got {supersampling}")
    y_centre = (IEC_CORNER_RADIUS_MM - IEC_HALF_CIRCLE_RADIUS_MM) / 2.0
    if shape is None:
        n = math.ceil((2.0 * IEC_HALF_CIRCLE_RADIUS_MM + 40.0) / spacing_mm)
        nz = math.ceil((IEC_INTERIOR_LENGTH_MM + 40.0) / spacing_mm)
        shape = (nz, n, n)
    grid = make_grid(shape, spacing_mm, centre_mm=(0.0, y_centre, 0.0))
    x_mm, y_mm, z_mm = grid.axes_mm()
    half_len = IEC_INTERIOR_LENGTH_MM / 2.0
    section = _iec_interior(x_mm[None, :], y_mm[:, None])
    in_z = np.abs(z_mm) <= half_len
    labels = np.where(section[None, :, :] & in_z[:, None, None], LABEL_BACKGROUND, 0).astype(np.int16)
    lung = (x_mm[None, :] ** 2 + y_mm[:, None] ** 2) <= (IEC_LUNG_INSERT_DIAMETER_MM / 2.0) ** 2
    lung_vol = lung[None, :, :] & in_z[:, None, None]
    labels[lung_vol] = LABEL_LUNG_INSERT

    sphere_z = half_len - IEC_SPHERE_PLANE_FROM_END_MM
    centres: list[tuple[float, float, float]] = []
    sphere_fraction = np.zeros(grid.shape, dtype=np.float64)
    for i, diameter in enumerate(IEC_SPHERE_DIAMETERS_MM):
        angle = math.radians(60.0 * i)
        centre = (
            IEC_SPHERE_RING_RADIUS_MM * math.cos(angle),
            -IEC_SPHERE_RING_RADIUS_MM * math.sin(angle),
            sphere_z,
        )
        centres.append(centre)
        sl, fraction = _sphere_fraction(grid, centre, diameter / 2.0, supersampling)
        sphere_fraction[sl] += fraction
        zz, yy, xx = np.meshgrid(z_mm[sl[0]], y_mm[sl[1]], x_mm[sl[2]], indexing="ij")
        inside = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (zz - centre[2]) ** 2 <= (
            diameter / 2.0
        ) ** 2
        labels[sl][inside] = LABEL_SPHERE_OFFSET + i

    background_mask = (labels == LABEL_BACKGROUND) | (labels >= LABEL_SPHERE_OFFSET)
    voxel_ml = grid.voxel_volume_ml
    if activity_mbq is not None:
        if not math.isfinite(activity_mbq) or activity_mbq <= 0.0:
            raise InputError(f"activity_mbq must be > 0; got {activity_mbq}")
        # A = c_bg · [V_bg + SBR · V_spheres] with V_bg the water volume outside the spheres
        v_spheres_ml = float(sphere_fraction.sum()) * voxel_ml
        v_background_ml = float(background_mask.sum()) * voxel_ml - v_spheres_ml
        background_bq_per_ml = float(mbq_to_bq(activity_mbq)) / (
            v_background_ml + sphere_to_background * v_spheres_ml
        )
    concentration = np.where(background_mask, background_bq_per_ml, 0.0) * (1.0 - sphere_fraction)
    concentration += sphere_fraction * sphere_to_background * background_bq_per_ml
    hu = np.full(grid.shape, _HU_AIR, dtype=np.float32)
    hu[labels == LABEL_BACKGROUND] = _HU_WATER
    hu[labels >= LABEL_SPHERE_OFFSET] = _HU_WATER
    hu[labels == LABEL_LUNG_INSERT] = _HU_LUNG_INSERT
    table = {"background": LABEL_BACKGROUND, "lung_insert": LABEL_LUNG_INSERT}
    table.update(
        {f"sphere_{int(d)}mm": LABEL_SPHERE_OFFSET + i for i, d in enumerate(IEC_SPHERE_DIAMETERS_MM)}
    )
    return PhysicalPhantom(
        name="nema_iec_body",
        grid=grid,
        labels=labels,
        hu=hu,
        concentration_bq_per_ml=concentration,
        label_table=table,
        sphere_diameters_mm=IEC_SPHERE_DIAMETERS_MM,
        sphere_centres_mm=tuple(centres),
        sphere_concentration_bq_per_ml=sphere_to_background * background_bq_per_ml,
        background_concentration_bq_per_ml=background_bq_per_ml,
    )


def uniform_cylinder(
    *,
    diameter_mm: float = 200.0,
    length_mm: float = 200.0,
    concentration_bq_per_ml: float = 50_000.0,
    spacing_mm: float = 4.8,
    shape: Sequence[int] | None = None,
) -> PhysicalPhantom:
    """A water-filled cylinder of uniform activity along z (a Jaszczak-like flood phantom without inserts).

    Parameters
    ----------
    diameter_mm, length_mm : float
        Interior size.
    concentration_bq_per_ml : float
        Activity concentration.
    spacing_mm : float
        Isotropic voxel size.
    shape : sequence of 3 int or None
        Grid; default covers the cylinder with a 20 mm margin.
    """
    if diameter_mm <= 0.0 or length_mm <= 0.0 or concentration_bq_per_ml < 0.0:
        raise InputError("diameter_mm and length_mm must be > 0 and concentration_bq_per_ml >= 0")
    if shape is None:
        n = math.ceil((diameter_mm + 40.0) / spacing_mm)
        nz = math.ceil((length_mm + 40.0) / spacing_mm)
        shape = (nz, n, n)
    grid = make_grid(shape, spacing_mm, centre_mm=(0.0, 0.0, 0.0))
    x_mm, y_mm, z_mm = grid.axes_mm()
    section = x_mm[None, :] ** 2 + y_mm[:, None] ** 2 <= (diameter_mm / 2.0) ** 2
    in_z = np.abs(z_mm) <= length_mm / 2.0
    inside = section[None, :, :] & in_z[:, None, None]
    labels = np.where(inside, LABEL_BACKGROUND, 0).astype(np.int16)
    hu = np.where(inside, _HU_WATER, _HU_AIR).astype(np.float32)
    return PhysicalPhantom(
        name="uniform_cylinder",
        grid=grid,
        labels=labels,
        hu=hu,
        concentration_bq_per_ml=np.where(inside, concentration_bq_per_ml, 0.0),
        label_table={"background": LABEL_BACKGROUND},
        sphere_diameters_mm=(),
        sphere_centres_mm=(),
        sphere_concentration_bq_per_ml=0.0,
        background_concentration_bq_per_ml=concentration_bq_per_ml,
    )


def recovery_coefficients(phantom: PhysicalPhantom, concentration_bq_per_ml: FloatArray) -> dict[str, float]:
    """Mean measured concentration in each sphere (voxels with centre inside) / true sphere concentration.

    The usual "RC_mean" of 177Lu quantitative SPECT calibration (MIRD Pamphlet 23, Dewaraja et al. 2012).
    """
    if concentration_bq_per_ml.shape != phantom.labels.shape:
        raise InputError("concentration_bq_per_ml must be on the phantom grid")
    if phantom.sphere_concentration_bq_per_ml <= 0.0:
        raise InputError("recovery coefficients need hot spheres (sphere_to_background > 0)")
    out: dict[str, float] = {}
    for i, d in enumerate(phantom.sphere_diameters_mm):
        mask = phantom.sphere_mask(i)
        out[f"sphere_{int(d)}mm"] = float(
            concentration_bq_per_ml[mask].mean() / phantom.sphere_concentration_bq_per_ml
        )
    return out


def phantom_volume_ml(phantom: PhysicalPhantom, label: int) -> float:
    """Volume (mL) of the voxels with ``label``."""
    return float(
        np.count_nonzero(phantom.labels == label) * mm3_to_ml(float(np.prod(phantom.grid.spacing_mm)))
    )
