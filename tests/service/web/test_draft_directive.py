"""The next cycle's written directive drafted from the plan of the approved dosimetry, through the JSON API
and the pages alike (one operation:
:func:`theradose.service.operations.directive_plans.draft_next_directive`): a draft only (a physician
reviews, edits and signs it before it can be dispensed), audited, refused with one line and nothing
written when there is no plan, when the plan says stop, or when the cycle already has a directive."""

from __future__ import annotations

import html
import io
import json
import re
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select

from clock import now_utc

from .conftest import SITE_TZ, Web, administer_day, password_of, seed_day, write_pipeline_output
from .helpers import snapshot


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.writestr("out/" + path.name, path.read_bytes())
    return buffer.getvalue()


def _call(web: Web, method: str, path: str, role: str, body: Any = None) -> Any:
    """A JSON API call returning the response whatever its status."""
    return TestClient(web.app).request(method, path, json=body, headers=web.tokens[role])


def _import_and_approve(web: Web, pseudonym: str, folder: Path) -> str:
    """Import the output (physicist, JSON API) and approve it (physician's e-signature)."""
    r = TestClient(web.app).post(
        "/dosimetry/reviews",
        data={"patient": pseudonym},
        files={"file": ("out.zip", _zip(folder), "application/zip")},
        headers=web.tokens["physicist"],
    )
    assert r.status_code == 201, r.text
    review_id = str(r.json()["review_id"])
    _approve(web, review_id)
    return review_id


def _approve(web: Web, review_id: str) -> None:
    """The physician's e-signature approving the dosimetry review (JSON API)."""
    meaning = {"meaning": "approved", "password": password_of("physician")}
    signed = _call(web, "POST", f"/dosimetry/reviews/{review_id}/signatures", "physician", meaning)
    assert signed.status_code == 201, signed.text


def _flash(web: Web, role: str, response: Any) -> str:
    """The one line the page shows after a form's redirect."""
    assert response.status_code == 303, response.text[:500]
    page = web.client(role).get(response.headers["location"]).text
    shown = re.search(r'<[^>]*class="flash[^"]*"[^>]*>(.*?)</', page, re.S)
    assert shown is not None, page[:2000]
    return html.unescape(shown.group(1)).strip()


def _audit(web: Web, entity: str) -> list[dict[str, Any]]:
    from theradose.service.models import AuditEntryRow

    with web.app.state.db.read() as session:
        rows = session.execute(
            select(AuditEntryRow.action, AuditEntryRow.actor, AuditEntryRow.after_json)
            .where(AuditEntryRow.entity == entity)
            .order_by(AuditEntryRow.seq)
        ).all()
    return [{"action": a, "actor": actor, "after": json.loads(after or "{}")} for a, actor, after in rows]


