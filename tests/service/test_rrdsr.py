"""RRDSR (TID 10021/10022): our output passes dciodvfy, follows the rows of DICOM PS3.16 and reads back;
an injector-style SR imports; times honour the UTC offset and Timezone Offset From UTC.

dcmtk and OpenREM's extraction logic read the same files in tests/io/test_dicom_clients.py."""

# calendar: the dates in this file are data (a writer/reader round trip); nothing here reads the clock.

from __future__ import annotations

import dataclasses
import math
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from theradose.errors import DicomError
from theradose.service.rrdsr import RRDSR_SOP_CLASS_UID, AdministrationReport, read_rrdsr, write_rrdsr_bytes

REPORT = AdministrationReport(
    patient_id="PT-0A1B2C3D4E",
    radiopharmaceutical="[177Lu]Lu-PSMA-617",
    nuclide="Lu-177",
    administered_activity_mbq=7312.5,
    injection_time=datetime(2026, 11, 23, 10, 0, 0, 250000, tzinfo=UTC),
    route="intravenous",
    event_uid="1.2.826.0.1.3680043.8.498.1234567890",
    pre_activity_mbq=7420.0,
    post_activity_mbq=101.5,
    volume_ml=8.285,
    lot="LOT-77",
    dispense_id="D1",
    prescription_id="RX1",
    pre_activity_time=datetime(2026, 11, 23, 9, 40, tzinfo=UTC),
    post_activity_time=datetime(2026, 11, 23, 10, 25, tzinfo=UTC),
    administered_by="nurse.one",
)


def _dciodvfy(path: Path) -> list[str]:
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.fail("dciodvfy not found: install dicom3tools (scripts/setup-system.sh)", pytrace=False)
    out = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60, check=False)
    return (out.stdout + out.stderr).splitlines()


@pytest.mark.dciodvfy
def test_written_rrdsr_passes_dciodvfy(tmp_path: Path) -> None:
    path = tmp_path / "rrdsr.dcm"
    path.write_bytes(write_rrdsr_bytes(REPORT, institution="Test Site"))
    lines = _dciodvfy(path)
    assert "RadiopharmaceuticalRadiationDoseSR" in lines  # dciodvfy recognised the IOD
    errors = [line for line in lines if line.startswith("Error")]
    assert errors == []


def _by_code(items) -> dict[str, Dataset]:
    return {i.ConceptNameCodeSequence[0].CodeValue: i for i in items}


def test_written_rrdsr_content(tmp_path: Path) -> None:
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(write_rrdsr_bytes(REPORT)))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.68"
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "10021"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "113500"
    assert ds.PatientID == "PT-0A1B2C3D4E"
    # TID 10021: row 1b language, row 2 Associated Procedure with row 3 Has Intent, row 4 the TID 10022
    # container. No observer context under the root: the RRDSR IOD allows HAS OBS CONTEXT only from TEXT,
    # CODE and NUM items (PS3.3 Table A.35.14-2).
    root = [(i.RelationshipType, i.ConceptNameCodeSequence[0].CodeValue) for i in ds.ContentSequence]
    assert root == [("HAS CONCEPT MOD", "121049"), ("HAS CONCEPT MOD", "363589002"), ("CONTAINS", "113502")]
    procedure = ds.ContentSequence[1]
    assert procedure.ConceptNameCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert procedure.ConceptCodeSequence[0].CodeValue == "440252007"  # Administration of radiopharmaceutical
    intent = procedure.ContentSequence[0]
    assert (intent.RelationshipType, intent.ConceptNameCodeSequence[0].CodeValue) == (
        "HAS CONCEPT MOD",
        "363703001",
    )
    assert intent.ConceptCodeSequence[0].CodeValue == "262202000"  # Therapeutic Intent, DCID 3629
    admin = ds.ContentSequence[2]
    by_code = _by_code(admin.ContentSequence)
    agent = by_code["349358000"]  # row 2
    nuclide = agent.ContentSequence[0].ConceptCodeSequence[0]  # row 3
    assert (nuclide.CodeValue, nuclide.CodingSchemeDesignator) == ("447553000", "SCT")  # ^177^Lutetium
    half_life = float(agent.ContentSequence[1].MeasuredValueSequence[0].NumericValue)  # row 4
    assert math.isclose(half_life, 6.647 * 86400.0, rel_tol=1e-6)  # ICRP-107: 6.647 d
    activity = by_code["113507"].MeasuredValueSequence[0]  # row 11
    assert float(activity.NumericValue) == 7312.5
    assert activity.MeasurementUnitsCodeSequence[0].CodeValue == "MBq"
    assert by_code["123003"].DateTime == "20261123100000.250000+0000"  # row 9
    # rows 13-15 and 16-18: measured activities with their measurement time (Observation DateTime) and,
    # as observation context, the Activity Measurement Device and the device observer (TID 1002)
    for code, when in (("113508", "20261123094000.000000+0000"), ("113509", "20261123102500.000000+0000")):
        item = by_code[code]
        assert item.ObservationDateTime == when
        context = [(c.RelationshipType, c.ConceptNameCodeSequence[0].CodeValue) for c in item.ContentSequence]
        assert context == [
            ("HAS OBS CONTEXT", "113540"),
            ("HAS OBS CONTEXT", "121005"),
            ("HAS OBS CONTEXT", "121012"),
            ("HAS OBS CONTEXT", "121013"),
        ]
        assert item.ContentSequence[0].ConceptCodeSequence[0].CodeValue == "113541"  # Dose Calibrator
    route = by_code["410675002"]  # row 20
    assert route.ConceptCodeSequence[0].CodeValue == "47625008"  # Intravenous route
    site = route.ContentSequence[0]  # row 21, mandatory for the intravenous route
    assert (site.RelationshipType, site.ConceptNameCodeSequence[0].CodeValue) == (
        "HAS PROPERTIES",
        "272737002",
    )
    assert site.ConceptCodeSequence[0].CodeValue == "29092000"  # Vein
    person = by_code["113870"]  # TID 1020, $PersonProcedureRole = Irradiation Administering
    assert person.PersonName == "nurse.one"
    assert person.ContentSequence[0].ConceptCodeSequence[0].CodeValue == "113851"


