"""DICOM writers: CT series, quantitative NM (SPECT) and PET series, RT Dose.

Every object is written as Explicit VR Little Endian Part 10 files and is checked with ``dciodvfy``
(dicom3tools) in the test-suite. Pixel values are stored as 16-bit integers with a rescale slope (RT Dose:
32-bit with ``DoseGridScaling``). The slope is the largest magnitude divided by the integer range, so a
series read back and written again reproduces its values to float32 precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import GeometryError, InputError
from theradose.imaging.volume import Volume
from theradose.io.dicom.geometry import normalised_for_stack, plane_geometry
from theradose.io.dicom.info import (
    UID_PREFIX,
    PatientInfo,
    RadiopharmaceuticalInfo,
    code_for_nuclide,
    format_da,
    format_dt,
    format_tm,
    ms_to_seconds,
    seconds_to_ms,
    tz_offset_text,
)
from theradose.units import mbq_to_bq

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
RRDSR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.68"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
#: Implementation Class UID written into the file meta information.
IMPLEMENTATION_CLASS_UID = UID_PREFIX + "1"
IMPLEMENTATION_VERSION_NAME = "THERADOSE_0_1"
MANUFACTURER = "theradose"

_UINT16_MAX = 65535
_INT16_MAX = 32767
_INT32_MAX = 2147483647


def new_uid() -> str:
    """A fresh DICOM UID under theradose's root."""
    from pydicom.uid import generate_uid

    return str(generate_uid(prefix=UID_PREFIX))


def _ds_number(value: float) -> str:
    """A decimal string (VR DS, ≤ 16 characters) for ``value``."""
    from pydicom.valuerep import format_number_as_ds

    return str(format_number_as_ds(float(value)))


@dataclass(frozen=True)
class _Quantised:
    pixels: npt.NDArray[np.integer[Any]]
    slope: float
    intercept: float
    signed: bool


def quantise(
    values: npt.ArrayLike,
    *,
    bits: Literal[16, 32] = 16,
    zero_intercept: bool = True,
    integers_as_is: bool = False,
) -> _Quantised:
    """Integers and a rescale slope (and intercept) representing ``values``: ``v ≈ q·slope + intercept``.

    With ``zero_intercept`` the slope is max|v| divided by the integer range (unsigned when no value is
    negative); the slope is rounded to a 16-character DS first so the written and the used slope agree.
    With ``integers_as_is`` integral values that fit into int16 are stored unscaled (CT HU).
    """
    data = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(data)):
        raise InputError("volume contains NaN or infinite values: replace them before writing DICOM")
    lo = float(data.min())
    hi = float(data.max())
    if integers_as_is and bits == 16 and np.array_equal(data, np.rint(data)) and lo >= -32768 and hi <= 32767:
        return _Quantised(data.astype(np.int16), 1.0, 0.0, True)
    if not zero_intercept:
        span = hi - lo
        slope = float(_ds_number(span / _UINT16_MAX)) if span > 0 else 1.0
        intercept = float(_ds_number(lo))
        q = np.clip(np.rint((data - intercept) / slope), 0, _UINT16_MAX).astype(np.uint16)
        return _Quantised(q, slope, intercept, False)
    signed = lo < 0
    if bits == 32:
        if signed:
            raise InputError(
                f"values must not be negative for 32-bit storage; got a minimum of {lo:g}: clip them"
            )
        top = _INT32_MAX  # stored as unsigned, but readable as signed as well
        dtype: type[np.integer[Any]] = np.uint32
    else:
        top = _INT16_MAX if signed else _UINT16_MAX
        dtype = np.int16 if signed else np.uint16
    peak = max(abs(lo), abs(hi))
    slope = float(_ds_number(peak / top)) if peak > 0 else 1.0
    while peak / slope > top + 0.5:  # DS rounding went down: nudge the slope up
        slope = float(_ds_number(slope * (1.0 + 1e-12)))
    q = np.clip(np.rint(data / slope), -top if signed else 0, top).astype(dtype)
    return _Quantised(q, slope, 0.0, signed)


# ------------------------------------------------------------------------------------------------ shared
def _local(value: datetime | None, reference: datetime | None) -> datetime | None:
    """``value`` expressed in the time zone of ``reference`` (DICOM DA/TM carry no zone)."""
    if value is None:
        return None
    if value.tzinfo is not None and reference is not None and reference.tzinfo is not None:
        return value.astimezone(reference.tzinfo)
    return value


