"""The rules of the radiopharmacy and bedside workflow through the JSON API, on SQLite and PostgreSQL.

The same rules are checked through the pages in ``web/test_pages.py`` and the browser day in
``web/test_browser.py``: they live once, in ``theradose.service.operations``.
"""

from __future__ import annotations

from typing import Any

from clock import days_ago, hours_from_now, iso

from .conftest import QP, password_of

PSMA = "[177Lu]Lu-PSMA-617"
DOTATATE = "[177Lu]Lu-DOTATATE"


def _dispense(api: Any, batch: int, rx: int, now: Any, **extra: Any) -> Any:
    body = {
        "prescription_id": rx,
        "activity_mbq": 7400.0,
        "planned_time": iso(hours_from_now(-1, now=now)),
        "draw_time": iso(hours_from_now(-2, now=now)),
        "calibrator_id": api.calibrator(),
        **extra,
    }
    return api.post(f"/batches/{batch}/dispensings", "pharmacist", body)


def _administer(api: Any, disp: int, pseudonym: str, now: Any, **extra: Any) -> Any:
    body = {
        "syringe_activity_mbq": 7400.0,
        "syringe_measured_at": iso(hours_from_now(-1.5, now=now)),
        "residual_activity_mbq": 20.0,
        "residual_measured_at": iso(hours_from_now(-0.5, now=now)),
        "injection_time": iso(hours_from_now(-1, now=now)),
        "calibrator_id": api.calibrator(),
        **api.confirm(pseudonym),
        **extra,
    }
    return api.post(f"/dispensings/{disp}/administration", "technologist", body)


def _code(r: Any) -> str:
    return str(r.json()["error"]["code"])


def test_directive_is_signed_before_dispensing_and_plausible(api: Any, now: Any) -> None:
    patient = api.patient()
    batch = api.released_batch()
    # an unknown product is refused with the registry's choices, never a fallback
    r = api.post(
        "/prescriptions",
        "physician",
        {"patient": patient, "radiopharmaceutical": "Lu-X", "prescribed_activity_mbq": 7400},
    )
    assert r.status_code == 422 and "Pluvicto" in r.json()["error"]["message"]
    # 74 GBq for 7.4 GBq: refused as a probable unit slip; 9 GBq: outside 5.92-8.14 GBq needs a reason
    body = {"patient": patient, "radiopharmaceutical": "Pluvicto", "prescribed_activity_mbq": 74000}
    assert _code(api.post("/prescriptions", "physician", body)) == "implausible_activity"
    body["prescribed_activity_mbq"] = 9000
    assert _code(api.post("/prescriptions", "physician", body)) == "activity_outside_protocol"
    rx = api.prescription(patient, 7400.0, sign=False)
    assert api.get(f"/prescriptions/{rx}", "pharmacist").json()["radiopharmaceutical"] == PSMA
    # one directive per cycle
    again = {"patient": patient, "radiopharmaceutical": PSMA, "prescribed_activity_mbq": 7400, "cycle": 1}
    assert _code(api.post("/prescriptions", "physician", again)) == "duplicate_cycle"
    # a draft cannot be dispensed; a pharmacist cannot sign it
    assert _code(_dispense(api, batch, rx, now)) == "prescription_not_signed"
    sign = {"record_type": "prescription", "record_id": rx, "meaning": "approved"}
    r = api.post("/signatures", "pharmacist", {**sign, "password": password_of("pharmacist")})
    assert r.status_code == 403
    api.sign_prescription(rx)
    got = api.get(f"/prescriptions/{rx}", "pharmacist").json()
    assert got["status"] == "signed" and got["signed_by"] == "physician"
    # editing a signed directive returns it to draft: its signature no longer matches
    r = api.client.patch(
        f"/prescriptions/{rx}",
        json={"prescribed_activity_mbq": 7000, "reason": "weight loss"},
        headers=api.as_("physician"),
    )
    assert r.status_code == 200 and r.json()["status"] == "draft"
    assert api.get(f"/signatures/prescription/{rx}", "physician").json()[0]["record_unchanged"] is False
    assert _code(_dispense(api, batch, rx, now, activity_mbq=7000)) == "prescription_not_signed"
    api.sign_prescription(rx)
    assert _dispense(api, batch, rx, now, activity_mbq=7000).status_code == 201


