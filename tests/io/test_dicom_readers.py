"""DICOM readers on files made by others (pydicom's test files) and clear errors for bad input."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest

from theradose.errors import DicomError, InputError
from theradose.imaging import Volume
from theradose.io.dicom import PatientInfo, discover_series, read_series, write_ct_series

Data = Callable[[str], Path]


def test_real_ct_slice(testdata: Data) -> None:
    """CT_small.dcm (NEMA WG04 CT1, downsized): RescaleIntercept -1024, slope 1, 0.661468 mm pixels."""
    path = testdata("CT_small.dcm")
    vol = read_series(path)
    assert vol.unit == "HU"
    assert vol.shape == (1, 128, 128)
    # Values copied from the file header (dcmdump): ImagePositionPatient and PixelSpacing.
    np.testing.assert_allclose(vol.origin_mm, (-158.135803, -179.035797, -75.699997), atol=1e-6)
    assert vol.spacing_mm[1:] == pytest.approx((0.661468, 0.661468))
    assert vol.spacing_mm[0] == pytest.approx(5.0)  # single slice: SliceThickness
    raw = pydicom.dcmread(path).pixel_array.astype(np.float32)
    np.testing.assert_array_equal(vol.array[0], raw - 1024.0)
    assert vol.frame_uid == "1.3.6.1.4.1.5962.1.4.1.1.20040119072730.12322"


def test_real_rtdose(testdata: Data) -> None:
    """rtdose.dcm: 15 frames of 10x10, 10 mm pixels, GridFrameOffsetVector 0..70 mm, DoseGridScaling 1e-6."""
    path = testdata("rtdose.dcm")
    vol = read_series(path)
    assert vol.shape == (15, 10, 10)
    assert vol.unit == "1"  # DoseUnits RELATIVE
    assert vol.spacing_mm == pytest.approx((5.0, 10.0, 10.0))
    np.testing.assert_allclose(vol.origin_mm, (189.43125, 199.43125, -761.87), atol=1e-6)
    np.testing.assert_allclose(vol.world_coordinates_mm([14, 0, 0]), (189.43125, 199.43125, -761.87 + 70.0))
    raw = pydicom.dcmread(path).pixel_array.astype(np.float64)
    np.testing.assert_allclose(vol.array, raw * 1e-6, rtol=1e-6)


def test_real_files_are_discovered(tmp_path: Path, testdata: Data) -> None:
    for name in ("CT_small.dcm", "rtdose.dcm", "rtstruct.dcm", "liver.dcm", "rtplan.dcm"):
        shutil.copy(testdata(name), tmp_path / name)
    found = {s.modality: s for s in discover_series(tmp_path)}
    assert {"CT", "RTDOSE", "RTSTRUCT", "SEG", "RTPLAN"} <= set(found)
    assert found["CT"].shape == (1, 128, 128)
    assert found["RTSTRUCT"].shape is None and not found["RTSTRUCT"].is_image
    with pytest.raises(DicomError, match="image series: choose one with series_uid"):
        read_series(tmp_path)
    vol = read_series(tmp_path, series_uid=found["RTDOSE"].series_uid)
    assert vol.shape == (15, 10, 10)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("MR_truncated.dcm", "truncated"),
        ("rtstruct.dcm", "RT Structure Set"),
        ("liver.dcm", "Segmentation"),
        ("JPEG2000_UNC.dcm", "whole body image"),
        ("rtplan.dcm", "RT Plan"),
    ],
)
def test_unusable_real_files_give_one_line_errors(testdata: Data, name: str, match: str) -> None:
    with pytest.raises(DicomError, match=match) as info:
        read_series(testdata(name))
    assert "\n" not in str(info.value)


def test_folder_errors(tmp_path: Path, testdata: Data) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_series(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hello")
    with pytest.raises(DicomError, match="no DICOM files found"):
        read_series(empty)
    with pytest.raises(DicomError, match="not a DICOM file"):
        read_series(empty / "readme.txt")
    plans = tmp_path / "plans"
    plans.mkdir()
    shutil.copy(testdata("rtplan.dcm"), plans / "plan.dcm")
    with pytest.raises(DicomError, match="no image series"):
        read_series(plans)


def test_missing_tags_and_inconsistent_series(tmp_path: Path) -> None:
    ct = Volume.from_spacing(np.zeros((3, 4, 4)), (2.0, 1.0, 1.0), unit="HU")
    files = write_ct_series(ct, tmp_path / "ct", patient=PatientInfo())
    ds = pydicom.dcmread(files[1])
    del ds.PixelSpacing
    ds.save_as(files[1])
    with pytest.raises(DicomError, match="PixelSpacing"):
        read_series(tmp_path / "ct")
    files = write_ct_series(ct, tmp_path / "gap", patient=PatientInfo())  # slices at z = 0, 2, 4 mm
    extra = pydicom.dcmread(files[0])
    extra.ImagePositionPatient = [0.0, 0.0, 10.0]
    extra.SOPInstanceUID = "1.2.3.9.1"
    extra.save_as(tmp_path / "gap" / "extra.dcm")
    with pytest.raises(DicomError, match="non-uniform slice spacing"):
        read_series(tmp_path / "gap")
    dup = pydicom.dcmread(files[0])
    dup.SOPInstanceUID = "1.2.3.9.2"
    dup.save_as(tmp_path / "gap" / "extra.dcm")
    with pytest.raises(DicomError, match="same position"):
        read_series(tmp_path / "gap")


def test_bad_numbers_are_input_errors(testdata: Data) -> None:
    with pytest.raises(InputError, match="calibration_cps_per_mbq must be positive"):
        read_series(testdata("CT_small.dcm"), calibration_cps_per_mbq=-1.0)
    with pytest.raises(InputError, match="applies to SPECT counts"):
        read_series(testdata("CT_small.dcm"), calibration_cps_per_mbq=5.0)


def test_real_enhanced_ct(testdata: Data) -> None:
    """eCT_Supplemental.dcm (NEMA enhanced CT, 2 frames): geometry and rescale from functional groups.

    Per-frame positions (99.5, -301.5, -159) and (..., -149) mm, IOP (-1, 0, 0, 0, 1, 0), 0.388672 mm pixels,
    Pixel Value Transformation intercept -1024 with Rescale Type 'US' (a derived perfusion map, not HU).
    """
    path = testdata("eCT_Supplemental.dcm")
    vol = read_series(path)
    assert vol.shape == (2, 512, 512)
    assert vol.unit == "1"
    # Slices are ordered along the plane normal X x Y = (0, 0, -1): the frame at z = -149 mm comes first.
    np.testing.assert_allclose(vol.origin_mm, (99.5, -301.5, -149.0))
    np.testing.assert_allclose(vol.world_coordinates_mm([1, 0, 1]), (99.5 - 0.388672, -301.5, -159.0))
    raw = pydicom.dcmread(path).pixel_array.astype(np.float32)
    np.testing.assert_array_equal(vol.array, raw[::-1] - 1024.0)


def test_every_shipped_pydicom_file_reads_or_fails_cleanly(tmp_path: Path) -> None:
    """All DICOM files shipped with pydicom/pydicom-data (colour, compressed, secondary capture, RT, MR,
    malformed VRs, ...): discovery works and reading each image series either succeeds or raises
    a one-line DicomError; never another exception, never a warning (pytest turns warnings into errors)."""
    import glob

    import pydicom.data

    roots = {Path(pydicom.data.__file__).parent / "test_files"}
    roots |= {Path(str(p)).parent for p in [pydicom.data.get_testdata_file("liver.dcm", download=False)] if p}
    for root in roots:
        for path in glob.glob(str(root / "*.dcm")):
            shutil.copy(path, tmp_path / Path(path).name)
    found = discover_series(tmp_path)
    assert len(found) > 30
    readable = 0
    for series in found:
        if not series.is_image:
            continue
        try:
            read_series(list(series.files)[:1])
            readable += 1
        except DicomError as exc:
            assert "\n" not in str(exc)
    assert readable >= 4  # CT_small, eCT_Supplemental, explicit_VR-UN, rtdose at least


def test_localizer_in_ct_series_is_left_out(tmp_path: Path) -> None:
    ct = Volume.from_spacing(np.full((3, 4, 4), 20.0), (2.0, 1.0, 1.0), unit="HU")
    files = write_ct_series(ct, tmp_path, patient=PatientInfo())
    scout = pydicom.dcmread(files[0])
    scout.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.4242"
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]  # coronal scout
    scout.save_as(tmp_path / "scout.dcm")
    vol = read_series(tmp_path)
    assert vol.shape == (3, 4, 4)
    assert discover_series(tmp_path)[0].shape == (3, 4, 4)
