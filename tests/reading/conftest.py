"""Fixtures for the reading tests: small synthesized PET DICOM files in vendor conventions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

PET_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.128"


def make_pet_dataset(
    *,
    manufacturer: str = "GE MEDICAL SYSTEMS",
    units: str = "BQML",
    decay_correction: str = "START",
    corrected: tuple[str, ...] = ("ATTN", "DECY", "SCAT", "DTIM"),
    weight_kg: float | None = 70.0,
    height_m: float | None = 1.75,
    sex: str = "M",
    dose_bq: float | None = 3.7e8,
    half_life_s: float | None = 6586.2,
    nuclide_meaning: str = "^18^Fluorine",
    study_date: str = "20260315",
    series_time: str = "090000",
    acquisition_time: str = "090000",
    start_time: str | None = "080000",
    start_datetime: str | None = None,
    series_uid: str | None = None,
    instance: int = 1,
    frame_reference_time_ms: float | None = None,
    frame_duration_ms: float | None = None,
    ge_scan_datetime: str | None = None,
    philips_suv_factor: float | None = None,
    philips_bqml_factor: float | None = None,
) -> Dataset:
    """A minimal PET image header (+ 2x2 pixels) with the attributes the SUV method reads."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = PET_SOP_CLASS
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = PET_SOP_CLASS
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "PT"
    ds.Manufacturer = manufacturer
    ds.PatientName = "Test^Reading"
    ds.PatientID = "READ01"
    ds.PatientSex = sex
    ds.PatientBirthDate = "19560101"
    ds.StudyTime = "075500"
    ds.StudyID = "1"
    ds.AccessionNumber = "ACC1"
    ds.ReferringPhysicianName = ""
    ds.SeriesNumber = 3
    if weight_kg is not None:
        ds.PatientWeight = weight_kg
    if height_m is not None:
        ds.PatientSize = height_m
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid or "1.2.826.0.1.3680043.8.498.2"
    ds.InstanceNumber = instance
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = study_date
    ds.SeriesTime = series_time
    ds.AcquisitionTime = acquisition_time
    ds.Units = units
    ds.DecayCorrection = decay_correction
    ds.CorrectedImage = list(corrected)
    if frame_reference_time_ms is not None:
        ds.FrameReferenceTime = frame_reference_time_ms
    if frame_duration_ms is not None:
        ds.ActualFrameDuration = int(frame_duration_ms)
    rp = Dataset()
    if dose_bq is not None:
        rp.RadionuclideTotalDose = dose_bq
    if half_life_s is not None:
        rp.RadionuclideHalfLife = half_life_s
    if start_time is not None:
        rp.RadiopharmaceuticalStartTime = start_time
    if start_datetime is not None:
        rp.RadiopharmaceuticalStartDateTime = start_datetime
    code = Dataset()
    code.CodeValue = "C-111A1"
    code.CodingSchemeDesignator = "SRT"
    code.CodeMeaning = nuclide_meaning
    rp.RadionuclideCodeSequence = [code]
    ds.RadiopharmaceuticalInformationSequence = [rp]
    if ge_scan_datetime is not None:
        block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
        block.add_new(0x0D, "DT", ge_scan_datetime)
    if philips_suv_factor is not None or philips_bqml_factor is not None:
        block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
        if philips_suv_factor is not None:
            block.add_new(0x00, "DS", f"{philips_suv_factor:.10g}")
        if philips_bqml_factor is not None:
            block.add_new(0x09, "DS", f"{philips_bqml_factor:.10g}")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleSlope = 1.0
    ds.RescaleIntercept = 0.0
    ds.PixelData = np.zeros((2, 2), dtype=np.uint16).tobytes()
    return ds


@pytest.fixture
def write_pet(tmp_path: Path) -> Callable[..., Path]:
    """Write a PET header built by :func:`make_pet_dataset` and return its path."""
    counter = {"n": 0}

    def _write(folder: str = "pet", **kwargs: Any) -> Path:
        counter["n"] += 1
        out = tmp_path / folder
        out.mkdir(exist_ok=True)
        ds = make_pet_dataset(**kwargs)
        path = out / f"img{counter['n']:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        return path

    return _write


def write_pet_series(
    folder: Path,
    activity_bqml: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float] = (4.0, 4.0, 4.0),
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    **header: Any,
) -> list[Path]:
    """Write a BQML PET series, one file per slice of ``activity_bqml`` (slice, row, column).

    Each slice gets its own RescaleSlope (max / 30000, as GE scanners do), so the stored integers differ
    from the activity by a per-slice factor.
    """
    folder.mkdir(parents=True, exist_ok=True)
    frame_uid = generate_uid()
    series_uid = header.pop("series_uid", None) or generate_uid()
    paths = []
    n_slices, rows, columns = activity_bqml.shape
    for k in range(n_slices):
        ds = make_pet_dataset(series_uid=series_uid, instance=k + 1, **header)
        plane = np.asarray(activity_bqml[k], dtype=np.float64)
        slope = float(plane.max()) / 30000.0 if plane.max() > 0 else 1.0
        ds.Rows, ds.Columns = rows, columns
        ds.PixelSpacing = [spacing_mm[1], spacing_mm[2]]
        ds.SliceThickness = spacing_mm[0]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [origin_mm[0], origin_mm[1], origin_mm[2] + k * spacing_mm[0]]
        ds.FrameOfReferenceUID = frame_uid
        ds.RescaleSlope = f"{slope:.10g}"
        ds.RescaleIntercept = 0
        ds.PixelData = np.round(plane / float(ds.RescaleSlope)).astype(np.uint16).tobytes()
        path = folder / f"slice{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
