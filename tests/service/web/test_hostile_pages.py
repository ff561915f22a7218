"""Hostile input to the pages: never a 500, a clear message, nothing written."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient

from clock import days_from_now

from .conftest import Web, password_of, seed_day, write_pipeline_output
from .helpers import snapshot


def test_huge_record_ids_are_not_found(web: Web) -> None:
    for url in ("/ui/batches/99999999999999999999", "/ui/administer/99999999999999999999"):
        r = web.client("pharmacist").get(url)
        assert r.status_code == 404 and "does not exist" in r.text, (url, r.status_code)


def test_worklist_days_at_the_ends_of_the_calendar(web: Web) -> None:
    for day in ("9999-12-31", "0001-01-01", "2199-12-31"):
        r = web.client("physician").get(f"/ui/worklist?day={day}")
        assert r.status_code == 200, (day, r.status_code)


def test_a_form_time_in_the_year_1_is_refused(web: Web) -> None:
    web.client("pharmacist")
    before = snapshot(web.app)
    form = {
        "product": "[177Lu]Lu-PSMA-617",
        "nuclide": "Lu-177",
        "lot": "Y1",
        "activity_mbq": "30000",
        "volume_ml": "30",
        "reference_time": "0001-01-01T00:00",
        "expiry_time": "9999-12-31T23:59",
    }
    r = web.post("pharmacist", "/ui/batches", form)
    assert r.status_code == 422 and "enter a date and time" in r.text
    assert snapshot(web.app) == before


def test_zip_member_with_a_bad_crc_is_refused(web: Web, tmp_path: Path) -> None:
    day = seed_day(web, released_batch=False)
    folder = write_pipeline_output(tmp_path / "run", patient=day.pseudonym)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.iterdir()):
            archive.writestr("out/" + path.name, path.read_bytes())
    data = bytearray(buffer.getvalue())
    largest = max(folder.iterdir(), key=lambda p: p.stat().st_size)
    content = largest.read_bytes()
    at = bytes(data).find(content[:64]) + 32  # inside the stored member data, not its header
    data[at] ^= 0x01
    web.client("physicist")
    before = snapshot(web.app)
    r = web.post(
        "physicist",
        "/ui/dosimetry",
        {"patient": day.pseudonym, "cycle": ""},
        files={"file": ("out.zip", bytes(data), "application/zip")},
    )
    assert r.status_code == 422, r.status_code
    assert "cannot be read" in r.text and "zip the output folder again" in r.text
    assert snapshot(web.app) == before


def test_old_short_lived_batch_pages_read(web: Web) -> None:
    batch = web.api(
        "POST",
        "/batches",
        "pharmacist",
        {  # referenced 50 years ago: 2^-2750 of its activity, which underflows to 0
            "product": "[177Lu]Lu-PSMA-617",
            "carrier_added": False,
            "lot": "LU-OLD-1",
            "activity_mbq": 1500.0,
            "volume_ml": 8.0,
            "reference_time": days_from_now(-50 * 365.25).isoformat(),
            "expiry_time": days_from_now(-50 * 365.25 + 2).isoformat(),
        },
    )
    for url in ("/ui/batches", f"/ui/batches/{batch['id']}"):
        r = web.client("pharmacist").get(url)
        assert r.status_code == 200, (url, r.status_code)


def test_pages_wait_for_an_administrator_set_password_to_be_changed(web: Web) -> None:
    web.api("PATCH", "/users/physicist", "admin", {"password": "temporary-pw-9", "reason": "reset"})
    client = TestClient(web.app, base_url="http://testserver")
    page = client.get("/ui/login")
    token = page.text.split('name="login_csrf" value="', 1)[1].split('"', 1)[0]
    r = client.post(
        "/ui/login",
        data={"username": "physicist", "password": "temporary-pw-9", "login_csrf": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/ui/password"
    r = client.get("/ui/qa", follow_redirects=False)  # every page waits for the change
    assert r.status_code == 303 and r.headers["location"] == "/ui/password"
    page = client.get("/ui/password")
    assert page.status_code == 200 and "choose your own" in page.text
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    same = {"csrf": csrf, "current_password": "temporary-pw-9", "new_password": "temporary-pw-9"}
    assert client.post("/ui/password", data=same, follow_redirects=False).status_code == 422
    new = {**same, "new_password": "chosen by the physicist"}
    r = client.post("/ui/password", data=new, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/ui/qa", follow_redirects=False).status_code == 200
    r = client.post(  # the old password no longer works either
        "/auth/login", json={"username": "physicist", "password": password_of("physicist")}
    )
    assert r.status_code == 401
