"""DICOM Radiopharmaceutical Radiation Dose SR (RRDSR, TID 10021) writer and reader.

Writer: one administration → one RRDSR instance (SOP class 1.2.840.10008.5.1.4.1.1.88.68) with the
root template TID 10021 and the administration event TID 10022 (DICOM PS3.16): radiopharmaceutical agent
with radionuclide and half-life, event UID, start date-time, administered activity, volume, pre- and
post-administration measured activity (dose calibrator), route, dispense unit and lot identifiers and the
prescription identifier. IOD modules per PS3.3 A.35.18 (Patient, General Study, SR Document Series,
General/Enhanced General Equipment, SR Document General, SR Document Content, SOP Common).

Reader: finds the TID 10022 container (113502, DCM) anywhere in the content tree and reads the same
items, accepting the current SNOMED CT codes and the legacy SRT codes, and converting activity units
(Bq, kBq, MBq, GBq, mCi, uCi) to MBq. Patient identifiers are pseudonyms: nothing else leaves the site.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
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
}
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
    """What an RRDSR reports about one administration (activities in MBq, volume in mL)."""

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

    procedure = _code_item(
        "HAS CONCEPT MOD",
        ("121058", "DCM", "Procedure reported"),
        ("113502", "DCM", "Radiopharmaceutical Administration"),
    )
    procedure.ContentSequence = [
        _code_item(
            "HAS CONCEPT MOD", ("363703001", "SCT", "Has Intent"), ("262202000", "SCT", "Therapeutic Intent")
        )
    ]
    language = _code_item(
        "HAS CONCEPT MOD",
        ("121049", "DCM", "Language of Content Item and Descendants"),
        ("en", "RFC5646", "English"),
    )
    observer_type = _code_item(
        "HAS OBS CONTEXT", ("121005", "DCM", "Observer Type"), ("121007", "DCM", "Device")
    )
    observer_uid = _item("HAS OBS CONTEXT", "UIDREF", ("121012", "DCM", "Device Observer UID"))
    observer_uid.UID = generate_uid(entropy_srcs=[institution, SOFTWARE_NAME])
    observer_name = _text_item("HAS OBS CONTEXT", ("121013", "DCM", "Device Observer Name"), SOFTWARE_NAME)

    half_life_s = report.half_life_s
    if half_life_s is None:
        half_life_s = hours_to_seconds(half_life_h(report.nuclide))
    agent = _code_item(
        "CONTAINS",
        ("349358000", "SCT", "Radiopharmaceutical agent"),
        product_code(report.radiopharmaceutical),
    )
    agent.ContentSequence = [
        _code_item("HAS PROPERTIES", ("89457008", "SCT", "Radionuclide"), nuclide_code(report.nuclide)),
        _num_item("HAS PROPERTIES", ("304283002", "SCT", "Radionuclide Half Life"), half_life_s, "s"),
    ]
    event_uid = _item("CONTAINS", "UIDREF", ("113503", "DCM", "Radiopharmaceutical Administration Event UID"))
    event_uid.UID = report.event_uid
    start = _item("CONTAINS", "DATETIME", ("123003", "DCM", "Radiopharmaceutical Start DateTime"))
    start.DateTime = _dt(injection)
    admin_items: list[Dataset] = [
        agent,
        event_uid,
        start,
        _num_item(
            "CONTAINS", ("113507", "DCM", "Administered activity"), report.administered_activity_mbq, "MBq"
        ),
    ]
    if report.volume_ml is not None:
        admin_items.append(
            _num_item("CONTAINS", ("123005", "DCM", "Radiopharmaceutical Volume"), report.volume_ml, "cm3")
        )
    device = _code_item(
        "HAS PROPERTIES",
        ("113540", "DCM", "Activity Measurement Device"),
        ("113541", "DCM", "Dose Calibrator"),
    )
    for code, meaning, value in (
        ("113508", "Pre-Administration Measured Activity", report.pre_activity_mbq),
        ("113509", "Post-Administration Measured Activity", report.post_activity_mbq),
    ):
        if value is not None:
            item = _num_item("CONTAINS", (code, "DCM", meaning), value, "MBq")
            item.ContentSequence = [device]
            admin_items.append(item)
    route = _ROUTE_CODES.get(report.route)
    if route is None:
        raise DicomError(f"route {report.route!r} has no DICOM code: use one of {', '.join(_ROUTE_CODES)}")
    admin_items.append(
        _code_item("CONTAINS", ("410675002", "SCT", "Route of administration"), (route[0], "SCT", route[1]))
    )
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

    ds.ContentSequence = [procedure, language, observer_type, observer_uid, observer_name, administration]

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RRDSR_SOP_CLASS_UID
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


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


def _activity_mbq(item: Any) -> float:
    mv = item.MeasuredValueSequence[0]
    unit = str(mv.MeasurementUnitsCodeSequence[0].CodeValue)
    if unit not in _ACTIVITY_TO_MBQ:
        raise DicomError(
            f"activity unit {unit!r} not understood: expected one of {', '.join(_ACTIVITY_TO_MBQ)}"
        )
    return float(mv.NumericValue) * _ACTIVITY_TO_MBQ[unit]


def _half_life_s(item: Any) -> float:
    mv = item.MeasuredValueSequence[0]
    unit = str(mv.MeasurementUnitsCodeSequence[0].CodeValue)
    factors = {"s": 1.0, "min": 60.0, "h": hours_to_seconds(1.0), "d": hours_to_seconds(days_to_hours(1.0))}
    if unit not in factors:
        raise DicomError(f"half-life unit {unit!r} not understood: expected s, min, h or d")
    return float(mv.NumericValue) * factors[unit]


def _parse_dt(value: str) -> datetime:
    text = str(value).strip()
    offset = UTC
    for sign in ("+", "-"):
        if sign in text[8:]:
            pos = text.rindex(sign)
            tz = text[pos + 1 :]
            minutes = int(tz[:2]) * 60 + int(tz[2:4])
            offset = timezone(timedelta(minutes=minutes if sign == "+" else -minutes))
            text = text[:pos]
            break
    fraction = 0
    if "." in text:
        text, frac = text.split(".", 1)
        fraction = int((frac + "000000")[:6])
    fmt = "%Y%m%d%H%M%S"[: {4: 2, 6: 4, 8: 6, 10: 8, 12: 10, 14: 12}.get(len(text), 12)]
    try:
        parsed = datetime.strptime(text, fmt)
    except ValueError as exc:
        raise DicomError(
            f"DATETIME value {value!r} is not a DICOM DT: expected YYYYMMDDHHMMSS.FFFFFF&ZZXX"
        ) from exc
    return parsed.replace(microsecond=fraction, tzinfo=offset).astimezone(UTC)


def read_rrdsr(source: bytes | str | Dataset) -> AdministrationReport:
    """Read the administration of an RRDSR (bytes, path or dataset).

    Raises
    ------
    DicomError
        If the object is not an RRDSR or lacks the radiopharmaceutical, radionuclide or administered activity.
    """
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.errors import InvalidDicomError

    if isinstance(source, Dataset):
        ds = source
    else:
        try:
            ds = pydicom.dcmread(io.BytesIO(source) if isinstance(source, bytes) else source)
        except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
            raise DicomError(f"cannot read DICOM: {exc}: give a DICOM Part 10 RRDSR file") from exc
    sop_class = str(getattr(ds, "SOPClassUID", ""))
    if sop_class != RRDSR_SOP_CLASS_UID:
        raise DicomError(
            f"SOPClassUID {sop_class or 'missing'} is not Radiopharmaceutical Radiation Dose SR "
            f"({RRDSR_SOP_CLASS_UID}): give an RRDSR"
        )
    container = _find_container(ds)
    if container is None:
        raise DicomError("RRDSR has no Radiopharmaceutical Administration container (113502, DCM)")
    fields: dict[str, Any] = {}
    for item in container.ContentSequence:
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
            fields["injection_time"] = _parse_dt(item.DateTime)
        elif code == "113507":
            fields["administered_activity_mbq"] = _activity_mbq(item)
        elif code == "123005":
            fields["volume_ml"] = float(item.MeasuredValueSequence[0].NumericValue)
        elif code in ("113508", "113509"):
            fields["pre_activity_mbq" if code == "113508" else "post_activity_mbq"] = _activity_mbq(item)
            for child in getattr(item, "ContentSequence", []) or []:
                if _concept(child) == ("113540", "DCM"):
                    fields["device"] = str(child.ConceptCodeSequence[0].CodeMeaning)
        elif concept in _ROUTE:
            meaning = str(item.ConceptCodeSequence[0].CodeMeaning)
            value = str(item.ConceptCodeSequence[0].CodeValue)
            names = {v[0]: k for k, v in _ROUTE_CODES.items()}
            fields["route"] = names.get(value, meaning)
        elif code == "113511":
            fields["dispense_id"] = str(item.TextValue)
            for child in getattr(item, "ContentSequence", []) or []:
                if _concept(child)[0] == "113512":
                    fields["lot"] = str(child.TextValue)
        elif code == "113516":
            fields["prescription_id"] = str(item.TextValue)
    for required in ("radiopharmaceutical", "nuclide", "administered_activity_mbq", "injection_time"):
        if required not in fields:
            raise DicomError(f"RRDSR lacks {required}: the administration container is incomplete")
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
        half_life_s=fields.get("half_life_s"),
        device=fields.get("device"),
        sop_instance_uid=str(getattr(ds, "SOPInstanceUID", "")) or None,
    )
