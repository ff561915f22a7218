"""Bad payloads get 422 with the one JSON error shape."""

from __future__ import annotations

import pytest

from clock import days_from_now, hours_from_now, iso


def _shape(r, status: int = 422) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


GOOD_BATCH = {
    "product": "[177Lu]Lu-PSMA-617",
    "nuclide": "Lu-177",
    "carrier_added": False,
    "lot": "V1",
    "activity_mbq": 7400,
    "volume_ml": 10,
    "reference_time": iso(days_from_now(-1)),
    "expiry_time": iso(days_from_now(2)),
}


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"activity_mbq": -5}, "activity_mbq", "validation_error"),
        ({"activity_mbq": "lots"}, "activity_mbq", "validation_error"),
        ({"volume_ml": 0}, "volume_ml", "validation_error"),
        (
            {"reference_time": iso(days_from_now(-1)).rstrip("Z")},
            "reference_time",
            "validation_error",
        ),  # naive
        ({"expiry_time": "yesterday"}, "expiry_time", "validation_error"),
        ({"lot": ""}, "lot", "validation_error"),
        ({"lot": "a\x00b"}, "lot", "validation_error"),
        ({"colour": "blue"}, "colour", "validation_error"),
        ({"nuclide": "Lu-999"}, "nuclide", "invalid_input"),
        ({"expiry_time": iso(days_from_now(-2))}, "expiry_time", "invalid_input"),  # before the reference
    ],
)
def test_bad_batch_payloads(api, change: dict, field: str, code: str) -> None:
    error = _shape(api.post("/batches", "pharmacist", {**GOOD_BATCH, **change}))
    assert error["code"] == code
    assert error["field"] == field


def test_missing_field_and_not_json(sqlite_api) -> None:
    body = dict(GOOD_BATCH)
    del body["lot"]
    error = _shape(sqlite_api.post("/batches", "pharmacist", body))
    assert error["field"] == "lot" and "required" in error["message"].lower()
    r = sqlite_api.client.post(
        "/batches",
        content=b"{not json",
        headers={**sqlite_api.as_("pharmacist"), "content-type": "application/json"},
    )
    _shape(r)


def test_bad_path_and_query_parameters(sqlite_api) -> None:
    assert _shape(sqlite_api.get("/batches/0", "pharmacist"))["field"] == "batch_id"
    assert _shape(sqlite_api.get("/batches/abc", "pharmacist"))["field"] == "batch_id"
    assert _shape(sqlite_api.get("/batches", "pharmacist", params={"limit": 0}))["field"] == "limit"
    assert _shape(sqlite_api.get("/batches/12345", "pharmacist"), 404)["code"] == "not_found"


def test_administration_times_out_of_order(sqlite_api, now) -> None:
    api = sqlite_api
    planned = hours_from_now(-2, now=now)
    rx = api.prescription(api.patient())
    batch = api.released_batch()
    d = api.post(
        f"/batches/{batch}/dispensings",
        "pharmacist",
        {
            "prescription_id": rx,
            "activity_mbq": 7400,
            "planned_time": iso(planned),
            "draw_time": iso(hours_from_now(-1, now=planned)),
            "calibrator_id": api.calibrator(),
        },
    ).json()
    bedside = {"calibrator_id": api.calibrator(), **api.confirm(d["patient"])}
    error = _shape(
        api.post(
            f"/dispensings/{d['id']}/administration",
            "technologist",
            {
                "syringe_activity_mbq": 7400,
                "syringe_measured_at": iso(hours_from_now(5 / 60, now=planned)),  # after the injection
                "residual_activity_mbq": 50,
                "residual_measured_at": iso(hours_from_now(0.5, now=planned)),
                "injection_time": iso(planned),
                **bedside,
            },
        )
    )
    assert error["code"] == "invalid_input" and error["field"] == "syringe_measured_at"
    error = _shape(
        api.post(
            f"/dispensings/{d['id']}/administration",
            "technologist",
            {
                "syringe_activity_mbq": 7400,
                "syringe_measured_at": iso(hours_from_now(-5 / 60, now=planned)),
                "residual_activity_mbq": 50,
                "residual_measured_at": iso(hours_from_now(0.5, now=planned)),
                "injection_time": iso(planned),
                "route": "intranasal",
                **bedside,
            },
        )
    )
    assert error["field"] == "route"


def test_unknown_route_is_404_with_shape(sqlite_api) -> None:
    assert _shape(sqlite_api.get("/no/such/thing", "admin"), 404)["code"] == "not_found"


def test_openapi_documents_the_error_shape(sqlite_api) -> None:
    spec = sqlite_api.client.get("/openapi.json").json()
    assert "HTTPValidationError" not in str(spec)
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    post = spec["paths"]["/batches/{batch_id}/dispensings"]["post"]
    for status in ("401", "403", "404", "409", "422"):
        assert post["responses"][status]["content"]["application/json"]["schema"] == error_ref
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
