"""Lesion and reference-region measurements from a PET volume and a label map.

For every labelled region: SUVmax, SUVmean (± SD), SUVpeak, volume (metabolic / PSMA-positive tumour
volume), total lesion uptake (TLU = SUVmean · volume; TLG for FDG) and the centroid.

SUVpeak follows PERCIST 1.0 (Wahl et al., J Nucl Med 2009;50 Suppl 1:122S): the highest mean SUV inside a
sphere of 1.2 cm diameter (about 1 cm³) placed anywhere in the tumour. Here the sphere is the set of voxels
whose centres lie within ``peak_diameter_mm / 2`` of a voxel centre of the region, the mean uses every voxel
of the sphere (inside or outside the region, clipped at the image edge), and the maximum is taken over all
sphere centres in the region.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from theradose.errors import GeometryError, InputError
from theradose.reading.lesions import REFERENCE_NAMES, Lesion, LesionTable, Reference

if TYPE_CHECKING:
    from theradose.imaging.volume import Volume

#: PERCIST 1.0 SULpeak sphere diameter (Wahl et al. 2009: "1.2-cm diameter", ~1 cm³).
PERCIST_PEAK_DIAMETER_MM = 12.0


@dataclass(frozen=True)
class RegionMeasurement:
    """Measurements of one labelled region (SUV values are SUVbw unless the volume is already SUL)."""

    name: str
    label: int
    n_voxels: int
    volume_ml: float
    suv_max: float
    suv_mean: float
    suv_sd: float
    suv_peak: float
    peak_center_mm: tuple[float, float, float]
    total_lesion_uptake_ml: float
    centroid_mm: tuple[float, float, float]
    sul_peak: float | None = None
    sul_mean: float | None = None
    sul_sd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return dict(self.__dict__)


def sphere_offsets(affine: npt.ArrayLike, diameter_mm: float) -> npt.NDArray[np.intp]:
    """Index offsets (n, 3) of the voxels whose centres lie within ``diameter_mm / 2`` of a voxel centre.

    Works for any (also oblique or anisotropic) grid: distances use the 3x3 step part of ``affine``.
    """
    if not diameter_mm > 0:
        raise InputError(f"peak diameter must be > 0 mm; got {diameter_mm}")
    step = np.asarray(affine, dtype=float)[:3, :3]
    radius = diameter_mm / 2.0
    spacing = np.linalg.norm(step, axis=0)
    # an axis-aligned bound in index space that contains the sphere even for oblique axes
    inv = np.linalg.inv(step)
    reach = np.ceil(radius * np.linalg.norm(inv, axis=1)).astype(int)
    reach = np.maximum(reach, np.ceil(radius / spacing).astype(int))
    grids = np.meshgrid(*(np.arange(-r, r + 1) for r in reach), indexing="ij")
    offsets = np.stack([g.ravel() for g in grids], axis=1)
    distance = np.linalg.norm(offsets @ step.T, axis=1)
    inside: npt.NDArray[np.intp] = offsets[distance <= radius * (1.0 + 1e-9)].astype(np.intp)
    return inside


def _peak(
    suv: npt.NDArray[np.float64], region: npt.NDArray[np.bool_], offsets: npt.NDArray[np.intp]
) -> tuple[float, tuple[int, int, int]]:
    from scipy import ndimage

    reach = np.abs(offsets).max(axis=0)
    where = np.argwhere(region)
    lo = np.maximum(where.min(axis=0) - reach, 0)
    hi = np.minimum(where.max(axis=0) + reach + 1, suv.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    sub = suv[box]
    kernel = np.zeros(tuple(2 * reach + 1), dtype=float)
    kernel[tuple((offsets + reach).T)] = 1.0
    # Sums over the sphere and the number of sphere voxels inside the image. The crop reaches the sphere
    # radius beyond the region (or the image edge), so both are exact at every region voxel.
    total = ndimage.correlate(sub, kernel, mode="constant", cval=0.0)
    count = ndimage.correlate(np.ones(sub.shape), kernel, mode="constant", cval=0.0)
    mean = total / count
    candidates = np.where(region[box], mean, -np.inf)
    flat = int(np.argmax(candidates))
    index = np.unravel_index(flat, candidates.shape)
    center = tuple(int(i + a) for i, a in zip(index, lo, strict=True))
    return float(candidates[index]), (center[0], center[1], center[2])


def measure_regions(
    pet: Volume,
    labels: npt.ArrayLike | Volume,
    *,
    suv_scale: float | None = None,
    sul_scale: float | None = None,
    names: Mapping[int, str] | None = None,
    peak_diameter_mm: float = PERCIST_PEAK_DIAMETER_MM,
    threshold_suv: float | None = None,
) -> list[RegionMeasurement]:
    """Measure every non-zero label of ``labels`` on ``pet``.

    Parameters
    ----------
    pet : Volume
        PET image in ``Bq/mL`` (then ``suv_scale`` is required) or in ``SUV``.
    labels : array_like of int, shape = pet.shape, or Volume with unit ``label`` on the same grid
        0 = background; each positive integer one region.
    suv_scale : float, optional
        SUVbw scale (g/Bq) from :func:`theradose.reading.suv.suv_scale`; multiplies Bq/mL.
    sul_scale : float, optional
        SUL scale (g/Bq); when given, SULpeak / SULmean / SUL SD are reported too (PERCIST).
    names : mapping int -> str, optional
        Region names (``liver``, ``spleen``, ``parotid``, ``blood_pool`` mark reference regions);
        default ``"label <n>"``.
    peak_diameter_mm : float
        SUVpeak sphere diameter; default 12 mm (PERCIST 1.0).
    threshold_suv : float, optional
        Keep only region voxels with SUV >= this (e.g. a fixed-threshold tumour volume); all statistics
        use the kept voxels.

    Returns
    -------
    list of RegionMeasurement, in label order.
    """
    values = np.asarray(pet.array, dtype=np.float64)
    if pet.unit == "Bq/mL":
        if suv_scale is None or not suv_scale > 0:
            raise InputError(
                f"suv_scale must be > 0 for a PET volume in Bq/mL; got {suv_scale}: use read.suv.suv_scale"
            )
        suv = values * suv_scale
        sul_factor = None if sul_scale is None else sul_scale / suv_scale
    elif pet.unit == "SUV":
        if suv_scale not in (None, 1.0):
            raise InputError(f"pet is already in SUV; got suv_scale {suv_scale}: leave it out")
        suv = values
        sul_factor = None
        if sul_scale is not None:
            raise InputError("sul_scale needs the PET volume in Bq/mL (with suv_scale)")
    else:
        raise InputError(f"pet.unit must be 'Bq/mL' or 'SUV'; got {pet.unit!r}: give a quantitative PET")
    from theradose.imaging.volume import Volume

    if isinstance(labels, Volume):
        if not labels.same_grid(pet):
            raise GeometryError(
                "labels volume is not on the PET grid: resample the labels onto the PET first"
            )
        label_array = np.asarray(labels.array)
    else:
        label_array = np.asarray(labels)
    if label_array.shape != suv.shape:
        raise GeometryError(
            f"labels shape {label_array.shape} differs from PET shape {suv.shape}: use one grid"
        )
    if not np.issubdtype(label_array.dtype, np.integer):
        if not np.all(np.equal(np.mod(label_array, 1), 0)):
            raise InputError("labels must be integers (0 = background)")
        label_array = label_array.astype(np.int64)
    offsets = sphere_offsets(pet.affine, peak_diameter_mm)
    voxel_ml = float(pet.voxel_volume_ml)
    results: list[RegionMeasurement] = []
    for label in (int(v) for v in np.unique(label_array) if v > 0):
        region = label_array == label
        if threshold_suv is not None:
            region &= suv >= threshold_suv
        name = (names or {}).get(label, f"label {label}")
        if not region.any():
            raise InputError(
                f"region {name!r} (label {label}) has no voxel above the threshold {threshold_suv}"
            )
        inside = suv[region]
        peak, center = _peak(suv, region, offsets)
        idx = np.argwhere(region).mean(axis=0)
        centroid = pet.world_coordinates_mm(idx)
        peak_mm = pet.world_coordinates_mm(np.asarray(center, dtype=float))
        volume_ml = float(region.sum()) * voxel_ml
        mean = float(inside.mean())
        sd = float(inside.std(ddof=1)) if inside.size > 1 else 0.0
        results.append(
            RegionMeasurement(
                name=name,
                label=label,
                n_voxels=int(region.sum()),
                volume_ml=volume_ml,
                suv_max=float(inside.max()),
                suv_mean=mean,
                suv_sd=sd,
                suv_peak=peak,
                peak_center_mm=(float(peak_mm[0]), float(peak_mm[1]), float(peak_mm[2])),
                total_lesion_uptake_ml=mean * volume_ml,
                centroid_mm=(float(centroid[0]), float(centroid[1]), float(centroid[2])),
                sul_peak=None if sul_factor is None else peak * sul_factor,
                sul_mean=None if sul_factor is None else mean * sul_factor,
                sul_sd=None if sul_factor is None else sd * sul_factor,
            )
        )
    return results


def measurements_to_table(
    measurements: Iterable[RegionMeasurement],
    *,
    reference_names: Sequence[str] = REFERENCE_NAMES,
    source: str = "measured",
) -> LesionTable:
    """Turn measurements into a :class:`LesionTable`: regions named like a reference become references."""
    lesions: list[Lesion] = []
    refs: dict[str, Reference] = {}
    for m in measurements:
        key = m.name.strip().lower().replace(" ", "_")
        if key in reference_names:
            refs[key] = Reference(
                key, suv_mean=m.suv_mean, suv_sd=m.suv_sd, sul_mean=m.sul_mean, sul_sd=m.sul_sd
            )
            continue
        lesions.append(
            Lesion(
                lesion_id=m.name,
                suv_max=m.suv_max,
                suv_peak=m.suv_peak,
                suv_mean=m.suv_mean,
                sul_peak=m.sul_peak,
                volume_ml=m.volume_ml,
                x_mm=m.centroid_mm[0],
                y_mm=m.centroid_mm[1],
                z_mm=m.centroid_mm[2],
            )
        )
    return LesionTable(tuple(lesions), refs, source)
