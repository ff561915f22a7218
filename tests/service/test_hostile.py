"""Hostile and nonsensical input to the JSON API: a clear 4xx naming the field, never a 500, nothing
written on a refusal (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
import logging
import warnings
from typing import Any

import pytest
from sqlalchemy import func, select, text

from clock import days_from_now, hours_from_now, iso
from theradose.service.models import AuditEntryRow, Base

from .conftest import BIRTH_DATE, Api


def _counts(api: Api) -> dict[str, int]:
    with api.app.state.db.read() as session:
        return {
            t.name: int(session.execute(select(func.count()).select_from(t)).scalar_one())
            for t in Base.metadata.sorted_tables
        }


def _refused(r: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    error = r.json()["error"]
    assert set(error) == {"code", "message", "field"}
    if field is not None:
        assert error["field"] == field, error
    return dict(error)


def _batch(api: Api, **overrides: Any) -> Any:
    body = {
        "product": "[177Lu]Lu-PSMA-617",
        "nuclide": "Lu-177",
        "carrier_added": False,
        "lot": "L-1",
        "activity_mbq": 30000.0,
        "volume_ml": 30.0,
        "reference_time": iso(hours_from_now(-1)),
        "expiry_time": iso(days_from_now(2)),
    } | overrides
    return api.post("/batches", "pharmacist", body)


@pytest.mark.parametrize("activity", [5e-324, 1e-9, 1e-4, 2e6])
def test_activity_outside_the_physical_range_is_refused(api: Api, activity: float) -> None:
    before = _counts(api)
    error = _refused(_batch(api, activity_mbq=activity), 422, "activity_mbq")
    assert "activity_mbq" in error["message"]
    assert _counts(api) == before


def test_smallest_and_largest_accepted_activities(api: Api) -> None:
    assert _batch(api, lot="small", activity_mbq=1e-3).status_code == 201  # 1 kBq
    assert _batch(api, lot="large", activity_mbq=1e6).status_code == 201  # 1 TBq


def test_old_short_lived_batch_still_reads(api: Api) -> None:
    """A 177Lu batch referenced 50 years ago (~2750 half-lives, 2^-2750 underflows to 0): every read
    answers, with 0 MBq left."""
    r = _batch(
        api,
        lot="LU-OLD",
        activity_mbq=2000.0,
        volume_ml=10.0,
        reference_time=iso(days_from_now(-50 * 365.25)),
        expiry_time=iso(days_from_now(-50 * 365.25 + 2)),
    )
    assert r.status_code == 201, r.text
    batch = r.json()["id"]
    assert r.json()["remaining_activity_now_mbq"] == 0.0
    assert api.get(f"/batches/{batch}", "pharmacist").json()["remaining_activity_now_mbq"] == 0.0
    listed = api.get("/batches", "pharmacist")
    assert listed.status_code == 200 and listed.json()[0]["remaining_activity_now_mbq"] == 0.0


def test_calibrator_readings_decades_apart_are_refused(api: Api) -> None:
    cal = api.post("/calibrators", "physicist", {"name": "CRC-1"}).json()["id"]
    readings = [
        {"time": iso(days_from_now(-45 * 365.25)), "measured_mbq": 1000.0},
        {"time": iso(days_from_now(-1)), "measured_mbq": 500.0},
        {"time": iso(hours_from_now(-1)), "measured_mbq": 400.0},
    ]
    before = _counts(api)
    r = api.post(
        f"/calibrators/{cal}/qa", "physicist", {"test": "linearity", "nuclide": "F-18", "readings": readings}
    )
    _refused(r, 422)
    assert _counts(api) == before


def test_source_check_decades_from_its_certificate_is_refused(api: Api) -> None:
    cal = api.post("/calibrators", "physicist", {"name": "CRC-2"}).json()["id"]
    body = {
        "test": "constancy",
        "nuclide": "Tc-99m",
        "measured_mbq": 100.0,
        "certified_activity_mbq": 100.0,
        "certified_at": iso(days_from_now(-40 * 365.25)),
        "measured_at": iso(hours_from_now(-1)),
    }
    _refused(api.post(f"/calibrators/{cal}/qa", "physicist", body), 422)


@pytest.mark.parametrize("value", ["yes", "true", 1, "1", None])
def test_booleans_are_strict(api: Api, value: Any) -> None:
    r = api.client.patch(
        "/users/physicist", json={"active": value, "reason": "test"}, headers=api.as_("admin")
    )
    if value is None:
        assert r.status_code == 200  # "no change"
    else:
        _refused(r, 422, "active")


@pytest.mark.parametrize(
    ("first", "second"),
    [("LOT-7", "lot-7"), ("LOT-7", "ＬＯＴ－７"), ("LOT-7", "LOT-7 "), ("LOT 7", "LOT  7")],
    ids=["case", "full-width", "trailing-space", "inner-space"],
)
def test_lots_that_read_the_same_are_one_lot(api: Api, first: str, second: str) -> None:
    assert _batch(api, lot=first).status_code == 201
    _refused(_batch(api, lot=second), 409, "lot")


@pytest.mark.parametrize("invisible", ["\u200b", "\u00ad", "\ufeff", "\u202e"])
def test_identifiers_with_invisible_characters_are_refused(api: Api, invisible: str) -> None:
    error = _refused(_batch(api, lot=f"LOT{invisible}9"), 422, "lot")
    assert "invisible" in error["message"]
    r = api.post(
        "/patients", "physician", {"family_name": "X", "mrn": f"MRN{invisible}1", "birth_date": BIRTH_DATE}
    )
    _refused(r, 422, "mrn")


def test_mrns_serials_and_names_that_read_the_same_collide(api: Api) -> None:
    assert (
        api.post(
            "/patients", "physician", {"family_name": "A", "mrn": "mrn-100", "birth_date": BIRTH_DATE}
        ).status_code
        == 201
    )
    _refused(
        api.post("/patients", "physician", {"family_name": "B", "mrn": "MRN-100", "birth_date": BIRTH_DATE}),
        409,
        "mrn",
    )
    gen = {
        "serial": "GEN-1",
        "parent": "Ge-68",
        "daughter": "Ga-68",
        "parent_activity_mbq": 1850,
        "calibration_time": iso(days_from_now(-30)),
    }
    assert api.post("/generators", "pharmacist", gen).status_code == 201
    _refused(api.post("/generators", "pharmacist", gen | {"serial": "gen-1"}), 409, "serial")
    assert api.post("/calibrators", "physicist", {"name": "Hot Lab"}).status_code == 201
    _refused(api.post("/calibrators", "physicist", {"name": "HOT LAB"}), 409, "name")


def test_request_body_over_the_limit_is_413(db_url: str) -> None:
    from fastapi.testclient import TestClient

    from .conftest import login_all, make_app

    app = make_app(db_url, max_body_bytes=4096)
    with TestClient(app) as client:
        api = Api(client=client, app=app)
        login_all(client, api.tokens)
        before = _counts(api)
        r = api.post("/patients", "physician", {"family_name": "X" * 5000, "mrn": "M1"})
        _refused(r, 413)
        # a body sent in chunks without a length is cut off too
        chunks = (b'{"family_name": "' + b"Y" * 1000 for _ in range(10))
        r = client.post(
            "/patients",
            content=chunks,
            headers={**api.as_("physician"), "Content-Type": "application/json"},
        )
        _refused(r, 413)
        assert _counts(api) == before
    app.state.db.dispose()


def _ident(item: dict[str, Any]) -> Any:
    for key in ("id", "seq", "pseudonym", "username"):
        if key in item:
            return item[key]
    raise KeyError(item)


@pytest.mark.parametrize(
    "path", ["/worklist", "/users", "/calibrators", "/patients", "/batches", "/deliveries", "/audit"]
)
def test_every_list_is_paged(api: Api, path: str) -> None:
    for i in range(3):
        api.post("/patients", "physician", {"family_name": "P", "mrn": f"PAGE-{i}", "birth_date": BIRTH_DATE})
        api.post("/calibrators", "physicist", {"name": f"cal-{i}"})
        _batch(api, lot=f"PAGE-{i}")
        api.post(
            "/deliveries",
            "pharmacist",
            {
                "nuclide": "Lu-177",
                "supplier": "S",
                "lot": f"D-{i}",
                "activity_mbq": 1000,
                "calibration_time": iso(days_from_now(1)),
            },
        )
    pseudonyms = [p["pseudonym"] for p in api.get("/patients", "physician").json()]
    for p in pseudonyms:
        api.post(
            "/referrals",
            "physician",
            {"patient": p, "referring_physician": "R", "indication": "mCRPC", "pet_result": "positive"},
        )
    role = "admin" if path in ("/users", "/audit") else "physicist"
    full = api.get(path, role, params={"limit": 1000})
    assert full.status_code == 200 and len(full.json()) >= 3
    page = api.get(path, role, params={"limit": 2, "offset": 1})
    assert page.status_code == 200
    assert [_ident(x) for x in page.json()] == [_ident(x) for x in full.json()[1:3]]
    _refused(api.get(path, role, params={"limit": 0}), 422, "limit")
    _refused(api.get(path, role, params={"limit": 10**6}), 422, "limit")


def test_paths_of_signatures_labs_and_cameras_are_paged(api: Api) -> None:
    pseudonym = api.patient()
    for value in (100.0, 110.0, 120.0):
        r = api.post(
            f"/patients/{pseudonym}/labs",
            "physician",
            {
                "taken_on": days_from_now(-3).date().isoformat(),
                "test": "platelets",
                "value": value,
                "unit": "10^9/L",
            },
        )
        assert r.status_code == 201, r.text
    labs = api.get(f"/patients/{pseudonym}/labs", "physician", params={"limit": 2})
    assert labs.status_code == 200 and len(labs.json()) == 2
    for i in range(3):
        r = api.post(
            "/cameras/cam-1/calibrations",
            "physicist",
            {
                "nuclide": "Lu-177",
                "sensitivity_cps_per_mbq": 9.5 + i,
                "performed_at": iso(days_from_now(-i - 1)),
            },
        )
        assert r.status_code == 201, r.text
    cams = api.get("/cameras/cam-1/calibrations", "physicist", params={"limit": 2, "offset": 1})
    assert cams.status_code == 200 and len(cams.json()) == 2


def _rrdsr_bytes(*, activity_mbq: float | None = None, device: str | None = None) -> bytes:
    """An RRDSR written by the service's own writer, then edited as a foreign sender might."""
    from pydicom import dcmread

    from theradose.service.rrdsr import AdministrationReport, write_rrdsr_bytes

    report = AdministrationReport(
        patient_id="MRN-FOREIGN-4711",
        radiopharmaceutical="[177Lu]Lu-PSMA-617",
        nuclide="Lu-177",
        administered_activity_mbq=7400.0,
        injection_time=hours_from_now(-2),
        route="intravenous",
        event_uid="1.2.826.0.1.3680043.10.999.1",
        pre_activity_mbq=7450.0,
        post_activity_mbq=50.0,
        pre_activity_time=hours_from_now(-2.1),
        post_activity_time=hours_from_now(-1.9),
    )
    ds = dcmread(io.BytesIO(write_rrdsr_bytes(report, institution="Other Site", site_timezone="UTC")))
    out = io.BytesIO()
    with warnings.catch_warnings():  # the sender breaks DICOM's value lengths on purpose
        warnings.simplefilter("ignore", UserWarning)
        for item in _items(ds):
            code = item.ConceptNameCodeSequence[0].CodeValue if "ConceptNameCodeSequence" in item else None
            if code == "113507" and activity_mbq is not None:
                item.MeasuredValueSequence[0].NumericValue = activity_mbq
            if code == "113540" and device is not None:
                item.ConceptCodeSequence[0].CodeMeaning = device
        ds.save_as(out)
    return out.getvalue()


