"""SUVbw and SUL scale factors from PET DICOM headers, with vendor-aware timing.

The computation is header-only: it reads the PET image headers (never the pixel data) and returns the
factor that turns activity concentration in Bq/mL into SUV. It follows the vendor-neutral SUV
pseudo-code of the QIBA FDG-PET/CT technical committee (Kinahan, Clunie, Fletcher et al., "Vendor-neutral
pseudo-code for SUV calculation", QIBA wiki; Kinahan & Fletcher, Semin Ultrasound CT MR 2010;31:496-505):

1. The image must be attenuation- and decay-corrected: Corrected Image (0028,0051) contains ``ATTN`` and
   ``DECY``; Decay Correction (0054,1102) is ``START`` (decayed to the scan start) or ``ADMIN`` (decayed to
   the administration time, so no further decay correction of the dose).
2. Scan reference time: Series Date/Time (0008,0021/0031) when it is not after the earliest Acquisition
   Date/Time (0008,0022/0032) of the series. Otherwise the series was post-processed and its Series Time
   is the time of reconstruction: use the GE private scan date-time (0009,100D, creator ``GEMS_PETD_01``)
   when present; else (Siemens and others) back-compute the scan start from Acquisition Date/Time, Frame
   Reference Time (0054,1300) and Actual Frame Duration (0018,1242) of the earliest frame, or use the
   earliest Acquisition Date/Time when those are missing.
3. Administration time: Radiopharmaceutical Start DateTime (0018,1078), else Radiopharmaceutical Start
   Time (0018,1072) on the Series Date (one day earlier if that would put the injection after the scan,
   i.e. the study spans midnight).
4. ``decayed dose = Radionuclide Total Dose (0018,1074) · 2^(-Δt / Radionuclide Half Life (0018,1075))``
   and ``SUVbw scale = Patient's Weight (0010,1030) [kg] · 1000 g/kg / decayed dose [Bq]``.
5. Units (0054,1001): ``BQML`` pixels are Bq/mL. ``CNTS`` (Philips): the private activity concentration
   scale factor (7053,1009) turns counts into Bq/mL and the private SUV scale factor (7053,1000) turns
   counts into SUVbw; when both are present they are cross-checked against the header computation.
   ``GML`` pixels are already SUVbw.

SUL uses the lean body mass of Janmahasatian et al. (Clin Pharmacokinet 2005;44:1051-1065):
``LBM = 9270·W / (6680 + 216·BMI)`` for men and ``LBM = 9270·W / (8780 + 244·BMI)`` for women, with W in
kg and ``BMI = W / H²`` (H in m), as recommended for PERCIST (Wahl et al., J Nucl Med 2009;50:122S).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from theradose.errors import DicomError, InputError
from theradose.units import bq_to_mbq, kg_to_gram

if TYPE_CHECKING:
    from pydicom import Dataset

#: Janmahasatian et al. 2005 lean-body-mass coefficients: LBM = A·W / (B + C·BMI).
LBM_NUMERATOR_KG = 9270.0
LBM_MALE_OFFSET = 6680.0
LBM_MALE_BMI_COEFFICIENT = 216.0
LBM_FEMALE_OFFSET = 8780.0
LBM_FEMALE_BMI_COEFFICIENT = 244.0

#: Relative disagreement above which the Philips private SUV factor (7053,1000) is reported as
#: inconsistent with the header computation (a reporting threshold of this package, not a QIBA value).
PHILIPS_CROSS_CHECK_TOLERANCE = 0.02

#: Relative disagreement between the header half-life and ICRP-107 that is reported (package choice).
HALF_LIFE_CROSS_CHECK_TOLERANCE = 0.01

GE_PRIVATE_CREATOR = "GEMS_PETD_01"
PHILIPS_PRIVATE_CREATOR = "Philips PET Private Group"

Units = Literal["BQML", "CNTS", "GML"]
Sex = Literal["M", "F"]

_ELEMENT_SYMBOLS = {
    "fluorine": "F",
    "gallium": "Ga",
    "copper": "Cu",
    "zirconium": "Zr",
    "carbon": "C",
    "nitrogen": "N",
    "oxygen": "O",
    "rubidium": "Rb",
    "iodine": "I",
    "yttrium": "Y",
    "scandium": "Sc",
}


@dataclass(frozen=True)
class SuvScale:
    """SUV conversion of one PET series.

    Attributes
    ----------
    suv_bw_scale : float
        Multiply activity concentration in Bq/mL by this to get SUVbw (g/mL); units g/Bq.
    sul_scale : float or None
        Multiply Bq/mL by this to get SUL (SUV normalised to Janmahasatian lean body mass); ``None`` when
        patient height or sex is missing (see ``notes``).
    pixel_suv_bw_scale : float
        Multiply the rescaled pixel values (RescaleSlope·stored + RescaleIntercept) by this to get SUVbw:
        ``suv_bw_scale`` for BQML, the Philips factor for CNTS, 1 for GML.
    pixel_to_bqml_scale : float or None
        Multiply rescaled pixel values by this to get Bq/mL (1 for BQML, (7053,1009) for CNTS).
    reference_time : datetime
        The time the dose is decayed to (scan start for START, administration for ADMIN).
    method : str
        One line: units, which timing rule decided ``reference_time`` and the decay-correction reference.
    """

    suv_bw_scale: float
    sul_scale: float | None
    pixel_suv_bw_scale: float
    pixel_to_bqml_scale: float | None
    reference_time: datetime
    administration_time: datetime
    method: str
    units: str
    manufacturer: str
    decay_correction: str
    injected_activity_mbq: float
    decayed_activity_mbq: float
    decay_time_s: float
    half_life_s: float
    weight_kg: float
    height_m: float | None
    sex: str | None
    lean_body_mass_kg: float | None
    philips_suv_scale: float | None = None
    notes: tuple[str, ...] = field(default=())

    def scales_at(self, time: datetime) -> tuple[float, float | None]:
        """(SUVbw, SUL) scale factors for concentrations expressed at ``time`` instead of ``reference_time``.

        A reader that re-decays the image values to another time (e.g. an ``ADMIN``-corrected series
        brought to the scan time) must pair them with the dose decayed to that same time:
        ``scale(t) = scale(t_ref) · 2^((t - t_ref) / T½)``.
        """
        if (time.tzinfo is None) != (self.reference_time.tzinfo is None):
            time = time.replace(tzinfo=None)
            ref = self.reference_time.replace(tzinfo=None)
        else:
            ref = self.reference_time
        factor = 2.0 ** ((time - ref).total_seconds() / self.half_life_s)
        sul = None if self.sul_scale is None else self.sul_scale * factor
        return self.suv_bw_scale * factor, sul

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (times in ISO 8601)."""
        return {
            "suv_bw_scale": self.suv_bw_scale,
            "sul_scale": self.sul_scale,
            "reference_time": self.reference_time.isoformat(),
            "method": self.method,
            "pixel_suv_bw_scale": self.pixel_suv_bw_scale,
            "pixel_to_bqml_scale": self.pixel_to_bqml_scale,
            "administration_time": self.administration_time.isoformat(),
            "units": self.units,
            "manufacturer": self.manufacturer,
            "decay_correction": self.decay_correction,
            "injected_activity_mbq": self.injected_activity_mbq,
            "decayed_activity_mbq": self.decayed_activity_mbq,
            "decay_time_s": self.decay_time_s,
            "half_life_s": self.half_life_s,
            "weight_kg": self.weight_kg,
            "height_m": self.height_m,
            "sex": self.sex,
            "lean_body_mass_kg": self.lean_body_mass_kg,
            "philips_suv_scale": self.philips_suv_scale,
            "notes": list(self.notes),
        }


