"""DICOM Radiopharmaceutical Radiation Dose SR (RRDSR, TID 10021) writer and reader.

Writer: one administration → one RRDSR instance (SOP class 1.2.840.10008.5.1.4.1.1.88.68, IOD modules per
PS3.3 A.35.14: Patient, General Study, SR Document Series, General and Enhanced General Equipment, SR
Document General, SR Document Content, SOP Common). The content tree follows the tables of DICOM PS3.16
(rows as numbered in PS3.16 2014c, whose layout the current edition keeps; codes as in the current
edition, legacy SRT codes accepted by the reader):

TID 10021 Radiopharmaceutical Radiation Dose
    row 1   CONTAINER (113500, DCM, "Radiopharmaceutical Radiation Dose Report"), the root
    row 1b  > HAS CONCEPT MOD CODE (121049, DCM, "Language of Content Item and Descendants") (TID 1204)
    row 2   > HAS CONCEPT MOD CODE (363589002, SCT, "Associated Procedure"), DCID 3108: written as
            (440252007, SCT, "Administration of radiopharmaceutical"), the procedure performed
    row 3   >> HAS CONCEPT MOD CODE (363703001, SCT, "Has Intent"), DCID 3629: therapeutic or diagnostic
    row 4   > CONTAINS TID 10022
TID 10022 Radiopharmaceutical Administration Event Data
    row 1   CONTAINER (113502, DCM, "Radiopharmaceutical Administration")
    row 2   > CONTAINS CODE (349358000, SCT, "Radiopharmaceutical agent")
    row 3   >> HAS PROPERTIES CODE (89457008, SCT, "Radionuclide")
    row 4   >> HAS PROPERTIES NUM (304283002, SCT, "Radionuclide Half Life"), s
    row 6   > CONTAINS UIDREF (113503, DCM, "Radiopharmaceutical Administration Event UID")
    row 9   > CONTAINS DATETIME (123003, DCM, "Radiopharmaceutical Start DateTime")
    row 11  > CONTAINS NUM (113507, DCM, "Administered activity"), MBq
    row 12  > CONTAINS NUM (123005, DCM, "Radiopharmaceutical Volume"), cm3
    row 13  > CONTAINS NUM (113508, DCM, "Pre-Administration Measured Activity"), MBq, with Observation
            DateTime (0040,A032) = when it was measured (Content Item Description of the row)
    row 14  >> HAS OBS CONTEXT CODE (113540, DCM, "Activity Measurement Device"), DCID 10041
    row 15  >> HAS OBS CONTEXT TID 1002 Observer Context: the measuring device (Observer Type Device,
            Device Observer UID and Name, TID 1004)
    row 16-18 the same for (113509, DCM, "Post-Administration Measured Activity")
    row 20  > CONTAINS CODE (410675002, SCT, "Route of administration"), DCID 11
    row 21  >> HAS PROPERTIES CODE (272737002, SCT, "Site of"), mandatory when the route is intravenous
            or intramuscular: the recorded site, else the vein (29092000, SCT) or muscle (71616004, SCT)
            that the route itself names
    row 22  >>> HAS CONCEPT MOD CODE (272741003, SCT, "Laterality"), when the side is recorded
    then    > CONTAINS PNAME (113870, DCM, "Person Name") (TID 1020 Person Participant) with role
            (113851, DCM, "Irradiation Administering"); the dispense unit (113511) with its lot (113512),
            and the prescription identifier (113516).

The observer context sits under the measured activities it describes: the RRDSR IOD allows HAS OBS
CONTEXT only from TEXT, CODE and NUM items (PS3.3 A.35.14, Table A.35.14-2), never from the root
container. Organ doses (TID 10023) are not written: the RRDSR records the administration; absorbed doses
travel as RT Dose and the study record.

Reader: finds the TID 10022 container (113502, DCM) anywhere in the content tree and reads the same
items, accepting the current SNOMED CT codes and the legacy SRT codes, and converting activity units
(Bq, kBq, MBq, GBq, mCi, uCi) to MBq. A DATETIME without its own UTC offset is read in the file's
Timezone Offset From UTC (0008,0201), else in the site time zone the caller names; with neither it is
refused. Patient identifiers are pseudonyms: nothing else leaves the site.
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from theradose.errors import DicomError
from theradose.units import days_to_hours, gbq_to_mbq, hours_to_seconds, mci_to_mbq

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

RRDSR_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.88.68"
#: Private coding scheme for products without a standard code.
LOCAL_SCHEME = "99THERADOSE"
SOFTWARE_NAME = "theradose"

_ELEMENT_NAMES = {
    "Lu": "Lutetium",
    "Ga": "Gallium",
    "Y": "Yttrium",
    "I": "Iodine",
    "Ac": "Actinium",
    "Tc": "Technetium",
    "F": "Fluorine",
    "Ra": "Radium",
    "Ho": "Holmium",
    "Tb": "Terbium",
    "Pb": "Lead",
    "Cu": "Copper",
    "In": "Indium",
    "Sm": "Samarium",
    "Sr": "Strontium",
}
_ROUTE_CODES = {
    "intravenous": ("47625008", "Intravenous route"),
    "intra-arterial": ("58100008", "Intra-arterial route"),
    "oral": ("26643006", "Oral route"),
    "intraperitoneal": ("38239002", "Intraperitoneal route"),
    "intrathecal": ("72607000", "Intrathecal route"),
    "intratumoral": ("447122006", "Intratumor route"),
    "intramuscular": ("78421000", "Intramuscular route"),
}
#: Sites of administration (DCID 3746-style anatomic codes, SNOMED CT as in PS3.16).
_SITE_CODES = {
    "vein": ("29092000", "Vein"),
    "antecubital vein": ("128553008", "Antecubital vein"),
    "median cubital vein": ("49852007", "Median Cubital vein"),
    "cephalic vein": ("20699002", "Cephalic vein"),
    "basilic vein": ("19715009", "Basilic vein"),
    "muscle": ("71616004", "Muscle"),
    "hepatic artery": ("76015000", "Hepatic artery"),
}
#: The site a route names by itself (TID 10022 row 21 is mandatory for these two routes).
_ROUTE_SITES = {"intravenous": "vein", "intramuscular": "muscle"}
_LATERALITY_CODES = {"left": ("7771000", "Left"), "right": ("24028007", "Right")}
#: DCID 3629 Procedure Intent.
_INTENT_CODES = {
    "therapeutic": ("262202000", "Therapeutic Intent"),
    "diagnostic": ("261004008", "Diagnostic Intent"),
}
#: TID 10021 row 2: the procedure performed (DCID 3108 is extensible; this SNOMED CT procedure is in
#: the DICOM code tables).
ASSOCIATED_PROCEDURE = ("440252007", "SCT", "Administration of radiopharmaceutical")
_ACTIVITY_TO_MBQ = {
    "MBq": 1.0,
    "GBq": gbq_to_mbq(1.0),
    "kBq": 1e-3,
    "Bq": 1e-6,
    "mCi": mci_to_mbq(1.0),
    "uCi": mci_to_mbq(1e-3),
}


@dataclass(frozen=True)
class AdministrationReport:
    """What an RRDSR reports about one administration (activities in MBq, volume in mL).

    ``pre_activity_time`` / ``post_activity_time`` are when the syringe was measured before and after
    the administration (TID 10022 rows 13 and 16, Observation DateTime); ``site`` and ``laterality`` the
    site of administration (row 21-22: ``"antecubital vein"``, ``"left"`` ...).
    """

    patient_id: str
    radiopharmaceutical: str
    nuclide: str
    administered_activity_mbq: float
    injection_time: datetime
    route: str
    event_uid: str
    pre_activity_mbq: float | None = None
    post_activity_mbq: float | None = None
    volume_ml: float | None = None
    lot: str | None = None
    dispense_id: str | None = None
    prescription_id: str | None = None
    administered_by: str | None = None
    half_life_s: float | None = None
    device: str | None = None
    sop_instance_uid: str | None = None
    pre_activity_time: datetime | None = None
    post_activity_time: datetime | None = None
    site: str | None = None
    laterality: str | None = None
    intent: str | None = "therapeutic"
    """DCID 3629 intent of the administration: ``"therapeutic"`` (theradose's service administers
    therapies) or ``"diagnostic"``; None when a file read states none."""


# --- writer -------------------------------------------------------------------------------------------------
def _code(value: str, scheme: str, meaning: str) -> Dataset:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.CodeValue = value
    ds.CodingSchemeDesignator = scheme
    ds.CodeMeaning = meaning
    return ds


def _item(relationship: str, value_type: str, concept: tuple[str, str, str]) -> Dataset:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.RelationshipType = relationship
    ds.ValueType = value_type
    ds.ConceptNameCodeSequence = [_code(*concept)]
    return ds


def _code_item(relationship: str, concept: tuple[str, str, str], value: tuple[str, str, str]) -> Dataset:
    ds = _item(relationship, "CODE", concept)
    ds.ConceptCodeSequence = [_code(*value)]
    return ds


def _num_item(relationship: str, concept: tuple[str, str, str], value: float, unit: str) -> Dataset:
    from pydicom.dataset import Dataset

    ds = _item(relationship, "NUM", concept)
    mv = Dataset()
    mv.NumericValue = _ds_string(value)
    mv.MeasurementUnitsCodeSequence = [_code(unit, "UCUM", unit)]
    ds.MeasuredValueSequence = [mv]
    return ds


def _ds_string(value: float) -> str:
    """A DS value of at most 16 characters."""
    for digits in range(12, 3, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{value:.4g}"


def _text_item(relationship: str, concept: tuple[str, str, str], value: str) -> Dataset:
    ds = _item(relationship, "TEXT", concept)
    ds.TextValue = value
    return ds


def _dt(value: datetime) -> str:
    """DICOM DT with the value's own UTC offset, e.g. ``20261123110000.000000+0100``."""
    return value.strftime("%Y%m%d%H%M%S.%f") + _offset(value)