def test_site_and_laterality_recorded() -> None:
    report = dataclasses.replace(REPORT, site="antecubital vein", laterality="left")
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(write_rrdsr_bytes(report)))
    site = _by_code(ds.ContentSequence[2].ContentSequence)["410675002"].ContentSequence[0]
    assert site.ConceptCodeSequence[0].CodeValue == "128553008"  # Antecubital vein
    laterality = site.ContentSequence[0]  # row 22
    assert laterality.ConceptNameCodeSequence[0].CodeValue == "272741003"
    assert laterality.ConceptCodeSequence[0].CodeValue == "7771000"  # Left
    back = read_rrdsr(write_rrdsr_bytes(report))
    assert back.site == "antecubital vein" and back.laterality == "left"
    oral = read_rrdsr(write_rrdsr_bytes(dataclasses.replace(REPORT, route="oral")))
    assert oral.route == "oral" and oral.site is None  # row 21 applies to intravenous/intramuscular only


def test_measured_activity_needs_its_time() -> None:
    with pytest.raises(DicomError, match=r"Pre-Administration Measured Activity .* no measurement time"):
        write_rrdsr_bytes(dataclasses.replace(REPORT, pre_activity_time=None))


@pytest.mark.dciodvfy
def test_site_local_time_with_offset(tmp_path: Path) -> None:
    data = write_rrdsr_bytes(REPORT, site_timezone="Europe/Berlin")
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data))
    admin = next(i for i in ds.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "113502")
    start = next(i for i in admin.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "123003")
    assert start.DateTime == "20261123110000.250000+0100"  # 10:00 UTC is 11:00 CET
    assert ds.StudyTime == "110000" and ds.TimezoneOffsetFromUTC in ("+0100", "+0200")
    assert read_rrdsr(data).injection_time == REPORT.injection_time
    path = tmp_path / "berlin.dcm"
    path.write_bytes(data)
    assert [line for line in _dciodvfy(path) if line.startswith("Error")] == []


def test_roundtrip_own_output() -> None:
    back = read_rrdsr(write_rrdsr_bytes(REPORT))
    assert back.administered_activity_mbq == REPORT.administered_activity_mbq
    assert back.pre_activity_mbq == 7420.0 and back.post_activity_mbq == 101.5
    assert back.injection_time == REPORT.injection_time
    assert back.event_uid == REPORT.event_uid and back.route == "intravenous"
    assert back.volume_ml == 8.285
    assert back.lot == "LOT-77" and back.dispense_id == "D1" and back.prescription_id == "RX1"
    assert back.nuclide == "^177^Lutetium" and back.device == "Dose Calibrator"
    assert back.patient_id == REPORT.patient_id
    assert back.pre_activity_time == REPORT.pre_activity_time
    assert back.post_activity_time == REPORT.post_activity_time
    assert back.site == "vein" and back.intent == "therapeutic" and back.administered_by == "nurse.one"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    ds = Dataset()
    ds.CodeValue, ds.CodingSchemeDesignator, ds.CodeMeaning = value, scheme, meaning
    return ds