def test_right_product_and_one_dose_per_directive(api: Any, now: Any) -> None:
    patient = api.patient()
    rx = api.prescription(patient, 7400.0)
    dotatate = api.released_batch(product=DOTATATE)
    psma = api.released_batch()
    r = _dispense(api, dotatate, rx, now)
    assert r.status_code == 409 and _code(r) == "product_mismatch"  # only the nuclide matches
    # idempotent: the same key twice writes once and answers the same dispensing
    key = {"Idempotency-Key": "dispense-" + patient}
    first = api.client.post(
        f"/batches/{psma}/dispensings",
        json={
            "prescription_id": rx,
            "activity_mbq": 7400.0,
            "planned_time": iso(hours_from_now(-1, now=now)),
            "draw_time": iso(hours_from_now(-2, now=now)),
            "calibrator_id": api.calibrator(),
        },
        headers={**api.as_("pharmacist"), **key},
    )
    assert first.status_code == 201, first.text
    repeat = api.client.post(
        f"/batches/{psma}/dispensings",
        content=first.request.content,
        headers={**api.as_("pharmacist"), **key, "content-type": "application/json"},
    )
    assert repeat.status_code == 201 and repeat.json()["id"] == first.json()["id"]
    batch = api.get(f"/batches/{psma}", "pharmacist").json()
    assert batch["version"] == 3  # created, released, one dispensing: the repeat wrote nothing
    other = api.client.post(
        f"/batches/{psma}/dispensings",
        json={
            "prescription_id": rx,
            "activity_mbq": 7000.0,
            "planned_time": iso(now),
            "calibrator_id": api.calibrator(),
        },
        headers={**api.as_("pharmacist"), **key},
    )
    assert other.status_code == 409 and _code(other) == "idempotency_key_reused"
    # without a key, a second dispensing for the same directive is refused
    assert _code(_dispense(api, psma, rx, now)) == "already_dispensed"
    disp = first.json()["id"]
    wrong = api.post(f"/dispensings/{disp}/void", "pharmacist", {"reason": "dropped", "password": "nope"})
    assert wrong.status_code == 401
    voided = api.post(
        f"/dispensings/{disp}/void",
        "pharmacist",
        {"reason": "syringe dropped", "password": password_of("pharmacist")},
    )
    assert voided.status_code == 200 and voided.json()["status"] == "voided"
    assert _code(_administer(api, disp, patient, now)) == "dispensing_voided"
    again = _dispense(api, psma, rx, now)
    assert again.status_code == 201
    sigs = api.get(f"/signatures/dispensing/{disp}", "pharmacist").json()
    assert [(s["meaning"], s["valid"]) for s in sigs] == [("voided", True)]
    label = api.get(f"/dispensings/{again.json()['id']}/label", "pharmacist")
    assert label.status_code == 200 and label.content.startswith(b"%PDF")


