"""Put a volume on another grid, crop it, and convert to and from SimpleITK images.

Resampling maps each target voxel centre to the source's continuous indices,
``index_src = affine_src⁻¹ · affine_target · index_target``, and interpolates there (trilinear for images,
nearest neighbour for labels). ``"majority"`` gives each target voxel the label covering most of it,
estimated from ``s0·s1·s2`` sub-samples per target voxel (s = target spacing / source spacing, rounded up,
at most :data:`MAX_SUBSAMPLES_PER_AXIS`): the right choice when moving organ masks onto a coarse SPECT grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import GeometryError, InputError
from theradose.imaging.volume import Volume

Method = Literal["linear", "nearest", "majority"]
#: Upper bound on sub-samples per axis in majority resampling.
MAX_SUBSAMPLES_PER_AXIS = 5


def resample(
    volume: Volume,
    reference: Volume,
    *,
    method: Method | None = None,
    fill_value: float = 0.0,
) -> Volume:
    """Resample ``volume`` onto the grid of ``reference``.

    Parameters
    ----------
    volume : Volume
        Image or label map to resample.
    reference : Volume
        Supplies the target grid (shape and affine); its values are not used.
    method : {"linear", "nearest", "majority"}, optional
        Interpolation. Default: ``"nearest"`` for ``"label"`` volumes, ``"linear"`` otherwise.
        ``"linear"`` is refused for labels (it would invent label values).
    fill_value : float
        Value for target voxels outside ``volume``.

    Returns
    -------
    Volume
        On ``reference``'s grid, with ``volume``'s unit, frame of reference and time. Linear results are
        float32 (float64 input stays float64); label results keep the label dtype.

    Raises
    ------
    GeometryError
        If both volumes carry different frame-of-reference UIDs (register them first).
    InputError
        For an unknown method or linear interpolation of labels.
    """
    from scipy import ndimage

    if volume.frame_uid and reference.frame_uid and volume.frame_uid != reference.frame_uid:
        raise GeometryError(
            f"volume frame of reference {volume.frame_uid} differs from the reference grid's "
            f"{reference.frame_uid}: register the images first (theradose.imaging.register)"
        )
    is_label = volume.unit == "label"
    chosen: str = method or ("nearest" if is_label else "linear")
    if chosen not in ("linear", "nearest", "majority"):
        raise InputError(f"method must be 'linear', 'nearest' or 'majority'; got {chosen!r}")
    if chosen == "linear" and is_label:
        raise InputError(
            "linear interpolation of a label volume invents labels: use method='nearest' or 'majority'"
        )
    if volume.same_grid(reference, atol_mm=1e-6):
        return _on_grid(volume, reference, np.array(volume.array, copy=True))
    matrix = np.linalg.inv(volume.affine) @ reference.affine
    if chosen == "majority":
        values = _majority(volume, reference, matrix, fill_value)
    else:
        source = volume.array
        dtype = (
            source.dtype
            if chosen == "nearest"
            else (np.float64 if source.dtype == np.float64 else np.float32)
        )
        values = ndimage.affine_transform(
            source.astype(dtype if chosen == "linear" else source.dtype, copy=False),
            matrix,
            output_shape=reference.shape,
            order=1 if chosen == "linear" else 0,
            mode="constant",
            cval=fill_value,
            prefilter=False,
        )
    return _on_grid(volume, reference, values)


def _on_grid(volume: Volume, reference: Volume, values: npt.NDArray[Any]) -> Volume:
    return Volume(
        values,
        reference.affine,
        volume.unit,
        frame_uid=volume.frame_uid or reference.frame_uid,
        acquisition_datetime=volume.acquisition_datetime,
    )


def _majority(
    volume: Volume, reference: Volume, matrix: npt.NDArray[np.float64], fill_value: float
) -> npt.NDArray[Any]:
    from scipy import ndimage

    ratio = np.array(reference.spacing_mm) / np.array(volume.spacing_mm)
    steps = [int(min(MAX_SUBSAMPLES_PER_AXIS, max(1, math.ceil(r - 1e-9)))) for r in ratio]
    labels = np.unique(volume.array)
    fill = np.asarray(fill_value).astype(volume.array.dtype)
    candidates = np.union1d(labels, [fill])
    counts = np.zeros((len(candidates), *reference.shape), dtype=np.int32)
    offsets = [(np.arange(n) + 0.5) / n - 0.5 for n in steps]
    for d0 in offsets[0]:
        for d1 in offsets[1]:
            for d2 in offsets[2]:
                shift = np.eye(4)
                shift[:3, 3] = (d0, d1, d2)
                sample = ndimage.affine_transform(
                    volume.array,
                    matrix @ shift,
                    output_shape=reference.shape,
                    order=0,
                    mode="constant",
                    cval=fill,
                    prefilter=False,
                )
                index = np.searchsorted(candidates, sample)
                for position in range(len(candidates)):
                    counts[position] += index == position
    winner = np.argmax(counts, axis=0)
    return np.asarray(candidates[winner], dtype=volume.array.dtype)


def crop(volume: Volume, start: Sequence[int], stop: Sequence[int]) -> Volume:
    """The sub-volume of the index box ``[start, stop)`` per axis (:meth:`Volume.crop`)."""
    return volume.crop(start, stop)


def bounding_box(
    mask: npt.ArrayLike, *, margin_voxels: int = 0
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(start, stop) indices of the smallest box holding all nonzero voxels, grown by ``margin_voxels``.

    Raises
    ------
    InputError
        If the mask is empty.
    """
    values = np.asarray(mask)
    nonzero = np.nonzero(values)
    if nonzero[0].size == 0:
        raise InputError("mask is empty: nothing to crop to")
    start = tuple(max(0, int(ix.min()) - margin_voxels) for ix in nonzero)
    stop = tuple(
        min(n, int(ix.max()) + 1 + margin_voxels) for ix, n in zip(nonzero, values.shape, strict=True)
    )
    return (start[0], start[1], start[2]), (stop[0], stop[1], stop[2])


