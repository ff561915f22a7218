"""RRDSR (TID 10021): our output passes dciodvfy and reads back; an injector-style SR imports."""

# calendar: the dates in this file are data (a writer/reader round trip); nothing here reads the clock.

from __future__ import annotations

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


def test_written_rrdsr_content(tmp_path: Path) -> None:
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(write_rrdsr_bytes(REPORT)))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.68"
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "10021"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "113500"
    assert ds.PatientID == "PT-0A1B2C3D4E"
    admin = next(i for i in ds.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "113502")
    by_code = {i.ConceptNameCodeSequence[0].CodeValue: i for i in admin.ContentSequence}
    agent = by_code["349358000"]
    nuclide = agent.ContentSequence[0].ConceptCodeSequence[0]
    assert (nuclide.CodeValue, nuclide.CodingSchemeDesignator) == ("447553000", "SCT")  # ^177^Lutetium
    half_life = float(agent.ContentSequence[1].MeasuredValueSequence[0].NumericValue)
    assert math.isclose(half_life, 6.647 * 86400.0, rel_tol=1e-6)  # ICRP-107: 6.647 d
    activity = by_code["113507"].MeasuredValueSequence[0]
    assert float(activity.NumericValue) == 7312.5
    assert activity.MeasurementUnitsCodeSequence[0].CodeValue == "MBq"
    assert by_code["123003"].DateTime == "20261123100000.250000+0000"
    assert by_code["410675002"].ConceptCodeSequence[0].CodeValue == "47625008"


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
    assert back.lot == "LOT-77" and back.dispense_id == "D1" and back.prescription_id == "RX1"
    assert back.nuclide == "^177^Lutetium" and back.device == "Dose Calibrator"
    assert back.patient_id == REPORT.patient_id


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
