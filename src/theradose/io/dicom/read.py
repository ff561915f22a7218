"""DICOM readers: series discovery and CT / NM (SPECT) / PET / RT Dose volumes.

Geometry
--------
* Single-frame series (CT, PET, MR, single-slice NM): ``ImagePositionPatient`` of every file, sorted along
  the plane normal X × Y; the slice step is the vector between consecutive positions (gantry tilt kept).
* Multi-frame NM (``RECON TOMO``): ``ImagePositionPatient``/``ImageOrientationPatient`` from the top level
  (written so by GE) or else from the first item of the Detector Information Sequence (the NM IOD's
  place, used by Siemens, Philips and most others); frames ordered by the Slice Vector; frame k lies at
  ``S + k·SpacingBetweenSlices·(X × Y)`` (a negative SpacingBetweenSlices steps along −(X × Y));
  ``SliceThickness`` is used when SpacingBetweenSlices is absent.
* Enhanced multi-frame objects: per-frame Plane Position and shared Plane Orientation / Pixel Measures.
* RT Dose: ``GridFrameOffsetVector`` relative to ``ImagePositionPatient`` along the normal.

Quantification (NM and PET)
---------------------------
Values become activity concentration in Bq/mL referring to the volume's ``acquisition_datetime``:

1. ``Units`` = ``BQML`` (PET; Siemens xSPECT/Broad Quantification and theradose NM): stored value × Rescale
   Slope + Intercept.
2. A Real World Value Mapping item whose measurement unit is UCUM ``Bq/ml``: stored value × its slope +
   intercept (the NM IOD's way; used by quantitative exports without ``Units``).
3. Otherwise the pixels are counts: Bq/mL = counts / (T · CF) · 10⁶ / V_voxel[mL], with CF the calibration
   factor in cps/MBq and T the acquisition duration in s (``ActualFrameDuration`` ×
   ``NumberOfFramesInRotation`` summed over the Rotation Information Sequence, i.e. the scan time;
   pass ``acquisition_duration_s`` when the calibration used another time base). Without CF the series
   cannot be quantified and a :class:`DicomError` says so.

Decay correction (``DecayCorrection``, PS3.3 C.8.9.1.1.4): ``START`` — values refer to the acquisition (PET:
series) start, kept; ``ADMIN`` — values were decay-corrected to the administration (or
``DecayCorrectionDateTime``) and are decayed forward to the acquisition start with exp(−λΔt); ``NONE`` — PET
values are the mean over each frame and become the value at the series start,
A(t_ref) = Ā · e^{λ(t_frame − t_ref)} · λT / (1 − e^{−λT}) (decay during a frame of length T, see
Cherry, Sorenson & Phelps, *Physics in Nuclear Medicine*, 4th ed., ch. 4). NM without the attribute is
taken as uncorrected with the acquisition start as reference; the decay during the scan is neglected
there (0.1 % for a 30-min ¹⁷⁷Lu SPECT).
"""

from __future__ import annotations

import functools
import math
import os
import struct
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from theradose.errors import DicomError, InputError, TheradoseError
from theradose.imaging.volume import Unit, Volume
from theradose.io.dicom.geometry import affine_from_planes
from theradose.io.dicom.info import (
    RadiopharmaceuticalInfo,
    SeriesInfo,
    ms_to_seconds,
    normalise_nuclide_name,
    parse_da_tm,
    parse_dt,
    parse_tz_offset,
)
from theradose.io.dicom.structure import check_file_complete
from theradose.units import bq_to_mbq, mbq_to_bq, seconds_to_hours

#: Storage SOP classes that carry no image volume, with a hint of what to use instead.
NON_IMAGE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.481.3": "an RT Structure Set: read it with theradose.io.masks.read_rtstruct",
    "1.2.840.10008.5.1.4.1.1.66.4": "a Segmentation: read it with theradose.io.masks.read_seg",
    "1.2.840.10008.5.1.4.1.1.481.5": "an RT Plan",
    "1.2.840.10008.5.1.4.1.1.88.11": "a Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "an Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "a Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.67": "an X-Ray Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.68": "a Radiopharmaceutical Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.104.1": "an Encapsulated PDF",
    "1.2.840.10008.5.1.4.1.1.66": "a Raw Data object",
    "1.2.840.10008.5.1.4.1.1.66.1": "a Spatial Registration",
    "1.2.840.10008.5.1.4.1.1.11.1": "a Presentation State",
}
RT_DOSE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"
UNCOMPRESSED_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
#: Elements larger than this are read only when used (Pixel Data): header scans stay cheap and the same
#: datasets can deliver their pixels later.
DEFER_SIZE = "64 KB"
#: Projection and photographic modalities: a single image has no depth, and a unit slice step stands for
#: the plane. Single slices of any other modality (CT, MR, NM, PET, ...) need SliceThickness or
#: SpacingBetweenSlices.
PROJECTION_MODALITIES = ("DX", "CR", "MG", "XA", "RF", "US", "IO", "PX", "ES", "XC", "GM", "SM", "OP", "OT")
#: Two slice positions closer than this (mm) are duplicates.
DUPLICATE_POSITION_MM = 1e-3
#: Largest deviation (mm) of a slice position from a uniform grid that is still accepted.
SLICE_SPACING_TOLERANCE_MM = 0.05
#: Administered activities above this in an NM object are taken to be in Bq, not MBq (no administration
#: reaches 100 GBq; some systems write Bq although the NM IOD specifies MBq).
NM_DOSE_BQ_THRESHOLD = 1.0e5


# ------------------------------------------------------------------------------------------------ files
_F = TypeVar("_F", bound=Callable[..., Any])


def tolerant(function: _F) -> _F:
    """Run a reader with pydicom's warnings about non-conformant values silenced (tolerant reading), and
    turn unexpected parse failures of malformed data into one-line :class:`DicomError` messages."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return function(*args, **kwargs)
            except TheradoseError:
                raise
            except malformed_data_errors() as exc:
                raise DicomError(f"malformed DICOM data ({_short(exc)})") from exc

    return wrapper  # type: ignore[return-value]


def _dcmread(path: Path, *, header_only: bool) -> Any:
    """Read one file; :class:`DicomError` if it is not DICOM or is damaged."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, defer_size=DEFER_SIZE if header_only else None)
            check_file_complete(path)
            return ds
        except InvalidDicomError:
            pass
        except malformed_data_errors() as exc:
            raise DicomError(f"file {str(path)!r} cannot be read as DICOM ({_short(exc)})") from exc
        try:
            ds = pydicom.dcmread(path, defer_size=DEFER_SIZE if header_only else None, force=True)
        except Exception as exc:
            raise DicomError(f"file {str(path)!r} is not a DICOM file ({_short(exc)})") from exc
    if "SOPClassUID" not in ds and "Modality" not in ds:
        raise DicomError(f"file {str(path)!r} is not a DICOM file (no DICM prefix and no SOP Class UID)")
    check_file_complete(path)
    return ds


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:160] + "...") if len(text) > 160 else text or type(exc).__name__


