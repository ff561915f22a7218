"""RTSTRUCT and SEG: real files made by others, round trips on our series, dciodvfy validity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from theradose.errors import DicomError, GeometryError, InputError
from theradose.imaging import Volume
from theradose.imaging.resample import resample
from theradose.io.dicom import PatientInfo, write_ct_series
from theradose.io.masks import (
    labels_to_masks,
    masks_to_labels,
    read_rtstruct,
    read_seg,
    write_rtstruct,
    write_seg,
)

Data = Callable[[str], Path]
Validator = Callable[[Path], list[str]]
RTSTRUCT_FRAME = "1.2.826.0.1.3680043.8.498.2010020400001.2"


def test_real_rtstruct_rectangle(testdata: Data) -> None:
    """rtstruct.dcm 'patient': rectangles x in [-200, 200], y in [-150, 150] mm at z = -200, -190, -180 mm."""
    grid = Volume.from_spacing(
        np.zeros((5, 170, 215)),
        (5.0, 2.0, 2.0),
        (-213.0, -167.0, -200.0),
        unit="HU",
        frame_uid=RTSTRUCT_FRAME,
    )
    masks = read_rtstruct(testdata("rtstruct.dcm"), grid)
    assert set(masks) == {"patient"}  # the two isocentres are POINT ROIs
    # Centres strictly inside: 200 columns (-199..199) x 150 rows (-149..149) on each of the 5 slices
    # (contour spacing 10 mm -> every slice lies within 5 mm of a contour plane).
    np.testing.assert_array_equal(masks["patient"].array.sum(axis=(1, 2)), [30000] * 5)
    # Coarser SPECT-like grid, 4.8-mm voxels, slices at z = -206, -201.2, ..., -172.4 mm: the first and the
    # last are more than 5 mm from every contour plane. In plane 84 columns (x = -199.2 .. 199.2) and
    # 62 rows (y = -146.4 .. 146.4) lie inside: 5208 voxels per slice.
    spect = Volume.from_spacing(
        np.zeros((8, 80, 100)),
        (4.8, 4.8, 4.8),
        (-237.6, -189.6, -206.0),
        unit="Bq/mL",
        frame_uid=RTSTRUCT_FRAME,
    )
    coarse = read_rtstruct(testdata("rtstruct.dcm"), spect)["patient"].array.sum(axis=(1, 2))
    np.testing.assert_array_equal(coarse, [0] + [5208] * 6 + [0])
    with pytest.raises(DicomError, match="not in"):
        read_rtstruct(testdata("rtstruct.dcm"), grid, names=["liver"])
    other = Volume.from_spacing(np.zeros((2, 2, 2)), (1, 1, 1), unit="HU", frame_uid="9.9")
    with pytest.raises(GeometryError, match="frame of reference"):
        read_rtstruct(testdata("rtstruct.dcm"), other)
    with pytest.raises(DicomError, match="not an RT Structure Set"):
        read_rtstruct(testdata("CT_small.dcm"), grid)


def ct_series(tmp_path: Path) -> tuple[list[Path], Volume]:
    ct = Volume.from_spacing(
        np.zeros((6, 24, 20)),
        (3.0, 2.0, 2.0),
        (-19.0, -23.0, 0.0),
        unit="HU",
        frame_uid="1.2.826.0.1.3680043.8.498.55",
    )
    files = write_ct_series(ct, tmp_path / "ct", patient=PatientInfo(patient_id="M1"))
    return files, ct


def shapes(ct: Volume) -> dict[str, Volume]:
    k, j, i = np.meshgrid(*[np.arange(n) for n in ct.shape], indexing="ij")
    ring = (
        ((j - 11.5) ** 2 + (i - 9.5) ** 2 <= 64)
        & ((j - 11.5) ** 2 + (i - 9.5) ** 2 >= 9)
        & (k >= 1)
        & (k <= 4)
    )
    box = (k == 2) & (j >= 2) & (j < 6) & (i >= 14) & (i < 18)
    return {"ring": ct.with_array(ring, unit="label"), "box": ct.with_array(box, unit="label")}


def test_rtstruct_round_trip(tmp_path: Path, dciodvfy: Validator) -> None:
    files, ct = ct_series(tmp_path)
    masks = shapes(ct)
    path = write_rtstruct(masks, tmp_path / "rs.dcm", reference_files=files)
    assert dciodvfy(path) == []
    back = read_rtstruct(path, ct)
    for name in masks:
        np.testing.assert_array_equal(back[name].array, masks[name].array)  # ring keeps its hole
    with pytest.raises(GeometryError, match="not on the reference series grid"):
        write_rtstruct(
            {"x": ct.crop((0, 0, 0), (6, 24, 19)).with_array(np.zeros((6, 24, 19), bool), unit="label")},
            tmp_path / "bad.dcm",
            reference_files=files,
        )
    with pytest.raises(InputError, match="no masks"):
        write_rtstruct({}, tmp_path / "none.dcm", reference_files=files)


def test_seg_round_trip_and_real_seg(tmp_path: Path, testdata: Data, dciodvfy: Validator) -> None:
    files, ct = ct_series(tmp_path)
    masks = shapes(ct)
    path = write_seg(masks, tmp_path / "seg.dcm", reference_files=files)
    assert dciodvfy(path) == []
    back = read_seg(path)
    assert set(back) == {"ring", "box"}
    for name in masks:
        on_ct = resample(back[name], ct, method="nearest")
        np.testing.assert_array_equal(on_ct.array, masks[name].array)
    liver = read_seg(testdata("liver.dcm"))  # real SEG: 3 frames of 512 x 512, one segment "Liver"
    assert set(liver) == {"Liver"}
    assert liver["Liver"].shape == (3, 512, 512) and liver["Liver"].array.any()
    with pytest.raises(DicomError, match="not a DICOM Segmentation"):
        read_seg(testdata("CT_small.dcm"))


def test_label_map_helpers(tmp_path: Path) -> None:
    _, ct = ct_series(tmp_path)
    masks = shapes(ct)
    labels, names = masks_to_labels(masks)
    assert names == {1: "ring", 2: "box"}
    split = labels_to_masks(labels, names)
    np.testing.assert_array_equal(split["box"].array, masks["box"].array)
