"""Volume: geometry by hand-computed cases, validation messages, immutability."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from theradose.errors import GeometryError, InputError
from theradose.imaging import Volume


def oblique_affine() -> np.ndarray:
    """A 30° rotation about z of a (2, 3, 4) mm grid, built column by column from DICOM-style vectors."""
    c, s = np.cos(np.radians(30.0)), np.sin(np.radians(30.0))
    row_dir = np.array([c, s, 0.0])  # X: along a row (increasing column)
    col_dir = np.array([-s, c, 0.0])  # Y: down a column (increasing row)
    normal = np.cross(row_dir, col_dir)
    affine = np.eye(4)
    affine[:3, 0] = normal * 2.0
    affine[:3, 1] = col_dir * 3.0
    affine[:3, 2] = row_dir * 4.0
    affine[:3, 3] = (10.0, -20.0, 30.0)
    return affine


def test_from_spacing_maps_axes_to_z_y_x() -> None:
    vol = Volume.from_spacing(np.zeros((4, 5, 6)), (2.5, 1.5, 0.5), (-10.0, 20.0, 5.0), unit="HU")
    # index (k, j, i) = (1, 2, 3): x = -10 + 3*0.5, y = 20 + 2*1.5, z = 5 + 1*2.5
    np.testing.assert_allclose(vol.world_coordinates_mm([1, 2, 3]), [-8.5, 23.0, 7.5])
    assert vol.shape == (4, 5, 6)
    assert vol.spacing_mm == (2.5, 1.5, 0.5)
    assert vol.origin_mm == (-10.0, 20.0, 5.0)
    # 2.5 * 1.5 * 0.5 mm^3 = 1.875 mm^3 = 0.001875 mL
    assert vol.voxel_volume_ml == pytest.approx(0.001875)
    np.testing.assert_allclose(vol.direction, [[0, 0, 1], [0, 1, 0], [1, 0, 0]])


def test_oblique_geometry_and_round_trip() -> None:
    vol = Volume(np.zeros((3, 4, 5), dtype=np.float32), oblique_affine(), "Bq/mL")
    assert vol.spacing_mm == pytest.approx((2.0, 3.0, 4.0))
    assert vol.voxel_volume_ml == pytest.approx(0.024)
    # Column step (index2 = 1) moves 4 mm along (cos30, sin30, 0).
    p = vol.world_coordinates_mm([0, 0, 1])
    np.testing.assert_allclose(p, [10.0 + 4 * np.cos(np.radians(30)), -20.0 + 2.0, 30.0], atol=1e-12)
    # Slice step moves +2 mm in z (normal = X × Y = +z for a rotation about z).
    np.testing.assert_allclose(vol.world_coordinates_mm([1, 0, 0]), [10.0, -20.0, 32.0], atol=1e-12)
    idx = np.array([[0.5, 1.25, 3.0], [2.0, 3.0, 4.0]])
    np.testing.assert_allclose(vol.index_of(vol.world_coordinates_mm(idx)), idx, atol=1e-12)


def test_with_array_keeps_geometry_and_checks_shape() -> None:
    t = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    vol = Volume.from_spacing(
        np.ones((2, 3, 4)), (1, 1, 1), unit="counts", frame_uid="1.2.3", acquisition_datetime=t
    )
    doubled = vol.with_array(vol.array * 2, unit="Bq/mL")
    assert doubled.unit == "Bq/mL"
    assert doubled.frame_uid == "1.2.3"
    assert doubled.acquisition_datetime == t
    np.testing.assert_array_equal(doubled.affine, vol.affine)
    with pytest.raises(GeometryError, match=r"shape \(3, 3, 4\) does not match"):
        vol.with_array(np.ones((3, 3, 4)))


def test_array_is_read_only_but_input_untouched() -> None:
    data = np.zeros((2, 2, 2))
    vol = Volume.from_spacing(data, (1, 1, 1), unit="HU")
    with pytest.raises(ValueError, match="read-only"):
        vol.array[0, 0, 0] = 1.0
    data[0, 0, 0] = 5.0  # the caller's array stays writable
    assert data.flags.writeable


@pytest.mark.parametrize(
    ("array", "affine", "unit", "error", "match"),
    [
        (np.zeros((2, 2)), np.eye(4), "HU", GeometryError, "3 axes"),
        (np.zeros((2, 2, 2)), np.eye(3), "HU", GeometryError, r"shape \(4, 4\)"),
        (np.zeros((2, 2, 2)), np.diag([1.0, 1.0, 0.0, 1.0]), "HU", GeometryError, "zero-length"),
        (
            np.zeros((2, 2, 2)),
            np.array([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]),
            "HU",
            GeometryError,
            "coplanar",
        ),
        (
            np.zeros((2, 2, 2)),
            np.array([[1, 1, 0, 0], [0, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1.0]]),
            "HU",
            GeometryError,
            "coplanar",
        ),
        (np.zeros((2, 2, 2)), np.full((4, 4), np.nan), "HU", GeometryError, "NaN"),
        (np.zeros((2, 2, 2)), np.eye(4), "mSv", InputError, "unit must be one of"),
        (np.zeros((2, 2, 2)), np.eye(4), "label", InputError, "integer or boolean"),
        (np.array([[["a"]]]), np.eye(4), "HU", InputError, "dtype"),
        (np.zeros((0, 2, 2)), np.eye(4), "HU", GeometryError, "empty"),
    ],
)
def test_invalid_volumes_raise_clear_errors(
    array: np.ndarray, affine: np.ndarray, unit: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as info:
        Volume(array, affine, unit)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_last_row_must_be_homogeneous() -> None:
    affine = np.eye(4)
    affine[3, 0] = 1.0
    with pytest.raises(GeometryError, match=r"last row must be \[0, 0, 0, 1\]"):
        Volume(np.zeros((2, 2, 2)), affine, "HU")


def test_from_spacing_validates() -> None:
    with pytest.raises(GeometryError, match="spacing_mm must be 3 positive"):
        Volume.from_spacing(np.zeros((2, 2, 2)), (1.0, -1.0, 1.0), unit="HU")
    with pytest.raises(GeometryError, match="origin_mm must be 3 finite"):
        Volume.from_spacing(np.zeros((2, 2, 2)), (1.0, 1.0, 1.0), (0.0, np.inf, 0.0), unit="HU")


def test_label_volume_accepts_integers_and_booleans() -> None:
    assert Volume.from_spacing(np.zeros((2, 2, 2), dtype=np.uint8), (1, 1, 1), unit="label").unit == "label"
    assert Volume.from_spacing(np.zeros((2, 2, 2), dtype=bool), (1, 1, 1), unit="label").array.dtype == bool


def test_metadata_validation() -> None:
    with pytest.raises(InputError, match="frame_uid"):
        Volume(np.zeros((2, 2, 2)), np.eye(4), "HU", frame_uid="")
    with pytest.raises(InputError, match="acquisition_datetime"):
        Volume(np.zeros((2, 2, 2)), np.eye(4), "HU", acquisition_datetime="2026-01-01")  # type: ignore[arg-type]


def test_same_grid() -> None:
    a = Volume(np.zeros((3, 4, 5)), oblique_affine(), "HU")
    b = Volume(np.ones((3, 4, 5), dtype=np.int16), oblique_affine(), "label")
    assert a.same_grid(b)
    shifted = oblique_affine()
    shifted[0, 3] += 0.1
    assert not a.same_grid(Volume(np.zeros((3, 4, 5)), shifted, "HU"))
    assert not a.same_grid(Volume(np.zeros((3, 4, 6)), oblique_affine(), "HU"))


def test_index_of_validates_shape() -> None:
    vol = Volume(np.zeros((2, 2, 2)), np.eye(4), "HU")
    with pytest.raises(GeometryError, match="last axis of length 3"):
        vol.index_of([1.0, 2.0])
    with pytest.raises(GeometryError, match="last axis of length 3"):
        vol.world_coordinates_mm([[1.0, 2.0]])
