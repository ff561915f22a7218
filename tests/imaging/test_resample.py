"""Resampling, cropping and SimpleITK conversion, checked against analytic cases."""

from __future__ import annotations

import numpy as np
import pytest

from theradose.errors import GeometryError, InputError
from theradose.imaging import Volume
from theradose.imaging.resample import bounding_box, crop, crop_to_mask, from_sitk, resample, to_sitk


def linear_field(
    shape: tuple[int, int, int], spacing: tuple[float, float, float], origin: tuple[float, float, float]
) -> Volume:
    """f(x, y, z) = 2x - 3y + 0.5z + 7 sampled at voxel centres (linear interpolation reproduces it)."""
    vol = Volume.from_spacing(np.zeros(shape), spacing, origin, unit="Bq/mL")
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    p = vol.world_coordinates_mm(idx)
    return vol.with_array(2 * p[..., 0] - 3 * p[..., 1] + 0.5 * p[..., 2] + 7.0)


def test_linear_resampling_reproduces_a_linear_field() -> None:
    source = linear_field((20, 22, 24), (2.0, 2.0, 2.0), (-20.0, -20.0, -20.0))
    target = Volume.from_spacing(np.zeros((7, 8, 9)), (3.3, 2.7, 3.9), (-12.1, -10.4, -9.9), unit="HU")
    out = resample(source, target)
    expected = linear_field((7, 8, 9), (3.3, 2.7, 3.9), (-12.1, -10.4, -9.9))
    assert out.unit == "Bq/mL"
    assert out.same_grid(target)
    np.testing.assert_allclose(out.array, expected.array, rtol=1e-5, atol=1e-3)


def test_rotated_target_grid() -> None:
    source = linear_field((30, 30, 30), (1.5, 1.5, 1.5), (-22.0, -22.0, -22.0))
    c, s = np.cos(0.4), np.sin(0.4)
    affine = np.eye(4)
    affine[:3, 0] = (0.0, 0.0, 2.0)
    affine[:3, 1] = (-s * 2.0, c * 2.0, 0.0)
    affine[:3, 2] = (c * 2.0, s * 2.0, 0.0)
    affine[:3, 3] = (-5.0, -5.0, -5.0)
    target = Volume(np.zeros((5, 5, 5)), affine, "HU")
    out = resample(source, target)
    p = target.world_coordinates_mm(np.stack(np.meshgrid(*[np.arange(5)] * 3, indexing="ij"), axis=-1))
    np.testing.assert_allclose(out.array, 2 * p[..., 0] - 3 * p[..., 1] + 0.5 * p[..., 2] + 7.0, atol=1e-3)


def test_outside_is_filled() -> None:
    source = Volume.from_spacing(np.ones((4, 4, 4)), (1, 1, 1), unit="Bq/mL")
    target = Volume.from_spacing(np.zeros((2, 2, 2)), (1, 1, 1), (100.0, 100.0, 100.0), unit="Bq/mL")
    assert np.all(resample(source, target, fill_value=-5.0).array == -5.0)


def test_nearest_and_majority_for_labels() -> None:
    labels = np.zeros((8, 8, 8), dtype=np.uint8)
    labels[:, :, :5] = 2  # 5 of every 8 columns are label 2
    labels[0:2, 0:2, 6:8] = 3
    mask = Volume.from_spacing(labels, (1, 1, 1), unit="label")
    # One coarse voxel of 4x4x4 mm centred on the 8x8x8 block's first octant (indices 0..3).
    coarse = Volume.from_spacing(np.zeros((2, 2, 2)), (4, 4, 4), (1.5, 1.5, 1.5), unit="HU")
    majority = resample(mask, coarse, method="majority")
    # Blocks over columns 0-3 are all label 2. Blocks over columns 4-7 hold 16 voxels of 2 (column 4),
    # at most 8 of 3 and at least 40 of 0, so background wins there (counted by hand).
    assert majority.array.dtype == np.uint8
    np.testing.assert_array_equal(majority.array[:, :, 0], 2)
    np.testing.assert_array_equal(majority.array[:, :, 1], 0)
    nearest = resample(mask, coarse)
    assert set(np.unique(nearest.array)) <= {0, 2, 3}
    with pytest.raises(InputError, match="invents labels"):
        resample(mask, coarse, method="linear")
    with pytest.raises(InputError, match="method must be"):
        resample(mask, coarse, method="cubic")  # type: ignore[arg-type]


def test_frames_must_match() -> None:
    a = Volume.from_spacing(np.ones((2, 2, 2)), (1, 1, 1), unit="HU", frame_uid="1.2.3")
    b = Volume.from_spacing(np.ones((2, 2, 2)), (1, 1, 1), unit="HU", frame_uid="1.2.4")
    with pytest.raises(GeometryError, match="register the images first"):
        resample(a, b)


def test_same_grid_is_a_copy() -> None:
    a = Volume.from_spacing(np.arange(8.0).reshape(2, 2, 2), (1, 1, 1), unit="HU")
    out = resample(a, a)
    np.testing.assert_array_equal(out.array, a.array)


def test_crop_keeps_positions() -> None:
    vol = linear_field((6, 7, 8), (2.0, 1.0, 0.5), (3.0, 4.0, 5.0))
    sub = vol.crop((1, 2, 3), (4, 6, 8))
    assert sub.shape == (3, 4, 5)
    np.testing.assert_allclose(sub.world_coordinates_mm([0, 0, 0]), vol.world_coordinates_mm([1, 2, 3]))
    assert sub.array[0, 0, 0] == vol.array[1, 2, 3]
    with pytest.raises(GeometryError, match="0 <= start < stop"):
        crop(vol, (0, 0, 0), (7, 1, 1))
    mask = vol.with_array((vol.array > 0).astype(np.uint8) * 0, unit="label")
    with pytest.raises(InputError, match="mask is empty"):
        crop_to_mask(vol, mask)
    m = np.zeros(vol.shape, dtype=np.uint8)
    m[2, 3, 4] = 1
    assert bounding_box(m, margin_voxels=1) == ((1, 2, 3), (4, 5, 6))
    assert crop_to_mask(vol, vol.with_array(m, unit="label")).shape == (1, 1, 1)


def test_sitk_round_trip_and_physical_points() -> None:
    c, s = np.cos(0.3), np.sin(0.3)
    affine = np.eye(4)
    affine[:3, 0] = (0.0, 0.0, 3.0)
    affine[:3, 1] = (-s * 1.5, c * 1.5, 0.0)
    affine[:3, 2] = (c * 0.8, s * 0.8, 0.0)
    affine[:3, 3] = (1.0, 2.0, 3.0)
    vol = Volume(np.arange(24, dtype=np.float32).reshape(2, 3, 4), affine, "Bq/mL")
    image = to_sitk(vol)
    # SimpleITK index (i, j, k) = (column, row, slice); its physical point must match world_coordinates_mm.
    np.testing.assert_allclose(
        image.TransformIndexToPhysicalPoint((3, 2, 1)), vol.world_coordinates_mm([1, 2, 3])
    )
    assert image.GetPixel(3, 2, 1) == vol.array[1, 2, 3]
    back = from_sitk(image, unit="Bq/mL", like=vol)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-12)
    np.testing.assert_array_equal(back.array, vol.array)