def lean_body_mass_kg(weight_kg: float, height_m: float, sex: Sex) -> float:
    """Lean body mass after Janmahasatian et al. (Clin Pharmacokinet 2005;44:1051).

    ``LBM = 9270·W / (6680 + 216·BMI)`` (male) or ``9270·W / (8780 + 244·BMI)`` (female), with
    ``BMI = W / H²``.

    Parameters
    ----------
    weight_kg : float
        Body weight in kg (> 0).
    height_m : float
        Body height in m (> 0).
    sex : {"M", "F"}
        Patient sex as in DICOM Patient's Sex (0010,0040).

    Returns
    -------
    float
        Lean body mass in kg.
    """
    if not weight_kg > 0:
        raise InputError(f"weight_kg must be > 0; got {weight_kg}: give the patient's weight in kg")
    if not height_m > 0:
        raise InputError(f"height_m must be > 0; got {height_m}: give the patient's height in m")
    bmi_kg_per_m2 = weight_kg / height_m**2
    if sex == "M":
        return LBM_NUMERATOR_KG * weight_kg / (LBM_MALE_OFFSET + LBM_MALE_BMI_COEFFICIENT * bmi_kg_per_m2)
    if sex == "F":
        return LBM_NUMERATOR_KG * weight_kg / (LBM_FEMALE_OFFSET + LBM_FEMALE_BMI_COEFFICIENT * bmi_kg_per_m2)
    raise InputError(f"sex must be 'M' or 'F' for the Janmahasatian lean body mass; got {sex!r}")


