"""Dosimetry review: import a (fabricated) pipeline output folder by zip or by path, view the dose table,
DVHs and report, approve with e-signatures recorded in the audit chain; and the patient treatment view
built from approved dosimetry and lab values."""

from __future__ import annotations

import html
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from clock import days_ago

from .conftest import Web, administer_day, password_of, seed_day, write_pipeline_output
from .helpers import snapshot


def _zip(folder: Path, *, prefix: str = "out/", extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.writestr(prefix + path.name, path.read_bytes())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _import_zip(web: Web, patient: str, data: bytes, cycle: str = "") -> Any:
    return web.post(
        "physicist",
        "/ui/dosimetry",
        {"patient": patient, "cycle": cycle},
        files={"file": ("out.zip", data, "application/zip")},
    )


def _sign(web: Web, role: str, review_id: str, meaning: str, password: str | None = None) -> str:
    r = web.post(
        role,
        "/ui/sign",
        {
            "record_type": "dosimetry_review",
            "record_id": review_id,
            "meaning": meaning,
            "password": password or password_of(role),
            "next": f"/ui/dosimetry/{review_id}",
        },
    )
    return html.unescape(web.client(role).get(r.headers["location"]).text)


def test_zip_import_shows_dose_table_dvhs_and_sandboxed_report(web: Web, tmp_path: Path) -> None:
    day = seed_day(web)
    record = administer_day(web, day)  # net 7400 MBq
    folder = write_pipeline_output(tmp_path / "run1", patient=day.pseudonym, record=record)
    web.client("physicist")
    before = snapshot(web.app)
    r = _import_zip(web, day.pseudonym, _zip(folder))
    assert r.status_code == 303, r.text
    review_id = r.headers["location"].rsplit("/", 1)[1]
    after = snapshot(web.app)
    assert after["audit_head"][0] == before["audit_head"][0] + 1
    page = web.client("physician").get(f"/ui/dosimetry/{review_id}").text
    # kidneys 0.5 Gy/GBq x 7.4 GBq = 3.7 Gy; lesion 4 Gy/GBq x 7.4 GBq = 29.6 Gy (fixture values)
    rows = re.findall(r"<tr><td>([a-z_0-9]+)</td><td>(organ|tumour)</td><td class=\"num\">([^<]+)</td>", page)
    assert rows == [
        ("kidneys", "organ", "3.7"),
        ("salivary_glands", "organ", "4.44"),
        ("lesion_1", "tumour", "29.6"),
    ]
    assert page.count("<polyline") == 3 and "Cumulative dose-volume histograms" in page
    assert '<iframe title="Pipeline report"' in page and " sandbox " in page
    report = web.client("physician").get(f"/ui/dosimetry/{review_id}/report")
    assert report.status_code == 200 and "Fixture dosimetry report" in report.text
    assert report.headers["content-security-policy"].startswith("sandbox")
    listing = web.client("technologist").get("/ui/dosimetry").text
    assert review_id in listing and "awaiting approval" in listing
    # the same output a second time is refused, nothing written
    before = snapshot(web.app)
    r = _import_zip(web, day.pseudonym, _zip(folder))
    assert r.status_code == 422 and f"imported before as review {review_id}" in html.unescape(r.text)
    assert snapshot(web.app) == before


def test_bad_imports_are_refused_next_to_the_field_and_nothing_is_written(web: Web, tmp_path: Path) -> None:
    day = seed_day(web)
    other = seed_day(web, released_batch=False)
    record = administer_day(web, day)
    folder = write_pipeline_output(tmp_path / "run1", patient=day.pseudonym, record=record)
    web.client("physicist")
    files_root = tmp_path / "files"
    before = snapshot(web.app)
    cases = [
        (_zip(folder), {"patient": other.pseudonym}, "patient", "is for patient"),
        (_zip(folder), {"cycle": "2"}, "cycle", "cycle 1, not 2"),
        (_zip(folder), {"cycle": "x"}, "cycle", "whole number"),
        (b"not a zip", {}, "file", "not a zip"),
        (_zip(folder, extra={"../../doses.json": b"{}"}), {}, "file", "unsafe"),
        (_zip(folder, prefix="a/b/"), {}, "file", "nested"),
    ]
    for data, change, name, message in cases:
        r = _import_zip(web, change.get("patient", day.pseudonym), data, change.get("cycle", ""))
        assert r.status_code == 422, (name, message)
        shown = re.search(rf'<p id="e-{name}" class="error">([^<]*)</p>', r.text)
        assert shown and message in html.unescape(shown.group(1)), (name, message, shown)
        assert snapshot(web.app) == before
    bad = write_pipeline_output(tmp_path / "bad", patient=day.pseudonym, record=record)
    record = json.loads((bad / "doses.json").read_text())
    record["regions"][0]["doses"]["local"]["dvh"] = {"dose_gy": [0, 1], "cumulative_fraction": [0.5, 1.0]}
    (bad / "doses.json").write_text(json.dumps(record))
    r = _import_zip(web, day.pseudonym, _zip(bad), "1")
    assert r.status_code == 422 and "cannot increase" in html.unescape(r.text), re.findall(
        r"class=\"error\"[^>]*>([^<]*)", r.text
    )
    assert snapshot(web.app) == before
    assert not (files_root / "reviews").exists() or not any(
        p for p in (files_root / "reviews").iterdir() if not p.name.startswith(".")
    )


def test_output_naming_the_record_number_is_accepted_for_that_patient(web: Web, tmp_path: Path) -> None:
    """The images (and so doses.json) may carry the hospital record number as Patient ID."""
    mrn = "MRN-" + tmp_path.name[-8:]
    day = seed_day(web, mrn=mrn)
    record = administer_day(web, day)
    other = seed_day(web, released_batch=False)
    folder = write_pipeline_output(tmp_path / "run", patient=mrn, record=record)
    web.client("physicist")
    r = _import_zip(web, other.pseudonym, _zip(folder))
    assert r.status_code == 422 and mrn in html.unescape(r.text)  # the output's own id, not other's MRN
    r = _import_zip(web, day.pseudonym, _zip(folder))
    assert r.status_code == 303


def test_import_by_folder_path_only_under_the_pipeline_root(
    web: Web, tmp_path: Path, pipeline_root: Path
) -> None:
    day = seed_day(web)
    record = administer_day(web, day)
    inside = write_pipeline_output(pipeline_root / "p1" / "cycle1", patient=day.pseudonym, record=record)
    outside = write_pipeline_output(tmp_path / "elsewhere", patient=day.pseudonym, record=record)
    web.client("physicist")
    before = snapshot(web.app)
    for folder, message in (
        (outside, "outside the pipeline output roots"),
        (tmp_path / "nope", "does not exist"),
    ):
        r = web.post("physicist", "/ui/dosimetry", {"patient": day.pseudonym, "folder": str(folder)})
        assert r.status_code == 422
        assert message in html.unescape(
            re.search(r'<p id="e-folder" class="error">([^<]*)</p>', r.text).group(1)
        )  # type: ignore[union-attr]
    assert snapshot(web.app) == before
    r = web.post("physicist", "/ui/dosimetry", {"patient": day.pseudonym, "folder": str(inside)})
    assert r.status_code == 303


def test_approval_is_an_e_signature_in_the_audit_chain_and_voided_by_a_changed_file(
    web: Web, tmp_path: Path
) -> None:
    from theradose.service.models import AuditEntryRow

    day = seed_day(web)
    folder = write_pipeline_output(tmp_path / "run1", patient=day.pseudonym, record=administer_day(web, day))
    web.client("physicist")
    review_id = _import_zip(web, day.pseudonym, _zip(folder)).headers["location"].rsplit("/", 1)[1]
    web.client("physician")
    web.client("technologist")
    before = snapshot(web.app)
    assert "password does not match" in _sign(web, "physician", review_id, "approved", "wrong")
    assert "may not sign a dosimetry review" in _sign(web, "technologist", review_id, "approved")
    assert "checked or approved" in _sign(web, "physician", review_id, "administered")
    after = snapshot(web.app)
    # nothing signed; the wrong password is audited and counted towards the lockout
    failures = ("audit_entries", "audit_head", "auth_failures")
    assert {k: v for k, v in after.items() if k not in failures} == {
        k: v for k, v in before.items() if k not in failures
    }
    assert (after["auth_failures"], after["audit_entries"]) == (1, before["audit_entries"] + 1)
    page = _sign(web, "physicist", review_id, "checked")
    assert "signed as checked" in page and "Sign as checked" not in page
    page = _sign(web, "physician", review_id, "approved")
    assert "signed as approved" in page and page.count('class="pass">valid') == 2
    assert "already signed" in _sign(web, "physician", review_id, "approved")
    with web.app.state.db.read() as session:
        signed = [
            json.loads(after or "{}")
            for (after,) in session.execute(
                select(AuditEntryRow.after_json)
                .where(AuditEntryRow.entity == "dosimetry_review", AuditEntryRow.action == "sign")
                .order_by(AuditEntryRow.seq)
            )
        ]
    assert [(s["signer"], s["meaning"]) for s in signed] == [
        ("physicist", "checked"),
        ("physician", "approved"),
    ]
    assert all(len(s["seal"]) == 64 and len(s["record_hash"]) == 64 for s in signed)
    verify = web.post("physicist", "/ui/audit/verify", {})
    assert "Chain intact" in verify.text
    # a file changed after signing: the signatures no longer match the record
    stored = tmp_path / "files" / "reviews" / review_id / "doses.json"
    stored.write_text(stored.read_text().replace('"dose_gy_per_gbq": 0.5', '"dose_gy_per_gbq": 0.05'))
    page = web.client("physician").get(f"/ui/dosimetry/{review_id}").text
    assert page.count('class="fail">INVALID') == 2 and "approved</span></h1>" not in page


def test_patient_view_cycles_bed_next_cycle_and_labs(web: Web, tmp_path: Path) -> None:
    day = seed_day(web)
    url = f"/ui/patients/{day.pseudonym}"
    page = web.client("physician").get(url).text
    assert "no approved dosimetry yet" in page and "signed" in page
    folder = write_pipeline_output(tmp_path / "run1", patient=day.pseudonym, record=administer_day(web, day))
    web.client("physicist")
    review_id = _import_zip(web, day.pseudonym, _zip(folder)).headers["location"].rsplit("/", 1)[1]
    page = web.client("physician").get(url).text
    assert "no approved dosimetry yet" in page  # imported but not approved: not used for planning
    measured = re.search(r'<table id="measured-doses">.*?</table>', page, re.S).group(0)  # type: ignore[union-attr]
    assert "Cycle 1 (not approved)" in measured
    assert '<th scope="row">lesion_1</th><td class="num">29.6</td>' in measured  # 4 Gy/GBq x 7.4 GBq
    _sign(web, "physician", review_id, "approved")
    page = html.unescape(web.client("physician").get(url).text)
    assert "Next cycle 2: recommended" in page and "kidneys BED limit" in page
    kidneys = re.search(r"<tr><td>kidneys</td><td class=\"num\">([^<]+)</td>", page)
    assert kidneys and kidneys.group(1) == "3.7"  # 0.5 Gy/GBq x 7.4 GBq
    assert f"/ui/dosimetry/{review_id}/report" in page
    # labs: bad values are refused next to the field with nothing written; good ones are graded (CTCAE v5.0)
    web.client("technologist")
    lab = {
        "taken_on": days_ago(3).isoformat(),
        "test": "platelets",
        "value": "40",
        "unit": "10^9/L",
        "cycle": "1",
    }
    before = snapshot(web.app)
    for change, name, message in (
        ({"value": "-3"}, "value", "negative"),
        ({"unit": ""}, "unit", "unit"),
        ({"test": "unobtainium"}, "test", "unobtainium"),
        ({"taken_on": "05/01/2026"}, "taken_on", "date"),
        ({"cycle": "0"}, "cycle", "greater than or equal to 1"),
    ):
        r = web.post("technologist", url + "/labs", {**lab, **change})
        assert r.status_code == 422, change
        shown = re.search(rf'<p id="e-{name}" class="error">([^<]*)</p>', r.text) or re.search(
            r'<p class="error" role="alert" id="e-_form">([^<]*)</p>', r.text
        )
        assert shown and message in html.unescape(shown.group(1)), (change, shown and shown.group(1))
    assert snapshot(web.app) == before
    # CTCAE v5.0 "Platelet count decreased": <50-25 x 10^9/L is grade 3; haemoglobin 13.9 g/dL: grade 0
    r = web.post("technologist", url + "/labs", lab)
    assert r.status_code == 303
    assert "CTCAE grade 3" in web.client("technologist").get(r.headers["location"]).text
    r = web.post(
        "technologist", url + "/labs", {**lab, "test": "hemoglobin", "value": "13.9", "unit": "g/dL"}
    )
    assert r.status_code == 303
    page = html.unescape(web.client("physician").get(url).text)
    grades = re.findall(
        r"<td>(hemoglobin|platelets)</td><td class=\"num\">[^<]+</td>\s*<td>[^<]+</td>\s*"
        r"<td>(?:<span class=\"fail\">)?(\d)",
        page,
    )
    assert sorted(grades) == [("hemoglobin", "0"), ("platelets", "3")]
    decision = re.search(r"Pre-cycle decision: ([A-Z]+)", page)
    assert decision and decision.group(1) != "GO"
    # the physicist reads doses but not labs (labs:read is clinical; physicist is clinical) -> shown too
    assert "Pre-cycle decision" in web.client("physicist").get(url).text


def test_the_served_report_fills_its_checked_and_approved_lines_from_the_e_signatures(
    web: Web, tmp_path: Path
) -> None:
    """The report a pipeline writes has blank sign-off lines; the service fills the checked and approved
    lines from the review's verified e-signatures when it serves the report (the file is not changed),
    and shows a signature voided by a changed file as not valid."""
    from theradose.report import signoff_html

    day = seed_day(web)
    folder = write_pipeline_output(tmp_path / "run1", patient=day.pseudonym, record=administer_day(web, day))
    blank = f"<!doctype html><html><body><h1>Report</h1>{signoff_html()}</body></html>"
    (folder / "report.html").write_text(blank, encoding="utf-8")
    web.client("physicist")
    web.client("physician")
    review_id = _import_zip(web, day.pseudonym, _zip(folder)).headers["location"].rsplit("/", 1)[1]

    def lines() -> dict[str, str]:
        text = html.unescape(web.client("physician").get(f"/ui/dosimetry/{review_id}/report").text)
        return dict(re.findall(r"<tr data-meaning='(\w+)'><th>[^<]*</th>(.*?)</tr>", text))

    assert all("Name:" in cells for cells in lines().values())
    _sign(web, "physicist", review_id, "checked")
    _sign(web, "physician", review_id, "approved")
    filled = lines()
    assert "<td>physicist</td>" in filled["checked"] and "verified" in filled["checked"]
    assert "<td>physician</td>" in filled["approved"] and "verified" in filled["approved"]
    assert "Name:" in filled["prepared"]  # nobody signed as prepared
    stored = tmp_path / "files" / "reviews" / review_id / "report.html"
    assert stored.read_text(encoding="utf-8") == blank  # the signed file itself is unchanged
    doses = stored.with_name("doses.json")
    doses.write_text(doses.read_text().replace('"dose_gy_per_gbq": 0.5', '"dose_gy_per_gbq": 0.05'))
    assert all("not valid" in lines()[m] for m in ("checked", "approved"))
