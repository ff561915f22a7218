"""Twenty clients dispensing from one batch at once over real HTTP never lose an update."""

from __future__ import annotations

import math
import threading

import httpx

from clock import days_from_now, iso

from .conftest import ROLES, password_of


def test_20_concurrent_dispensings_keep_exact_totals(live_server, now) -> None:
    base = live_server.base_url
    reference = iso(days_from_now(-1, now=now))
    with httpx.Client(base_url=base, timeout=120) as c:
        tokens = {}
        for role in ROLES:
            r = c.post("/auth/login", json={"username": role, "password": password_of(role)})
            tokens[role] = {"Authorization": f"Bearer {r.json()['token']}"}
        ph = tokens["pharmacist"]
        physician = tokens["physician"]
        rxs = []
        for k in range(20):  # one signed written directive per patient: one dose per directive
            pseudonym = c.post(
                "/patients",
                json={"family_name": "C", "mrn": f"CONC-{k}", "birth_date": "1950-03-14"},
                headers=physician,
            ).json()["pseudonym"]
            rx = c.post(
                "/prescriptions",
                json={
                    "patient": pseudonym,
                    "radiopharmaceutical": "[177Lu]Lu-PSMA-617",
                    "prescribed_activity_mbq": 2000.0,
                    "range_reason": "test dose below the labelled range",
                },
                headers=physician,
            ).json()["id"]
            signed = c.post(
                "/signatures",
                json={
                    "record_type": "prescription",
                    "record_id": rx,
                    "meaning": "approved",
                    "password": password_of("physician"),
                },
                headers=physician,
            )
            assert signed.status_code == 201, signed.text
            rxs.append(rx)
        calibrator = c.post("/calibrators", json={"name": "CRC-C"}, headers=tokens["physicist"]).json()["id"]
        batch = c.post(
            "/batches",
            json={
                "product": "[177Lu]Lu-PSMA-617",
                "carrier_added": False,
                "lot": "CONC",
                "activity_mbq": 30000.0,
                "volume_ml": 30.0,
                "reference_time": reference,
                "expiry_time": iso(days_from_now(2, now=now)),
            },
            headers=ph,
        ).json()["id"]
        for qc in ({"test": "radiochemical_purity", "value": 99}, {"test": "ph", "value": 5}):
            c.post(f"/batches/{batch}/qc", json=qc, headers=ph)
        qp = c.post("/auth/login", json={"username": "qp", "password": password_of("qp")}).json()["token"]
        released = c.post(
            f"/batches/{batch}/release",
            json={"password": password_of("qp")},
            headers={"Authorization": f"Bearer {qp}"},
        )
        assert released.status_code == 200, released.text

    # Each dose: 2000 MBq at the reference time = 2 mL, so the 30 mL batch serves exactly 15 of 20.
    bodies = [
        {
            "prescription_id": rx,
            "activity_mbq": 2000.0,
            "planned_time": reference,
            "draw_time": reference,
            "calibrator_id": calibrator,
        }
        for rx in rxs
    ]
    barrier = threading.Barrier(20)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def worker(body: dict[str, object]) -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            barrier.wait()
            response = client.post(f"/batches/{batch}/dispensings", json=body, headers=ph)
        with lock:
            results.append(response)

    threads = [threading.Thread(target=worker, args=(body,)) for body in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] * 15 + [409] * 5, [r.text for r in results if r.status_code not in (201, 409)]
    assert all(r.json()["error"]["code"] == "insufficient_stock" for r in results if r.status_code == 409)
    ok = [r.json() for r in results if r.status_code == 201]
    with httpx.Client(base_url=base, timeout=60) as c:
        b = c.get(f"/batches/{batch}", headers=ph).json()
        verify = c.get("/audit/verify", headers=tokens["admin"]).json()
    assert math.isclose(sum(d["volume_ml"] for d in ok), 30.0, rel_tol=1e-12)
    assert abs(b["remaining_volume_ml"]) < 1e-9
    assert abs(b["remaining_activity_ref_mbq"]) < 1e-6
    assert b["version"] == 2 + 15  # created 1, release +1, one per dispensing
    # Every successful draw saw a different stock level: no two read the same state.
    remaining = sorted(round(d["batch_remaining_volume_ml"], 9) for d in ok)
    assert remaining == sorted(round(30.0 - 2.0 * k, 9) for k in range(1, 16))
    assert verify["ok"] is True