def frame_average_time_s(frame_duration_s: float, half_life_s: float) -> float:
    """Time after frame start at which the decaying activity equals its frame average.

    ``t_ave = (1/λ)·ln(λT / (1 - exp(-λT)))`` (DICOM PS3.3 C.8.9.4.1.5, example 2; used by the QIBA
    pseudo-code to back-compute the scan start from Frame Reference Time).
    """
    decay_constant_per_s = math.log(2.0) / half_life_s
    x = decay_constant_per_s * frame_duration_s
    return math.log(x / (1.0 - math.exp(-x))) / decay_constant_per_s


# --------------------------------------------------------------------------------------------- reading


def read_pet_headers(path: str | Path) -> list[Dataset]:
    """Read the headers (no pixel data) of one PET file or of every PET file of one series in a folder.

    Raises
    ------
    InputError
        If the path does not exist, holds no PET image, or holds more than one PET series.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    p = Path(path)
    if not p.exists():
        raise InputError(f"PET path {str(p)!r} does not exist: give a PET DICOM file or series folder")
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    datasets: list[Dataset] = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError, ValueError, TypeError):
            if not p.is_dir():
                raise DicomError(f"{str(f)!r} is not a readable DICOM file: give a PET image file") from None
            continue
        if str(getattr(ds, "Modality", "")) == "PT":
            datasets.append(ds)
    if not datasets:
        raise InputError(f"no PET (Modality PT) DICOM image found under {str(p)!r}: give a PET series")
    series = {str(getattr(ds, "SeriesInstanceUID", "")) for ds in datasets}
    if len(series) > 1:
        raise InputError(
            f"{str(p)!r} holds {len(series)} PET series ({', '.join(sorted(series))}): give one series folder"
        )
    return datasets


def _dt(date: object, time: object, where: str) -> datetime | None:
    """DA + TM as a naive datetime; None when either is absent; DicomError naming ``where`` when malformed
    (e.g. a time of "25:61:99")."""
    if date in (None, "") or time in (None, ""):
        return None
    from pydicom.valuerep import DA, TM

    d: DA | None = None
    t: TM | None = None
    try:
        d = DA(str(date).strip()) if not isinstance(date, DA) else date
        t = TM(str(time).strip()) if not isinstance(time, TM) else time
    except (ValueError, TypeError, OverflowError):
        pass
    if d is None or t is None:
        raise DicomError(
            f"{where} is {str(date)!r} {str(time)!r}, not a valid DICOM date (YYYYMMDD) and time (HHMMSS): "
            "correct the header"
        )
    return datetime.combine(d, t)


def _parse_dt(value: object, where: str) -> datetime | None:
    """DT as a naive datetime; None when absent; DicomError naming ``where`` when malformed."""
    if value in (None, ""):
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="ignore").strip("\x00 ")
    from pydicom.valuerep import DT

    try:
        parsed = DT(str(value).strip())
    except (ValueError, TypeError, OverflowError):
        parsed = None
    if parsed is None:
        raise DicomError(f"{where} is {str(value)!r}, not a valid DICOM date-time: correct the header")
    return datetime(
        parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute, parsed.second, parsed.microsecond
    )


def _private_value(ds: Dataset, group: int, creator: str, offset: int) -> object | None:
    try:
        block = ds.private_block(group, creator)
        if offset in block:
            found: object = block[offset].value
            return found
    except KeyError:
        pass
    # fall back to the conventional block 0x10 (creator element missing after anonymisation)
    tag = (group << 16) | (0x1000 + offset)
    if tag in ds:
        raw: object = ds[tag].value
        return raw
    return None


def _float(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bytes):
        text = value.decode("ascii", errors="ignore").strip("\x00 ")
        if not text:
            return None
        value = text.split("\\")[0]
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _require(ds: Dataset, keyword: str, tag: str, what: str) -> Any:
    value = getattr(ds, keyword, None)
    if value is None or value == "":
        raise DicomError(f"missing {keyword} {tag}: {what}")
    return value


def _nuclide_half_life_s(code_meaning: str) -> tuple[str, float] | None:
    match = re.search(r"\^?(\d+)\^?\s*([A-Za-z]+)", code_meaning)
    if match is None:
        return None
    mass, element = match.group(1), match.group(2).lower()
    symbol = _ELEMENT_SYMBOLS.get(element, element.capitalize() if len(element) <= 2 else None)
    if symbol is None:
        return None
    from theradose.nuclides import get_nuclide
    from theradose.units import hours_to_seconds

    try:
        nuclide = get_nuclide(f"{symbol}-{mass}")
    except InputError:  # NuclideError is an InputError
        return None
    return str(nuclide.name), float(hours_to_seconds(float(nuclide.half_life_h)))


# ----------------------------------------------------------------------------------------- computation


def suv_scale_from_headers(datasets: Sequence[Dataset]) -> SuvScale:
    """SUVbw and SUL scale factors of one PET series from its headers (QIBA vendor-neutral method).

    Parameters
    ----------
    datasets : sequence of pydicom.Dataset
        Headers of the images of one PET series (one or more; pixel data not needed).

    Returns
    -------
    SuvScale

    Raises
    ------
    DicomError
        One line naming the missing or unusable attribute when the series cannot be converted to SUV
        (not decay-corrected, uncorrected counts without a scale factor, no weight, dose or times).
    """
    if not datasets:
        raise InputError("datasets is empty: give the headers of at least one PET image")
    ds0 = datasets[0]
    notes: list[str] = []
    manufacturer = str(getattr(ds0, "Manufacturer", "") or "")

    corrected_raw = getattr(ds0, "CorrectedImage", None) or []
    if isinstance(corrected_raw, str):
        corrected_raw = [corrected_raw]
    corrected = [str(v).upper() for v in corrected_raw]
    if not corrected:
        raise DicomError(
            "missing CorrectedImage (0028,0051): cannot tell whether the PET image is attenuation- and "
            "decay-corrected; SUV needs ATTN and DECY"
        )
    for flag in ("ATTN", "DECY"):
        if flag not in corrected:
            raise DicomError(
                f"CorrectedImage (0028,0051) is {'/'.join(corrected)} without {flag}: the image is not "
                f"{'attenuation' if flag == 'ATTN' else 'decay'}-corrected and cannot be converted to SUV"
            )
    decay_correction = str(
        _require(ds0, "DecayCorrection", "(0054,1102)", "SUV needs the decay-correction reference")
    ).upper()
    if decay_correction not in ("START", "ADMIN"):
        raise DicomError(
            f"DecayCorrection (0054,1102) is {decay_correction!r}: SUV needs images decay-corrected to "
            "START or ADMIN"
        )

    units = str(_require(ds0, "Units", "(0054,1001)", "SUV needs BQML, CNTS or GML pixel units")).upper()
    philips_suv = _float(_private_value(ds0, 0x7053, PHILIPS_PRIVATE_CREATOR, 0x00))
    philips_bqml = _float(_private_value(ds0, 0x7053, PHILIPS_PRIVATE_CREATOR, 0x09))
    if units == "CNTS" and philips_suv is None and philips_bqml is None:
        raise DicomError(
            "Units (0054,1001) is CNTS (uncorrected counts) without the Philips SUV scale factor "
            "(7053,1000) or activity concentration scale factor (7053,1009): cannot convert to Bq/mL or SUV"
        )
    if units not in ("BQML", "CNTS", "GML"):
        raise DicomError(f"Units (0054,1001) is {units!r}: SUV needs BQML, CNTS (Philips) or GML pixels")

    weight = _float(getattr(ds0, "PatientWeight", None))
    if weight is None or weight <= 0:
        raise DicomError(f"missing PatientWeight (0010,1030) (got {weight!r}): SUVbw needs the weight in kg")

    rp_seq = getattr(ds0, "RadiopharmaceuticalInformationSequence", None)
    if not rp_seq:
        raise DicomError(
            "missing RadiopharmaceuticalInformationSequence (0054,0016): SUV needs the injected dose and time"
        )
    rp = rp_seq[0]
    dose_bq = _float(getattr(rp, "RadionuclideTotalDose", None))
    if dose_bq is None or dose_bq <= 0:
        raise DicomError(
            f"missing RadionuclideTotalDose (0018,1074) (got {dose_bq!r}): SUV needs the injected "
            "activity in Bq"
        )
    half_life_s = _float(getattr(rp, "RadionuclideHalfLife", None))
    code_meaning = ""
    code_seq = getattr(rp, "RadionuclideCodeSequence", None)
    if code_seq:
        code_meaning = str(getattr(code_seq[0], "CodeMeaning", "") or "")
    found = _nuclide_half_life_s(code_meaning) if code_meaning else None
    if half_life_s is not None and half_life_s > 0 and found is not None:
        rel = abs(half_life_s - found[1]) / found[1]
        if rel > HALF_LIFE_CROSS_CHECK_TOLERANCE:
            notes.append(
                f"RadionuclideHalfLife (0018,1075) {half_life_s:g} s differs by {100 * rel:.1f} % from the "
                f"ICRP-107 half-life of {found[0]} ({found[1]:g} s): header value used, check the nuclide"
            )
    if half_life_s is None or half_life_s <= 0:
        if found is None:
            raise DicomError(
                "missing RadionuclideHalfLife (0018,1075) and no recognisable RadionuclideCodeSequence "
                "(0054,0300): SUV needs the half-life"
            )
        half_life_s = found[1]
        notes.append(f"half-life {half_life_s:.1f} s taken from ICRP-107 ({found[0]}): header has none")

    series_date = getattr(ds0, "SeriesDate", None)
    series_dt = _dt(series_date, getattr(ds0, "SeriesTime", None), "SeriesDate/SeriesTime (0008,0021/0031)")
    acquisitions = [
        (acq, ds)
        for ds in datasets
        if (
            acq := _dt(
                getattr(ds, "AcquisitionDate", None),
                getattr(ds, "AcquisitionTime", None),
                "AcquisitionDate/AcquisitionTime (0008,0022/0032)",
            )
        )
        is not None
    ]
    earliest: tuple[datetime, Dataset] | None = (
        min(acquisitions, key=lambda a: a[0]) if acquisitions else None
    )

    # administration time
    admin_dt = _parse_dt(
        getattr(rp, "RadiopharmaceuticalStartDateTime", None), "RadiopharmaceuticalStartDateTime (0018,1078)"
    )
    admin_from_time_only = False
    if admin_dt is None:
        start_time = getattr(rp, "RadiopharmaceuticalStartTime", None)
        if start_time in (None, ""):
            raise DicomError(
                "missing RadiopharmaceuticalStartDateTime (0018,1078) and RadiopharmaceuticalStartTime "
                "(0018,1072): SUV needs the injection time"
            )
        date_for_start = (
            series_date if series_date not in (None, "") else getattr(ds0, "AcquisitionDate", None)
        )
        admin_dt = _dt(
            date_for_start, start_time, "RadiopharmaceuticalStartTime (0018,1072) on the series date"
        )
        if admin_dt is None:
            raise DicomError(
                "missing SeriesDate (0008,0021): needed to date RadiopharmaceuticalStartTime (0018,1072)"
            )
        admin_from_time_only = True

    # scan reference time
    if decay_correction == "ADMIN":
        reference_dt = admin_dt
        timing = "DecayCorrection ADMIN: images decayed to administration, no dose decay"
    else:
        if series_dt is None and earliest is None:
            raise DicomError(
                "missing SeriesDate/SeriesTime (0008,0021/0031) and AcquisitionDate/AcquisitionTime "
                "(0008,0022/0032): SUV needs the scan time"
            )
        if series_dt is not None and (earliest is None or series_dt <= earliest[0]):
            reference_dt = series_dt
            timing = "SeriesDateTime (not after AcquisitionDateTime)"
        else:
            assert earliest is not None
            ge_scan = _parse_dt(
                _private_value(ds0, 0x0009, GE_PRIVATE_CREATOR, 0x0D), "GE private scan DateTime (0009,100D)"
            )
            if ge_scan is not None:
                reference_dt = ge_scan
                timing = "GE private scan DateTime (0009,100D): SeriesDateTime after AcquisitionDateTime"
            else:
                acq_dt, acq_ds = earliest
                frame_ref_ms = _float(getattr(acq_ds, "FrameReferenceTime", None))
                frame_dur_ms = _float(getattr(acq_ds, "ActualFrameDuration", None))
                if frame_ref_ms and frame_dur_ms and frame_ref_ms > 0 and frame_dur_ms > 0:
                    t_ave_s = frame_average_time_s(frame_dur_ms / 1000.0, half_life_s)
                    reference_dt = acq_dt - timedelta(seconds=frame_ref_ms / 1000.0 - t_ave_s)
                    timing = (
                        "AcquisitionDateTime - FrameReferenceTime + frame average time: SeriesDateTime "
                        "after AcquisitionDateTime, no GE private scan time"
                    )
                else:
                    reference_dt = acq_dt
                    timing = (
                        "earliest AcquisitionDateTime: SeriesDateTime after AcquisitionDateTime, no GE "
                        "private scan time or frame timing"
                    )
        if admin_from_time_only and admin_dt > reference_dt:
            admin_dt -= timedelta(days=1)
            notes.append(
                "injection time after scan time on the same date: injection taken on the previous day"
            )
    decay_time_s = (reference_dt - admin_dt).total_seconds()
    if decay_time_s < 0:
        raise DicomError(
            f"RadiopharmaceuticalStartDateTime {admin_dt.isoformat()} is after the scan reference time "
            f"{reference_dt.isoformat()}: check the injection time"
        )
    decayed_bq = dose_bq * 2.0 ** (-decay_time_s / half_life_s)
    suv_bw_scale = kg_to_gram(weight) / decayed_bq

    height_m = _float(getattr(ds0, "PatientSize", None))
    sex_raw = str(getattr(ds0, "PatientSex", "") or "").upper()
    sex = sex_raw if sex_raw in ("M", "F") else None
    lbm: float | None = None
    sul_scale: float | None = None
    if height_m is None or height_m <= 0:
        notes.append("SUL not computed: missing PatientSize (0010,1020)")
    elif sex is None:
        notes.append(f"SUL not computed: PatientSex (0010,0040) is {sex_raw!r}, need M or F")
    else:
        lbm = lean_body_mass_kg(weight, height_m, sex)  # type: ignore[arg-type]
        sul_scale = kg_to_gram(lbm) / decayed_bq

    pixel_to_bqml: float | None
    if units == "BQML":
        pixel_to_bqml = 1.0
        pixel_suv = suv_bw_scale
    elif units == "GML":
        pixel_to_bqml = None
        pixel_suv = 1.0
    else:
        pixel_to_bqml = philips_bqml
        if philips_bqml is not None:
            pixel_suv = philips_bqml * suv_bw_scale
            if philips_suv is not None:
                rel = abs(philips_suv - pixel_suv) / pixel_suv
                if rel > PHILIPS_CROSS_CHECK_TOLERANCE:
                    notes.append(
                        f"Philips SUV scale factor (7053,1000) {philips_suv:.6g} differs by "
                        f"{100 * rel:.1f} % from (7053,1009)·SUVbw scale {pixel_suv:.6g}: check weight, "
                        "dose and times"
                    )
        else:
            assert philips_suv is not None
            pixel_suv = philips_suv
            notes.append("CNTS without (7053,1009): pixel SUV scale is the Philips factor (7053,1000)")
    if units == "BQML" and philips_suv is not None:
        notes.append(f"Philips private SUV scale factor (7053,1000) present: {philips_suv:.6g}")

    method = f"QIBA vendor-neutral; Units {units}; scan time: {timing}; DecayCorrection {decay_correction}"
    return SuvScale(
        suv_bw_scale=suv_bw_scale,
        sul_scale=sul_scale,
        pixel_suv_bw_scale=pixel_suv,
        pixel_to_bqml_scale=pixel_to_bqml,
        reference_time=reference_dt,
        administration_time=admin_dt,
        method=method,
        units=units,
        manufacturer=manufacturer,
        decay_correction=decay_correction,
        injected_activity_mbq=bq_to_mbq(dose_bq),
        decayed_activity_mbq=bq_to_mbq(decayed_bq),
        decay_time_s=decay_time_s,
        half_life_s=half_life_s,
        weight_kg=weight,
        height_m=height_m,
        sex=sex,
        lean_body_mass_kg=lbm,
        philips_suv_scale=philips_suv,
        notes=tuple(notes),
    )


def suv_scale(path: str | Path) -> SuvScale:
    """SUV scale factors of the PET file or series folder at ``path`` (headers only).

    See :func:`suv_scale_from_headers` for the method and errors.
    """
    import struct
    import warnings

    from pydicom.errors import BytesLengthException, InvalidDicomError

    malformed = (
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
        OverflowError,
        NotImplementedError,
        struct.error,
        BytesLengthException,
        InvalidDicomError,
    )
    with warnings.catch_warnings():  # pydicom's warnings on non-conformant values; bad ones are refused
        warnings.simplefilter("ignore")
        try:
            return suv_scale_from_headers(read_pet_headers(path))
        except (InputError, DicomError):
            raise
        except malformed as exc:
            detail = " ".join(str(exc).split())[:160]
            raise DicomError(
                f"PET headers under {str(path)!r} are malformed ({detail}): export again"
            ) from exc