def _offset(value: datetime) -> str:
    minutes = int((value.utcoffset() or timedelta(0)).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def nuclide_code(nuclide: str) -> tuple[str, str, str]:
    """Code of a nuclide (CID 18/25 SNOMED CT where known, else the local scheme), e.g. Lu-177."""
    from pydicom.sr.codedict import codes

    symbol, _, mass = nuclide.partition("-")
    name = _ELEMENT_NAMES.get(symbol)
    if name and mass:
        code = getattr(codes.SCT, f"_{mass}{name}", None)
        if code is not None:
            return (str(code.value), str(code.scheme_designator), str(code.meaning))
    return (nuclide.replace("-", "").upper()[:16], LOCAL_SCHEME, f"^{mass}^{name or symbol}")


def product_code(product: str) -> tuple[str, str, str]:
    """Code of a radiopharmaceutical (SNOMED CT when known, else the local scheme)."""
    key = product.lower().replace(" ", "")
    if "dotatate" in key and "177" in key:
        return ("781259000", "SCT", "Lutetium^177^ DOTATATE")
    value = "".join(ch for ch in product.upper() if ch.isalnum())[:16] or "PRODUCT"
    return (value, LOCAL_SCHEME, product[:64])


def build_rrdsr(
    report: AdministrationReport,
    *,
    institution: str = "theradose",
    site_timezone: str = "UTC",
    study_uid: str | None = None,
    series_uid: str | None = None,
    content_time: datetime | None = None,
) -> Dataset:
    """Build the RRDSR dataset of ``report`` (see module docstring for the content).

    Dates and times are written in the site's time zone with Timezone Offset From UTC (0008,0201)
    and explicit offsets in DATETIME items.
    """
    from zoneinfo import ZoneInfo

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from theradose import __version__
    from theradose.pharmacy.decay import half_life_h

    zone = ZoneInfo(site_timezone)
    now = (content_time or datetime.now(UTC)).astimezone(zone)
    injection = report.injection_time.astimezone(zone)
    sop_uid = report.sop_instance_uid or generate_uid()

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = RRDSR_SOP_CLASS_UID
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    ds.TimezoneOffsetFromUTC = _offset(now)
    # Patient (pseudonym only)
    ds.PatientName = report.patient_id.replace("-", "^", 1)  # pseudonym as family^given, never the identity
    ds.PatientID = report.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    # General Study
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.StudyDate = injection.strftime("%Y%m%d")
    ds.StudyTime = injection.strftime("%H%M%S")
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    # SR Document Series
    ds.Modality = "SR"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber = 1
    ds.ReferencedPerformedProcedureStepSequence = []
    # General + Enhanced General Equipment
    ds.Manufacturer = SOFTWARE_NAME
    ds.InstitutionName = institution
    ds.ManufacturerModelName = SOFTWARE_NAME
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = str(__version__)
    # SR Document General
    ds.InstanceNumber = 1
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.PerformedProcedureCodeSequence = []
    scheme = Dataset()
    scheme.CodingSchemeDesignator = LOCAL_SCHEME
    scheme.CodingSchemeName = "theradose local product and nuclide codes"
    scheme.CodingSchemeResponsibleOrganization = SOFTWARE_NAME
    ds.CodingSchemeIdentificationSequence = [scheme]
    # SR Document Content: TID 10021 root
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [_code("113500", "DCM", "Radiopharmaceutical Radiation Dose Report")]
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "10021"
    ds.ContentTemplateSequence = [template]

    language = _code_item(  # TID 10021 row 1b (TID 1204)
        "HAS CONCEPT MOD",
        ("121049", "DCM", "Language of Content Item and Descendants"),
        ("en", "RFC5646", "English"),
    )
    intent = _INTENT_CODES.get(report.intent or "")
    if intent is None:
        raise DicomError(f"intent {report.intent!r} is not known: use one of {', '.join(_INTENT_CODES)}")
    procedure = _code_item(  # TID 10021 row 2
        "HAS CONCEPT MOD", ("363589002", "SCT", "Associated Procedure"), ASSOCIATED_PROCEDURE
    )
    procedure.ContentSequence = [  # TID 10021 row 3
        _code_item("HAS CONCEPT MOD", ("363703001", "SCT", "Has Intent"), (intent[0], "SCT", intent[1]))
    ]

    half_life_s = report.half_life_s
    if half_life_s is None:
        half_life_s = hours_to_seconds(half_life_h(report.nuclide))
    agent = _code_item(  # TID 10022 rows 2-4
        "CONTAINS",
        ("349358000", "SCT", "Radiopharmaceutical agent"),
        product_code(report.radiopharmaceutical),
    )
    agent.ContentSequence = [
        _code_item("HAS PROPERTIES", ("89457008", "SCT", "Radionuclide"), nuclide_code(report.nuclide)),
        _num_item("HAS PROPERTIES", ("304283002", "SCT", "Radionuclide Half Life"), half_life_s, "s"),
    ]
    event_uid = _item("CONTAINS", "UIDREF", ("113503", "DCM", "Radiopharmaceutical Administration Event UID"))
    event_uid.UID = report.event_uid  # row 6
    start = _item("CONTAINS", "DATETIME", ("123003", "DCM", "Radiopharmaceutical Start DateTime"))
    start.DateTime = _dt(injection)  # row 9
    admin_items: list[Dataset] = [
        agent,
        event_uid,
        start,
        _num_item(  # row 11
            "CONTAINS", ("113507", "DCM", "Administered activity"), report.administered_activity_mbq, "MBq"
        ),
    ]
    if report.volume_ml is not None:  # row 12
        admin_items.append(
            _num_item("CONTAINS", ("123005", "DCM", "Radiopharmaceutical Volume"), report.volume_ml, "cm3")
        )
    device_name = report.device or "Dose Calibrator"
    for code, meaning, value, measured_at in (  # rows 13-15 and 16-18
        ("113508", "Pre-Administration Measured Activity", report.pre_activity_mbq, report.pre_activity_time),
        (
            "113509",
            "Post-Administration Measured Activity",
            report.post_activity_mbq,
            report.post_activity_time,
        ),
    ):
        if value is None:
            continue
        if measured_at is None:
            raise DicomError(
                f"{meaning} {value:g} MBq has no measurement time: TID 10022 records it as the item's "
                "Observation DateTime; pass pre_activity_time / post_activity_time"
            )
        item = _num_item("CONTAINS", (code, "DCM", meaning), value, "MBq")
        item.ObservationDateTime = _dt(measured_at.astimezone(zone))
        item.ContentSequence = [
            _code_item(
                "HAS OBS CONTEXT",
                ("113540", "DCM", "Activity Measurement Device"),
                ("113541", "DCM", "Dose Calibrator"),
            ),
            *_device_observer(device_name, institution),
        ]
        admin_items.append(item)
    route_code = _ROUTE_CODES.get(report.route)
    if route_code is None:
        raise DicomError(f"route {report.route!r} has no DICOM code: use one of {', '.join(_ROUTE_CODES)}")
    route = _code_item(  # row 20
        "CONTAINS", ("410675002", "SCT", "Route of administration"), (route_code[0], "SCT", route_code[1])
    )
    site_name = report.site or _ROUTE_SITES.get(report.route)
    if site_name is not None:  # row 21, mandatory for intravenous and intramuscular routes
        site_code = _SITE_CODES.get(site_name.lower())
        if site_code is None:
            raise DicomError(f"site {site_name!r} has no DICOM code: use one of {', '.join(_SITE_CODES)}")
        site = _code_item(
            "HAS PROPERTIES", ("272737002", "SCT", "Site of"), (site_code[0], "SCT", site_code[1])
        )
        if report.laterality is not None:  # row 22
            side = _LATERALITY_CODES.get(report.laterality.lower())
            if side is None:
                raise DicomError(f"laterality {report.laterality!r} is not 'left' or 'right'")
            site.ContentSequence = [
                _code_item("HAS CONCEPT MOD", ("272741003", "SCT", "Laterality"), (side[0], "SCT", side[1]))
            ]
        route.ContentSequence = [site]
    admin_items.append(route)
    if report.administered_by:  # TID 1020 Person Participant, role Irradiation Administering
        person = _item("CONTAINS", "PNAME", ("113870", "DCM", "Person Name"))
        person.PersonName = report.administered_by[:64]
        person.ContentSequence = [
            _code_item(
                "HAS PROPERTIES",
                ("113875", "DCM", "Person Role in Procedure"),
                ("113851", "DCM", "Irradiation Administering"),
            )
        ]
        admin_items.append(person)
    if report.dispense_id is not None:
        dispense_item = _text_item(
            "CONTAINS", ("113511", "DCM", "Radiopharmaceutical Dispense Unit Identifier"), report.dispense_id
        )
        if report.lot is not None:
            dispense_item.ContentSequence = [
                _text_item(
                    "HAS PROPERTIES", ("113512", "DCM", "Radiopharmaceutical Lot Identifier"), report.lot
                )
            ]
        admin_items.append(dispense_item)
    if report.prescription_id is not None:
        admin_items.append(
            _text_item("CONTAINS", ("113516", "DCM", "Prescription Identifier"), report.prescription_id)
        )
    administration = _item("CONTAINS", "CONTAINER", ("113502", "DCM", "Radiopharmaceutical Administration"))
    administration.ContinuityOfContent = "SEPARATE"
    administration.ContentSequence = admin_items

    ds.ContentSequence = [language, procedure, administration]

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RRDSR_SOP_CLASS_UID
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def _device_observer(name: str, institution: str) -> list[Dataset]:
    """TID 1002 Observer Context for a device (Observer Type Device + TID 1004 UID and name)."""
    from pydicom.uid import generate_uid

    observer_type = _code_item(
        "HAS OBS CONTEXT", ("121005", "DCM", "Observer Type"), ("121007", "DCM", "Device")
    )
    observer_uid = _item("HAS OBS CONTEXT", "UIDREF", ("121012", "DCM", "Device Observer UID"))
    observer_uid.UID = generate_uid(entropy_srcs=[institution, name])
    observer_name = _text_item("HAS OBS CONTEXT", ("121013", "DCM", "Device Observer Name"), name[:64])
    return [observer_type, observer_uid, observer_name]


def write_rrdsr_bytes(
    report: AdministrationReport, *, institution: str = "theradose", site_timezone: str = "UTC"
) -> bytes:
    """The RRDSR of ``report`` as a DICOM Part 10 file (bytes)."""
    ds = build_rrdsr(report, institution=institution, site_timezone=site_timezone)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# --- reader -------------------------------------------------------------------------------------------------
_AGENT = {("349358000", "SCT"), ("F-61FDB", "SRT")}
_RADIONUCLIDE = {("89457008", "SCT"), ("C-10072", "SRT")}
_HALF_LIFE = {("304283002", "SCT"), ("R-42806", "SRT")}
_ROUTE = {("410675002", "SCT"), ("G-C340", "SRT")}
_SITE_OF = {("272737002", "SCT"), ("G-C581", "SRT")}
_LATERALITY = {("272741003", "SCT"), ("G-C171", "SRT")}
_ASSOCIATED_PROCEDURE = {("363589002", "SCT"), ("G-C2D0", "SRT")}
_HAS_INTENT = {("363703001", "SCT"), ("G-C0E8", "SRT")}


def _concept(item: Any) -> tuple[str, str]:
    seq = getattr(item, "ConceptNameCodeSequence", None)
    if not seq:
        return ("", "")
    return (str(seq[0].CodeValue), str(seq[0].CodingSchemeDesignator))


def _find_container(node: Any) -> Any | None:
    for item in getattr(node, "ContentSequence", []) or []:
        if getattr(item, "ValueType", "") == "CONTAINER" and _concept(item) == ("113502", "DCM"):
            return item
        found = _find_container(item)
        if found is not None:
            return found
    return None


def _number(item: Any, what: str) -> tuple[float, str]:
    """(value, unit code) of a NUM item; :class:`DicomError` unless it is one finite number."""
    try:
        mv = item.MeasuredValueSequence[0]
        unit = str(mv.MeasurementUnitsCodeSequence[0].CodeValue)
        text = mv.NumericValue
    except (AttributeError, IndexError, KeyError, TypeError) as exc:
        raise DicomError(f"{what} has no measured value with units: the NUM item is incomplete") from exc
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise DicomError(f"{what} NumericValue {str(text)!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise DicomError(f"{what} is {value!r}: an activity, volume or half-life must be a finite number ≥ 0")
    return value, unit


def _activity_mbq(item: Any, what: str = "activity") -> float:
    value, unit = _number(item, what)
    if unit not in _ACTIVITY_TO_MBQ:
        raise DicomError(
            f"{what} unit {unit!r} not understood: expected one of {', '.join(_ACTIVITY_TO_MBQ)}"
        )
    return value * _ACTIVITY_TO_MBQ[unit]


def _half_life_s(item: Any) -> float:
    value, unit = _number(item, "Radionuclide Half Life")
    factors = {"s": 1.0, "min": 60.0, "h": hours_to_seconds(1.0), "d": hours_to_seconds(days_to_hours(1.0))}
    if unit not in factors:
        raise DicomError(f"half-life unit {unit!r} not understood: expected s, min, h or d")
    return value * factors[unit]


_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?")


def _parse_dt(value: Any, default_zone: tzinfo | None, what: str = "DATETIME") -> datetime:
    """A DICOM DT (``YYYYMMDDHHMMSS.FFFFFF&ZZXX``) as an aware UTC datetime.

    The value's own offset wins; without one it is local time in ``default_zone`` (the file's Timezone
    Offset From UTC, else the site's). With neither, the instant is unknown and it is refused.
    """
    text = str(value or "").strip()
    match = _DT.fullmatch(text)
    if match is None:
        raise DicomError(f"{what} {str(value)!r} is not a DICOM DT: expected YYYYMMDDHHMMSS.FFFFFF&ZZXX")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    zone = default_zone
    if offset is not None:
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[3:5])
        if hours > 14 or minutes > 59:
            raise DicomError(f"{what} {text!r} has an invalid UTC offset {offset}")
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        parsed = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError as exc:
        raise DicomError(f"{what} {text!r} is not a valid date and time ({exc})") from None
    if zone is None:
        raise DicomError(
            f"{what} {text!r} has no UTC offset and the file has no TimezoneOffsetFromUTC (0008,0201): the "
            "instant is unknown; import it with the site's time zone"
        )
    parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def _file_zone(ds: Any, site_timezone: str | tzinfo | None) -> tzinfo | None:
    """The zone of DATETIME values without their own offset: TimezoneOffsetFromUTC, else the site's."""
    text = str(getattr(ds, "TimezoneOffsetFromUTC", "") or "").strip()
    if text:
        match = re.fullmatch(r"([+-])(\d{2})(\d{2})", text)
        if match is None or int(match.group(2)) > 14 or int(match.group(3)) > 59:
            raise DicomError(
                f"TimezoneOffsetFromUTC (0008,0201) is {text!r}, not +HHMM or -HHMM: correct the file"
            )
        sign = 1 if match.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    if isinstance(site_timezone, str):
        from zoneinfo import ZoneInfo

        return ZoneInfo(site_timezone)
    return site_timezone


def read_rrdsr(
    source: bytes | str | Dataset, *, site_timezone: str | tzinfo | None = None
) -> AdministrationReport:
    """Read the administration of an RRDSR (bytes, path or dataset).

    Parameters
    ----------
    site_timezone : str or tzinfo, optional
        Zone of DATETIME values that carry no UTC offset when the file has no Timezone Offset From UTC
        (0008,0201) either (e.g. ``"Europe/Berlin"``).

    Raises
    ------
    DicomError
        If the object is not an RRDSR, lacks the radiopharmaceutical, radionuclide, administered activity
        or start time, or holds a malformed number, unit or date-time (the message names it).
    """
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.errors import InvalidDicomError

    with warnings.catch_warnings():  # pydicom's warnings on non-conformant values: refused below instead
        warnings.simplefilter("ignore")
        if isinstance(source, Dataset):
            ds = source
        else:
            from theradose.io.dicom.structure import check_complete

            try:
                data = source if isinstance(source, bytes) else Path(source).read_bytes()
                ds = pydicom.dcmread(io.BytesIO(data))
            except (InvalidDicomError, OSError, EOFError, ValueError, struct.error) as exc:
                raise DicomError(f"cannot read DICOM: {exc}: give a DICOM Part 10 RRDSR file") from exc
            check_complete(data, "RRDSR" if isinstance(source, bytes) else str(source))
        return _read_checked(ds, site_timezone)


def _read_checked(ds: Any, site_timezone: str | tzinfo | None) -> AdministrationReport:
    try:
        return _read_report(ds, site_timezone)
    except DicomError:
        raise
    except (
        AttributeError,
        IndexError,
        KeyError,
        TypeError,
        ValueError,
        struct.error,
        NotImplementedError,
    ) as exc:
        raise DicomError(
            f"RRDSR content not understood ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
        ) from exc


def _read_report(ds: Any, site_timezone: str | tzinfo | None) -> AdministrationReport:
    sop_class = str(getattr(ds, "SOPClassUID", ""))
    if sop_class != RRDSR_SOP_CLASS_UID:
        shown = "".join(ch for ch in sop_class if ch.isdigit() or ch == ".")[:64]
        raise DicomError(
            f"SOPClassUID {shown or 'missing'} is not Radiopharmaceutical Radiation Dose SR "
            f"({RRDSR_SOP_CLASS_UID}): give an RRDSR"
        )
    zone = _file_zone(ds, site_timezone)
    container = _find_container(ds)
    if container is None:
        raise DicomError("RRDSR has no Radiopharmaceutical Administration container (113502, DCM)")
    fields: dict[str, Any] = {}
    for item in getattr(container, "ContentSequence", None) or []:
        concept = _concept(item)
        code = concept[0]
        if concept in _AGENT:
            fields["radiopharmaceutical"] = str(item.ConceptCodeSequence[0].CodeMeaning)
            for child in getattr(item, "ContentSequence", []) or []:
                if _concept(child) in _RADIONUCLIDE:
                    fields["nuclide"] = str(child.ConceptCodeSequence[0].CodeMeaning)
                elif _concept(child) in _HALF_LIFE:
                    fields["half_life_s"] = _half_life_s(child)
        elif code == "113503":
            fields["event_uid"] = str(item.UID)
        elif code == "123003":
            fields["injection_time"] = _parse_dt(item.DateTime, zone, "Radiopharmaceutical Start DateTime")
        elif code == "113507":
            fields["administered_activity_mbq"] = _activity_mbq(item, "Administered activity")
        elif code == "123005":
            fields["volume_ml"] = _number(item, "Radiopharmaceutical Volume")[0]
        elif code in ("113508", "113509"):
            prefix = "pre" if code == "113508" else "post"
            what = f"{prefix.capitalize()}-Administration Measured Activity"
            fields[f"{prefix}_activity_mbq"] = _activity_mbq(item, what)
            if getattr(item, "ObservationDateTime", None):
                fields[f"{prefix}_activity_time"] = _parse_dt(
                    item.ObservationDateTime, zone, f"{what} Observation DateTime"
                )
            for child in getattr(item, "ContentSequence", []) or []:
                if _concept(child) == ("113540", "DCM"):
                    fields["device"] = str(child.ConceptCodeSequence[0].CodeMeaning)
        elif concept in _ROUTE:
            meaning = str(item.ConceptCodeSequence[0].CodeMeaning)
            value = str(item.ConceptCodeSequence[0].CodeValue)
            names = {v[0]: k for k, v in _ROUTE_CODES.items()}
            fields["route"] = names.get(value, meaning)
            for child in getattr(item, "ContentSequence", []) or []:
                if _concept(child) in _SITE_OF:
                    site_value = str(child.ConceptCodeSequence[0].CodeValue)
                    sites = {v[0]: k for k, v in _SITE_CODES.items()}
                    fields["site"] = sites.get(site_value, str(child.ConceptCodeSequence[0].CodeMeaning))
                    for grandchild in getattr(child, "ContentSequence", []) or []:
                        if _concept(grandchild) in _LATERALITY:
                            sides = {v[0]: k for k, v in _LATERALITY_CODES.items()}
                            side = str(grandchild.ConceptCodeSequence[0].CodeValue)
                            fields["laterality"] = sides.get(
                                side, str(grandchild.ConceptCodeSequence[0].CodeMeaning)
                            )
        elif code == "113511":
            fields["dispense_id"] = str(item.TextValue)
            for child in getattr(item, "ContentSequence", []) or []:
                if _concept(child)[0] == "113512":
                    fields["lot"] = str(child.TextValue)
        elif code == "113516":
            fields["prescription_id"] = str(item.TextValue)
        elif code == "113870":
            fields["administered_by"] = str(item.PersonName)
    for required in ("radiopharmaceutical", "nuclide", "administered_activity_mbq", "injection_time"):
        if required not in fields:
            raise DicomError(f"RRDSR lacks {required}: the administration container is incomplete")
    intent: str | None = None
    for item in getattr(ds, "ContentSequence", None) or []:
        if _concept(item) in _ASSOCIATED_PROCEDURE:
            for child in getattr(item, "ContentSequence", []) or []:
                if _concept(child) in _HAS_INTENT:
                    value = str(child.ConceptCodeSequence[0].CodeValue)
                    intents = {v[0]: k for k, v in _INTENT_CODES.items()}
                    intent = intents.get(value, str(child.ConceptCodeSequence[0].CodeMeaning))
    return AdministrationReport(
        patient_id=str(getattr(ds, "PatientID", "")),
        radiopharmaceutical=fields["radiopharmaceutical"],
        nuclide=fields["nuclide"],
        administered_activity_mbq=fields["administered_activity_mbq"],
        injection_time=fields["injection_time"],
        route=fields.get("route", ""),
        event_uid=fields.get("event_uid", ""),
        pre_activity_mbq=fields.get("pre_activity_mbq"),
        post_activity_mbq=fields.get("post_activity_mbq"),
        volume_ml=fields.get("volume_ml"),
        lot=fields.get("lot"),
        dispense_id=fields.get("dispense_id"),
        prescription_id=fields.get("prescription_id"),
        administered_by=fields.get("administered_by"),
        half_life_s=fields.get("half_life_s"),
        device=fields.get("device"),
        sop_instance_uid=str(getattr(ds, "SOPInstanceUID", "")) or None,
        pre_activity_time=fields.get("pre_activity_time"),
        post_activity_time=fields.get("post_activity_time"),
        site=fields.get("site"),
        laterality=fields.get("laterality"),
        intent=intent,
    )