def _items(ds: Any) -> Any:
    """Every content item of an SR, depth first."""
    for item in getattr(ds, "ContentSequence", []):
        yield item
        yield from _items(item)


def _import(api: Api, data: bytes) -> Any:
    return api.client.post(
        "/rrdsr/import",
        files={"file": ("sr.dcm", data, "application/dicom")},
        headers=api.as_("technologist"),
    )


def test_rrdsr_import_pseudonymises_the_foreign_patient_id(api: Api) -> None:
    r = _import(api, _rrdsr_bytes())
    assert r.status_code == 201, r.text
    ref = r.json()["patient_ref"]
    assert ref.startswith("EXT-") and "4711" not in ref
    with api.app.state.db.read() as session:
        trail = " ".join(a or "" for a in session.execute(select(AuditEntryRow.after_json)).scalars())
        stored = session.execute(text("SELECT patient_ref FROM imported_administrations")).scalars().all()
    assert "MRN-FOREIGN-4711" not in trail and stored == [ref]
    # the same sender's id maps to the same reference (imports of one patient stay linked)
    other = _rrdsr_bytes()
    assert _import(api, other).json()["patient_ref"] == ref


def test_rrdsr_import_links_a_known_mrn_to_the_local_pseudonym(api: Api) -> None:
    pseudonym = api.post(
        "/patients",
        "physician",
        {"family_name": "Local", "mrn": "mrn-foreign-4711", "birth_date": BIRTH_DATE},
    ).json()["pseudonym"]
    r = _import(api, _rrdsr_bytes())
    assert r.status_code == 201 and r.json()["patient_ref"] == pseudonym


