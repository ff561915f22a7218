"""Laboratory records in the service: canonical units, CTCAE grades, audit, pre-cycle check, refusals."""

from __future__ import annotations

from typing import Any

from clock import days_ago

TAKEN_ON = days_ago(5).isoformat()


def test_record_grade_and_precycle(api: Any) -> None:
    patient = api.patient()
    r = api.post(
        f"/patients/{patient}/labs",
        "technologist",
        {"taken_on": TAKEN_ON, "test": "PLT", "value": 62000, "unit": "/mm3", "cycle": 2},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    # 62 000 /mm³ = 62 × 10^9/L: CTCAE v5.0 platelet count decreased grade 2 (<75–50)
    assert body["test"] == "platelets" and body["value"] == 62.0 and body["unit"] == "10^9/L"
    assert body["grade"] == 2 and "< 75" in body["rule"]
    assert body["entered_value"] == 62000 and body["entered_unit"] == "/mm3"
    listed = api.get(f"/patients/{patient}/labs", "physicist").json()
    assert [row["grade"] for row in listed] == [2]
    decision = api.get(f"/patients/{patient}/precycle?protocol=dotatate", "physician").json()
    # Lutathera USPI Table 2: grade >= 2 thrombocytopenia -> withhold, resume at 3.7 GBq
    assert decision["decision"] == "delay"
    assert decision["recommended_activity_mbq"] == 3700.0
    entries = api.get("/audit?entity=lab_record", "physicist").json()
    assert len(entries) == 1


def test_implausible_value_is_refused_and_nothing_written(api: Any) -> None:
    patient = api.patient()
    before = len(api.get("/audit?limit=1000", "physicist").json())
    for payload, field in (
        ({"taken_on": TAKEN_ON, "test": "hemoglobin", "value": -3, "unit": "g/dL"}, "negative"),
        ({"taken_on": TAKEN_ON, "test": "hemoglobin", "value": 12, "unit": ""}, "unit is missing"),
        ({"taken_on": TAKEN_ON, "test": "potassium", "value": 4, "unit": "mmol/L"}, "not known"),
    ):
        r = api.post(f"/patients/{patient}/labs", "physician", payload)
        assert r.status_code == 422, r.text
        assert field in r.json()["error"]["message"]
    assert api.get(f"/patients/{patient}/labs", "physician").json() == []
    assert len(api.get("/audit?limit=1000", "physicist").json()) == before


def test_roles(api: Any) -> None:
    patient = api.patient()
    payload = {"taken_on": TAKEN_ON, "test": "hemoglobin", "value": 12.5, "unit": "g/dL"}
    assert api.post(f"/patients/{patient}/labs", "pharmacist", payload).status_code == 403
    assert api.post(f"/patients/{patient}/labs", "admin", payload).status_code == 403
    assert api.get(f"/patients/{patient}/labs", "admin").status_code == 403