def test_draft_from_the_plan_through_the_api_and_the_page(web: Web, tmp_path: Path) -> None:
    day = seed_day(web)
    url = f"/ui/patients/{day.pseudonym}"
    draft_api = f"/patients/{day.pseudonym}/next-cycle/directive"
    draft_ui = url + "/next-cycle-directive"
    web.client("physician")
    before = snapshot(web.app)

    # nothing administered yet: the first directive is written, not drafted
    r = _call(web, "POST", draft_api, "physician")
    assert r.status_code == 409 and r.json()["error"]["code"] == "nothing_administered", r.text
    assert snapshot(web.app) == before

    record = administer_day(web, day)
    folder = write_pipeline_output(tmp_path / "run1", patient=day.pseudonym, record=record)
    r = TestClient(web.app).post(
        "/dosimetry/reviews",
        data={"patient": day.pseudonym},
        files={"file": ("out.zip", _zip(folder), "application/zip")},
        headers=web.tokens["physicist"],
    )
    assert r.status_code == 201, r.text
    review_id = r.json()["review_id"]

    # imported but not approved: no plan, no draft (API and page say the same line; nothing written)
    before = snapshot(web.app)
    r = _call(web, "POST", draft_api, "physician")
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_plan", r.text
    assert "no approved dosimetry" in r.json()["error"]["message"]
    refused = web.post("physician", draft_ui, {})
    assert snapshot(web.app) == before  # (showing the page afterwards audits the identity read)
    assert _flash(web, "physician", refused) == "not drafted: " + r.json()["error"]["message"]
    assert "Draft the cycle 2 directive" not in web.client("physician").get(url).text

    _approve(web, review_id)
    plan = _call(web, "GET", f"/patients/{day.pseudonym}/next-cycle", "physician").json()["plan"]
    assert plan["stop"] is False and plan["cycle_number"] == 2

    # only a physician drafts: the pharmacist is refused by the API and never sees the button
    web.client("pharmacist")
    before = snapshot(web.app)
    assert _call(web, "POST", draft_api, "pharmacist").status_code == 403
    assert web.post("pharmacist", draft_ui, {}).status_code == 403
    assert snapshot(web.app) == before
    assert "Draft the cycle 2 directive" not in web.client("pharmacist").get(url).text

    # the physician drafts it from the page
    page = html.unescape(web.client("physician").get(url).text)
    assert "Draft the cycle 2 directive from this plan" in page
    line = _flash(web, "physician", web.post("physician", draft_ui, {}))
    assert line.startswith("draft directive written from the plan: cycle 2: ")
    drafts = _audit(web, "directive_plan")
    assert [(d["action"], d["actor"]) for d in drafts] == [("create", "physician")]
    rx = _call(web, "GET", f"/prescriptions/{drafts[0]['after']['prescription_id']}", "physician").json()
    assert rx["patient"] == day.pseudonym and rx["cycle"] == 2
    assert rx["status"] == "draft" and rx["signed_by"] is None
    assert rx["prescribed_activity_mbq"] == round(plan["recommended_activity_mbq"])
    # earliest date: the injection's date in the site's zone + the protocol's 6 weeks (psma.toml)
    injected = datetime.fromisoformat(record["injection_time"].replace("Z", "+00:00"))
    earliest = injected.astimezone(ZoneInfo(SITE_TZ)).date() + timedelta(weeks=6)
    assert rx["planned_date"] == earliest.isoformat()

    # the plan it was drafted from is kept beside it and audited with the directive
    kept = drafts[0]["after"]
    assert kept["prescription_id"] == rx["id"] and json.loads(kept["reviews_json"]) == [review_id]
    assert kept["recommended_activity_mbq"] == rx["prescribed_activity_mbq"]
    organ = plan["limiting_organ"] or plan["most_constrained_organ"]
    assert kept["organ"] == organ
    assert kept["projected_bed_gy"] == plan["projected"][organ]["cumulative_bed_gy"]
    assert [e["action"] for e in _audit(web, "prescription") if e["after"].get("id") == rx["id"]] == [
        "create"
    ]

    # the page shows the draft with the plan, and the physician's button to sign it
    page = html.unescape(web.client("physician").get(url).text)
    assert (
        f"Drafted from the next-cycle plan by physician: cycle 2: {rx['prescribed_activity_mbq']:.0f} MBq"
        in page
    )
    assert f"not before {earliest.isoformat()}" in page and organ in page
    assert "Sign directive (approve plan)" in page
    assert "Draft the cycle 2 directive" not in page  # cycle 2 has its directive now

    # a second draft for cycle 2 is refused (API and page), nothing written
    before = snapshot(web.app)
    r = _call(web, "POST", draft_api, "physician")
    assert r.status_code == 409 and r.json()["error"]["code"] == "duplicate_cycle", r.text
    refused = web.post("physician", draft_ui, {})
    assert snapshot(web.app) == before
    assert _flash(web, "physician", refused) == "not drafted: " + r.json()["error"]["message"]

    # a draft cannot be dispensed
    dispensing = {
        "prescription_id": rx["id"],
        "activity_mbq": rx["prescribed_activity_mbq"],
        "planned_time": (now_utc() + timedelta(hours=1)).isoformat(),
        "calibrator_id": day.calibrator_id,
    }
    r = _call(web, "POST", f"/batches/{day.batch_id}/dispensings", "pharmacist", dispensing)
    assert r.status_code == 409 and r.json()["error"]["code"] == "prescription_not_signed", r.text

    # the physician edits it on the page: without a reason refused, nothing written; with one, changed
    edit = {"prescribed_activity_mbq": "7000", "planned_date": earliest.isoformat(), "next": url}
    before = snapshot(web.app)
    refused = web.post("physician", f"/ui/directives/{rx['id']}/edit", edit)
    assert snapshot(web.app) == before
    line = _flash(web, "physician", refused)
    assert line == "not changed: reason: String should have at least 1 character"
    edit["reason"] = "renal function borderline: rounded down"
    line = _flash(web, "physician", web.post("physician", f"/ui/directives/{rx['id']}/edit", edit))
    assert line == f"directive {rx['id']} changed: sign it to release it for dispensing"
    page = html.unescape(web.client("physician").get(url).text)
    assert "; edited to 7,000.0 MBq" in page
    # signed through the existing e-signature workflow, then dispensable
    r = web.post(
        "physician",
        "/ui/sign",
        {
            "record_type": "prescription",
            "record_id": str(rx["id"]),
            "meaning": "approved",
            "password": password_of("physician"),
            "next": url,
        },
    )
    assert r.status_code == 303
    signed_rx = _call(web, "GET", f"/prescriptions/{rx['id']}", "pharmacist").json()
    assert signed_rx["status"] == "signed" and signed_rx["prescribed_activity_mbq"] == 7000
    dispensing["activity_mbq"] = 7000
    r = _call(web, "POST", f"/batches/{day.batch_id}/dispensings", "pharmacist", dispensing)
    assert r.status_code == 201, r.text


