"""A write and its audit entries commit together or not at all."""

from __future__ import annotations

from fastapi.testclient import TestClient

from clock import hours_from_now, iso


def test_failure_after_audit_rolls_back_everything(api, monkeypatch, now) -> None:
    rx = api.prescription(api.patient())
    batch_id = api.released_batch()
    calibrator = api.calibrator()
    before_batch = api.get(f"/batches/{batch_id}", "pharmacist").json()
    before_audit = api.get("/audit/verify", "admin").json()["entries"]

    from theradose.service import audit_store

    real_append = audit_store.append
    calls = []

    def failing_append(session, **kw):
        calls.append(kw["entity"])
        row = real_append(session, **kw)
        if kw["entity"] == "dispensing":  # after the batch update and its audit entry
            raise RuntimeError("disk full")
        return row

    monkeypatch.setattr(audit_store, "append", failing_append)
    with TestClient(api.app, raise_server_exceptions=False) as client:
        r = client.post(
            f"/batches/{batch_id}/dispensings",
            headers=api.as_("pharmacist"),
            json={
                "prescription_id": rx,
                "activity_mbq": 7400,
                "planned_time": iso(hours_from_now(-2, now=now)),
                "draw_time": iso(hours_from_now(-3, now=now)),
                "calibrator_id": calibrator,
            },
        )
    assert r.status_code == 500
    assert r.json() == {
        "error": {"code": "internal_error", "message": r.json()["error"]["message"], "field": None}
    }
    assert calls == ["batch", "dispensing"]
    monkeypatch.setattr(audit_store, "append", real_append)

    after_batch = api.get(f"/batches/{batch_id}", "pharmacist").json()
    assert after_batch["remaining_volume_ml"] == before_batch["remaining_volume_ml"]
    assert after_batch["version"] == before_batch["version"]
    verify = api.get("/audit/verify", "admin").json()
    assert verify["ok"] is True and verify["entries"] == before_audit