def _file_meta(sop_class_uid: str, sop_instance_uid: str) -> Any:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = UID(EXPLICIT_VR_LITTLE_ENDIAN)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


@dataclass(frozen=True)
class _Context:
    patient: PatientInfo
    study_uid: str
    series_uid: str
    frame_uid: str
    series_number: int
    series_description: str
    study_datetime: datetime | None
    series_datetime: datetime | None
    manufacturer: str


def _base_dataset(ctx: _Context, sop_class_uid: str, modality: str, instance_number: int) -> Any:
    """Patient, General Study, General Series, Frame of Reference, General Equipment and SOP Common."""
    from pydicom.dataset import Dataset

    sop_instance_uid = new_uid()
    ds = Dataset()
    ds.file_meta = _file_meta(sop_class_uid, sop_instance_uid)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    reference = ctx.series_datetime or ctx.study_datetime
    offset = tz_offset_text(reference) if reference is not None else None
    if offset is not None:
        ds.TimezoneOffsetFromUTC = offset
    study_time = _local(ctx.study_datetime, reference)
    series_time = _local(ctx.series_datetime, reference)
    ds.StudyDate = format_da(study_time) if study_time else ""
    ds.StudyTime = format_tm(study_time) if study_time else ""
    if series_time is not None:
        ds.SeriesDate = format_da(series_time)
        ds.SeriesTime = format_tm(series_time)
        ds.ContentDate = format_da(series_time)
        ds.ContentTime = format_tm(series_time)
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = ctx.manufacturer
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = ""
    ds.SeriesDescription = ctx.series_description
    ds.PatientName = ctx.patient.name
    ds.PatientID = ctx.patient.patient_id
    ds.PatientBirthDate = format_da(ctx.patient.birth_date) if ctx.patient.birth_date else ""
    ds.PatientSex = ctx.patient.sex
    if ctx.patient.weight_kg is not None:
        ds.PatientWeight = _ds_number(ctx.patient.weight_kg)
    ds.StudyInstanceUID = ctx.study_uid
    ds.SeriesInstanceUID = ctx.series_uid
    ds.StudyID = "1"
    ds.Laterality = ""
    ds.SeriesNumber = ctx.series_number
    ds.InstanceNumber = instance_number
    ds.FrameOfReferenceUID = ctx.frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SoftwareVersions = IMPLEMENTATION_VERSION_NAME
    return ds


def _context(
    volume: Volume,
    *,
    patient: PatientInfo,
    study_uid: str | None,
    series_uid: str | None,
    frame_uid: str | None,
    series_number: int,
    series_description: str,
    study_datetime: datetime | None,
    manufacturer: str,
) -> _Context:
    if not isinstance(patient, PatientInfo):
        raise InputError(f"patient must be a PatientInfo; got {type(patient).__name__}")
    acquired = volume.acquisition_datetime
    return _Context(
        patient=patient,
        study_uid=study_uid or new_uid(),
        series_uid=series_uid or new_uid(),
        frame_uid=frame_uid or volume.frame_uid or new_uid(),
        series_number=int(series_number),
        series_description=series_description,
        study_datetime=study_datetime or acquired,
        series_datetime=acquired,
        manufacturer=manufacturer,
    )


def _set_pixels(ds: Any, q: _Quantised, rows: int, columns: int) -> None:
    bits = q.pixels.dtype.itemsize * 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if q.signed else 0
    ds.PixelData = np.ascontiguousarray(q.pixels, dtype=q.pixels.dtype.newbyteorder("<")).tobytes()


def _save(ds: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _out_dir(out_dir: str | Path) -> Path:
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"out_dir {str(folder)!r} exists and is not a folder: choose a folder path")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _check_unit(volume: Volume, allowed: Sequence[str], name: str) -> None:
    if not isinstance(volume, Volume):
        raise InputError(f"{name} must be a Volume; got {type(volume).__name__}")
    if volume.unit not in allowed:
        raise InputError(
            f"{name} must have unit {' or '.join(allowed)}; got {volume.unit!r}: convert it first"
        )


