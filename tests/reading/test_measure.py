"""Region measurements on small synthetic PET volumes with analytically known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from theradose.errors import GeometryError, InputError
from theradose.imaging.volume import Volume
from theradose.reading.criteria import krenning_score
from theradose.reading.measure import measure_regions, measurements_to_table, sphere_offsets


def test_sphere_offsets_count_lattice_points() -> None:
    # 12 mm diameter on a 2 mm isotropic grid: integer points with |d| <= 3 -> 123 (OEIS A000605)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    assert len(sphere_offsets(affine, 12.0)) == 123
    # radius 1 voxel -> the centre and its 6 face neighbours (A000605: 7)
    assert len(sphere_offsets(affine, 4.0)) == 7
    # anisotropic 4 x 2 x 2 mm, radius 4 mm: along axis 0 only |d0| <= 1, axes 1-2 |d| <= 2:
    # d0 = 0: d1^2 + d2^2 <= 4 -> 13 points; d0 = +-1: d1^2 + d2^2 <= 0 -> 1 point each -> 15
    assert len(sphere_offsets(np.diag([4.0, 2.0, 2.0, 1.0]), 8.0)) == 15


def test_single_hot_voxel_peak_is_value_over_sphere_count() -> None:
    array = np.zeros((16, 16, 16))
    array[8, 8, 8] = 123.0
    pet = Volume.from_spacing(array, (2.0, 2.0, 2.0), unit="SUV")
    labels = np.zeros(array.shape, dtype=int)
    labels[8, 8, 8] = 1
    (m,) = measure_regions(pet, labels)
    assert m.suv_max == 123.0
    assert m.suv_peak == pytest.approx(123.0 / 123.0)  # mean of 123 sphere voxels, one hot
    assert m.volume_ml == pytest.approx(0.008)  # one 2x2x2 mm voxel
    assert m.peak_center_mm == (16.0, 16.0, 16.0)


def test_uniform_sphere_in_background_bqml_with_scales() -> None:
    # 32^3 grid of 2 mm voxels, sphere of radius 10 mm at 10 kBq/mL, background 1 kBq/mL
    n = 32
    k, j, i = np.indices((n, n, n))
    r_mm = 2.0 * np.sqrt((k - 16) ** 2 + (j - 16) ** 2 + (i - 16) ** 2)
    sphere = r_mm <= 10.0
    array = np.where(sphere, 10000.0, 1000.0)
    pet = Volume.from_spacing(array, (2.0, 2.0, 2.0), origin_mm=(-32.0, -32.0, -32.0), unit="Bq/mL")
    labels = Volume.from_spacing(
        sphere.astype(np.int16), (2.0, 2.0, 2.0), origin_mm=(-32.0, -32.0, -32.0), unit="label"
    )
    scale = 2.0e-4  # g/Bq -> 10000 Bq/mL = SUV 2.0
    (m,) = measure_regions(pet, labels, suv_scale=scale, sul_scale=1.5e-4, names={1: "L1"})
    assert m.suv_max == pytest.approx(2.0)
    assert m.suv_mean == pytest.approx(2.0)
    assert m.suv_sd == pytest.approx(0.0)
    # the 12 mm peak sphere fits inside the 20 mm sphere (centre voxel): peak = 2.0
    assert m.suv_peak == pytest.approx(2.0)
    assert m.volume_ml == pytest.approx(sphere.sum() * 0.008)
    # discretised volume within 5 % of 4/3 pi (1 cm)^3 = 4.18879 mL
    assert m.volume_ml == pytest.approx(4.18879, rel=0.05)
    assert m.total_lesion_uptake_ml == pytest.approx(2.0 * m.volume_ml)
    assert m.centroid_mm == pytest.approx((0.0, 0.0, 0.0), abs=1e-9)
    assert m.sul_peak == pytest.approx(1.5)  # 10000 Bq/mL x 1.5e-4


def test_peak_finds_the_hottest_sphere_not_the_hottest_voxel() -> None:
    # region = one slab; a single very hot voxel at one end (SUV 50, rest 0) and a 7 x 7 x 7 block of
    # SUV 10 at the other end: the 123-voxel sphere around the block centre lies fully in the block
    # (|d| <= 3) -> peak 10; the hot voxel gives only 50/123 = 0.41
    array = np.zeros((20, 20, 40))
    array[10, 10, 3] = 50.0
    array[7:14, 7:14, 27:34] = 10.0
    pet = Volume.from_spacing(array, (2.0, 2.0, 2.0), unit="SUV")
    labels = np.zeros(array.shape, dtype=int)
    labels[5:15, 5:15, 1:38] = 1
    (m,) = measure_regions(pet, labels)
    assert m.suv_max == 50.0
    assert m.suv_peak == pytest.approx(10.0)
    assert m.peak_center_mm == (60.0, 20.0, 20.0)  # column 30 -> x, row 10 -> y, slice 10 -> z


def test_threshold_volume_and_reference_table() -> None:
    array = np.zeros((10, 10, 10))
    array[2:4, 2:4, 2:4] = 8.0  # lesion core, 8 voxels
    array[4, 2:4, 2:4] = 2.0  # rim below the threshold, 4 voxels
    array[6:9, 6:9, 6:9] = 5.0  # "liver", 27 voxels
    pet = Volume.from_spacing(array, (1.0, 1.0, 1.0), unit="SUV")
    labels = np.zeros(array.shape, dtype=int)
    labels[2:5, 2:4, 2:4] = 1
    labels[6:9, 6:9, 6:9] = 2
    lesion, liver = measure_regions(pet, labels, names={1: "L1", 2: "liver"})
    assert lesion.n_voxels == 12
    assert lesion.suv_mean == pytest.approx((8 * 8.0 + 4 * 2.0) / 12)
    (core,) = measure_regions(pet, np.where(labels == 1, 1, 0), threshold_suv=4.0)
    assert core.n_voxels == 8 and core.volume_ml == pytest.approx(0.008)
    table = measurements_to_table([lesion, liver])
    assert [les.lesion_id for les in table.lesions] == ["L1"]
    assert table.reference_suv("liver", needed_for="test") == pytest.approx(5.0)
    # the measured table feeds the frameworks directly: SUVmax 8 > liver 5, no spleen -> error names spleen
    with pytest.raises(InputError, match="spleen"):
        krenning_score(table.lesions[0], table)


def test_bad_inputs() -> None:
    pet = Volume.from_spacing(np.ones((4, 4, 4)), (1.0, 1.0, 1.0), unit="Bq/mL")
    labels = np.ones((4, 4, 4), dtype=int)
    with pytest.raises(InputError, match="suv_scale"):
        measure_regions(pet, labels)
    with pytest.raises(GeometryError, match="shape"):
        measure_regions(pet, np.ones((4, 4, 5), dtype=int), suv_scale=1.0)
    other = Volume.from_spacing(labels, (2.0, 1.0, 1.0), unit="label")
    with pytest.raises(GeometryError, match="grid"):
        measure_regions(pet, other, suv_scale=1.0)
    ct = Volume.from_spacing(np.ones((4, 4, 4)), (1.0, 1.0, 1.0), unit="HU")
    with pytest.raises(InputError, match="unit"):
        measure_regions(ct, labels)
    with pytest.raises(InputError, match="threshold"):
        measure_regions(pet, labels, suv_scale=1.0, threshold_suv=5.0)


def test_measured_table_round_trips_through_csv(tmp_path: Path) -> None:
    from theradose.reading.lesions import read_lesion_csv, write_lesion_csv

    array = np.zeros((10, 10, 10))
    array[2:4, 2:4, 2:4] = 8.0
    array[6:9, 6:9, 6:9] = 5.0
    pet = Volume.from_spacing(array, (1.0, 1.0, 1.0), unit="SUV")
    labels = np.zeros(array.shape, dtype=int)
    labels[2:4, 2:4, 2:4] = 1
    labels[6:9, 6:9, 6:9] = 2
    table = measurements_to_table(measure_regions(pet, labels, names={1: "L1", 2: "liver"}))
    back = read_lesion_csv(write_lesion_csv(table, tmp_path / "measured.csv"))
    assert back.lesions[0].suv_max == 8.0
    assert back.lesions[0].volume_ml == pytest.approx(0.008)
    assert back.lesions[0].centroid_mm == pytest.approx((2.5, 2.5, 2.5))
    assert back.reference_suv("liver", needed_for="test") == 5.0
