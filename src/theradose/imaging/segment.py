"""Offline automatic segmentation fallbacks: CT thresholds and SPECT uptake regions.

CT (HU thresholds; typical values: air −1000, lung −900…−500, fat −100, soft tissue 0…100, bone > 200):

* body: HU > ``body_threshold_hu`` (−300), largest 3-D connected component, holes filled slice by slice;
* lungs: inside the body, HU < ``lung_threshold_hu`` (−400), components larger than ``min_volume_ml``;
* bone: inside the body, HU > ``bone_threshold_hu`` (200).

SPECT uptake: voxels above a threshold, split into 3-D connected components (26-connectivity), each kept if
at least ``min_volume_ml``. Thresholds are a fixed activity concentration (Bq/mL) or a percentage of the
local maximum of each candidate region (the usual 40 %-of-max rule for lesions; Erdi YE et al.,
"Segmentation of lung lesion volume by adaptive positron emission tomography image thresholding",
Cancer 1997;80:2505), optionally restricted to soft tissue on a CT (so that bone or air uptake
artefacts are excluded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import GeometryError, InputError
from theradose.imaging.resample import resample
from theradose.imaging.volume import Volume

#: Label values written by :func:`segment_ct`.
BODY_LABEL = 1
LUNG_LABEL = 2
BONE_LABEL = 3
#: First label value of uptake regions in :func:`segment_auto`.
FIRST_UPTAKE_LABEL = 10

UptakeMethod = Literal["fixed", "percent_max"]


@dataclass(frozen=True)
class Region:
    """One labelled region: value, name, volume (mL) and, for uptake, the activity it holds."""

    label: int
    name: str
    volume_ml: float
    max_value: float | None = None
    mean_value: float | None = None


@dataclass(frozen=True)
class Segmentation:
    """A label map and the regions it holds."""

    labels: Volume
    regions: tuple[Region, ...]

    def names(self) -> dict[int, str]:
        """Label value → region name."""
        return {r.label: r.name for r in self.regions}


def _structure() -> npt.NDArray[np.bool_]:
    return np.ones((3, 3, 3), dtype=bool)


def _largest_component(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    from scipy import ndimage

    labelled, n = ndimage.label(mask, structure=_structure())
    if n == 0:
        return mask
    sizes = np.bincount(labelled.ravel())[1:]
    return np.asarray(labelled == (int(np.argmax(sizes)) + 1))


def _fill_holes_per_slice(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    from scipy import ndimage

    out = np.empty_like(mask)
    for k in range(mask.shape[0]):
        out[k] = ndimage.binary_fill_holes(mask[k])
    return out


def _remove_small(mask: npt.NDArray[np.bool_], min_voxels: int) -> npt.NDArray[np.bool_]:
    from scipy import ndimage

    labelled, n = ndimage.label(mask, structure=_structure())
    if n == 0:
        return mask
    sizes = np.bincount(labelled.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    return np.asarray(keep[labelled])


def body_mask(ct_hu: Volume, *, body_threshold_hu: float = -300.0) -> npt.NDArray[np.bool_]:
    """Boolean body mask of a CT: largest component above ``body_threshold_hu``, holes filled."""
    if ct_hu.unit != "HU":
        raise InputError(f"ct_hu must be in HU; got {ct_hu.unit!r}")
    mask = np.asarray(ct_hu.array) > body_threshold_hu
    return _fill_holes_per_slice(_largest_component(mask))


def segment_ct(
    ct_hu: Volume,
    *,
    body_threshold_hu: float = -300.0,
    lung_threshold_hu: float = -400.0,
    bone_threshold_hu: float = 200.0,
    min_volume_ml: float = 10.0,
) -> Segmentation:
    """Body (1), lungs (2) and bone (3) from CT thresholds; see the module docstring.

    Returns
    -------
    Segmentation
        ``uint8`` label map on the CT grid; regions with their volumes in mL.
    """
    if not body_threshold_hu < bone_threshold_hu or not lung_threshold_hu < bone_threshold_hu:
        raise InputError("thresholds must satisfy body, lung < bone (HU)")
    hu = np.asarray(ct_hu.array)
    body = body_mask(ct_hu, body_threshold_hu=body_threshold_hu)
    min_voxels = max(1, round(min_volume_ml / ct_hu.voxel_volume_ml))
    lungs = _remove_small(body & (hu < lung_threshold_hu), min_voxels)
    bone = body & (hu > bone_threshold_hu)
    labels = np.zeros(ct_hu.shape, dtype=np.uint8)
    labels[body] = BODY_LABEL
    labels[lungs] = LUNG_LABEL
    labels[bone] = BONE_LABEL
    volume = ct_hu.with_array(labels, unit="label")
    regions = tuple(
        Region(value, name, float(np.count_nonzero(labels == value)) * ct_hu.voxel_volume_ml)
        for value, name in ((BODY_LABEL, "body"), (LUNG_LABEL, "lungs"), (BONE_LABEL, "bone"))
    )
    return Segmentation(volume, regions)


def segment_uptake(
    spect_bqml: Volume,
    *,
    method: UptakeMethod = "percent_max",
    threshold_bqml: float | None = None,
    percent_of_max: float = 40.0,
    min_volume_ml: float = 1.0,
    allowed: Volume | npt.NDArray[np.bool_] | None = None,
    name: str = "uptake",
) -> Segmentation:
    """Uptake regions of a quantitative SPECT/PET: thresholding, connected components, minimum volume.

    Parameters
    ----------
    spect_bqml : Volume
        Activity concentration (``"Bq/mL"`` or ``"SUV"``).
    method : {"fixed", "percent_max"}
        ``"fixed"``: voxels ≥ ``threshold_bqml``. ``"percent_max"``: candidate regions are the connected
        components ≥ ``threshold_bqml`` (default 10 % of the global maximum); inside each, voxels ≥
        ``percent_of_max`` % of that region's maximum, connected to its maximum, are kept.
    threshold_bqml : float, optional
        Fixed threshold, or the candidate threshold for ``"percent_max"``.
    percent_of_max : float
        Percentage of the local maximum (0–100).
    min_volume_ml : float
        Smallest region kept.
    allowed : Volume or bool array, optional
        Voxels that may belong to a region (e.g. soft tissue from the CT on the SPECT grid).
    name : str
        Base name of the regions ("uptake 1", "uptake 2", ... by decreasing total activity).

    Returns
    -------
    Segmentation
        ``int32`` labels 1..n on the SPECT grid, regions sorted by decreasing total activity.
    """
    from scipy import ndimage

    if spect_bqml.unit not in ("Bq/mL", "SUV"):
        raise InputError(f"spect_bqml must be in Bq/mL or SUV; got {spect_bqml.unit!r}")
    if method not in ("fixed", "percent_max"):
        raise InputError(f"method must be 'fixed' or 'percent_max'; got {method!r}")
    if not 0 < percent_of_max < 100:
        raise InputError(f"percent_of_max must be between 0 and 100; got {percent_of_max!r}")
    if min_volume_ml < 0:
        raise InputError(f"min_volume_ml must not be negative; got {min_volume_ml!r}")
    values = np.asarray(spect_bqml.array, dtype=np.float64)
    mask_allowed = _allowed_mask(allowed, spect_bqml)
    peak = float(values[mask_allowed].max()) if mask_allowed.any() else 0.0
    if peak <= 0:
        raise InputError("the SPECT has no positive value where regions are allowed: nothing to segment")
    if method == "fixed":
        if threshold_bqml is None or threshold_bqml <= 0:
            raise InputError(f"method 'fixed' needs a positive threshold_bqml; got {threshold_bqml!r}")
        selected = (values >= threshold_bqml) & mask_allowed
    else:
        candidate_threshold = threshold_bqml if threshold_bqml is not None else 0.1 * peak
        candidates, n = ndimage.label((values >= candidate_threshold) & mask_allowed, structure=_structure())
        selected = np.zeros(values.shape, dtype=bool)
        for index in range(1, n + 1):
            region = candidates == index
            local_max = float(values[region].max())
            inside = region & (values >= percent_of_max / 100.0 * local_max)
            parts, _ = ndimage.label(inside, structure=_structure())
            seed = np.unravel_index(int(np.argmax(np.where(region, values, -np.inf))), values.shape)
            selected |= parts == parts[seed]
    min_voxels = max(1, round(min_volume_ml / spect_bqml.voxel_volume_ml))
    selected = _remove_small(selected, min_voxels)
    labelled, n = ndimage.label(selected, structure=_structure())
    totals = ndimage.sum_labels(values, labelled, index=np.arange(1, n + 1)) if n else np.zeros(0)
    order = np.argsort(-np.asarray(totals), kind="stable")
    remap = np.zeros(n + 1, dtype=np.int32)
    remap[order + 1] = np.arange(1, n + 1, dtype=np.int32)
    labels = remap[labelled]
    regions = []
    for new in range(1, n + 1):
        region = labels == new
        regions.append(
            Region(
                new,
                f"{name} {new}",
                float(np.count_nonzero(region)) * spect_bqml.voxel_volume_ml,
                max_value=float(values[region].max()),
                mean_value=float(values[region].mean()),
            )
        )
    return Segmentation(spect_bqml.with_array(labels, unit="label"), tuple(regions))


def _allowed_mask(allowed: Volume | npt.NDArray[np.bool_] | None, grid: Volume) -> npt.NDArray[np.bool_]:
    if allowed is None:
        return np.ones(grid.shape, dtype=bool)
    array: Any = allowed.array if isinstance(allowed, Volume) else allowed
    if isinstance(allowed, Volume) and not allowed.same_grid(grid):
        raise GeometryError("allowed mask is not on the SPECT grid: resample it (method='nearest') first")
    mask = np.asarray(array).astype(bool)
    if mask.shape != grid.shape:
        raise GeometryError(f"allowed mask shape {mask.shape} differs from the SPECT shape {grid.shape}")
    return mask


def soft_tissue_mask(
    ct_hu: Volume, *, low_hu: float = -200.0, high_hu: float = 300.0, dilation_voxels: int = 1
) -> Volume:
    """Soft tissue inside the body (``low_hu`` < HU < ``high_hu``), dilated a little, as a label volume."""
    from scipy import ndimage

    body = body_mask(ct_hu)
    hu = np.asarray(ct_hu.array)
    tissue = body & (hu > low_hu) & (hu < high_hu)
    if dilation_voxels > 0:
        tissue = ndimage.binary_dilation(tissue, structure=_structure(), iterations=dilation_voxels) & body
    return ct_hu.with_array(tissue.astype(np.uint8), unit="label")


def segment_auto(
    ct_hu: Volume,
    spect_bqml: Volume | None = None,
    *,
    percent_of_max: float = 40.0,
    min_uptake_volume_ml: float = 1.0,
) -> Segmentation:
    """CT body/lungs/bone and, with a SPECT, uptake regions constrained to soft tissue, on the CT grid.

    Uptake regions are found on the SPECT grid (the CT soft-tissue mask resampled by majority) and
    brought to the CT grid by nearest neighbour; they get labels 10, 11, ... over the CT classes.
    """
    ct_regions = segment_ct(ct_hu)
    labels = np.asarray(ct_regions.labels.array).astype(np.int32)
    regions = list(ct_regions.regions)
    if spect_bqml is not None:
        tissue = resample(soft_tissue_mask(ct_hu), spect_bqml, method="majority")
        uptake = segment_uptake(
            spect_bqml,
            percent_of_max=percent_of_max,
            min_volume_ml=min_uptake_volume_ml,
            allowed=tissue.array.astype(bool),
        )
        on_ct = resample(uptake.labels, ct_hu, method="nearest")
        found = np.asarray(on_ct.array)
        for region in uptake.regions:
            value = FIRST_UPTAKE_LABEL + region.label - 1
            labels[found == region.label] = value
            regions.append(Region(value, region.name, region.volume_ml, region.max_value, region.mean_value))
    return Segmentation(ct_hu.with_array(labels, unit="label"), tuple(regions))


__all__ = [
    "BODY_LABEL",
    "BONE_LABEL",
    "FIRST_UPTAKE_LABEL",
    "LUNG_LABEL",
    "Region",
    "Segmentation",
    "body_mask",
    "segment_auto",
    "segment_ct",
    "segment_uptake",
    "soft_tissue_mask",
]