# ------------------------------------------------------------------------------------------------ CT
def write_ct_series(
    volume_hu: Volume,
    out_dir: str | Path,
    *,
    patient: PatientInfo,
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_uid: str | None = None,
    series_description: str = "CT",
    series_number: int = 1,
    study_datetime: datetime | None = None,
    kvp: float | None = 120.0,
    manufacturer: str = MANUFACTURER,
) -> list[Path]:
    """Write a CT volume in HU as a series of single-slice CT Image Storage files.

    Parameters
    ----------
    volume_hu : Volume
        CT numbers, unit ``"HU"``; any orientation with orthogonal in-plane axes (tilted stacks are
        written with per-slice positions). Integral values in the int16 range are stored unscaled,
        otherwise as unsigned 16-bit with RescaleSlope/Intercept.
    out_dir : path
        Folder for the files ``CT_0001.dcm`` ... (created).
    patient : PatientInfo
        Patient attributes.
    study_uid, series_uid, frame_uid : str, optional
        UIDs to use (new ones by default; ``frame_uid`` defaults to ``volume_hu.frame_uid``).
    series_description, series_number, study_datetime, kvp, manufacturer
        Descriptive attributes. Acquisition and series times come from ``volume_hu.acquisition_datetime``.

    Returns
    -------
    list of Path
        The written files, slice 0 first.
    """
    _check_unit(volume_hu, ["HU"], "volume_hu")
    folder = _out_dir(out_dir)
    ctx = _context(
        volume_hu,
        patient=patient,
        study_uid=study_uid,
        series_uid=series_uid,
        frame_uid=frame_uid,
        series_number=series_number,
        series_description=series_description,
        study_datetime=study_datetime,
        manufacturer=manufacturer,
    )
    geometry = plane_geometry(volume_hu)
    q = quantise(volume_hu.array, zero_intercept=False, integers_as_is=True)
    acquired = _local(volume_hu.acquisition_datetime, volume_hu.acquisition_datetime)
    paths: list[Path] = []
    n_slices, rows, columns = volume_hu.shape
    for k in range(n_slices):
        ds = _base_dataset(ctx, CT_IMAGE_STORAGE, "CT", k + 1)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        if acquired is not None:
            ds.AcquisitionDate = format_da(acquired)
            ds.AcquisitionTime = format_tm(acquired)
        ds.AcquisitionNumber = 1
        ds.KVP = _ds_number(kvp) if kvp is not None else ""
        ds.PatientPosition = "HFS"
        ds.ImagePositionPatient = [_ds_number(v) for v in geometry.positions_mm[k]]
        ds.ImageOrientationPatient = [_ds_number(v) for v in geometry.orientation]
        ds.PixelSpacing = [_ds_number(geometry.row_spacing_mm), _ds_number(geometry.column_spacing_mm)]
        ds.SliceThickness = _ds_number(geometry.slice_spacing_mm if n_slices > 1 else volume_hu.spacing_mm[0])
        ds.SliceLocation = _ds_number(float(np.dot(geometry.positions_mm[k], geometry.normal)))
        ds.RescaleIntercept = _ds_number(q.intercept)
        ds.RescaleSlope = _ds_number(q.slope)
        ds.RescaleType = "HU"
        _set_pixels(
            ds,
            _Quantised(q.pixels[k], q.slope, q.intercept, q.signed),
            rows,
            columns,
        )
        paths.append(_save(ds, folder / f"CT_{k + 1:04d}.dcm"))
    return paths


# ------------------------------------------------------------------------------------------------ NM
def _code_item(value: str, scheme: str, meaning: str) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _radiopharmaceutical_item(
    info: RadiopharmaceuticalInfo, *, reference: datetime | None, activity_in_bq: bool
) -> Any:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    from theradose.units import hours_to_seconds, mbq_to_bq

    item = Dataset()
    item.Radiopharmaceutical = info.radiopharmaceutical
    start = _local(info.injection_datetime, reference) or info.injection_datetime
    item.RadiopharmaceuticalStartTime = format_tm(start)
    item.RadiopharmaceuticalStartDateTime = format_dt(start)
    dose = mbq_to_bq(info.injected_activity_mbq) if activity_in_bq else info.injected_activity_mbq
    item.RadionuclideTotalDose = _ds_number(dose)
    item.RadionuclideHalfLife = _ds_number(hours_to_seconds(_half_life_h(info.nuclide)))
    code = code_for_nuclide(info.nuclide)
    if code is not None:
        item.RadionuclideCodeSequence = DicomSequence(
            [_code_item(code.code_value, code.coding_scheme, code.code_meaning)]
        )
    else:
        item.RadionuclideCodeSequence = DicomSequence([_code_item(info.nuclide, "99THERADOSE", info.nuclide)])
    return item


def _half_life_h(nuclide: str) -> float:
    from theradose.nuclides import get_nuclide

    return float(get_nuclide(nuclide).half_life_h)


