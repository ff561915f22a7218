"""Small records exchanged with DICOM: patient, radiopharmaceutical, series summary; shared helpers."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from theradose.errors import DataError, InputError

#: UID root used for every UID theradose generates (pydicom's registered root; suffix is random).
UID_PREFIX = "1.2.826.0.1.3680043.8.498."

Sex = Literal["M", "F", "O", ""]


@dataclass(frozen=True)
class PatientInfo:
    """Patient attributes written into every DICOM object.

    Parameters
    ----------
    name : str
        DICOM person name, ``"Family^Given"``.
    patient_id : str
        Patient ID (at most 64 characters).
    birth_date : date or None
        Date of birth.
    sex : {"M", "F", "O", ""}
        Patient's sex as DICOM codes it ("" = unknown).
    weight_kg : float or None
        Body weight in kg (used for SUV).
    """

    name: str = "Anonymous^Patient"
    patient_id: str = "ANON0001"
    birth_date: date | None = None
    sex: Sex = ""
    weight_kg: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.patient_id, str) or not 0 < len(self.patient_id) <= 64:
            raise InputError(f"patient_id must be 1-64 characters; got {self.patient_id!r}")
        if not isinstance(self.name, str) or len(self.name) > 320:
            raise InputError(f"name must be a DICOM person name string; got {self.name!r}")
        if self.sex not in ("M", "F", "O", ""):
            raise InputError(f"sex must be 'M', 'F', 'O' or ''; got {self.sex!r}")
        if self.weight_kg is not None and not (math.isfinite(self.weight_kg) and 0 < self.weight_kg < 700):
            raise InputError(f"weight_kg must be in (0, 700) kg; got {self.weight_kg!r}")
        if self.birth_date is not None and not isinstance(self.birth_date, date):
            raise InputError(f"birth_date must be a date; got {self.birth_date!r}")


@dataclass(frozen=True)
class RadiopharmaceuticalInfo:
    """What was administered: nuclide, compound, activity and time.

    Parameters
    ----------
    nuclide : str
        Radionuclide, canonical form ``"Lu-177"`` (``"177Lu"``/``"Lu177"`` are normalised).
    radiopharmaceutical : str
        Compound, e.g. ``"177Lu-PSMA-617"``.
    injected_activity_mbq : float
        Administered activity in MBq at ``injection_datetime``.
    injection_datetime : datetime
        Start of the administration (timezone-aware preferred).
    """

    nuclide: str
    radiopharmaceutical: str
    injected_activity_mbq: float
    injection_datetime: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "nuclide", normalise_nuclide_name(self.nuclide))
        if not (math.isfinite(self.injected_activity_mbq) and self.injected_activity_mbq > 0):
            raise InputError(
                f"injected_activity_mbq must be a positive number of MBq; got {self.injected_activity_mbq!r}"
            )
        if not isinstance(self.injection_datetime, datetime):
            raise InputError(f"injection_datetime must be a datetime; got {self.injection_datetime!r}")


@dataclass(frozen=True)
class SeriesInfo:
    """Summary of one DICOM series found on disk (see :func:`theradose.io.dicom.discover_series`).

    ``shape`` and ``spacing_mm`` are in :class:`~theradose.imaging.volume.Volume` array axis order
    (slice, row, column); they are ``None`` for non-image objects (RTSTRUCT, RTPLAN, ...).
    ``units`` is the unit the volume will have when read (``"Bq/mL"``, ``"HU"``, ``"counts"``, ``"Gy"``,
    ...), ``None`` for non-image objects.
    """

    series_uid: str
    study_uid: str
    modality: str
    units: str | None
    shape: tuple[int, int, int] | None
    spacing_mm: tuple[float, float, float] | None
    acquisition_datetime: datetime | None
    nuclide: str | None
    injected_activity_mbq: float | None
    n_files: int
    files: tuple[Path, ...] = field(repr=False)
    description: str = ""
    manufacturer: str = ""
    frame_uid: str | None = None
    patient_id: str = ""
    sop_class_uid: str = ""
    problem: str | None = None

    @property
    def is_image(self) -> bool:
        """True if the series holds an image volume (``problem`` says why it cannot be read, if so)."""
        return self.units is not None

    def as_dict(self) -> dict[str, Any]:
        """The fields of the ``theradose dicom inspect --json`` contract (plus a few more)."""
        return {
            "series_uid": self.series_uid,
            "modality": self.modality,
            "units": self.units,
            "shape": list(self.shape) if self.shape else None,
            "spacing_mm": list(self.spacing_mm) if self.spacing_mm else None,
            "acquisition_datetime": self.acquisition_datetime.isoformat()
            if self.acquisition_datetime
            else None,
            "nuclide": self.nuclide,
            "injected_activity_mbq": self.injected_activity_mbq,
            "n_files": self.n_files,
            "study_uid": self.study_uid,
            "description": self.description,
            "manufacturer": self.manufacturer,
            "frame_uid": self.frame_uid,
            "problem": self.problem,
        }


# ---------------------------------------------------------------------------------------------- nuclides
@dataclass(frozen=True)
class RadionuclideCode:
    """One row of ``data/imaging/radionuclide_codes.csv`` (DICOM CID 18 / CID 4020)."""

    nuclide: str
    coding_scheme: str
    code_value: str
    code_meaning: str


@lru_cache(maxsize=1)
def radionuclide_codes() -> tuple[RadionuclideCode, ...]:
    """The coded radionuclides shipped in ``data/imaging/radionuclide_codes.csv``."""
    path = resources.files("theradose").joinpath("data", "imaging", "radionuclide_codes.csv")
    try:
        with path.open("r", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:  # pragma: no cover - installation problem
        raise DataError(f"cannot read radionuclide code table {path}: reinstall theradose") from exc
    return tuple(
        RadionuclideCode(r["nuclide"], r["coding_scheme"], r["code_value"], r["code_meaning"]) for r in rows
    )


_ELEMENT_NAMES = {
    "carbon": "C",
    "fluorine": "F",
    "copper": "Cu",
    "gallium": "Ga",
    "zirconium": "Zr",
    "yttrium": "Y",
    "technetium": "Tc",
    "indium": "In",
    "iodine": "I",
    "samarium": "Sm",
    "terbium": "Tb",
    "holmium": "Ho",
    "lutetium": "Lu",
    "rhenium": "Re",
    "thallium": "Tl",
    "lead": "Pb",
    "radium": "Ra",
    "actinium": "Ac",
    "bismuth": "Bi",
    "astatine": "At",
    "scandium": "Sc",
    "rubidium": "Rb",
    "strontium": "Sr",
    "xenon": "Xe",
    "nitrogen": "N",
    "oxygen": "O",
}


def normalise_nuclide_name(text: str) -> str:
    """Canonical ``"Lu-177"`` form of a nuclide written as ``Lu-177``, ``177Lu``, ``Lu177``,
    ``^177^Lutetium``, ``LU177``, ``Lutetium-177`` or ``Tc99m``.

    Raises
    ------
    InputError
        If no element symbol and mass number can be found in ``text``.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"nuclide must be a name such as 'Lu-177'; got {text!r}")
    cleaned = re.sub(r"[\^_\-]", " ", text.strip())
    mass = re.search(r"(\d{1,3})([mM](?![a-z]))?", cleaned)
    rest = cleaned if mass is None else cleaned[: mass.start()] + " " + cleaned[mass.end() :]
    symbol = None
    for word in re.findall(r"[A-Za-z]+", rest):
        lower = word.lower()
        if lower in _ELEMENT_NAMES:
            symbol = _ELEMENT_NAMES[lower]
            break
        if len(word) <= 2:
            symbol = word[0].upper() + word[1:].lower()
            break
    if mass is None or symbol is None:
        raise InputError(f"nuclide {text!r} is not recognised: write it as 'Lu-177', '177Lu' or 'Tc-99m'")
    metastable = "m" if mass.group(2) else ""
    return f"{symbol}-{int(mass.group(1))}{metastable}"