def crop_to_mask(volume: Volume, mask: Volume, *, margin_voxels: int = 0) -> Volume:
    """Crop ``volume`` to the bounding box of the nonzero voxels of ``mask`` (same grid) plus a margin."""
    if not volume.same_grid(mask):
        raise GeometryError("mask is not on the volume's grid: resample it first (method='nearest')")
    start, stop = bounding_box(mask.array, margin_voxels=margin_voxels)
    return crop(volume, start, stop)


# ------------------------------------------------------------------------------------------------ SimpleITK
def to_sitk(volume: Volume) -> Any:
    """A ``SimpleITK.Image`` with the same voxels and LPS geometry.

    SimpleITK indexes (x=column, y=row, z=slice) and its direction matrix holds the unit step of those
    index axes as columns, so it is the volume's direction with the axis order reversed.
    """
    import SimpleITK as sitk

    array = volume.array
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    image: Any = sitk.GetImageFromArray(np.ascontiguousarray(array))
    spacing = volume.spacing_mm
    image.SetSpacing((spacing[2], spacing[1], spacing[0]))
    image.SetOrigin(volume.origin_mm)
    direction = volume.direction[:, ::-1]
    image.SetDirection(tuple(float(v) for v in direction.ravel()))
    return image


def from_sitk(image: Any, *, unit: str, like: Volume | None = None) -> Volume:
    """A :class:`Volume` from a 3-D ``SimpleITK.Image`` (inverse of :func:`to_sitk`).

    ``like`` supplies the frame of reference and acquisition time.
    """
    import SimpleITK as sitk

    if image.GetDimension() != 3:
        raise GeometryError(f"SimpleITK image must be 3-D; got {image.GetDimension()}-D")
    array = sitk.GetArrayFromImage(image)
    spacing = np.array(image.GetSpacing(), dtype=np.float64)  # (x, y, z) = (column, row, slice)
    direction = np.array(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = (direction * spacing[None, :])[:, ::-1]
    affine[:3, 3] = image.GetOrigin()
    return Volume(
        array,
        affine,
        unit,  # type: ignore[arg-type]
        frame_uid=like.frame_uid if like else None,
        acquisition_datetime=like.acquisition_datetime if like else None,
    )


__all__ = ["bounding_box", "crop", "crop_to_mask", "from_sitk", "resample", "to_sitk"]