def _iter_files(root: Path) -> Iterable[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name.upper() == "DICOMDIR":
                continue
            yield Path(folder) / name


#: Value Representations encoded as text (PS3.5 Table 6.2-1); the others are binary or sequences.
TEXT_VRS = frozenset("AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())


@functools.lru_cache(maxsize=512)
def _standard_vr(keyword: str) -> tuple[int, str] | None:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    return tag, dictionary_VR(tag)


def _vr_kind(vr: str) -> str:
    return "sequence" if vr == "SQ" else "text" if vr in TEXT_VRS else "binary"


def _get(ds: Any, keyword: str, default: Any = None) -> Any:
    """``ds.keyword`` (``default`` when absent or blank).

    An element whose explicit VR is of another kind than the standard's (binary for a text attribute,
    e.g. RescaleSlope encoded as US) raises :class:`DicomError`: pydicom would decode its bytes as numbers
    of the wrong kind.
    """
    standard = _standard_vr(keyword)
    if standard is not None and standard[0] in ds:
        element = ds.get_item(standard[0])
        actual = str(getattr(element, "VR", "") or "")
        if actual not in ("", "UN") and _vr_kind(actual) != _vr_kind(standard[1].split(" ")[0]):
            raise DicomError(
                f"{tag_text(keyword)} is encoded with VR {actual}, but the standard defines {standard[1]}: "
                "the file is damaged; export it again"
            )
    value = ds.get(keyword, default)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    return value


def _upper_values(ds: Any, keyword: str) -> list[str]:
    """The values of a multi-valued code string in upper case (one value is a str, not a list)."""
    value = _get(ds, keyword)
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [str(v).strip().upper() for v in items]


def _floats(value: Any, n: int | None = None) -> npt.NDArray[np.float64] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, (str, int, float)) else list(value)
    try:
        values = np.array([float(v) for v in items], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if n is not None and values.shape != (n,):
        return None
    if not np.all(np.isfinite(values)):
        return None
    return values


# ------------------------------------------------------------------------------------------------ times
def tag_text(keyword: str) -> str:
    """``Keyword (gggg,eeee)`` for messages, e.g. ``AcquisitionTime (0008,0032)``."""
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    return keyword if tag is None else f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _malformed(keyword: str, value: Any, expected: str) -> DicomError:
    return DicomError(
        f"{tag_text(keyword)} is {str(value)!r}, not a valid DICOM {expected}: "
        "correct the header (or remove the attribute) and read again"
    )


def _tz(ds: Any) -> Any:
    """Timezone Offset From UTC of ``ds``; None when absent, :class:`DicomError` when malformed."""
    text = _get(ds, "TimezoneOffsetFromUTC")
    if text is None:
        return None
    zone = parse_tz_offset(text)
    if zone is None:
        raise _malformed("TimezoneOffsetFromUTC", text, "offset (+HHMM or -HHMM)")
    return zone


def date_time_of(ds: Any, prefix: str, tz: Any = None) -> datetime | None:
    """``<prefix>Date`` + ``<prefix>Time`` of ``ds`` (e.g. ``prefix="Acquisition"``).

    Returns None when either attribute is absent or empty. A value that is present but is no valid DICOM
    DA (YYYYMMDD) or TM (HHMMSS.FFFFFF; e.g. ``"25:61:99"``) raises :class:`DicomError` naming the tag:
    a damaged time is never replaced silently by another one.
    """
    date = _get(ds, f"{prefix}Date")
    time = _get(ds, f"{prefix}Time")
    if date is None or time is None:
        return None
    value = parse_da_tm(date, time, tz)
    if value is None:
        if parse_da_tm(date, "000000") is None:
            raise _malformed(f"{prefix}Date", date, "date (DA, YYYYMMDD)")
        raise _malformed(f"{prefix}Time", time, "time (TM, HHMMSS.FFFFFF)")
    return value


def datetime_of(ds: Any, keyword: str, tz: Any = None) -> datetime | None:
    """A DT attribute of ``ds`` (None when absent; :class:`DicomError` naming the tag when malformed)."""
    text = _get(ds, keyword)
    if text is None:
        return None
    value = parse_dt(text, tz)
    if value is None:
        raise _malformed(keyword, text, "date-time (DT, YYYYMMDDHHMMSS.FFFFFF&ZZXX)")
    return value


def acquisition_datetime_of(ds: Any) -> datetime | None:
    """Acquisition start of a dataset: AcquisitionDateTime, Acquisition, Series, Content, Study date/time.

    The first attribute pair present is used; a malformed one raises :class:`DicomError` naming the tag.
    """
    tz = _tz(ds)
    value = datetime_of(ds, "AcquisitionDateTime", tz)
    if value is not None:
        return value
    for prefix in ("Acquisition", "Series", "Content", "Study"):
        value = date_time_of(ds, prefix, tz)
        if value is not None:
            return value
    return None


def series_datetime_of(ds: Any) -> datetime | None:
    """Series date/time (the PET decay-correction reference), else the acquisition start."""
    return date_time_of(ds, "Series", _tz(ds)) or acquisition_datetime_of(ds)


# ------------------------------------------------------------------------------------ radiopharmaceutical
@dataclass(frozen=True)
class _Administration:
    """What the Radiopharmaceutical Information Sequence says, each field None when absent."""

    nuclide: str | None
    radiopharmaceutical: str
    activity_mbq: float | None
    start: datetime | None


def _administration(ds: Any) -> _Administration | None:
    items = _get(ds, "RadiopharmaceuticalInformationSequence")
    if not items:
        return None
    item = items[0]
    nuclide = None
    codes = _get(item, "RadionuclideCodeSequence")
    candidates = []
    if codes:
        candidates += [_get(codes[0], "CodeMeaning"), _get(codes[0], "CodeValue")]
    candidates += [_get(item, "Radionuclide"), _get(item, "Radiopharmaceutical")]
    for text in candidates:
        if not text:
            continue
        try:
            nuclide = normalise_nuclide_name(str(text))
            break
        except InputError:
            continue
    dose = _get(item, "RadionuclideTotalDose")
    activity_mbq = None
    if dose is not None:
        try:
            dose_value = float(dose)
        except (TypeError, ValueError):
            raise _malformed("RadionuclideTotalDose", dose, "decimal string (DS)") from None
        if math.isfinite(dose_value) and dose_value > 0:
            if str(_get(ds, "Modality", "")) == "PT":
                activity_mbq = bq_to_mbq(dose_value)
            else:
                activity_mbq = bq_to_mbq(dose_value) if dose_value > NM_DOSE_BQ_THRESHOLD else dose_value
    tz = _tz(ds)
    start = datetime_of(item, "RadiopharmaceuticalStartDateTime", tz)
    if start is None:
        time = _get(item, "RadiopharmaceuticalStartTime")
        date = _get(ds, "SeriesDate") or _get(ds, "StudyDate")
        if time is not None and date is not None:
            start = parse_da_tm(date, time, tz)
            if start is None:
                if parse_da_tm(date, "000000") is None:
                    raise _malformed(
                        "SeriesDate" if _get(ds, "SeriesDate") else "StudyDate", date, "date (DA)"
                    )
                raise _malformed("RadiopharmaceuticalStartTime", time, "time (TM, HHMMSS.FFFFFF)")
    return _Administration(nuclide, str(_get(item, "Radiopharmaceutical", "")), activity_mbq, start)


@tolerant
def read_radiopharmaceutical(ds: Any) -> RadiopharmaceuticalInfo | None:
    """Radiopharmaceutical information of an NM or PET dataset, or None when it is absent or incomplete.

    The nuclide comes from the Radionuclide Code Sequence (code meaning, e.g. ``^177^Lutetium``) or the
    free-text Radionuclide; the activity from Radionuclide Total Dose (MBq in NM, Bq in PET, PS3.3
    C.8.4.10 / C.8.9.2); the time from Radiopharmaceutical Start DateTime, or Start Time on the series date.

    Raises
    ------
    DicomError
        If a time or the dose is present but malformed (the message names the tag).
    """
    info = _administration(ds)
    if info is None or info.nuclide is None or info.activity_mbq is None or info.start is None:
        return None
    return RadiopharmaceuticalInfo(
        nuclide=info.nuclide,
        radiopharmaceutical=info.radiopharmaceutical,
        injected_activity_mbq=float(info.activity_mbq),
        injection_datetime=info.start,
    )


def _decay_constant_per_h(ds: Any, nuclide: str | None) -> float:
    """λ in 1/h from Radionuclide Half Life (s) in the dataset, else from the nuclide table."""
    items = _get(ds, "RadiopharmaceuticalInformationSequence")
    if items:
        half_life_s = number_of(items[0], "RadionuclideHalfLife")
        if half_life_s is not None and half_life_s > 0:
            return math.log(2.0) / seconds_to_hours(half_life_s)
    if nuclide is None:
        raise DicomError(
            "decay correction needs the radionuclide, but the series names none "
            "(Radiopharmaceutical Information Sequence missing): it cannot be quantified"
        )
    from theradose.nuclides import get_nuclide

    return float(get_nuclide(nuclide).decay_constant_per_h)


# ------------------------------------------------------------------------------------------------ discovery
@dataclass
class _Header:
    path: Path
    ds: Any


def _units_of(ds: Any) -> str | None:
    sop = str(_get(ds, "SOPClassUID", ""))
    if sop in NON_IMAGE_SOP_CLASSES or ("PixelData" not in ds and "Rows" not in ds):
        return None
    modality = str(_get(ds, "Modality", ""))
    if modality == "CT":
        rescale_type = str(_get(_transformation(ds, 0), "RescaleType", "HU")).upper()
        return "HU" if rescale_type == "HU" else "1"
    if modality == "RTDOSE":
        return "Gy" if str(_get(ds, "DoseUnits", "")).upper() == "GY" else "1"
    if modality in ("NM", "PT"):
        units = str(_get(ds, "Units", "")).upper()
        if units == "BQML" or _rwv_bqml(ds) is not None:
            return "Bq/mL"
        if units == "GML":
            return "SUV"
        return "counts"
    return "1"


def _rwv_bqml(ds: Any) -> tuple[float, float] | None:
    """(slope, intercept) of a Real World Value Mapping to UCUM Bq/ml, if the dataset has one."""
    for item in _get(ds, "RealWorldValueMappingSequence") or []:
        units = _get(item, "MeasurementUnitsCodeSequence")
        if not units:
            continue
        code = str(_get(units[0], "CodeValue", "")).lower()
        if code == "bq/ml" and _get(item, "RealWorldValueSlope") is not None:
            return float(item.RealWorldValueSlope), float(_get(item, "RealWorldValueIntercept", 0.0))
    return None


@dataclass(frozen=True)
class UnreadableFile:
    """A file under a scanned folder that could not be read as DICOM, and why (one line)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class FolderContents:
    """What :func:`scan_folder` found: the series, and the files it had to leave out."""

    series: tuple[SeriesInfo, ...]
    unreadable: tuple[UnreadableFile, ...]


@tolerant
def discover_series(root: str | Path) -> list[SeriesInfo]:
    """All DICOM series under ``root`` (recursively; non-DICOM and damaged files are left out).

    Parameters
    ----------
    root : path
        Folder to search (or a single file).

    Returns
    -------
    list of SeriesInfo
        One entry per Series Instance UID, sorted by study, modality and acquisition time. A series
        whose headers cannot be understood (malformed time, geometry, ...) is listed with ``problem``
        saying why; see :func:`scan_folder` for the files that could not be read at all.

    Raises
    ------
    InputError
        If ``root`` does not exist.
    DicomError
        If no DICOM file is found, or ``root`` is a single damaged file.
    """
    return list(scan_folder(root).series)


@tolerant
def scan_folder(root: str | Path) -> FolderContents:
    """The series under ``root`` (as :func:`discover_series`) and the files that could not be read.

    A damaged file (truncated, corrupt, unknown VR, ...) is one :class:`UnreadableFile` with a one-line
    reason; the other files of the folder are read as usual.
    """
    infos, _, unreadable = _scan(Path(root))
    return FolderContents(tuple(infos), tuple(unreadable))


#: Exceptions that pydicom and numpy raise on malformed data (never on a bug in theradose).
MALFORMED_DATA_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    IndexError,
    OverflowError,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
    LookupError,
    struct.error,
    ZeroDivisionError,
)

#: Header attributes read during discovery: touched once per file so that an undecodable value makes
#: that one file unreadable instead of stopping the scan.
_DISCOVERY_KEYWORDS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "Modality",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "FrameOfReferenceUID",
    "PatientID",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "ImageType",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "Units",
    "TimezoneOffsetFromUTC",
)


@functools.lru_cache(maxsize=1)
def malformed_data_errors() -> tuple[type[BaseException], ...]:
    """:data:`MALFORMED_DATA_ERRORS` and pydicom's own exceptions for undecodable values."""
    from pydicom.errors import BytesLengthException, InvalidDicomError

    return (*MALFORMED_DATA_ERRORS, BytesLengthException, InvalidDicomError)


def _touch_header(ds: Any) -> None:
    for keyword in _DISCOVERY_KEYWORDS:
        ds.get(keyword)


def _scan(path: Path) -> tuple[list[SeriesInfo], dict[Path, Any], list[UnreadableFile]]:
    """Series under ``path``, the datasets read (Pixel Data deferred) by file, and the unreadable files."""
    if not path.exists():
        raise InputError(f"DICOM folder {str(path)!r} does not exist: check the path")
    files = [path] if path.is_file() else list(_iter_files(path))
    headers: list[_Header] = []
    unreadable: list[UnreadableFile] = []
    for file in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = _dcmread(file, header_only=True)
                _touch_header(ds)
            if _is_media_directory(ds):
                continue  # a DICOMDIR indexes files; it is none of them
            if not str(_get(ds, "SeriesInstanceUID", "")).strip():
                raise DicomError(
                    f"file {str(file)!r} lacks {tag_text('SeriesInstanceUID')} (Type 1): it is incomplete or "
                    "damaged; copy or export it again"
                )
            headers.append(_Header(file, ds))
        except DicomError as exc:
            if path.is_file():
                raise
            if not _looks_like_dicom(file):
                continue
            unreadable.append(UnreadableFile(file, str(exc)))
        except malformed_data_errors() as exc:
            problem = DicomError(f"file {str(file)!r} cannot be read as DICOM ({_short(exc)})")
            if path.is_file():
                raise problem from exc
            unreadable.append(UnreadableFile(file, str(problem)))
    if not headers:
        if unreadable:
            raise DicomError(
                f"no readable DICOM files found under {str(path)!r} ({len(unreadable)} damaged, first: "
                f"{unreadable[0].reason})"
            )
        raise DicomError(f"no DICOM files found under {str(path)!r}: point to the folder holding the series")
    groups: dict[str, list[_Header]] = defaultdict(list)
    for header in headers:
        groups[str(_get(header.ds, "SeriesInstanceUID"))].append(header)
    infos = [_series_info_or_problem(uid, members) for uid, members in groups.items()]
    infos.sort(
        key=lambda s: (
            s.study_uid,
            s.modality,
            s.acquisition_datetime.isoformat() if s.acquisition_datetime else "",
            s.series_uid,
        )
    )
    return infos, {h.path: h.ds for h in headers}, unreadable


#: Media Storage Directory Storage (DICOMDIR), PS3.10 section 8.
MEDIA_DIRECTORY_SOP_CLASS = "1.2.840.10008.1.3.10"


def _is_media_directory(ds: Any) -> bool:
    meta = getattr(ds, "file_meta", None)
    classes = {str(ds.get("SOPClassUID", "")), str(meta.get("MediaStorageSOPClassUID", "")) if meta else ""}
    return MEDIA_DIRECTORY_SOP_CLASS in classes or "DirectoryRecordSequence" in ds


def _looks_like_dicom(path: Path) -> bool:
    """Whether a file that failed to read was meant to be DICOM (Part 10 preamble or ``.dcm`` name)."""
    if path.suffix.lower() in (".dcm", ".dicom", ".ima"):
        return True
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def _series_info_or_problem(uid: str, members: list[_Header]) -> SeriesInfo:
    """:func:`_series_info`, or a SeriesInfo naming the problem when the headers cannot be understood."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _series_info(uid, members)
    except TheradoseError as exc:
        problem = str(exc)
    except malformed_data_errors() as exc:
        problem = f"malformed DICOM data ({_short(exc)})"
    first = members[0].ds

    def text(keyword: str) -> str:
        try:
            return str(_get(first, keyword, ""))
        except malformed_data_errors():
            return ""

    return SeriesInfo(
        series_uid=uid,
        study_uid=text("StudyInstanceUID"),
        modality=text("Modality"),
        units=None,
        shape=None,
        spacing_mm=None,
        acquisition_datetime=None,
        nuclide=None,
        injected_activity_mbq=None,
        n_files=len(members),
        files=tuple(sorted(h.path for h in members)),
        description=text("SeriesDescription"),
        manufacturer=text("Manufacturer"),
        frame_uid=text("FrameOfReferenceUID") or None,
        patient_id=text("PatientID"),
        sop_class_uid=text("SOPClassUID"),
        problem=problem,
    )


def _series_info(uid: str, members: list[_Header]) -> SeriesInfo:
    first = members[0].ds
    units = _units_of(first)
    shape: tuple[int, int, int] | None = None
    spacing: tuple[float, float, float] | None = None
    problems: list[str] = []
    if units is not None:
        try:
            shape, spacing = _shape_and_spacing(members)
        except DicomError as exc:
            problems.append(str(exc))
    modality = str(_get(first, "Modality", ""))
    try:
        administration = _administration(first)
    except DicomError as exc:
        problems.append(str(exc))
        administration = None
    when: datetime | None = None
    try:
        if modality == "PT":
            when = series_datetime_of(first)
        else:
            times = [t for t in (acquisition_datetime_of(h.ds) for h in members) if t is not None]
            when = min(times, key=_sort_key) if times else None
    except DicomError as exc:
        problems.append(str(exc))
    return SeriesInfo(
        series_uid=uid,
        study_uid=str(_get(first, "StudyInstanceUID", "")),
        modality=modality,
        units=units,
        shape=shape,
        spacing_mm=spacing,
        acquisition_datetime=when,
        nuclide=administration.nuclide if administration else None,
        injected_activity_mbq=administration.activity_mbq if administration else None,
        n_files=len(members),
        files=tuple(sorted(h.path for h in members)),
        description=str(_get(first, "SeriesDescription", "")),
        manufacturer=str(_get(first, "Manufacturer", "")),
        frame_uid=_get(first, "FrameOfReferenceUID"),
        patient_id=str(_get(first, "PatientID", "")),
        sop_class_uid=str(_get(first, "SOPClassUID", "")),
        problem="; ".join(problems) or None,
    )


def _sort_key(value: datetime) -> float:
    return value.timestamp() if value.tzinfo is not None else value.replace(tzinfo=None).timestamp()


def _is_localizer(ds: Any) -> bool:
    image_type = _upper_values(ds, "ImageType")
    return len(image_type) > 2 and image_type[2] == "LOCALIZER"


def _without_localizers(datasets: Sequence[Any]) -> list[int]:
    """Indices of the datasets to stack: CT localizer (scout) images in an axial series are left out."""
    keep = [i for i, ds in enumerate(datasets) if not _is_localizer(ds)]
    return keep or list(range(len(datasets)))


def _shape_and_spacing(
    members: list[_Header],
) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    datasets = [h.ds for h in members]
    geometry = _geometry([datasets[i] for i in _without_localizers(datasets)])
    affine = geometry.affine
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    return (geometry.n_slices, geometry.rows, geometry.columns), (
        float(spacing[0]),
        float(spacing[1]),
        float(spacing[2]),
    )


# ------------------------------------------------------------------------------------------------ geometry
@dataclass(frozen=True)
class _Geometry:
    affine: npt.NDArray[np.float64]
    n_slices: int
    rows: int
    columns: int
    order: tuple[tuple[int, int], ...]  # (dataset index, frame index) for each output slice


def _geometry(datasets: Sequence[Any]) -> _Geometry:
    first = datasets[0]
    rows = int(_get(first, "Rows", 0) or 0)
    columns = int(_get(first, "Columns", 0) or 0)
    if rows <= 0 or columns <= 0:
        raise DicomError(f"series {_uid(first)} has no Rows/Columns: it is not an image")
    sop = str(_get(first, "SOPClassUID", ""))
    if sop in NON_IMAGE_SOP_CLASSES:
        raise DicomError(f"series {_uid(first)} is {NON_IMAGE_SOP_CLASSES[sop]}, not an image volume")
    if len(datasets) == 1 and _get(first, "PerFrameFunctionalGroupsSequence") is not None:
        return _enhanced_geometry(first, rows, columns)
    if str(_get(first, "Modality", "")) == "RTDOSE" or sop == RT_DOSE_SOP_CLASS:
        _single_object(datasets, "RT Dose")
        return _rtdose_geometry(first, rows, columns)
    if str(_get(first, "Modality", "")) == "NM" and (
        "NumberOfFrames" in first or "DetectorInformationSequence" in first
    ):
        if len(datasets) == 1:
            return _nm_geometry(first, rows, columns)
        if any(_n_frames(d) > 1 for d in datasets):
            _single_object(datasets, "multi-frame NM")
        _require_reconstructed(first)  # single-slice NM series: stacked like CT
    return _stack_geometry(datasets, rows, columns)


def _plane_source(ds: Any) -> Any:
    """Where the plane geometry of a slice lives: the dataset, or its first Detector Information item (NM)."""
    if _get(ds, "ImagePositionPatient") is not None and _get(ds, "ImageOrientationPatient") is not None:
        return ds
    detectors = _get(ds, "DetectorInformationSequence")
    return detectors[0] if detectors else ds


def _require_reconstructed(ds: Any) -> None:
    image_type = _upper_values(ds, "ImageType")
    kind = image_type[2] if len(image_type) > 2 else ""
    if kind and kind not in ("RECON TOMO", "RECON GATED TOMO"):
        raise DicomError(
            f"NM series {_uid(ds)} is a {kind.lower()} image (ImageType {'/'.join(image_type)}), not a "
            "reconstructed SPECT volume: reconstruct the projections first"
        )


def _uid(ds: Any) -> str:
    return str(_get(ds, "SeriesInstanceUID", "(unknown series)"))


def _n_frames(ds: Any) -> int:
    """Number of Frames (1 when absent); :class:`DicomError` for 0, negative or non-integer values."""
    value = _get(ds, "NumberOfFrames")
    if value is None:
        return 1
    try:
        number = int(str(value).strip())
    except ValueError:
        raise _malformed("NumberOfFrames", value, "integer string (IS)") from None
    if number < 1:
        raise DicomError(
            f"series {_uid(ds)}: {tag_text('NumberOfFrames')} is {number}, but an image has at least one "
            "frame: the file is damaged; export it again"
        )
    return number


def number_of(ds: Any, keyword: str) -> float | None:
    """A numeric attribute of ``ds`` as a finite float; None when absent; :class:`DicomError` naming the
    tag when present but not a finite number."""
    value = _get(ds, keyword)
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or (
        hasattr(value, "__len__") and not isinstance(value, (str, bytes))
    ):
        items = list(value)
        if len(items) != 1:
            raise _malformed(keyword, value, "single number")
        value = items[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _malformed(keyword, value, "number") from None
    if not math.isfinite(number):
        raise _malformed(keyword, value, "finite number")
    return number


def _single_object(datasets: Sequence[Any], kind: str) -> None:
    if len(datasets) > 1:
        raise DicomError(
            f"series {_uid(datasets[0])} holds {len(datasets)} {kind} objects: pass the one file to read"
        )


def _orientation(ds: Any, where: str) -> npt.NDArray[np.float64]:
    iop = _floats(_get(ds, "ImageOrientationPatient"), 6)
    if iop is None:
        raise DicomError(
            f"series {_uid(ds)} lacks a valid ImageOrientationPatient ({where}): geometry unknown"
        )
    x, y = iop[:3], iop[3:]
    if not (
        abs(np.linalg.norm(x) - 1) < 1e-3 and abs(np.linalg.norm(y) - 1) < 1e-3 and abs(np.dot(x, y)) < 1e-3
    ):
        raise DicomError(f"series {_uid(ds)} has non-orthonormal ImageOrientationPatient {iop.tolist()}")
    return iop


def _pixel_spacing(ds: Any) -> npt.NDArray[np.float64]:
    spacing = _floats(_get(ds, "PixelSpacing"), 2)
    if spacing is None or np.any(spacing <= 0):
        raise DicomError(f"series {_uid(ds)} lacks a valid PixelSpacing: voxel size unknown")
    return spacing


def _stack_geometry(datasets: Sequence[Any], rows: int, columns: int) -> _Geometry:
    first = datasets[0]
    iop = _orientation(_plane_source(first), "first file")
    spacing = _pixel_spacing(first)
    normal = np.cross(iop[:3], iop[3:])
    frames_of_reference = {str(_get(ds, "FrameOfReferenceUID", "")) for ds in datasets}
    if len(frames_of_reference) > 1:
        listing = ", ".join(sorted(uid or "(none)" for uid in frames_of_reference)[:3])
        raise DicomError(
            f"series {_uid(first)} mixes {len(frames_of_reference)} frames of reference "
            f"({tag_text('FrameOfReferenceUID')}: {listing}): its slices do not share one coordinate "
            "system; remove the foreign slices"
        )
    positions = []
    for ds in datasets:
        if int(_get(ds, "Rows", 0) or 0) != rows or int(_get(ds, "Columns", 0) or 0) != columns:
            raise DicomError(f"series {_uid(first)} mixes image sizes: it cannot be stacked into one volume")
        other = _orientation(_plane_source(ds), "a slice")
        if np.max(np.abs(other - iop)) > 1e-4:
            raise DicomError(
                f"series {_uid(first)} mixes image orientations: it cannot be stacked into one volume"
            )
        if np.max(np.abs(_pixel_spacing(ds) - spacing)) > 1e-4:
            raise DicomError(
                f"series {_uid(first)} mixes pixel spacings: it cannot be stacked into one volume"
            )
        if _n_frames(ds) > 1:
            raise DicomError(
                f"series {_uid(first)} mixes multi-frame objects with single slices: pass one file"
            )
        ipp = _floats(_get(_plane_source(ds), "ImagePositionPatient"), 3)
        if ipp is None:
            raise DicomError(
                f"series {_uid(first)} has a slice without ImagePositionPatient: geometry unknown"
            )
        positions.append(ipp)
    pos = np.array(positions)
    distance = pos @ normal
    order = np.argsort(distance, kind="stable")
    pos = pos[order]
    distance = distance[order]
    if len(datasets) > 1 and np.min(np.diff(distance)) < DUPLICATE_POSITION_MM:
        raise DicomError(
            f"series {_uid(first)} has several slices at the same position (several acquisitions or "
            "time frames in one series): split the files and read one set"
        )
    if len(datasets) == 1:
        thickness = number_of(first, "SpacingBetweenSlices") or number_of(first, "SliceThickness") or 0.0
        if not thickness and str(_get(first, "Modality", "")) not in PROJECTION_MODALITIES:
            raise DicomError(
                f"series {_uid(first)} is a single slice without {tag_text('SliceThickness')} or "
                f"{tag_text('SpacingBetweenSlices')}: its voxel depth is unknown; export the whole series"
            )
        # projection images (DX, CR, MG, US, SC, ...) have no depth: one unit step represents the plane
        step = normal * (abs(thickness) if thickness else 1.0)
    else:
        step = (pos[-1] - pos[0]) / (len(pos) - 1)
        expected = pos[0][None, :] + np.arange(len(pos))[:, None] * step[None, :]
        deviation = float(np.max(np.linalg.norm(pos - expected, axis=1)))
        if deviation > SLICE_SPACING_TOLERANCE_MM:
            gaps = np.round(np.diff(distance), 3)
            raise DicomError(
                f"series {_uid(first)} has non-uniform slice spacing "
                f"(gaps {sorted(set(gaps.tolist()))[:5]} mm): "
                "missing slices or a variable-spacing scan; resample it to a uniform grid"
            )
    affine = affine_from_planes(iop, spacing, pos[0], step)
    return _Geometry(affine, len(datasets), rows, columns, tuple((int(i), 0) for i in order))


def _nm_geometry(ds: Any, rows: int, columns: int) -> _Geometry:
    _require_reconstructed(ds)
    n_frames = _n_frames(ds)
    n_slices = int(_get(ds, "NumberOfSlices", n_frames) or n_frames)
    if n_slices != n_frames:
        raise DicomError(
            f"NM series {_uid(ds)} has {n_frames} frames but {n_slices} slices (gated or multi-window "
            "reconstruction): export one gate/window per object"
        )
    source = ds
    if _get(ds, "ImageOrientationPatient") is None or _get(ds, "ImagePositionPatient") is None:
        detectors = _get(ds, "DetectorInformationSequence")
        if not detectors:
            raise DicomError(
                f"NM series {_uid(ds)} has neither ImagePositionPatient/ImageOrientationPatient nor a "
                "Detector Information Sequence: geometry unknown"
            )
        source = detectors[0]
    iop = _orientation(source, "NM detector information")
    ipp = _floats(_get(source, "ImagePositionPatient"), 3)
    if ipp is None:
        raise DicomError(f"NM series {_uid(ds)} lacks ImagePositionPatient: geometry unknown")
    spacing = _pixel_spacing(ds)
    between = number_of(ds, "SpacingBetweenSlices")
    if between is None or between == 0:
        between = number_of(ds, "SliceThickness")
    if between is None or between == 0:
        raise DicomError(
            f"NM series {_uid(ds)} has neither SpacingBetweenSlices nor SliceThickness: slice spacing unknown"
        )
    normal = np.cross(iop[:3], iop[3:])
    step = normal * between
    vector = _get(ds, "SliceVector")
    order: tuple[tuple[int, int], ...]
    if vector is not None and len(vector) == n_frames:
        slice_numbers = np.array([int(v) for v in vector])
        frames = np.argsort(slice_numbers, kind="stable")
        if not np.array_equal(slice_numbers[frames], np.arange(1, n_frames + 1)):
            raise DicomError(
                f"NM series {_uid(ds)} has an invalid Slice Vector: slices are not 1..{n_frames}"
            )
        order = tuple((0, int(f)) for f in frames)
    else:
        order = tuple((0, k) for k in range(n_frames))
    return _Geometry(affine_from_planes(iop, spacing, ipp, step), n_frames, rows, columns, order)


def _rtdose_geometry(ds: Any, rows: int, columns: int) -> _Geometry:
    iop = _orientation(ds, "RT Dose")
    ipp = _floats(_get(ds, "ImagePositionPatient"), 3)
    if ipp is None:
        raise DicomError(f"RT Dose {_uid(ds)} lacks ImagePositionPatient: geometry unknown")
    spacing = _pixel_spacing(ds)
    n_frames = _n_frames(ds)
    normal = np.cross(iop[:3], iop[3:])
    offsets = _floats(_get(ds, "GridFrameOffsetVector"))
    if n_frames == 1:
        thickness = float(_get(ds, "SliceThickness", 0) or 0)
        return _Geometry(
            affine_from_planes(iop, spacing, ipp, normal * (abs(thickness) or 1.0)),
            1,
            rows,
            columns,
            ((0, 0),),
        )
    if offsets is None or len(offsets) != n_frames:
        raise DicomError(
            f"RT Dose {_uid(ds)} lacks a GridFrameOffsetVector with {n_frames} values: geometry unknown"
        )
    if offsets[0] != 0:  # absolute positions along the normal (PS3.3 C.8.8.3.2)
        offsets = offsets - float(np.dot(ipp, normal))
    order = np.argsort(offsets, kind="stable")
    sorted_offsets = offsets[order]
    step_mm = (sorted_offsets[-1] - sorted_offsets[0]) / (n_frames - 1)
    if (
        step_mm == 0
        or np.max(np.abs(sorted_offsets - sorted_offsets[0] - step_mm * np.arange(n_frames)))
        > SLICE_SPACING_TOLERANCE_MM
    ):
        raise DicomError(f"RT Dose {_uid(ds)} has a non-uniform GridFrameOffsetVector: resample it")
    origin = ipp + sorted_offsets[0] * normal
    return _Geometry(
        affine_from_planes(iop, spacing, origin, normal * step_mm),
        n_frames,
        rows,
        columns,
        tuple((0, int(f)) for f in order),
    )


def _enhanced_geometry(ds: Any, rows: int, columns: int) -> _Geometry:
    shared = (_get(ds, "SharedFunctionalGroupsSequence") or [None])[0]
    frames = _get(ds, "PerFrameFunctionalGroupsSequence") or []

    def lookup(frame: Any, sequence: str, keyword: str) -> Any:
        for group in (frame, shared):
            if group is None:
                continue
            items = _get(group, sequence)
            if items and _get(items[0], keyword) is not None:
                return items[0].get(keyword)
        return None

    iop = _floats(
        lookup(frames[0] if frames else None, "PlaneOrientationSequence", "ImageOrientationPatient"), 6
    )
    spacing = _floats(lookup(frames[0] if frames else None, "PixelMeasuresSequence", "PixelSpacing"), 2)
    if iop is None or spacing is None:
        raise DicomError(
            f"enhanced series {_uid(ds)} lacks plane orientation or pixel spacing: geometry unknown"
        )
    positions = []
    for frame in frames:
        ipp = _floats(lookup(frame, "PlanePositionSequence", "ImagePositionPatient"), 3)
        if ipp is None:
            raise DicomError(
                f"enhanced series {_uid(ds)} has a frame without a plane position: geometry unknown"
            )
        positions.append(ipp)
    pos = np.array(positions)
    normal = np.cross(iop[:3], iop[3:])
    distance = pos @ normal
    order = np.argsort(distance, kind="stable")
    if len(pos) > 1 and np.min(np.diff(distance[order])) < DUPLICATE_POSITION_MM:
        raise DicomError(
            f"enhanced series {_uid(ds)} has several frames at one position (time series): not supported"
        )
    if len(pos) > 1:
        step = (pos[order[-1]] - pos[order[0]]) / (len(pos) - 1)
    else:
        thickness = _floats(lookup(frames[0], "PixelMeasuresSequence", "SliceThickness"), None)
        step = normal * (float(thickness[0]) if thickness is not None and len(thickness) else 1.0)
    return _Geometry(
        affine_from_planes(iop, spacing, pos[order[0]], step),
        len(pos),
        rows,
        columns,
        tuple((0, int(f)) for f in order),
    )


# ------------------------------------------------------------------------------------------------ pixels
def _stored_frames(ds: Any, path: Path) -> npt.NDArray[Any]:
    """Stored pixel values, shape (frames, rows, columns), without any rescale."""
    rows = int(ds.Rows)
    columns = int(ds.Columns)
    frames = _n_frames(ds)
    if int(_get(ds, "SamplesPerPixel", 1) or 1) != 1:
        raise DicomError(
            f"file {str(path)!r} is a colour image (SamplesPerPixel > 1), not a quantitative volume"
        )
    syntax = (
        str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2")) if hasattr(ds, "file_meta") else ""
    )
    if "PixelData" not in ds:
        raise DicomError(f"file {str(path)!r} has no Pixel Data: it is not an image")
    pixel_module = {}
    for keyword in ("BitsAllocated", "BitsStored", "PixelRepresentation"):  # Type 1, PS3.3 C.7.6.3
        value = number_of(ds, keyword)
        if value is None:
            raise DicomError(
                f"file {str(path)!r} lacks {tag_text(keyword)}: the stored pixel values cannot be decoded "
                "without it; export the image again"
            )
        pixel_module[keyword] = int(value)
    bits = pixel_module["BitsAllocated"]
    bits_stored = pixel_module["BitsStored"]
    signed = pixel_module["PixelRepresentation"] == 1
    if not 0 < bits_stored <= bits or pixel_module["PixelRepresentation"] not in (0, 1):
        raise DicomError(
            f"file {str(path)!r} has BitsStored {bits_stored}, BitsAllocated {bits} and PixelRepresentation "
            f"{pixel_module['PixelRepresentation']}: not a valid pixel encoding; export the image again"
        )
    if syntax in UNCOMPRESSED_SYNTAXES and bits in (8, 16, 32):
        dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}").newbyteorder(
            ">" if syntax == "1.2.840.10008.1.2.2" else "<"
        )
        raw = ds.PixelData
        needed = rows * columns * frames * dtype.itemsize
        if len(raw) < needed:
            raise DicomError(
                f"file {str(path)!r} is truncated: Pixel Data holds {len(raw)} bytes, {needed} expected"
            )
        if len(raw) > needed + 1:  # one padding byte makes an odd length even
            raise DicomError(
                f"file {str(path)!r}: Pixel Data holds {len(raw)} bytes, but Rows × Columns × "
                f"NumberOfFrames × {dtype.itemsize} bytes = {needed}: the image attributes do not describe "
                "the pixels; export the image again"
            )
        data = np.frombuffer(raw, dtype=dtype, count=rows * columns * frames).reshape(frames, rows, columns)
        if bits_stored < bits:
            if signed:
                shift = bits - bits_stored
                data = (data.astype(np.int64) << shift) >> shift
            else:
                data = data & ((1 << bits_stored) - 1)
        return data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = np.asarray(ds.pixel_array)
    except Exception as exc:
        raise DicomError(f"file {str(path)!r}: pixel data cannot be decoded ({_short(exc)})") from exc
    return array.reshape(frames, rows, columns)


def _transformation(ds: Any, frame: int) -> Any:
    """The dataset or functional-group item holding the rescale of ``frame`` (enhanced objects)."""
    groups = []
    per_frame = _get(ds, "PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        groups.append(per_frame[frame])
    shared = _get(ds, "SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for group in groups:
        items = _get(group, "PixelValueTransformationSequence")
        if items:
            return items[0]
    return ds


def _positive(value: float, keyword: str, series: str, why: str) -> float:
    if value <= 0:
        raise DicomError(
            f"series {series}: {tag_text(keyword)} is {value:g}; {why} needs a positive slope, so the stored "
            "values cannot be converted: export the series again from the scanner"
        )
    return value


def _rescale(
    ds: Any, frame: int = 0, *, required: bool = False, why: str = "rescaling"
) -> tuple[float, float]:
    """(slope, intercept) of the Modality LUT (Rescale Slope/Intercept) of ``frame``.

    Absent attributes mean slope 1, intercept 0 unless ``required`` (then :class:`DicomError` naming the
    tag); a zero or negative slope is always refused.
    """
    source = _transformation(ds, frame)
    slope = number_of(source, "RescaleSlope")
    intercept = number_of(source, "RescaleIntercept")
    if required and (slope is None or intercept is None):
        missing = "RescaleSlope" if slope is None else "RescaleIntercept"
        raise DicomError(
            f"series {_uid(ds)} lacks {tag_text(missing)}: {why} needs it to convert the stored values; "
            "export the series again with its rescale"
        )
    return _positive(1.0 if slope is None else slope, "RescaleSlope", _uid(ds), why), (intercept or 0.0)


def _real_world_bqml(ds: Any) -> tuple[float, float] | None:
    """Validated (slope, intercept) of the Real World Value Mapping to Bq/ml, or None when there is none."""
    rwv = _rwv_bqml(ds)
    if rwv is None:
        return None
    slope, intercept = rwv
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        raise _malformed("RealWorldValueSlope", slope, "finite number")
    return _positive(
        slope, "RealWorldValueSlope", _uid(ds), "the Real World Value Mapping to Bq/ml"
    ), intercept


#: Relative difference above which a Rescale Slope and a Real World Value Mapping to Bq/ml disagree.
SLOPE_AGREEMENT = 1e-6


def _quantitative_mapping(ds: Any, frame: int) -> tuple[float, float]:
    """Stored value → Bq/mL (or g/mL for Units GML) of an NM or PET frame.

    ``Units`` BQML/GML: Rescale Slope and Intercept (the PET Image module, Siemens, theradose), or, when
    the slope is absent, a Real World Value Mapping to UCUM ``Bq/ml``; otherwise the mapping. A missing
    slope without a mapping, a zero or negative slope, or a slope and a mapping that disagree are refused
    with the tag named: the stored values would otherwise be read on a wrong scale.
    """
    units = str(_get(ds, "Units", "")).upper()
    rwv = _real_world_bqml(ds)
    if units in ("BQML", "GML"):
        source = _transformation(ds, frame)
        slope = number_of(source, "RescaleSlope")
        if slope is not None:
            slope = _positive(slope, "RescaleSlope", _uid(ds), f"Units {units}")
            intercept = number_of(source, "RescaleIntercept") or 0.0
            if (
                rwv is not None
                and units == "BQML"
                and (
                    abs(rwv[0] - slope) > SLOPE_AGREEMENT * slope
                    or abs(rwv[1] - intercept) > SLOPE_AGREEMENT * slope
                )
            ):
                raise DicomError(
                    f"series {_uid(ds)}: {tag_text('RescaleSlope')} {slope:g} and the Real World Value "
                    f"Mapping to Bq/ml (slope {rwv[0]:g}) disagree: the scale of the stored values is "
                    "ambiguous; export the series again"
                )
            return slope, intercept
        if rwv is not None:
            return rwv
        raise DicomError(
            f"series {_uid(ds)} has Units {units} but no {tag_text('RescaleSlope')} and no Real World Value "
            "Mapping to Bq/ml: the scale of the stored values is unknown; export it with its rescale slope"
        )
    if rwv is not None:
        _rescale(ds, frame)  # a zero or negative Rescale Slope beside the mapping: the file is damaged
        return rwv
    raise DicomError(
        f"series {_uid(ds)}: a file has neither Units BQML nor a Real World Value Mapping to Bq/ml while "
        "the series is in Bq/mL: its slices are quantified differently; export the series again"
    )


# ------------------------------------------------------------------------------------------------ reading
@tolerant
def read_series(
    folder_or_files: str | Path | Sequence[str | Path],
    *,
    series_uid: str | None = None,
    calibration_cps_per_mbq: float | None = None,
    acquisition_duration_s: float | None = None,
    raw_counts: bool = False,
) -> Volume:
    """Read one image series (CT, NM/SPECT, PET, RT Dose, other stacks) as a :class:`Volume`.

    Parameters
    ----------
    folder_or_files : path or sequence of paths
        A folder (searched recursively), one file or the files of one series.
    series_uid : str, optional
        Series Instance UID to read when the folder holds several image series.
    calibration_cps_per_mbq : float, optional
        SPECT calibration factor (count rate per activity) for series stored as counts.
    acquisition_duration_s : float, optional
        Acquisition duration to divide counts by, overriding the Rotation Information Sequence.
    raw_counts : bool
        Return a SPECT series stored as counts unquantified (unit ``"counts"``), e.g. to measure the
        calibration factor; see :func:`read_counts`.

    Returns
    -------
    Volume
        Unit ``"HU"`` (CT), ``"Bq/mL"`` (quantitative NM/PET), ``"SUV"`` (PET in g/mL), ``"Gy"``
        (RT Dose in GY), ``"1"`` (other). Values are float32.

    Raises
    ------
    DicomError
        Unreadable, truncated or non-image files; no image series; several series without
        ``series_uid``; counts without a calibration factor; inconsistent geometry.
    InputError
        Missing paths, a calibration factor for an already quantitative series, bad numbers.
    """
    if calibration_cps_per_mbq is not None and not (
        math.isfinite(calibration_cps_per_mbq) and calibration_cps_per_mbq > 0
    ):
        raise InputError(f"calibration_cps_per_mbq must be positive; got {calibration_cps_per_mbq!r}")
    if acquisition_duration_s is not None and not (
        math.isfinite(acquisition_duration_s) and acquisition_duration_s > 0
    ):
        raise InputError(f"acquisition_duration_s must be positive; got {acquisition_duration_s!r}")
    cache: dict[Path, Any] = {}
    files = _select_files(folder_or_files, series_uid, cache)
    datasets = [cache[p] if p in cache else _dcmread(p, header_only=False) for p in files]
    keep = _without_localizers(datasets)
    files = [files[i] for i in keep]
    datasets = [datasets[i] for i in keep]
    sop = str(_get(datasets[0], "SOPClassUID", ""))
    if sop in NON_IMAGE_SOP_CLASSES:
        raise DicomError(f"{str(files[0])!r} is {NON_IMAGE_SOP_CLASSES[sop]}, not an image volume")
    uids = {str(_get(d, "SeriesInstanceUID", "")) for d in datasets}
    if len(uids) > 1:
        raise DicomError(f"the files given belong to {len(uids)} series: pass the files of one series")
    first = datasets[0]
    modality = str(_get(first, "Modality", ""))
    if not modality:
        raise DicomError(
            f"{str(files[0])!r} lacks {tag_text('Modality')} (Type 1): the kind of image and its units are "
            "unknown; export it again"
        )
    _require_same(datasets, files, ("Modality", "Units", "DecayCorrection", "TimezoneOffsetFromUTC"))
    geometry = _geometry(datasets)
    stored = [_stored_frames(d, p) for d, p in zip(datasets, files, strict=True)]
    unit = _units_of(first) or "1"
    values = np.empty((geometry.n_slices, geometry.rows, geometry.columns), dtype=np.float32)
    voxel_volume_ml = Volume(np.zeros((1, 1, 1)), geometry.affine, "1").voxel_volume_ml
    reference = series_datetime_of(first) if modality == "PT" else _earliest(datasets)
    radiopharmaceutical = read_radiopharmaceutical(first)
    for k, (index, frame) in enumerate(geometry.order):
        ds = datasets[index]
        # float32 arithmetic is exact enough for CT numbers; quantitative data use float64 until the end
        raw = stored[index][frame].astype(np.float64 if modality in ("NM", "PT", "RTDOSE") else np.float32)
        values[k] = _physical(ds, raw, unit=unit, modality=modality, frame=frame)
    if modality in ("NM", "PT"):
        values, unit = _quantify(
            first,
            values,
            unit=unit,
            datasets=[datasets[i] for i, _ in geometry.order],
            reference=reference,
            voxel_volume_ml=voxel_volume_ml,
            calibration_cps_per_mbq=calibration_cps_per_mbq,
            acquisition_duration_s=acquisition_duration_s,
            nuclide=radiopharmaceutical.nuclide if radiopharmaceutical else None,
            raw_counts=raw_counts,
        )
    elif calibration_cps_per_mbq is not None:
        raise InputError(f"calibration_cps_per_mbq applies to SPECT counts; series is {modality}: drop it")
    final_unit: Unit = unit  # type: ignore[assignment]
    return Volume(
        values,
        geometry.affine,
        final_unit,
        frame_uid=_get(first, "FrameOfReferenceUID"),
        acquisition_datetime=reference,
    )


def _require_same(datasets: Sequence[Any], files: Sequence[Path], keywords: Sequence[str]) -> None:
    """:class:`DicomError` if the files of one series disagree on any of ``keywords``."""
    for keyword in keywords:
        values = {str(_get(d, keyword, "")).strip().upper() for d in datasets}
        if len(values) > 1:
            shown = ", ".join(sorted(v or "(absent)" for v in values))
            raise DicomError(
                f"the files of series {_uid(datasets[0])} disagree on {tag_text(keyword)} ({shown}): they "
                "cannot be read as one volume; export the series again"
            )


def _earliest(datasets: Sequence[Any]) -> datetime | None:
    times = [t for t in (acquisition_datetime_of(d) for d in datasets) if t is not None]
    return min(times, key=_sort_key) if times else None


def _select_files(
    folder_or_files: str | Path | Sequence[str | Path], series_uid: str | None, cache: dict[Path, Any]
) -> list[Path]:
    if isinstance(folder_or_files, (str, Path)):
        path = Path(folder_or_files)
        if not path.exists():
            raise InputError(f"DICOM path {str(path)!r} does not exist: check the path")
        if path.is_file():
            return [path]
        found, datasets, unreadable = _scan(path)
        if unreadable:
            raise DicomError(
                f"{str(path)!r} holds {len(unreadable)} damaged file(s), so no series in it can be known to "
                f"be complete ({unreadable[0].reason}): remove or replace the damaged file(s), or pass the "
                "files of one series"
            )
        cache.update(datasets)
        series = [s for s in found if s.is_image or (series_uid and s.series_uid == series_uid)]
        if series_uid is not None:
            chosen = [s for s in series if s.series_uid == series_uid]
            if not chosen:
                raise DicomError(
                    f"series {series_uid} is not under {str(path)!r}: "
                    "list them with 'theradose dicom inspect'"
                )
            return list(chosen[0].files)
        if not series:
            raise DicomError(
                f"no image series under {str(path)!r} (only non-image objects or unreadable files)"
            )
        if len(series) > 1:
            listing = ", ".join(f"{s.series_uid} ({s.modality})" for s in series[:6])
            raise DicomError(
                f"{str(path)!r} holds {len(series)} image series: "
                f"choose one with series_uid / --series ({listing})"
            )
        return list(series[0].files)
    files = [Path(p) for p in folder_or_files]
    if not files:
        raise InputError("folder_or_files is empty: pass a folder or the files of one series")
    for file in files:
        if not file.is_file():
            raise InputError(f"DICOM file {str(file)!r} does not exist: check the path")
    return files


def _physical(ds: Any, raw: npt.NDArray[Any], *, unit: str, modality: str, frame: int) -> npt.NDArray[Any]:
    """Stored values → physical values for one frame (rescale, Real World Value Mapping, dose scaling)."""
    if modality == "RTDOSE":
        scaling = number_of(ds, "DoseGridScaling")
        if scaling is None:
            raise DicomError(
                f"RT Dose {_uid(ds)} lacks {tag_text('DoseGridScaling')}: the stored integers cannot be "
                "converted to Gy; export the dose again"
            )
        return raw * _positive(scaling, "DoseGridScaling", _uid(ds), "RT Dose")
    if modality in ("NM", "PT") and unit in ("Bq/mL", "SUV"):
        slope, intercept = _quantitative_mapping(ds, frame)
    elif modality == "CT":
        slope, intercept = _rescale(ds, frame, required=True, why="CT numbers (HU)")
    else:
        slope, intercept = _rescale(ds, frame)
    return raw * slope + intercept


def _quantify(
    ds: Any,
    values: npt.NDArray[np.float32],
    *,
    unit: str,
    datasets: Sequence[Any],
    reference: datetime | None,
    voxel_volume_ml: float,
    calibration_cps_per_mbq: float | None,
    acquisition_duration_s: float | None,
    nuclide: str | None,
    raw_counts: bool = False,
) -> tuple[npt.NDArray[np.float32], str]:
    series = _uid(ds)
    if unit == "Bq/mL":
        if calibration_cps_per_mbq is not None:
            raise InputError(
                f"series {series} is already in Bq/mL; a calibration factor would apply twice: drop it"
            )
    elif unit == "counts":
        if str(_get(ds, "Modality", "")) == "PT":
            raise DicomError(
                f"PET series {series} holds counts (Units {_get(ds, 'Units', 'absent')}), not Bq/mL: "
                "export it from the scanner with Units BQML"
            )
        if raw_counts:
            return values, unit
        if calibration_cps_per_mbq is None:
            raise DicomError(
                f"series {series} holds uncalibrated counts (no Units BQML, no Real World Value Mapping to "
                "Bq/ml): pass the SPECT calibration factor "
                "(calibration_cps_per_mbq / --calibration-cps-per-mbq)"
            )
        duration_s = acquisition_duration_s or _acquisition_duration_s(ds)
        activity_mbq = values.astype(np.float64) / (duration_s * calibration_cps_per_mbq)
        values = (mbq_to_bq(activity_mbq) / voxel_volume_ml).astype(np.float32)
        unit = "Bq/mL"
    else:
        return values, unit
    correction = _decay_correction(ds)
    if correction == "ADMIN":
        if reference is None:
            raise DicomError(
                f"series {series} is decay-corrected to administration but has no acquisition time"
            )
        corrected_to = datetime_of(ds, "DecayCorrectionDateTime", _tz(ds))
        if corrected_to is None:
            info = read_radiopharmaceutical(ds)
            if info is None:
                raise DicomError(
                    f"series {series} is decay-corrected to administration "
                    "but the administration time is missing"
                )
            corrected_to = info.injection_datetime
        elapsed_h = _hours_between(corrected_to, reference)
        values = (values * math.exp(-_decay_constant_per_h(ds, nuclide) * elapsed_h)).astype(np.float32)
    elif correction == "NONE" and str(_get(ds, "Modality", "")) == "PT" and reference is not None:
        lam = _decay_constant_per_h(ds, nuclide)
        for k, slice_ds in enumerate(datasets):
            duration_ms = number_of(slice_ds, "ActualFrameDuration")
            if duration_ms is None or duration_ms < 0:
                raise DicomError(
                    f"PET series {series} is not decay corrected and lacks a valid "
                    f"{tag_text('ActualFrameDuration')}: the decay during each frame is unknown"
                )
            frame_h = seconds_to_hours(ms_to_seconds(duration_ms))
            start = acquisition_datetime_of(slice_ds) or reference
            factor = math.exp(lam * _hours_between(reference, start))
            if frame_h > 0:
                factor *= lam * frame_h / -math.expm1(-lam * frame_h)
            values[k] = (values[k] * factor).astype(np.float32)
    return values, unit


#: Values of Decay Correction (0054,1102), PS3.3 C.8.9.1.1.4.
DECAY_CORRECTIONS = ("NONE", "START", "ADMIN")


def _decay_correction(ds: Any) -> str:
    """Decay Correction of a quantitative NM/PET series ("" for NM that states none and is uncorrected).

    Raises
    ------
    DicomError
        PET without the attribute (Type 1 in the PET Series module), NM whose Corrected Image says DECY
        without it (corrected, but to an unknown time), or an unknown value.
    """
    value = str(_get(ds, "DecayCorrection", "")).strip().upper()
    modality = str(_get(ds, "Modality", ""))
    corrected = _upper_values(ds, "CorrectedImage")
    if not value:
        if modality == "PT":
            raise DicomError(
                f"PET series {_uid(ds)} lacks {tag_text('DecayCorrection')} (Type 1 in the PET Series "
                "module): the time its values refer to is unknown; export it again"
            )
        if "DECY" in corrected:
            raise DicomError(
                f"NM series {_uid(ds)} is decay corrected ({tag_text('CorrectedImage')} holds DECY) but "
                f"lacks {tag_text('DecayCorrection')}: the time its values refer to is unknown; "
                "export it again"
            )
        return ""
    if value not in DECAY_CORRECTIONS:
        raise DicomError(
            f"series {_uid(ds)}: {tag_text('DecayCorrection')} is {value!r}; expected one of "
            f"{', '.join(DECAY_CORRECTIONS)}"
        )
    return value


def _hours_between(start: datetime, end: datetime) -> float:
    if (start.tzinfo is None) != (end.tzinfo is None):
        start = start.replace(tzinfo=None)
        end = end.replace(tzinfo=None)
    return seconds_to_hours((end - start).total_seconds())


def _acquisition_duration_s(ds: Any) -> float:
    """Scan time of a SPECT acquisition: ActualFrameDuration × NumberOfFramesInRotation over all rotations."""
    total_s = 0.0
    for rotation in _get(ds, "RotationInformationSequence") or []:
        duration_ms = number_of(rotation, "ActualFrameDuration")
        n = number_of(rotation, "NumberOfFramesInRotation")
        if duration_ms is not None and n is not None and duration_ms > 0 and n > 0:
            total_s += ms_to_seconds(duration_ms) * int(n)
    if total_s <= 0:
        raise DicomError(
            f"series {_uid(ds)} has no acquisition duration (Rotation Information Sequence without "
            "ActualFrameDuration/NumberOfFramesInRotation): pass acquisition_duration_s"
        )
    return total_s


def read_counts(
    folder_or_files: str | Path | Sequence[str | Path], *, series_uid: str | None = None
) -> tuple[Volume, float]:
    """Read a reconstructed SPECT series stored as counts, unquantified, with its acquisition duration (s).

    Used to measure a calibration factor. The duration is the scan time of the Rotation Information
    Sequence (ActualFrameDuration × NumberOfFramesInRotation), as for quantification.

    Raises
    ------
    DicomError
        If the series is already quantitative (Bq/mL) or has no acquisition duration.
    """
    volume = read_series(folder_or_files, series_uid=series_uid, raw_counts=True)
    if volume.unit != "counts":
        raise DicomError(
            f"series {series_uid or ''} is in {volume.unit}, not counts: "
            "a calibration needs the uncalibrated reconstruction"
        )
    series = [s for s in discover_series_of(folder_or_files) if s.units == "counts"]
    if series_uid is not None:
        series = [s for s in series if s.series_uid == series_uid]
    ds = _dcmread(series[0].files[0], header_only=True)
    return volume, _acquisition_duration_s(ds)


def discover_series_of(folder_or_files: str | Path | Sequence[str | Path]) -> list[SeriesInfo]:
    """:func:`discover_series` of a folder, or of the folder holding the given file(s)."""
    if isinstance(folder_or_files, (str, Path)):
        root = Path(folder_or_files)
        return discover_series(root if root.is_dir() else root.parent)
    return discover_series(Path(folder_or_files[0]).parent)


__all__ = [
    "MALFORMED_DATA_ERRORS",
    "FolderContents",
    "UnreadableFile",
    "acquisition_datetime_of",
    "date_time_of",
    "datetime_of",
    "discover_series",
    "number_of",
    "read_counts",
    "read_radiopharmaceutical",
    "read_series",
    "scan_folder",
    "series_datetime_of",
    "tag_text",
]