def code_for_nuclide(nuclide: str) -> RadionuclideCode | None:
    """The DICOM code of ``nuclide`` (any spelling), or None if the table has none."""
    name = normalise_nuclide_name(nuclide)
    for code in radionuclide_codes():
        if code.nuclide == name:
            return code
    return None


# ---------------------------------------------------------------------------------------------- time
#: DICOM stores frame durations (ActualFrameDuration) in milliseconds.
MILLISECONDS_PER_SECOND = 1000.0


def seconds_to_ms(time_s: float) -> float:
    """s → ms."""
    return time_s * MILLISECONDS_PER_SECOND


def ms_to_seconds(time_ms: float) -> float:
    """ms → s."""
    return time_ms / MILLISECONDS_PER_SECOND


def format_da(value: date) -> str:
    """DICOM DA (YYYYMMDD)."""
    return value.strftime("%Y%m%d")


def format_tm(value: datetime) -> str:
    """DICOM TM (HHMMSS.ffffff)."""
    return value.strftime("%H%M%S.%f")


def format_dt(value: datetime) -> str:
    """DICOM DT (YYYYMMDDHHMMSS.ffffff[&ZZXX])."""
    text = value.strftime("%Y%m%d%H%M%S.%f")
    if value.tzinfo is not None:
        text += value.strftime("%z")
    return text


def tz_offset_text(value: datetime) -> str | None:
    """DICOM Timezone Offset From UTC (``+HHMM``) of an aware datetime, else None."""
    return value.strftime("%z") if value.tzinfo is not None and value.utcoffset() is not None else None


def parse_tz_offset(text: str | None) -> timezone | None:
    """``+HHMM``/``-HHMM`` → timezone, or None when absent or malformed."""
    if not text:
        return None
    match = re.fullmatch(r"\s*([+-])(\d{2})(\d{2})\s*", str(text))
    if match is None:
        return None
    sign = 1 if match.group(1) == "+" else -1
    return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))


def parse_da_tm(da: Any, tm: Any, tz: timezone | None = None) -> datetime | None:
    """Combine DICOM DA and TM strings into a datetime (None if either is missing or malformed)."""
    da_text = str(da or "").strip()
    tm_text = str(tm or "").strip().replace(":", "")
    if len(da_text) != 8 or not da_text.isdigit() or not tm_text:
        return None
    match = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?", tm_text)
    if match is None:
        return None
    try:
        return datetime(
            int(da_text[:4]),
            int(da_text[4:6]),
            int(da_text[6:8]),
            int(match.group(1)),
            int(match.group(2) or 0),
            int(match.group(3) or 0),
            int((match.group(4) or "0").ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:
        return None


def parse_dt(text: Any, tz: timezone | None = None) -> datetime | None:
    """Parse DICOM DT (``YYYYMMDDHHMMSS.FFFFFF&ZZXX``); None if missing or malformed."""
    raw = str(text or "").strip()
    match = re.fullmatch(r"(\d{8})(\d{2,6}(?:\.\d{1,6})?)?([+-]\d{4})?", raw)
    if match is None:
        return None
    zone = parse_tz_offset(match.group(3)) or tz
    return parse_da_tm(match.group(1), match.group(2) or "000000", zone)


__all__ = [
    "UID_PREFIX",
    "PatientInfo",
    "RadionuclideCode",
    "RadiopharmaceuticalInfo",
    "SeriesInfo",
    "code_for_nuclide",
    "normalise_nuclide_name",
    "radionuclide_codes",
]