def _item(rel: str, vt: str, concept: tuple[str, str, str], **values) -> Dataset:
    ds = Dataset()
    ds.RelationshipType, ds.ValueType = rel, vt
    ds.ConceptNameCodeSequence = [_code(*concept)]
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


def _num(rel: str, concept: tuple[str, str, str], value: str, unit: str) -> Dataset:
    mv = Dataset()
    mv.NumericValue = value
    mv.MeasurementUnitsCodeSequence = [_code(unit, "UCUM", unit)]
    return _item(rel, "NUM", concept, MeasuredValueSequence=[mv])


def injector_rrdsr() -> Dataset:
    """An SR laid out like an infusion system's: legacy SRT codes, GBq, local time +01:00, days."""
    ds = Dataset()
    ds.SOPClassUID = RRDSR_SOP_CLASS_UID
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = "INJ-778"
    ds.PatientName = "Injector^Patient"
    ds.Modality = "SR"
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [_code("113500", "DCM", "Radiopharmaceutical Radiation Dose Report")]
    agent = _item(
        "CONTAINS",
        "CODE",
        ("F-61FDB", "SRT", "Radiopharmaceutical agent"),
        ConceptCodeSequence=[_code("C-B1306", "SRT", "Lutetium Lu 177 dotatate")],
    )
    agent.ContentSequence = [
        _item(
            "HAS PROPERTIES",
            "CODE",
            ("C-10072", "SRT", "Radionuclide"),
            ConceptCodeSequence=[_code("C-1017B", "SRT", "^177^Lutetium")],
        ),
        _num("HAS PROPERTIES", ("R-42806", "SRT", "Radionuclide Half Life"), "6.647", "d"),
    ]
    pre = _num("CONTAINS", ("113508", "DCM", "Pre-Administration Measured Activity"), "7.6", "GBq")
    pre.ContentSequence = [
        _item(
            "HAS PROPERTIES",
            "CODE",
            ("113540", "DCM", "Activity Measurement Device"),
            ConceptCodeSequence=[_code("113542", "DCM", "Infusion System")],
        )
    ]
    admin = _item(
        "CONTAINS",
        "CONTAINER",
        ("113502", "DCM", "Radiopharmaceutical Administration"),
        ContinuityOfContent="SEPARATE",
    )
    admin.ContentSequence = [
        agent,
        _item(
            "CONTAINS",
            "UIDREF",
            ("113503", "DCM", "Radiopharmaceutical Administration Event UID"),
            UID="1.2.3.4.5.6",
        ),
        _item(
            "CONTAINS",
            "DATETIME",
            ("123003", "DCM", "Radiopharmaceutical Start DateTime"),
            DateTime="20261123110000.000000+0100",
        ),
        _num("CONTAINS", ("113507", "DCM", "Administered activity"), "7.4", "GBq"),
        pre,
        _num("CONTAINS", ("113509", "DCM", "Post-Administration Measured Activity"), "200", "MBq"),
        _item(
            "CONTAINS",
            "CODE",
            ("G-C340", "SRT", "Route of administration"),
            ConceptCodeSequence=[_code("G-D101", "SRT", "Intravenous route")],
        ),
    ]
    # The injector nests the administration one level down, under its own event container.
    event = _item(
        "CONTAINS", "CONTAINER", ("99INJ1", "99INJ", "Infusion event"), ContinuityOfContent="SEPARATE"
    )
    event.ContentSequence = [admin]
    ds.ContentSequence = [event]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RRDSR_SOP_CLASS_UID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def test_read_injector_style_rrdsr() -> None:
    report = read_rrdsr(injector_rrdsr())
    assert math.isclose(report.administered_activity_mbq, 7400.0, rel_tol=1e-12)  # 7.4 GBq
    assert math.isclose(report.pre_activity_mbq, 7600.0, rel_tol=1e-12)
    assert report.post_activity_mbq == 200.0
    assert report.injection_time == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 at +01:00
    assert math.isclose(report.half_life_s, 6.647 * 86400.0, rel_tol=1e-12)
    assert report.radiopharmaceutical == "Lutetium Lu 177 dotatate" and report.nuclide == "^177^Lutetium"
    assert report.route == "Intravenous route" and report.device == "Infusion System"
    assert report.patient_id == "INJ-778" and report.event_uid == "1.2.3.4.5.6"


