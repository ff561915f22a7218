"""End-to-end traceability workflow over the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from clock import days_from_now, hours_from_now, iso

LU177_HALF_LIFE_H = 6.647 * 24.0  # ICRP Publication 107: 177Lu half-life 6.647 d


def test_referral_to_administration(api, now) -> None:
    pseudonym = api.patient()
    r = api.post(
        "/referrals",
        "physician",
        {
            "patient": pseudonym,
            "referring_physician": "Dr Uro",
            "indication": "mCRPC",
            "pet_result": "positive",
            "pet_suv_max": 22.5,
        },
    )
    assert r.status_code == 201, r.text
    referral_id = r.json()["id"]
    worklist = api.get("/worklist", "technologist").json()
    assert [w["id"] for w in worklist] == [referral_id]
    r = api.post(
        f"/referrals/{referral_id}/status", "physician", {"status": "accepted", "reason": "tumour board"}
    )
    assert r.json()["status"] == "accepted"
    r = api.post(f"/referrals/{referral_id}/status", "physician", {"status": "referred", "reason": "undo"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"

    rx = api.prescription(pseudonym, 7400.0)
    # Referenced 14 days ago so that draw, injection and the residual one half-life later all lie in
    # the past; the batch expires tomorrow.
    reference = now - timedelta(days=14)
    batch_id = api.released_batch(
        activity_mbq=30000.0, volume_ml=30.0, reference_time=reference, expiry_time=days_from_now(1, now=now)
    )
    half_life = timedelta(hours=LU177_HALF_LIFE_H)  # 159.528 h
    # Planned exactly one half-life after the reference time: concentration 500 MBq/mL, so 7400 MBq
    # needs 14.8 mL; drawn at the reference time the syringe holds 14.8 mL x 1000 MBq/mL.
    planned = iso(reference + half_life)
    r = api.post(
        f"/batches/{batch_id}/dispensings",
        "pharmacist",
        {
            "prescription_id": rx,
            "activity_mbq": 7400.0,
            "planned_time": planned,
            "draw_time": iso(reference),
            "calibrator_id": api.calibrator(),
        },
    )
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["product"] == "[177Lu]Lu-PSMA-617" and d["status"] == "active"
    assert math.isclose(d["volume_ml"], 14.8, rel_tol=1e-9)
    assert math.isclose(d["activity_at_draw_mbq"], 14800.0, rel_tol=1e-9)
    assert math.isclose(d["batch_remaining_volume_ml"], 15.2, rel_tol=1e-9)
    assert math.isclose(d["batch_remaining_activity_ref_mbq"], 15200.0, rel_tol=1e-9)

    # Syringe 8000 MBq one half-life before injection (4000 at injection), residual 100 MBq one
    # half-life after (200 at injection): net 3800 MBq, 48.6 % below the prescription. It is recorded as
    # a possible medical event, with the reason it needs.
    body = {
        "syringe_activity_mbq": 8000.0,
        "syringe_measured_at": iso(reference),
        "residual_activity_mbq": 100.0,
        "residual_measured_at": iso(reference + 2 * half_life),
        "injection_time": planned,
        "route": "intravenous",
        "calibrator_id": api.calibrator(),
        **api.confirm(pseudonym),
    }
    r = api.post(f"/dispensings/{d['id']}/administration", "technologist", body)
    assert r.status_code == 422 and r.json()["error"]["field"] == "deviation_reason"
    body["deviation_reason"] = "infusion line leaked; authorized user informed"
    r = api.post(f"/dispensings/{d['id']}/administration", "technologist", body)
    assert r.status_code == 201, r.text
    a = r.json()
    assert math.isclose(a["net_activity_mbq"], 3800.0, rel_tol=1e-9)
    assert a["within_limits"] is False and a["medical_event_possible"] is True
    assert any("35.3045(c)" in step for step in a["notification_steps"])
    assert math.isclose(a["deviation_fraction"], 3800.0 / 7400.0 - 1.0, rel_tol=1e-9)
    again = api.post(f"/dispensings/{d['id']}/administration", "technologist", body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_administered"

    rrdsr = api.get(f"/administrations/{a['id']}/rrdsr", "physicist")
    assert rrdsr.status_code == 200
    assert rrdsr.headers["content-type"] == "application/dicom"
    from theradose.service.rrdsr import read_rrdsr

    report = read_rrdsr(rrdsr.content)
    assert report.patient_id == pseudonym
    assert math.isclose(report.administered_activity_mbq, 3800.0, rel_tol=1e-9)
    assert report.event_uid == a["event_uid"]

    verify = api.get("/audit/verify", "admin").json()
    assert verify["ok"] is True and verify["first_bad_entry"] is None
    entities = {e["entity"] for e in api.get("/audit", "admin", params={"limit": 1000}).json()}
    assert {
        "patient",
        "referral",
        "prescription",
        "batch",
        "qc_result",
        "dispensing",
        "administration",
    } <= entities


def test_release_refused_when_qc_fails_or_missing(api, now) -> None:
    r = api.post(
        "/batches",
        "pharmacist",
        {
            "product": "[177Lu]Lu-DOTATATE",
            "nuclide": "177Lu",
            "carrier_added": True,
            "lot": "B-7",
            "activity_mbq": 7400,
            "volume_ml": 10,
            "reference_time": iso(days_from_now(-1, now=now)),
            "expiry_time": iso(days_from_now(2, now=now)),
        },
    )
    assert r.status_code == 201 and r.json()["nuclide"] == "Lu-177" and r.json()["status"] == "quarantine"
    batch_id = r.json()["id"]
    api.post(f"/batches/{batch_id}/qc", "pharmacist", {"test": "radiochemical_purity", "value": 93.0})
    r = api.post(f"/batches/{batch_id}/release", "qp", {"password": "secret-qp-pw"})
    assert r.status_code == 409
    message = r.json()["error"]["message"]
    assert "radiochemical_purity" in message and "ph missing" in message
    # A repeated QC test needs a reason.
    r = api.post(f"/batches/{batch_id}/qc", "pharmacist", {"test": "radiochemical_purity", "value": 97.0})
    assert r.status_code == 422 and r.json()["error"]["field"] == "reason"
    # A quarantined batch cannot be dispensed from.
    rx = api.prescription(api.patient(), 7400, product="[177Lu]Lu-DOTATATE")
    r = api.post(
        f"/batches/{batch_id}/dispensings",
        "pharmacist",
        {
            "prescription_id": rx,
            "activity_mbq": 7400,
            "planned_time": iso(hours_from_now(2, now=now)),
            "calibrator_id": api.calibrator(),
        },
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "batch_not_released"


def test_dosage_outside_20_percent_needs_override(api, now) -> None:
    rx = api.prescription(api.patient(), 7400.0)
    batch_id = api.released_batch()
    body = {
        "prescription_id": rx,
        "activity_mbq": 7400.0 * 1.21,
        "planned_time": iso(hours_from_now(-2, now=now)),
        "draw_time": iso(hours_from_now(-3, now=now)),
        "calibrator_id": api.calibrator(),
    }
    r = api.post(f"/batches/{batch_id}/dispensings", "pharmacist", body)
    assert r.status_code == 409 and r.json()["error"]["code"] == "dosage_out_of_range"
    r = api.post(f"/batches/{batch_id}/dispensings", "pharmacist", {**body, "override_reason": "   "})
    assert r.status_code == 409 and r.json()["error"]["code"] == "dosage_out_of_range"  # blank is no reason
    body["override_reason"] = "AU directed 9 GBq after dosimetry review"
    r = api.post(f"/batches/{batch_id}/dispensings", "pharmacist", body)
    assert r.status_code == 201 and math.isclose(r.json()["deviation_fraction"], 0.21, rel_tol=1e-9)


def test_insufficient_stock_is_a_conflict(api, now) -> None:
    rx = api.prescription(api.patient(), 7400.0)
    reference = days_from_now(-1, now=now)
    batch_id = api.released_batch(activity_mbq=8000.0, volume_ml=8.0, reference_time=reference)
    body = {
        "prescription_id": rx,
        "activity_mbq": 7400.0,
        "planned_time": iso(reference),
        "draw_time": iso(reference),
        "calibrator_id": api.calibrator(),
    }
    assert api.post(f"/batches/{batch_id}/dispensings", "pharmacist", body).status_code == 201
    other = api.prescription(api.patient(), 7400.0)
    r = api.post(f"/batches/{batch_id}/dispensings", "pharmacist", {**body, "prescription_id": other})
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_stock"
    batch = api.get(f"/batches/{batch_id}", "pharmacist").json()
    assert math.isclose(batch["remaining_volume_ml"], 0.6, rel_tol=1e-9)


def test_identity_is_separate_and_audited(api) -> None:
    r = api.post(
        "/patients",
        "technologist",
        {"family_name": "Muster", "given_name": "Erika", "mrn": "MRN-42", "birth_date": "1950-02-03"},
    )
    pseudonym = r.json()["pseudonym"]
    listed = api.get("/patients", "physicist").json()
    assert any(p["pseudonym"] == pseudonym for p in listed)
    assert "Muster" not in api.get("/patients", "physicist").text
    assert api.get(f"/patients/{pseudonym}/identity", "physicist").status_code == 403
    ident = api.get(f"/patients/{pseudonym}/identity", "physician").json()
    assert ident["family_name"] == "Muster" and ident["mrn"] == "MRN-42"
    audit = api.get("/audit", "admin", params={"entity": "patient_identity"}).json()
    assert audit[0]["actor"] == "physician" and audit[0]["entity_id"] == pseudonym
    assert "Muster" not in api.get("/audit", "admin", params={"limit": 1000}).text
    dup = api.post(
        "/patients", "technologist", {"family_name": "X", "mrn": "MRN-42", "birth_date": "1950-02-03"}
    )
    assert dup.status_code == 409


def test_signatures_bound_to_record_hash(api) -> None:
    rx = api.prescription(api.patient(), 7400.0, sign=False)
    wrong = api.post(
        "/signatures",
        "physician",
        {
            "record_type": "prescription",
            "record_id": rx,
            "meaning": "approved",
            "password": "not-my-password",
        },
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "reauthentication_failed"
    r = api.post(
        "/signatures",
        "physician",
        {
            "record_type": "prescription",
            "record_id": rx,
            "meaning": "approved",
            "password": "secret-physician-pw",
        },
    )
    assert r.status_code == 201, r.text
    sig = r.json()
    assert sig["valid"] and sig["signer"] == "physician" and sig["signer_name"] == "Physician"
    # A technologist may not sign "approved".
    r = api.post(
        "/signatures",
        "technologist",
        {
            "record_type": "prescription",
            "record_id": rx,
            "meaning": "approved",
            "password": "secret-technologist-pw",
        },
    )
    assert r.status_code == 403
    # Change the record behind the service's back: the signature no longer matches.
    from sqlalchemy import text

    with api.app.state.db.engine.begin() as conn:
        conn.execute(
            text("UPDATE prescriptions SET prescribed_activity_mbq = 9000 WHERE id = :id"), {"id": rx}
        )
    listed = api.get(f"/signatures/prescription/{rx}", "physicist").json()
    assert listed[0]["record_unchanged"] is False and listed[0]["valid"] is False


def test_calibrator_qa_and_camera_history(api, now) -> None:
    r = api.post(
        "/calibrators",
        "physicist",
        {"name": "CRC-55tR", "manufacturer": "Capintec", "tolerance_fraction": 0.05},
    )
    assert r.status_code == 201
    cal = r.json()["id"]
    # Cs-137 check source: 10 MBq at baseline, read exactly one ICRP-107 half-life (30.1671 a) later;
    # expected 5 MBq, reading 5.2 MBq is +4 % (passes at 5 %), 5.3 MBq is +6 % (fails).
    measured_at = hours_from_now(-1, now=now)
    certified_at = measured_at - timedelta(hours=30.1671 * 365.2422 * 24)
    for reading, passed in ((5.2, True), (5.3, False)):
        r = api.post(
            f"/calibrators/{cal}/qa",
            "technologist",
            {
                "test": "constancy",
                "nuclide": "Cs-137",
                "measured_mbq": reading,
                "certified_activity_mbq": 10.0,
                "certified_at": iso(certified_at),
                "measured_at": iso(measured_at),
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["passed"] is passed
        assert math.isclose(r.json()["deviations"][0], reading / 5.0 - 1.0, abs_tol=2e-4)
    r = api.post(
        f"/calibrators/{cal}/qa",
        "physicist",
        {
            "test": "geometry",
            "reference_volume_ml": 3.0,
            "readings": [
                {"volume_ml": 3.0, "measured_mbq": 100.0},
                {"volume_ml": 10.0, "measured_mbq": 97.0},
            ],
        },
    )
    assert r.json()["passed"] is True and math.isclose(r.json()["max_abs_deviation"], 0.03, rel_tol=1e-9)
    # Linearity by decay (Tc-99m, ICRP-107 half-life 6.015 h): 1000, 500, 262.5 MBq at 0, 1, 2 half-lives;
    # expected from the lowest reading (262.5 -> 525 -> 1050): deviations -4.76 %, -4.76 %, 0.
    start = days_from_now(-1, now=now)
    r = api.post(
        f"/calibrators/{cal}/qa",
        "pharmacist",
        {
            "test": "linearity",
            "nuclide": "Tc-99m",
            "readings": [
                {"time": iso(start), "measured_mbq": 1000.0},
                {"time": iso(start + timedelta(seconds=21654)), "measured_mbq": 500.0},  # 6.015 h
                {"time": iso(start + timedelta(seconds=43308)), "measured_mbq": 262.5},
            ],
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["deviations"] == pytest.approx([1000 / 1050 - 1, 500 / 525 - 1, 0.0], abs=1e-9)
    assert r.json()["passed"] is True  # within 5 %
    history = api.get(f"/calibrators/{cal}/qa", "pharmacist").json()
    assert len(history) == 4

    # Three calibrations about a quarter apart, the last one two months ago.
    for days_before, sens in ((242, 10.0), (152, 10.2), (61, 11.0)):
        when = iso(days_from_now(-days_before, now=now))
        r = api.post(
            "/cameras/Intevo-1/calibrations",
            "physicist",
            {
                "nuclide": "Lu-177",
                "sensitivity_cps_per_mbq": sens,
                "performed_at": when,
                "recovery": [
                    {"volume_ml": 16.0, "recovery_coefficient": 0.8},
                    {"volume_ml": 1.0, "recovery_coefficient": 0.4},
                ],
            },
        )
        assert r.status_code == 201, r.text
    hist = api.get("/cameras/Intevo-1/calibrations", "physician").json()
    assert [h["flagged"] for h in hist] == [False, False, True]  # +2 % then +7.8 % against a 5 % limit
    assert math.isclose(hist[2]["change_from_previous_fraction"], 11.0 / 10.2 - 1.0, rel_tol=1e-12)
    assert [p["volume_ml"] for p in hist[0]["recovery"]] == [1.0, 16.0]
    assert (
        api.post(
            "/cameras/Intevo-1/calibrations",
            "technologist",
            {"nuclide": "Lu-177", "sensitivity_cps_per_mbq": 9.0, "performed_at": iso(now)},
        ).status_code
        == 403
    )


def test_deliveries_and_generator(api, now) -> None:
    r = api.post(
        "/deliveries",
        "pharmacist",
        {
            "nuclide": "Lu177",
            "supplier": "ITM",
            "lot": "N-1",
            "activity_mbq": 40000,
            "calibration_time": iso(days_from_now(1, now=now)),
        },
    )
    assert r.status_code == 201 and r.json()["nuclide"] == "Lu-177"
    assert api.get("/deliveries", "physicist").json()[0]["lot"] == "N-1"
    r = api.post(
        "/generators",
        "pharmacist",
        {
            "serial": "GEN-9",
            "parent": "Ge-68",
            "daughter": "Ga-68",
            "parent_activity_mbq": 1850,
            "calibration_time": iso(days_from_now(-30, now=now)),
        },
    )
    assert r.status_code == 201
    gen = r.json()["id"]
    # One 68Ga half-life (67.71 min, ICRP-107) after a complete elution: about half the parent activity.
    last_elution = hours_from_now(-3, now=now)
    r = api.get(
        f"/generators/{gen}/available",
        "technologist",
        params={"last_elution": iso(last_elution), "at_time": iso(last_elution + timedelta(seconds=4062.6))},
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert math.isclose(got["daughter_activity_mbq"] / got["parent_activity_mbq"], 0.5, rel_tol=2e-3)
    assert (
        api.post(
            "/generators",
            "pharmacist",
            {
                "serial": "GEN-9",
                "parent": "Ge-68",
                "daughter": "Ga-68",
                "parent_activity_mbq": 1,
                "calibration_time": iso(days_from_now(-30, now=now)),
            },
        ).status_code
        == 409
    )


def test_cancelled_prescription_cannot_be_dispensed(api, now) -> None:
    rx = api.prescription(api.patient())
    batch_id = api.released_batch()
    assert api.post(f"/prescriptions/{rx}/cancel", "physician", {}).status_code == 422  # reason required
    r = api.post(f"/prescriptions/{rx}/cancel", "physician", {"reason": "patient withdrew consent"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = api.post(
        f"/batches/{batch_id}/dispensings",
        "pharmacist",
        {
            "prescription_id": rx,
            "activity_mbq": 7400,
            "planned_time": iso(hours_from_now(2, now=now)),
            "calibrator_id": api.calibrator(),
        },
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "prescription_not_active"
    entry = api.get("/audit", "admin", params={"entity": "prescription", "entity_id": str(rx)}).json()[0]
    assert entry["reason"] == "patient withdrew consent"
    assert entry["before"]["status"] == "signed" and entry["after"]["status"] == "cancelled"