def test_no_draft_when_the_plan_says_stop(web: Web, tmp_path: Path) -> None:
    day = seed_day(web)
    record = administer_day(web, day)
    # kidneys 4 Gy/GBq x 7.4 GBq = 29.6 Gy: past the 23 Gy whole-kidney limit of psma.toml (Emami 1991)
    folder = write_pipeline_output(
        tmp_path / "run1", patient=day.pseudonym, record=record, gy_per_gbq={"kidneys": 4.0}
    )
    _import_and_approve(web, day.pseudonym, folder)
    url = f"/ui/patients/{day.pseudonym}"
    page = html.unescape(web.client("physician").get(url).text)
    assert "STOP: no further cycle" in page and "Draft the cycle" not in page
    before = snapshot(web.app)
    r = _call(web, "POST", f"/patients/{day.pseudonym}/next-cycle/directive", "physician")
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "plan_stop"
    assert "the plan says stop" in error["message"] and "29.60 Gy" in error["message"]
    assert "\n" not in error["message"]
    refused = web.post("physician", url + "/next-cycle-directive", {})
    assert snapshot(web.app) == before
    assert _flash(web, "physician", refused) == "not drafted: " + error["message"]


def test_no_draft_under_a_laboratory_stop_until_a_signed_override(web: Web, tmp_path: Path) -> None:
    day = seed_day(web)
    record = administer_day(web, day)
    folder = write_pipeline_output(tmp_path / "run1", patient=day.pseudonym, record=record)
    _import_and_approve(web, day.pseudonym, folder)
    # creatinine 4.0 mg/dL with ULN 1.2 mg/dL = 3.3 x ULN: CTCAE v5.0 "Creatinine increased" grade 3
    # (> 3.0 - 6.0 x ULN); Pluvicto USPI (03/2022) Table 1: grade >= 3 renal toxicity, discontinue
    lab = {"taken_on": now_utc().date().isoformat(), "test": "creatinine", "value": 4.0}
    web.api(
        "POST",
        f"/patients/{day.pseudonym}/labs",
        "technologist",
        {**lab, "unit": "mg/dL", "uln": 1.2, "cycle": 2},
    )
    draft_api = f"/patients/{day.pseudonym}/next-cycle/directive"
    web.client("physician")
    before = snapshot(web.app)
    r = _call(web, "POST", draft_api, "physician")
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "precycle_stop" and "cycle 2 is STOP" in error["message"], error
    refused = web.post("physician", f"/ui/patients/{day.pseudonym}/next-cycle-directive", {})
    assert snapshot(web.app) == before
    assert _flash(web, "physician", refused) == "not drafted: " + error["message"]
    override = {"reason": "nephrology review: acute, resolved", "password": password_of("physician")}
    web.api("POST", f"/patients/{day.pseudonym}/precycle/2/override", "physician", override)
    r = _call(web, "POST", draft_api, "physician")
    assert r.status_code == 201, r.text
    assert r.json()["prescription"]["status"] == "draft" and r.json()["prescription"]["cycle"] == 2