def test_reader_refuses_other_objects() -> None:
    ds = injector_rrdsr()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.67"  # X-Ray Radiation Dose SR
    with pytest.raises(DicomError, match="not Radiopharmaceutical Radiation Dose SR"):
        read_rrdsr(ds)
    with pytest.raises(DicomError, match="cannot read DICOM"):
        read_rrdsr(b"not a dicom file at all")
    ds = injector_rrdsr()
    ds.ContentSequence[0].ContentSequence[0].ContentSequence = (
        ds.ContentSequence[0].ContentSequence[0].ContentSequence[1:]
    )
    with pytest.raises(DicomError, match="radiopharmaceutical"):
        read_rrdsr(ds)


def _start(ds: Dataset) -> Dataset:
    admin = ds.ContentSequence[0].ContentSequence[0]
    return next(i for i in admin.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "123003")


def test_timezone_offset_from_utc_is_honoured() -> None:
    """A DATETIME without its own offset is local time of the file's Timezone Offset From UTC: 11:00 at
    +0100 is 10:00 UTC, not 11:00 UTC."""
    ds = injector_rrdsr()
    _start(ds).DateTime = "20261123110000"
    ds.TimezoneOffsetFromUTC = "+0100"
    assert read_rrdsr(ds).injection_time == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    ds.TimezoneOffsetFromUTC = "-0500"
    assert read_rrdsr(ds).injection_time == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    # the value's own offset wins over the file's
    _start(ds).DateTime = "20261123110000+0100"
    assert read_rrdsr(ds).injection_time == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_datetime_without_any_offset_needs_the_site_zone() -> None:
    ds = injector_rrdsr()
    _start(ds).DateTime = "20261123110000"
    with pytest.raises(DicomError, match="no UTC offset and the file has no TimezoneOffsetFromUTC"):
        read_rrdsr(ds)
    berlin = read_rrdsr(ds, site_timezone="Europe/Berlin")  # CET in November: UTC+1
    assert berlin.injection_time == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda ds: _force(_start(ds), "DateTime", "20261123256199"), "not a valid date and time"),
        (lambda ds: _force(_start(ds), "DateTime", "25:61:99"), "not a DICOM DT"),
        (lambda ds: _force(ds, "TimezoneOffsetFromUTC", "CET"), "TimezoneOffsetFromUTC"),
        (
            lambda ds: _force(_activity(ds).MeasuredValueSequence[0], "NumericValue", "NaN"),
            "Administered activity is nan",
        ),
        (
            lambda ds: _force(_activity(ds).MeasuredValueSequence[0], "NumericValue", "-7"),
            "Administered activity is -7",
        ),
        (lambda ds: delattr(_activity(ds), "MeasuredValueSequence"), "no measured value"),
    ],
)
def test_malformed_content_is_one_clear_error(edit, message: str) -> None:
    ds = injector_rrdsr()
    edit(ds)
    with pytest.raises(DicomError, match=message):
        read_rrdsr(ds)


def _force(item: Dataset, keyword: str, value: str) -> None:
    """Store ``value`` as it is (a damaged file), without pydicom's value check."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataelem import DataElement

    tag = tag_for_keyword(keyword)
    item[tag] = DataElement(tag, dictionary_VR(tag), value, validation_mode=pydicom.config.IGNORE)


def _activity(ds: Dataset) -> Dataset:
    admin = ds.ContentSequence[0].ContentSequence[0]
    return next(i for i in admin.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "113507")


def test_import_endpoint(sqlite_api) -> None:
    from io import BytesIO

    buffer = BytesIO()
    injector_rrdsr().save_as(buffer, enforce_file_format=True)
    files = {"file": ("injector.dcm", buffer.getvalue(), "application/dicom")}
    r = sqlite_api.client.post("/rrdsr/import", files=files, headers=sqlite_api.as_("technologist"))
    assert r.status_code == 201, r.text
    assert math.isclose(r.json()["administered_activity_mbq"], 7400.0) and r.json()["patient_ref"].startswith(
        "EXT-"
    )
    again = sqlite_api.client.post("/rrdsr/import", files=files, headers=sqlite_api.as_("technologist"))
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_imported"
    bad = sqlite_api.client.post(
        "/rrdsr/import",
        files={"file": ("x.dcm", b"junk", "application/dicom")},
        headers=sqlite_api.as_("physicist"),
    )
    assert bad.status_code == 422 and bad.json()["error"] == {
        "code": "invalid_dicom",
        "message": bad.json()["error"]["message"],
        "field": "file",
    }
    assert (
        sqlite_api.client.post("/rrdsr/import", files=files, headers=sqlite_api.as_("pharmacist")).status_code
        == 403
    )