@pytest.mark.parametrize("activity", [float("nan"), float("inf"), -5.0, 0.0, 1e12])
def test_rrdsr_with_nonsense_activity_is_refused(api: Api, activity: float) -> None:
    before = _counts(api)
    error = _refused(_import(api, _rrdsr_bytes(activity_mbq=activity)), 422, "file")
    assert "activity" in error["message"]
    assert _counts(api) == before


def test_rrdsr_with_an_overlong_device_name_is_refused(api: Api) -> None:
    before = _counts(api)
    error = _refused(_import(api, _rrdsr_bytes(device="D" * 201)), 422, "file")
    assert "device" in error["message"] and "200" in error["message"]
    assert _counts(api) == before


def test_database_errors_do_not_log_sql_parameters(
    api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values sent to the database never appear in a logged error (they may identify a patient): not as
    bound parameters, not in the driver's message (PostgreSQL echoes the duplicate key)."""
    from fastapi.testclient import TestClient

    from theradose.service.operations import patients

    assert (
        api.post(
            "/patients", "physician", {"family_name": "A", "mrn": "SECRET-MRN-456", "birth_date": BIRTH_DATE}
        ).status_code
        == 201
    )
    # let the second registration of the same MRN slip past the application's check, to the database
    monkeypatch.setattr(patients, "identifier_key", lambda value: value + "-" + str(id(value)))
    caplog.set_level(logging.INFO)
    with (
        caplog.at_level(logging.INFO, logger="sqlalchemy.engine"),
        TestClient(api.app, raise_server_exceptions=False) as client,
    ):
        r = client.post(
            "/patients",
            json={"family_name": "B", "mrn": "SECRET-MRN-456", "birth_date": BIRTH_DATE},
            headers=api.as_("physician"),
        )
    _refused(r, 500)
    assert "unhandled error IntegrityError" in caplog.text and "INSERT INTO patient_identities" in caplog.text
    assert "SECRET-MRN-456" not in caplog.text


def test_error_body_of_a_refused_json_is_one_line(api: Api) -> None:
    r = api.client.post(
        "/patients",
        content=b"{not json",
        headers={**api.as_("physician"), "Content-Type": "application/json"},
    )
    error = _refused(r, 422)
    assert "\n" not in error["message"]
    assert json.dumps(error)
