"""RTSTRUCT and SEG: real files made by others, round trips on our series, dciodvfy validity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
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
    path = write_rtstruct(masks, tmp_path / "rs.dcm", reference_files=files, algorithm_type="MANUAL")
    assert dciodvfy(path) == []
    back = read_rtstruct(path, ct)
    for name in masks:
        np.testing.assert_array_equal(back[name].array, masks[name].array)  # ring keeps its hole
    ds = pydicom.dcmread(path)
    assert {r.ROIGenerationAlgorithm for r in ds.StructureSetROISequence} == {"MANUAL"}
    with pytest.raises(GeometryError, match="not on the reference series grid"):
        write_rtstruct(
            {"x": ct.crop((0, 0, 0), (6, 24, 19)).with_array(np.zeros((6, 24, 19), bool), unit="label")},
            tmp_path / "bad.dcm",
            reference_files=files,
            algorithm_type="MANUAL",
        )
    with pytest.raises(InputError, match="no masks"):
        write_rtstruct({}, tmp_path / "none.dcm", reference_files=files, algorithm_type="MANUAL")
    with pytest.raises(InputError, match="algorithm_type must be one of"):
        write_rtstruct(masks, tmp_path / "x.dcm", reference_files=files, algorithm_type="AI")  # type: ignore[arg-type]


def _union_of_filled_polygons(path: Path, ct: Volume, name: str) -> np.ndarray:
    """How a reader that fills every contour of a plane and takes the union rasterises ``name``."""
    from matplotlib.path import Path as PolygonPath

    ds = pydicom.dcmread(path)
    number = next(r.ROINumber for r in ds.StructureSetROISequence if r.ROIName == name)
    contours = next(c for c in ds.ROIContourSequence if c.ReferencedROINumber == number).ContourSequence
    out = np.zeros(ct.shape, dtype=bool)
    rows, columns = np.meshgrid(np.arange(ct.shape[1]), np.arange(ct.shape[2]), indexing="ij")
    centres = np.column_stack([columns.ravel(), rows.ravel()]).astype(float)
    for contour in contours:
        index = ct.index_of(np.asarray(contour.ContourData, dtype=float).reshape(-1, 3))
        k = round(float(index[0, 0]))
        polygon = PolygonPath(np.column_stack([index[:, 2], index[:, 1]]))
        out[k] |= polygon.contains_points(centres, radius=0.0).reshape(ct.shape[1:])
    return out


def test_rtstruct_holes_are_keyhole_contours(tmp_path: Path) -> None:
    """A ring is one contour per slice with its hole joined through a zero-width cut: a reader that fills
    every contour and takes the union (no even-odd rule) still sees the hole."""
    files, ct = ct_series(tmp_path)
    masks = shapes(ct)
    path = write_rtstruct(masks, tmp_path / "rs.dcm", reference_files=files, algorithm_type="MANUAL")
    ds = pydicom.dcmread(path)
    ring_number = next(r.ROINumber for r in ds.StructureSetROISequence if r.ROIName == "ring")
    ring = next(c for c in ds.ROIContourSequence if c.ReferencedROINumber == ring_number).ContourSequence
    assert len(ring) == 4  # slices 1-4, one polygon each (not an outer and an inner contour)
    union = _union_of_filled_polygons(path, ct, "ring")
    np.testing.assert_array_equal(union, masks["ring"].array)


def test_seg_round_trip_and_real_seg(tmp_path: Path, testdata: Data, dciodvfy: Validator) -> None:
    files, ct = ct_series(tmp_path)
    masks = shapes(ct)
    path = write_seg(masks, tmp_path / "seg.dcm", reference_files=files, algorithm_type="MANUAL")
    assert dciodvfy(path) == []
    back = read_seg(path)
    assert set(back) == {"ring", "box"}
    for name in masks:
        on_ct = resample(back[name], ct, method="nearest")
        np.testing.assert_array_equal(on_ct.array, masks[name].array)
    liver = read_seg(testdata("liver.dcm"))  # real SEG: 3 frames of 512 x 512, one segment "Liver"
    assert set(liver) == {"Liver"}
    assert liver["Liver"].shape == (5, 512, 512)  # its 3 frames and an empty slice either side
    assert liver["Liver"].array[1:4].any() and not liver["Liver"].array[[0, 4]].any()
    with pytest.raises(DicomError, match="not a DICOM Segmentation"):
        read_seg(testdata("CT_small.dcm"))


def test_seg_codes_colours_algorithm_and_empty_frames(tmp_path: Path) -> None:
    """Segments coded from the organ registry (SNOMED CT category, type, laterality), with its colours;
    MANUAL for a user's regions (no algorithm identification), AUTOMATIC with one; empty frames left out;
    patient, study and frame of reference those of the CT."""
    from theradose.organs import get_organ

    files, ct = ct_series(tmp_path)
    k = np.arange(ct.shape[0])[:, None, None]
    left = np.zeros(ct.shape, bool)
    left[2, 3:8, 3:8] = True
    lesion = np.zeros(ct.shape, bool)
    lesion[3, 10:14, 10:14] = True
    other = (k == 3) & np.ones(ct.shape, bool)
    other[:, :, 5:] = False
    masks = {
        "Left Kidney": ct.with_array(left, unit="label"),
        "lesion_2": ct.with_array(lesion, unit="label"),
        "hotspot": ct.with_array(other, unit="label"),
    }
    path = write_seg(masks, tmp_path / "seg.dcm", reference_files=files, algorithm_type="MANUAL")
    ds = pydicom.dcmread(path)
    kidney, tumour, unknown = ds.SegmentSequence
    assert kidney.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "91723000"  # Anatomical Structure
    assert kidney.SegmentedPropertyTypeCodeSequence[0].CodeValue == "64033007"  # Kidney
    modifier = kidney.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence[0]
    assert modifier.CodeValue == "7771000"  # Left
    assert list(kidney.RecommendedDisplayCIELabValue) == list(get_organ("kidney_left").display_cielab)
    assert tumour.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"  # Morph. abnormal
    assert tumour.SegmentedPropertyTypeCodeSequence[0].CodeValue == "108369006"  # Neoplasm
    assert unknown.SegmentedPropertyTypeCodeSequence[0].CodeValue == "85756007"  # Tissue: not an organ
    assert {s.SegmentAlgorithmType for s in ds.SegmentSequence} == {"MANUAL"}
    assert not any("SegmentationAlgorithmIdentificationSequence" in s for s in ds.SegmentSequence)
    assert int(ds.NumberOfFrames) == 3  # slices 2 and 3 only: kidney 1 frame, lesion and hotspot 1 each
    assert ds.StudyInstanceUID == pydicom.dcmread(files[0]).StudyInstanceUID
    assert ds.FrameOfReferenceUID == ct.frame_uid and ds.PatientID == "M1"
    back = read_seg(path)
    for name, mask in masks.items():
        np.testing.assert_array_equal(resample(back[name], ct, method="nearest").array, mask.array)
    auto = write_seg(masks, tmp_path / "auto.dcm", reference_files=files, algorithm_type="AUTOMATIC")
    segment = pydicom.dcmread(auto).SegmentSequence[0]
    assert segment.SegmentAlgorithmType == "AUTOMATIC"
    family = segment.SegmentationAlgorithmIdentificationSequence[0].AlgorithmFamilyCodeSequence[0]
    assert family.CodeValue == "123101"  # Neighborhood Analysis (CID 7162)


def test_label_map_helpers(tmp_path: Path) -> None:
    _, ct = ct_series(tmp_path)
    masks = shapes(ct)
    labels, names = masks_to_labels(masks)
    assert names == {1: "ring", 2: "box"}
    split = labels_to_masks(labels, names)
    np.testing.assert_array_equal(split["box"].array, masks["box"].array)
