"""Quantitative SPECT/PET reading across vendor conventions, with files built here by pydicom alone.

The conventions (where the plane geometry sits, how quantitative values are flagged, how the slice
distance is given, how decay correction is recorded) follow the DICOM NM and PET IODs (PS3.3 C.8.4, C.8.9)
and the variants that the vendors' exports are described to use:

* GE (Xeleris): ImagePositionPatient/ImageOrientationPatient at the top level, counts, SpacingBetweenSlices.
* Siemens (xSPECT Quant): geometry only in the Detector Information Sequence, Units = BQML with a Rescale
  Slope.
* Philips: geometry in the Detector Information Sequence, slice distance only in SliceThickness, counts.
* Hermes (Hybrid Recon): one NM file per slice with its own ImagePositionPatient, values mapped to Bq/ml
  by a Real World Value Mapping, decay-corrected to the administration (DecayCorrection = ADMIN).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from theradose.errors import DicomError
from theradose.imaging import Volume
from theradose.io.dicom import PatientInfo, RadiopharmaceuticalInfo, discover_series, read_series
from theradose.io.dicom.write import write_pet_series

TZ = timezone(timedelta(hours=2))
T_INJ = datetime(2026, 3, 2, 9, 0, tzinfo=TZ)
T_ACQ = datetime(2026, 3, 3, 9, 0, tzinfo=TZ)  # 24 h after injection
LU177_HALF_LIFE_S = 6.647 * 86400  # 6.647 d (ICRP 107)
NM_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
PET_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
IOP = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
IPP = [-100.0, -120.0, -50.0]


def base(sop_class: str, modality: str, manufacturer: str, series_uid: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.Manufacturer = manufacturer
    ds.PatientName = "Vendor^Test"
    ds.PatientID = "V1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.900"
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.901"
    ds.TimezoneOffsetFromUTC = "+0200"
    ds.SeriesDate = ds.AcquisitionDate = "20260303"
    ds.SeriesTime = ds.AcquisitionTime = "090000"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    item = Dataset()
    item.Radiopharmaceutical = "Lu-PSMA"
    item.RadiopharmaceuticalStartDateTime = "20260302090000"
    item.RadionuclideTotalDose = "7400"
    item.RadionuclideHalfLife = str(LU177_HALF_LIFE_S)
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "447553000", "SCT", "^177^Lutetium"
    item.RadionuclideCodeSequence = Sequence([code])
    ds.RadiopharmaceuticalInformationSequence = Sequence([item])
    return ds


def pixels(ds: Dataset, stored: np.ndarray) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = stored.astype("<u2").tobytes()


def rotation(frame_ms: int, frames: int) -> Sequence:
    item = Dataset()
    item.ActualFrameDuration = frame_ms
    item.NumberOfFramesInRotation = frames
    item.StartAngle, item.AngularStep, item.ScanArc, item.RotationDirection = "0", "3", "180", "CW"
    return Sequence([item])


def multiframe(stored: np.ndarray, manufacturer: str) -> Dataset:
    ds = base(NM_STORAGE, "NM", manufacturer, generate_uid())
    ds.NumberOfFrames = stored.shape[0]
    ds.NumberOfSlices = stored.shape[0]
    ds.FrameIncrementPointer = 0x00540080
    ds.SliceVector = list(range(1, stored.shape[0] + 1))
    ds.PixelSpacing = ["4.8", "4.8"]
    pixels(ds, stored)
    return ds


def detector(iop: list[float], ipp: list[float]) -> Sequence:
    item = Dataset()
    item.ImageOrientationPatient = iop
    item.ImagePositionPatient = ipp
    return Sequence([item])


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


STORED = (np.arange(4 * 6 * 5).reshape(4, 6, 5) * 10 + 100).astype(np.uint16)


def test_ge_top_level_geometry_and_counts(tmp_path: Path) -> None:
    ds = multiframe(STORED, "GE MEDICAL SYSTEMS")
    ds.ImageOrientationPatient = IOP
    ds.ImagePositionPatient = IPP
    ds.DetectorInformationSequence = detector(IOP, [0.0, 0.0, 0.0])  # top level takes precedence
    ds.SpacingBetweenSlices = "4.8"
    ds.SliceThickness = "9.6"  # ignored when SpacingBetweenSlices is present
    ds.RotationInformationSequence = rotation(25000, 60)
    path = save(ds, tmp_path / "ge.dcm")
    with pytest.raises(DicomError, match="uncalibrated counts"):
        read_series(path)
    vol = read_series(path, calibration_cps_per_mbq=9.5)
    np.testing.assert_allclose(vol.origin_mm, IPP)
    assert vol.spacing_mm == pytest.approx((4.8, 4.8, 4.8))
    # T = 60 x 25 s = 1500 s; voxel = 0.48^3 mL = 0.110592 mL; Bq/mL = counts / (1500 * 9.5) * 1e6 / 0.110592.
    expected = STORED.astype(float) / (1500 * 9.5) * 1e6 / 0.110592
    np.testing.assert_allclose(vol.array, expected, rtol=1e-6)
    assert vol.acquisition_datetime == T_ACQ
    # an explicit duration overrides the Rotation Information Sequence
    np.testing.assert_allclose(
        read_series(path, calibration_cps_per_mbq=9.5, acquisition_duration_s=750.0).array,
        2 * expected,
        rtol=1e-6,
    )


def test_siemens_detector_geometry_and_bqml(tmp_path: Path) -> None:
    ds = multiframe(STORED, "SIEMENS NM")
    ds.DetectorInformationSequence = detector(IOP, IPP)
    ds.SpacingBetweenSlices = "4.8"
    ds.Units = "BQML"
    ds.RescaleSlope = "12.5"
    ds.RescaleIntercept = "0"
    path = save(ds, tmp_path / "siemens.dcm")
    vol = read_series(path)
    assert vol.unit == "Bq/mL"
    np.testing.assert_allclose(vol.array, STORED * 12.5)
    np.testing.assert_allclose(
        vol.world_coordinates_mm([3, 5, 4]), [-100 + 4 * 4.8, -120 + 5 * 4.8, -50 + 3 * 4.8]
    )
    info = discover_series(path)[0]
    assert (info.nuclide, info.injected_activity_mbq, info.units) == ("Lu-177", 7400.0, "Bq/mL")


def test_philips_slice_thickness_only_and_oblique_detector(tmp_path: Path) -> None:
    ds = multiframe(STORED, "Philips Medical Systems")
    c, s = math.cos(math.radians(15)), math.sin(math.radians(15))
    iop = [c, s, 0.0, 0.0, 0.0, -1.0]  # coronal-ish planes: rows run towards the feet
    ds.DetectorInformationSequence = detector(iop, IPP)
    ds.SliceThickness = "4.8"
    ds.RotationInformationSequence = rotation(20000, 64)
    vol = read_series(save(ds, tmp_path / "philips.dcm"), calibration_cps_per_mbq=10.0)
    normal = np.cross(iop[:3], iop[3:])
    np.testing.assert_allclose(
        vol.world_coordinates_mm([2, 0, 0]), np.array(IPP) + 2 * 4.8 * normal, atol=1e-9
    )
    np.testing.assert_allclose(
        vol.world_coordinates_mm([0, 1, 1]), np.array(IPP) + 4.8 * np.array([c, s, -1.0])
    )


def test_negative_spacing_and_permuted_slice_vector(tmp_path: Path) -> None:
    ds = multiframe(STORED, "SIEMENS NM")
    ds.DetectorInformationSequence = detector(IOP, IPP)
    ds.SpacingBetweenSlices = "-4.8"
    ds.SliceVector = [2, 1, 4, 3]
    ds.Units = "BQML"
    ds.RescaleSlope = "1"  # Units BQML needs its slope (or a Real World Value Mapping)
    vol = read_series(save(ds, tmp_path / "neg.dcm"))
    np.testing.assert_allclose(vol.world_coordinates_mm([1, 0, 0]), [-100.0, -120.0, -54.8])
    np.testing.assert_array_equal(vol.array[0], STORED[1])  # frame 2 holds slice 1


def test_hermes_single_slices_rwv_and_admin_decay(tmp_path: Path) -> None:
    series_uid = generate_uid()
    for k in range(STORED.shape[0]):
        ds = base(NM_STORAGE, "NM", "HERMES", series_uid)
        ds.ImageType = ["DERIVED", "PRIMARY", "RECON TOMO", "EMISSION"]
        ds.ImageOrientationPatient = IOP
        ds.ImagePositionPatient = [IPP[0], IPP[1], IPP[2] + 4.8 * (3 - k)]  # files in reverse z order
        ds.PixelSpacing = ["4.8", "4.8"]
        ds.SliceThickness = "4.8"
        ds.DecayCorrection = "ADMIN"
        mapping = Dataset()
        unit = Dataset()
        unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = (
            "Bq/ml",
            "UCUM",
            "Becquerels/milliliter",
        )
        mapping.MeasurementUnitsCodeSequence = Sequence([unit])
        mapping.RealWorldValueSlope = 3.0
        mapping.RealWorldValueIntercept = 0.0
        ds.RealWorldValueMappingSequence = Sequence([mapping])
        ds.InstanceNumber = k + 1
        pixels(ds, STORED[k])
        save(ds, tmp_path / "hermes" / f"slice{k}.dcm")
    vol = read_series(tmp_path / "hermes")
    assert vol.shape == (4, 6, 5)
    # Values were corrected to the injection; 24 h later they are smaller by exp(-ln2 * 24 h / 159.528 h).
    decay = math.exp(-math.log(2) * 86400 / LU177_HALF_LIFE_S)
    np.testing.assert_allclose(vol.array[0], STORED[3] * 3.0 * decay, rtol=1e-6)
    np.testing.assert_allclose(vol.origin_mm, IPP)


def test_planar_and_gated_nm_are_refused(tmp_path: Path) -> None:
    ds = multiframe(STORED, "SIEMENS NM")
    ds.DetectorInformationSequence = detector(IOP, IPP)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"]
    with pytest.raises(DicomError, match="tomo image"):
        read_series(save(ds, tmp_path / "proj.dcm"))
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON GATED TOMO", "EMISSION"]
    ds.NumberOfSlices = 2
    with pytest.raises(DicomError, match="gated or multi-window"):
        read_series(save(ds, tmp_path / "gated.dcm"))
    ds.NumberOfSlices = 4
    del ds.DetectorInformationSequence
    with pytest.raises(DicomError, match="geometry unknown"):
        read_series(save(ds, tmp_path / "nogeo.dcm"))


def test_pet_round_trip_and_decay_conventions(tmp_path: Path, patient: PatientInfo) -> None:
    ga68 = RadiopharmaceuticalInfo("Ga-68", "68Ga-PSMA-11", 150.0, T_ACQ - timedelta(minutes=60))
    rng = np.random.default_rng(5)
    activity = rng.uniform(100.0, 20000.0, size=(3, 6, 6))
    pet = Volume.from_spacing(
        activity, (3.0, 4.0, 4.0), (0.0, 0.0, 0.0), unit="Bq/mL", acquisition_datetime=T_ACQ
    )
    files = write_pet_series(
        pet, tmp_path / "pet", patient=patient, radiopharmaceutical=ga68, frame_duration_s=180.0
    )
    back = read_series(tmp_path / "pet")
    assert back.acquisition_datetime == T_ACQ
    for k in range(3):  # per-slice slope: error below half a step of that slice's maximum
        assert np.max(np.abs(back.array[k] - activity[k])) <= activity[k].max() / 65535 / 2 * 1.0001
    ds = pydicom.dcmread(files[0])
    assert float(ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose) == pytest.approx(
        150e6
    )  # Bq
    half_life_s = float(ds.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife)
    lam_per_s = math.log(2) / half_life_s
    # ADMIN: stored values refer to the injection 60 min earlier -> decayed by exp(-lambda * 3600 s).
    for f in files:
        d = pydicom.dcmread(f)
        d.DecayCorrection = "ADMIN"
        d.save_as(f)
    admin = read_series(tmp_path / "pet")
    np.testing.assert_allclose(admin.array, back.array * math.exp(-lam_per_s * 3600), rtol=1e-6)
    # NONE: mean over a 180-s frame starting 0 s after the series time -> x lambda*T / (1 - exp(-lambda*T)).
    for f in files:
        d = pydicom.dcmread(f)
        d.DecayCorrection = "NONE"
        d.save_as(f)
    none = read_series(tmp_path / "pet")
    factor = lam_per_s * 180 / (1 - math.exp(-lam_per_s * 180))
    np.testing.assert_allclose(none.array, back.array * factor, rtol=1e-6)


def test_pet_counts_without_units_cannot_be_quantified(tmp_path: Path) -> None:
    ds = base(PET_STORAGE, "PT", "ANY", generate_uid())
    ds.ImageOrientationPatient = IOP
    ds.ImagePositionPatient = IPP
    ds.PixelSpacing = ["4", "4"]
    ds.SliceThickness = "4"
    ds.Units = "CNTS"
    pixels(ds, STORED[0])
    path = save(ds, tmp_path / "pt.dcm")
    with pytest.raises(DicomError, match=r"holds counts .* export it from the scanner with Units BQML"):
        read_series(path)


def test_pet_suv_units(tmp_path: Path) -> None:
    ds = base(PET_STORAGE, "PT", "ANY", generate_uid())
    ds.ImageOrientationPatient = IOP
    ds.ImagePositionPatient = IPP
    ds.PixelSpacing = ["4", "4"]
    ds.SliceThickness = "4"
    ds.Units = "GML"
    ds.DecayCorrection = "START"
    ds.RescaleSlope = "0.001"
    ds.RescaleIntercept = "0"
    pixels(ds, STORED[0])
    vol = read_series(save(ds, tmp_path / "suv.dcm"))
    assert vol.unit == "SUV"
    np.testing.assert_allclose(vol.array[0], STORED[0] * 0.001, rtol=1e-6)


def test_single_slice_nm_files_with_detector_geometry(tmp_path: Path) -> None:
    """One NM file per slice whose plane position sits only in the Detector Information Sequence."""
    series_uid = generate_uid()
    for k in (2, 0, 3, 1):  # written out of order
        ds = base(NM_STORAGE, "NM", "ANY", series_uid)
        ds.DetectorInformationSequence = detector(IOP, [IPP[0], IPP[1], IPP[2] + 4.8 * k])
        ds.PixelSpacing = ["4.8", "4.8"]
        ds.Units = "BQML"
        ds.RescaleSlope = "1"
        ds.NumberOfFrames = 1
        pixels(ds, STORED[k])
        save(ds, tmp_path / "nm" / f"s{k}.dcm")
    vol = read_series(tmp_path / "nm")
    np.testing.assert_array_equal(vol.array, STORED.astype(np.float32))
    np.testing.assert_allclose(vol.world_coordinates_mm([3, 0, 0]), [-100.0, -120.0, -50.0 + 3 * 4.8])
    planar = base(NM_STORAGE, "NM", "ANY", series_uid)
    planar.ImageType = ["ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION"]
    planar.DetectorInformationSequence = detector(IOP, IPP)
    planar.PixelSpacing = ["4.8", "4.8"]
    pixels(planar, STORED[0])
    with pytest.raises(DicomError, match="whole body image"):
        read_series([save(planar, tmp_path / "wb" / "a.dcm"), save(planar, tmp_path / "wb" / "b.dcm")])