def test_bedside_identity_times_residual_and_deviation(api: Any, now: Any) -> None:
    patient = api.patient()
    rx = api.prescription(patient, 7400.0)
    disp = _dispense(api, api.released_batch(), rx, now).json()["id"]
    r = _administer(api, disp, patient, now, confirm_mrn="SOMEONE-ELSE")
    assert r.status_code == 422 and r.json()["error"]["field"] == "confirm_mrn"
    r = _administer(api, disp, patient, now, confirm_birth_date=None)
    assert r.status_code == 422 and "2 identifiers" in r.json()["error"]["message"]
    r = _administer(api, disp, patient, now, injection_time=iso(hours_from_now(1, now=now)))
    assert r.status_code == 422 and r.json()["error"]["field"] == "injection_time"  # in the future
    r = _administer(api, disp, patient, now, residual_activity_mbq=None)
    assert r.status_code == 422 and r.json()["error"]["field"] == "residual_activity_mbq"
    # 25 % over: recorded (never refused) as a possible medical event, with its required reason
    r = _administer(
        api,
        disp,
        patient,
        now,
        syringe_activity_mbq=9270.0,
        residual_activity_mbq=None,
        residual_measured_at=None,
        no_residual_measured=True,
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "deviation_reason"
    r = _administer(
        api,
        disp,
        patient,
        now,
        syringe_activity_mbq=9270.0,
        residual_activity_mbq=None,
        residual_measured_at=None,
        no_residual_measured=True,
        deviation_reason="AU informed",
    )
    assert r.status_code == 201, r.text
    adm = r.json()
    assert adm["residual_activity_mbq"] is None and adm["medical_event_possible"] is True
    assert adm["identifiers_confirmed"] == "birth_date,mrn" and len(adm["notification_steps"]) == 3
    # a cancelled directive is not administered
    patient2 = api.patient()
    rx2 = api.prescription(patient2, 7400.0)
    disp2 = _dispense(api, api.released_batch(), rx2, now).json()["id"]
    api.post(f"/prescriptions/{rx2}/cancel", "physician", {"reason": "withdrew consent"})
    assert _code(_administer(api, disp2, patient2, now)) == "prescription_not_active"


def test_gmp_release_against_the_specification(api: Any, now: Any) -> None:
    body = {
        "product": "Lutathera",
        "carrier_added": True,
        "lot": "G-1",
        "activity_mbq": 7400,
        "volume_ml": 20,
        "reference_time": iso(hours_from_now(-2, now=now)),
        "expiry_time": iso(hours_from_now(48, now=now)),
    }
    batch = api.post("/batches", "pharmacist", body).json()["id"]
    # limits come from the specification, never from the client
    client_limits = {"test": "radiochemical_purity", "value": 12, "lower_limit": 5}
    assert api.post(f"/batches/{batch}/qc", "pharmacist", client_limits).status_code == 422
    out = api.post(f"/batches/{batch}/qc", "pharmacist", {"test": "radiochemical_purity", "value": 12}).json()
    assert out["passed"] is False and out["lower_limit"] == 95.0
    api.post(f"/batches/{batch}/qc", "pharmacist", {"test": "ph", "value": 5.0})
    r = api.post(f"/batches/{batch}/release", QP, {"password": password_of(QP)})
    assert r.status_code == 409 and "radiochemical_purity = 12" in r.json()["error"]["message"]
    api.post(
        f"/batches/{batch}/qc",
        "pharmacist",
        {"test": "radiochemical_purity", "value": 98, "reason": "re-run TLC"},
    )
    r = api.post(f"/batches/{batch}/release", "pharmacist", {"password": password_of("pharmacist")})
    assert r.status_code == 409 and _code(r) == "four_eyes"  # the QC recorder cannot release
    r = api.post(f"/batches/{batch}/release", QP, {"password": password_of(QP)})
    assert r.status_code == 200 and r.json()["status"] == "released"
    sigs = api.get(f"/signatures/batch/{batch}", "pharmacist").json()
    assert [(s["signer"], s["meaning"]) for s in sigs] == [(QP, "released")]
    # a typo batch is voided with a reason; a new specification version is written by a pharmacist
    typo = api.post("/batches", "pharmacist", {**body, "lot": "G-1X"}).json()["id"]
    r = api.post(f"/batches/{typo}/void", "pharmacist", {"reason": "lot typed twice"})
    assert r.status_code == 200 and r.json()["status"] == "voided"
    spec = {
        "product": "Lutathera",
        "tests": [
            {"test": "radiochemical_purity", "unit": "%", "lower_limit": 97, "citation": "site spec 2"}
        ],
        "reason": "site specification revised",
    }
    r = api.post("/specifications", "pharmacist", spec)
    assert r.status_code == 201 and r.json()["version"] == 2
    assert api.post("/specifications", "technologist", spec).status_code == 403


def test_precycle_delay_blocks_until_a_signed_override(api: Any, now: Any) -> None:
    patient = api.patient()
    rx = api.prescription(patient, 7400.0)
    batch = api.released_batch()
    # platelets 62 x 10^9/L before cycle 1: CTCAE grade 2 -> DELAY (PLUVICTO USPI Table 1)
    lab = {
        "taken_on": days_ago(1).isoformat(),
        "test": "platelets",
        "value": 62,
        "unit": "10^9/L",
        "cycle": 1,
    }
    assert api.post(f"/patients/{patient}/labs", "technologist", lab).status_code == 201
    decisions = api.get(f"/patients/{patient}/precycle/decisions", "pharmacist").json()
    assert [(d["cycle"], d["decision"], d["blocking"]) for d in decisions] == [(1, "delay", True)]
    assert _code(_dispense(api, batch, rx, now)) == "precycle_delay"
    override = {"reason": "haematologist: transient, proceed", "password": password_of("physician")}
    assert api.post(f"/patients/{patient}/precycle/1/override", "technologist", override).status_code == 403
    bad = api.post(f"/patients/{patient}/precycle/1/override", "physician", {**override, "password": "x"})
    assert bad.status_code == 401
    r = api.post(f"/patients/{patient}/precycle/1/override", "physician", override)
    assert r.status_code == 200 and r.json()["blocking"] is False and r.json()["overridden_by"] == "physician"
    assert _dispense(api, batch, rx, now).status_code == 201
    entry = api.get("/audit", "admin", params={"entity": "precycle_decision"}).json()[0]
    assert entry["action"] == "sign" and entry["reason"] == override["reason"]


def test_calibrator_blocked_after_a_failed_constancy_check_and_waste(api: Any, now: Any) -> None:
    patient = api.patient()
    rx = api.prescription(patient, 7400.0)
    batch = api.released_batch()
    cal = api.calibrator()
    check = {
        "test": "constancy",
        "nuclide": "Cs-137",
        "certified_activity_mbq": 10.0,
        "certified_at": iso(hours_from_now(-1, now=now)),
        "measured_at": iso(hours_from_now(-1, now=now)),
    }
    failed = api.post(f"/calibrators/{cal}/qa", "technologist", {**check, "measured_mbq": 11.5}).json()
    assert failed["passed"] is False
    assert _code(_dispense(api, batch, rx, now)) == "calibrator_blocked"
    # the reading was typed in µCi (11.5 µCi is not 11.5 MBq): void it with a reason, and it no longer counts
    r = api.post(f"/calibrator-qa/{failed['id']}/void", "technologist", {"reason": "typed µCi as MBq"})
    assert r.status_code == 200 and r.json()["voided"] is True
    assert _dispense(api, batch, rx, now).status_code == 201
    # decay-in-storage: carrier-added 177Lu brings 177mLu (160 d): never released under 10 CFR 35.92
    ca = api.post(
        "/waste", "physicist", {"label": "W-1", "nuclides": ["Lu-177"], "carrier_added_lu177": True}
    ).json()
    assert ca["nuclides"] == ["Lu-177", "Lu-177m"] and ca["eligible"] is False
    api.post(f"/waste/{ca['id']}/seal", "physicist")
    survey = {"surface_usv_h": 0.1, "background_usv_h": 0.1, "instrument": "Thermo FH40"}
    assert _code(api.post(f"/waste/{ca['id']}/release", "physicist", survey)) == "not_eligible"
    nca = api.post(
        "/waste", "physicist", {"label": "W-2", "nuclides": ["Lu-177"], "carrier_added_lu177": False}
    ).json()
    assert _code(api.post(f"/waste/{nca['id']}/release", "physicist", survey)) == "container_not_sealed"
    api.post(f"/waste/{nca['id']}/seal", "physicist")
    above = {**survey, "surface_usv_h": 0.3}
    assert _code(api.post(f"/waste/{nca['id']}/release", "physicist", above)) == "above_background"
    r = api.post(f"/waste/{nca['id']}/release", "physicist", survey)
    assert (
        r.status_code == 200 and r.json()["status"] == "released" and r.json()["instrument"] == "Thermo FH40"
    )