def write_nm_series(
    volume_bqml: Volume,
    out_dir: str | Path,
    *,
    patient: PatientInfo,
    radiopharmaceutical: RadiopharmaceuticalInfo,
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_uid: str | None = None,
    series_description: str = "SPECT",
    series_number: int = 2,
    study_datetime: datetime | None = None,
    frame_duration_s: float | None = None,
    n_projections: int | None = None,
    n_detectors: int = 2,
    energy_windows_kev: Sequence[tuple[float, float]] = (),
    calibration_cps_per_mbq: float | None = None,
    manufacturer: str = MANUFACTURER,
    filename: str = "NM_0001.dcm",
) -> Path:
    """Write a reconstructed SPECT volume as one multi-frame NM Image Storage file (RECON TOMO).

    Parameters
    ----------
    volume_bqml : Volume
        Activity concentration (unit ``"Bq/mL"``, written with ``Units = BQML``, values referring to
        ``acquisition_datetime``, ``DecayCorrection = START``) or reconstructed counts (unit ``"counts"``,
        no Units; reading it back needs a calibration factor in cps/MBq). Slices must be perpendicular to
        the image planes; a volume stacked along −(X × Y) is flipped to +(X × Y).
    out_dir : path
        Folder for the file (created).
    patient, radiopharmaceutical : PatientInfo, RadiopharmaceuticalInfo
        Patient and administration; the activity is written in MBq (NM convention, PS3.3 C.8.4.10).
    frame_duration_s, n_projections, n_detectors : float, int, int
        Acquisition: time per projection in s, projections per detector head and number of heads,
        written to the Rotation Information Sequence. Required for a ``"counts"`` volume.
    energy_windows_kev : sequence of (lower, upper)
        Energy windows in keV.
    calibration_cps_per_mbq : float, optional
        For a ``"counts"`` volume: the system calibration factor. The pixels stay counts and a Real World
        Value Mapping to Bq/ml is added with slope 10⁶ / (T · CF · V_voxel[mL]) per count, T = frame
        duration × projections, so any reader that applies the mapping (theradose does) gets Bq/mL.
    study_uid, series_uid, frame_uid, series_description, series_number, study_datetime, manufacturer
        Identification; new UIDs by default.

    Returns
    -------
    Path
        The written file.
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    _check_unit(volume_bqml, ["Bq/mL", "counts"], "volume_bqml")
    if not isinstance(radiopharmaceutical, RadiopharmaceuticalInfo):
        raise InputError(
            f"radiopharmaceutical must be a RadiopharmaceuticalInfo; got {type(radiopharmaceutical).__name__}"
        )
    if volume_bqml.unit == "counts" and (frame_duration_s is None or n_projections is None):
        raise InputError(
            "a 'counts' volume needs frame_duration_s and n_projections "
            "so that it can be quantified later: pass both"
        )
    if frame_duration_s is not None and not frame_duration_s > 0:
        raise InputError(f"frame_duration_s must be positive; got {frame_duration_s!r}")
    if n_projections is not None and n_projections < 1:
        raise InputError(f"n_projections must be at least 1; got {n_projections!r}")
    if n_detectors < 1:
        raise InputError(f"n_detectors must be at least 1; got {n_detectors!r}")
    if calibration_cps_per_mbq is not None:
        if volume_bqml.unit != "counts":
            raise InputError("calibration_cps_per_mbq applies to a 'counts' volume only: drop it for Bq/mL")
        if not calibration_cps_per_mbq > 0:
            raise InputError(f"calibration_cps_per_mbq must be positive; got {calibration_cps_per_mbq!r}")
    volume = normalised_for_stack(volume_bqml)
    folder = _out_dir(out_dir)
    ctx = _context(
        volume,
        patient=patient,
        study_uid=study_uid,
        series_uid=series_uid,
        frame_uid=frame_uid,
        series_number=series_number,
        series_description=series_description,
        study_datetime=study_datetime,
        manufacturer=manufacturer,
    )
    geometry = plane_geometry(volume)
    n_slices, rows, columns = volume.shape
    quantitative = volume.unit == "Bq/mL"
    q = quantise(volume.array)
    acquired = _local(volume.acquisition_datetime, volume.acquisition_datetime)

    ds = _base_dataset(ctx, NM_IMAGE_STORAGE, "NM", 1)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    if acquired is not None:
        ds.AcquisitionDate = format_da(acquired)
        ds.AcquisitionTime = format_tm(acquired)
    ds.CountsAccumulated = ""
    ds.NumberOfFrames = n_slices
    ds.FrameIncrementPointer = [0x00540080]
    ds.SliceVector = list(range(1, n_slices + 1))
    ds.NumberOfSlices = n_slices
    ds.PixelSpacing = [_ds_number(geometry.row_spacing_mm), _ds_number(geometry.column_spacing_mm)]
    spacing = volume.spacing_mm[0]
    ds.SliceThickness = _ds_number(spacing)
    ds.SpacingBetweenSlices = _ds_number(spacing)
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = _ds_number(q.slope)
    if quantitative:
        ds.Units = "BQML"
        ds.DecayCorrection = "START"
        ds.CorrectedImage = ["DECY"]
        mapping = Dataset()
        mapping.LUTExplanation = "activity concentration"
        mapping.LUTLabel = "BQML"
        mapping.MeasurementUnitsCodeSequence = DicomSequence(
            [_code_item("Bq/ml", "UCUM", "Becquerels/milliliter")]
        )
        mapping.RealWorldValueFirstValueMapped = -_INT16_MAX if q.signed else 0
        mapping.RealWorldValueLastValueMapped = _INT16_MAX if q.signed else _UINT16_MAX
        mapping.RealWorldValueIntercept = 0.0
        mapping.RealWorldValueSlope = q.slope
        ds.RealWorldValueMappingSequence = DicomSequence([mapping])
    elif calibration_cps_per_mbq is not None:
        assert frame_duration_s is not None and n_projections is not None
        duration_s = ms_to_seconds(round(seconds_to_ms(frame_duration_s))) * n_projections
        bqml_per_count = mbq_to_bq(1.0 / (duration_s * calibration_cps_per_mbq)) / volume.voxel_volume_ml
        mapping = Dataset()
        mapping.LUTExplanation = f"counts to activity concentration, CF {calibration_cps_per_mbq:g} cps/MBq"[
            :64
        ]
        mapping.LUTLabel = "BQML"
        mapping.MeasurementUnitsCodeSequence = DicomSequence(
            [_code_item("Bq/ml", "UCUM", "Becquerels/milliliter")]
        )
        mapping.RealWorldValueFirstValueMapped = -_INT16_MAX if q.signed else 0
        mapping.RealWorldValueLastValueMapped = _INT16_MAX if q.signed else _UINT16_MAX
        mapping.RealWorldValueIntercept = 0.0
        mapping.RealWorldValueSlope = q.slope * bqml_per_count
        ds.RealWorldValueMappingSequence = DicomSequence([mapping])
    # NM Isotope module
    windows = []
    for lower, upper in energy_windows_kev:
        if not 0 < lower < upper:
            raise InputError(f"energy window ({lower}, {upper}) keV must satisfy 0 < lower < upper")
        window_range = Dataset()
        window_range.EnergyWindowLowerLimit = _ds_number(lower)
        window_range.EnergyWindowUpperLimit = _ds_number(upper)
        window = Dataset()
        window.EnergyWindowRangeSequence = DicomSequence([window_range])
        windows.append(window)
    ds.EnergyWindowInformationSequence = DicomSequence(windows)
    ds.NumberOfEnergyWindows = max(len(windows), 1)
    ds.RadiopharmaceuticalInformationSequence = DicomSequence(
        [_radiopharmaceutical_item(radiopharmaceutical, reference=acquired, activity_in_bq=False)]
    )
    # NM Detector module (geometry of the reconstructed planes)
    detector = Dataset()
    detector.ImagePositionPatient = [_ds_number(v) for v in geometry.positions_mm[0]]
    detector.ImageOrientationPatient = [_ds_number(v) for v in geometry.orientation]
    detector.CollimatorGridName = ""
    detector.CollimatorType = ""
    detector.FieldOfViewShape = ""
    detector.FieldOfViewDimensions = []
    detector.FocalDistance = []
    detector.XFocusCenter = []
    detector.YFocusCenter = []
    detector.ZoomFactor = []
    detector.CenterOfRotationOffset = []
    ds.DetectorInformationSequence = DicomSequence([detector])
    ds.NumberOfDetectors = 1
    # NM TOMO Acquisition module
    rotations = []
    if frame_duration_s is not None and n_projections is not None:
        rotation = Dataset()
        rotation.StartAngle = "0"
        rotation.AngularStep = _ds_number(360.0 / (n_projections * n_detectors))
        rotation.RotationDirection = "CW"
        rotation.ScanArc = _ds_number(360.0 / n_detectors)
        rotation.ActualFrameDuration = round(seconds_to_ms(frame_duration_s))
        rotation.NumberOfFramesInRotation = int(n_projections)
        rotations.append(rotation)
    ds.RotationInformationSequence = DicomSequence(rotations)
    ds.NumberOfRotations = max(len(rotations), 1)
    ds.TypeOfDetectorMotion = "STEP AND SHOOT"
    # NM/PET Patient Orientation and Acquisition Context modules (type 2, empty)
    ds.PatientOrientationCodeSequence = DicomSequence([])
    ds.PatientGantryRelationshipCodeSequence = DicomSequence([])
    ds.AcquisitionContextSequence = DicomSequence([])
    ds.LossyImageCompression = "00"
    _set_pixels(ds, q, rows, columns)
    return _save(ds, folder / filename)


# ------------------------------------------------------------------------------------------------ PET
def write_pet_series(
    volume_bqml: Volume,
    out_dir: str | Path,
    *,
    patient: PatientInfo,
    radiopharmaceutical: RadiopharmaceuticalInfo,
    frame_duration_s: float,
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_uid: str | None = None,
    series_description: str = "PET",
    series_number: int = 3,
    study_datetime: datetime | None = None,
    manufacturer: str = MANUFACTURER,
) -> list[Path]:
    """Write an activity-concentration volume as a PET Image Storage series (one file per slice).

    Values are stored per slice as 16-bit integers with their own Rescale Slope (intercept 0, as the PET
    Image module requires), ``Units = BQML`` and ``DecayCorrection = START``: the values refer to
    ``volume_bqml.acquisition_datetime``, written as the Series Date/Time. The administered activity is
    written in Bq (PS3.3 C.8.9.2).

    Parameters
    ----------
    volume_bqml : Volume
        Unit ``"Bq/mL"`` with ``acquisition_datetime`` set.
    frame_duration_s : float
        Acquisition time per bed position in s (ActualFrameDuration).
    patient, radiopharmaceutical, study_uid, series_uid, frame_uid, series_description, series_number,
    study_datetime, manufacturer
        As for :func:`write_nm_series`.

    Returns
    -------
    list of Path
        The written files, slice 0 first.
    """
    from pydicom.sequence import Sequence as DicomSequence

    _check_unit(volume_bqml, ["Bq/mL"], "volume_bqml")
    if volume_bqml.acquisition_datetime is None:
        raise InputError(
            "a PET series needs volume_bqml.acquisition_datetime (the decay-correction reference)"
        )
    if not frame_duration_s > 0:
        raise InputError(f"frame_duration_s must be positive; got {frame_duration_s!r}")
    folder = _out_dir(out_dir)
    ctx = _context(
        volume_bqml,
        patient=patient,
        study_uid=study_uid,
        series_uid=series_uid,
        frame_uid=frame_uid,
        series_number=series_number,
        series_description=series_description,
        study_datetime=study_datetime,
        manufacturer=manufacturer,
    )
    geometry = plane_geometry(volume_bqml)
    acquired = _local(volume_bqml.acquisition_datetime, volume_bqml.acquisition_datetime)
    assert acquired is not None
    n_slices, rows, columns = volume_bqml.shape
    item = _radiopharmaceutical_item(radiopharmaceutical, reference=acquired, activity_in_bq=True)
    item.RadionuclidePositronFraction = ""
    paths: list[Path] = []
    for k in range(n_slices):
        q = quantise(volume_bqml.array[k])
        ds = _base_dataset(ctx, PET_IMAGE_STORAGE, "PT", k + 1)
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.AcquisitionDate = format_da(acquired)
        ds.AcquisitionTime = format_tm(acquired)
        ds.Units = "BQML"
        ds.CountsSource = "EMISSION"
        ds.SeriesType = ["STATIC", "IMAGE"]
        ds.CorrectedImage = ["DECY", "ATTN", "SCAT"]
        ds.DecayCorrection = "START"
        ds.DecayFactor = "1"
        ds.RandomsCorrectionMethod = "NONE"
        ds.NumberOfSlices = n_slices
        ds.CollimatorType = "NONE"
        ds.FrameReferenceTime = "0"
        ds.ActualFrameDuration = round(seconds_to_ms(frame_duration_s))
        ds.ImageIndex = k + 1
        ds.RadiopharmaceuticalInformationSequence = DicomSequence([item])
        ds.PatientOrientationCodeSequence = DicomSequence([])
        ds.PatientGantryRelationshipCodeSequence = DicomSequence([])
        ds.ImagePositionPatient = [_ds_number(v) for v in geometry.positions_mm[k]]
        ds.ImageOrientationPatient = [_ds_number(v) for v in geometry.orientation]
        ds.PixelSpacing = [_ds_number(geometry.row_spacing_mm), _ds_number(geometry.column_spacing_mm)]
        ds.SliceThickness = _ds_number(
            geometry.slice_spacing_mm if n_slices > 1 else volume_bqml.spacing_mm[0]
        )
        ds.SliceLocation = _ds_number(float(np.dot(geometry.positions_mm[k], geometry.normal)))
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = _ds_number(q.slope)
        ds.LossyImageCompression = "00"
        _set_pixels(ds, q, rows, columns)
        paths.append(_save(ds, folder / f"PT_{k + 1:04d}.dcm"))
    return paths


# ------------------------------------------------------------------------------------------------ RT Dose
#: Patient module attributes copied from the source images into RT Dose (PS3.3 C.7.1.1), and the
#: General Study attributes that make it join their study (C.7.2.1).
PATIENT_MODULE = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex")
STUDY_MODULE = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
)
#: Largest stored RT Dose value: 2³¹ − 1, so that readers taking 32-bit pixels as signed read them right.
RT_DOSE_MAX_STORED = 2**31 - 1


def _source_images(reference_files: Sequence[str | Path]) -> Any:
    """The header of the first source image; :class:`InputError` unless all share study and frame."""
    from theradose.io.dicom.read import _dcmread

    if not reference_files:
        raise InputError("reference_files is empty: pass the image series the dose was computed on")
    headers = [_dcmread(Path(p), header_only=True) for p in reference_files]
    for keyword in ("StudyInstanceUID", "FrameOfReferenceUID", "PatientID"):
        values = {str(h.get(keyword, "")) for h in headers}
        if len(values) != 1 or not next(iter(values)):
            raise InputError(
                f"reference_files must be one series with one {keyword}; found {sorted(values)}: pass the "
                "files of the image series the dose was computed on"
            )
    return headers[0]


def write_rtdose(
    dose_gy: Volume,
    path: str | Path,
    *,
    patient: PatientInfo | None = None,
    reference_files: Sequence[str | Path] | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_uid: str | None = None,
    series_description: str = "Absorbed dose",
    series_number: int = 50,
    dose_type: Literal["PHYSICAL", "EFFECTIVE"] = "PHYSICAL",
    bits: Literal[16, 32] = 32,
    referenced_record_uid: str | None = None,
    comment: str = "",
    study_datetime: datetime | None = None,
    manufacturer: str = MANUFACTURER,
) -> Path:
    """Write an absorbed-dose volume (Gy) as one RT Dose object.

    Doses are stored as unsigned 32-bit integers with ``DoseGridScaling`` = max dose / (2³¹ − 1): the
    largest stored value fits a signed 32-bit integer too, so readers that take the pixels as signed
    read the same doses; the stored dose is exact to 1 part in 2·10⁹ of the maximum (``bits=16``: 1 part
    in 65535, for systems that cannot read 32-bit RT Dose). The grid is described by
    ``ImagePositionPatient``, ``ImageOrientationPatient``, ``PixelSpacing`` and a relative
    ``GridFrameOffsetVector`` (PS3.3 C.8.8.3).

    Parameters
    ----------
    dose_gy : Volume
        Unit ``"Gy"``, non-negative; slices perpendicular to the image planes.
    path : path
        Output file.
    patient : PatientInfo, optional
        Patient attributes; needed without ``reference_files``. With them, it is only checked: a
        different patient ID is refused.
    reference_files : sequence of path, optional
        The image series the dose was computed on (e.g. the SPECT of the reference time point). The RT
        Dose then joins its study (Study Instance UID, date, time, ID, accession number) and its frame of
        reference, and copies its patient module (name, ID, birth date, sex), so that a PACS files the
        dose with the images. ``dose_gy.frame_uid``, when set, must be that frame of reference.
    dose_type : {"PHYSICAL", "EFFECTIVE"}
        ``EFFECTIVE`` for radiobiologically weighted doses (e.g. EQD2).
    referenced_record_uid : str, optional
        SOP Instance UID of the record of the administration (e.g. a Radiopharmaceutical Radiation Dose
        SR); then ``DoseSummationType = RECORD`` references it. Without it ``PLAN_OVERVIEW`` is written:
        DICOM has no summation type for radiopharmaceutical therapy, and it is the one that needs no
        referenced RT Plan.
    study_uid, series_uid, frame_uid, series_description, series_number, comment, study_datetime,
    manufacturer
        Identification (``study_uid`` and ``frame_uid`` only without ``reference_files``).
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    _check_unit(dose_gy, ["Gy"], "dose_gy")
    if dose_type not in ("PHYSICAL", "EFFECTIVE"):
        raise InputError(f"dose_type must be 'PHYSICAL' or 'EFFECTIVE'; got {dose_type!r}")
    source = None
    if reference_files is not None:
        if study_uid is not None or frame_uid is not None:
            raise InputError("study_uid and frame_uid come from reference_files: pass one or the other")
        source = _source_images(reference_files)
        frame_uid = str(source.FrameOfReferenceUID)
        study_uid = str(source.StudyInstanceUID)
        if dose_gy.frame_uid is not None and dose_gy.frame_uid != frame_uid:
            raise GeometryError(
                f"dose_gy is in frame of reference {dose_gy.frame_uid}, the reference images in {frame_uid}: "
                "compute the dose on the grid of those images or pass the images it was computed on"
            )
        if patient is not None and patient.patient_id != str(source.PatientID):
            raise InputError(
                f"patient_id {patient.patient_id!r} is not the PatientID {str(source.PatientID)!r} of the "
                "reference images: the dose would be filed under another patient"
            )
        if patient is None:
            patient = PatientInfo(patient_id=str(source.PatientID))
    if patient is None:
        raise InputError("pass patient (PatientInfo) or reference_files (the images the dose belongs to)")
    out = Path(path)
    volume = normalised_for_stack(dose_gy)
    ctx = _context(
        volume,
        patient=patient,
        study_uid=study_uid,
        series_uid=series_uid,
        frame_uid=frame_uid,
        series_number=series_number,
        series_description=series_description,
        study_datetime=study_datetime,
        manufacturer=manufacturer,
    )
    geometry = plane_geometry(volume)
    n_slices, rows, columns = volume.shape
    if bits not in (16, 32):
        raise InputError(f"bits must be 16 or 32; got {bits!r}")
    q = quantise(volume.array, bits=bits)
    if q.signed:
        raise InputError("dose values must not be negative: clip them before writing RT Dose")
    ds = _base_dataset(ctx, RT_DOSE_STORAGE, "RTDOSE", 1)
    if source is not None:
        for keyword in (*PATIENT_MODULE, *STUDY_MODULE):
            if keyword in source:
                ds[keyword] = source[keyword]
            elif keyword in ds:
                del ds[keyword]
        for keyword in ("PatientName", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime"):
            if keyword not in ds:  # Type 2: present, empty when the images have none
                setattr(ds, keyword, "")
        if "PatientWeight" in ds:
            del ds.PatientWeight
    ds.ImagePositionPatient = [_ds_number(v) for v in geometry.positions_mm[0]]
    ds.ImageOrientationPatient = [_ds_number(v) for v in geometry.orientation]
    ds.PixelSpacing = [_ds_number(geometry.row_spacing_mm), _ds_number(geometry.column_spacing_mm)]
    ds.SliceThickness = _ds_number(volume.spacing_mm[0])
    ds.NumberOfFrames = n_slices
    ds.FrameIncrementPointer = [0x3004000C]
    ds.GridFrameOffsetVector = [_ds_number(k * volume.spacing_mm[0]) for k in range(n_slices)]
    ds.DoseUnits = "GY"
    ds.DoseType = dose_type
    if referenced_record_uid:
        record = Dataset()
        record.ReferencedSOPClassUID = RRDSR_STORAGE
        record.ReferencedSOPInstanceUID = referenced_record_uid
        ds.DoseSummationType = "RECORD"
        ds.ReferencedTreatmentRecordSequence = DicomSequence([record])
    else:
        ds.DoseSummationType = "PLAN_OVERVIEW"
    ds.DoseGridScaling = _ds_number(q.slope)
    ds.DoseComment = comment[:64]
    ds.TissueHeterogeneityCorrection = ["IMAGE"]
    ds.OperatorsName = ""
    del ds.Laterality
    _set_pixels(ds, q, rows, columns)
    return _save(ds, out)


__all__ = [
    "CT_IMAGE_STORAGE",
    "NM_IMAGE_STORAGE",
    "PET_IMAGE_STORAGE",
    "RT_DOSE_STORAGE",
    "new_uid",
    "quantise",
    "write_ct_series",
    "write_nm_series",
    "write_pet_series",
    "write_rtdose",
]
