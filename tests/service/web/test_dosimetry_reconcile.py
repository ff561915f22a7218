"""A dosimetry import is reconciled with the administration the service recorded for the patient's cycle:
patient, cycle, radiopharmaceutical, injection time (±1 min) and activity (±1 %) must match, else the
import is refused with one message naming the field and both values, and nothing is written — through
the JSON API and the page alike."""

from __future__ import annotations

import html
import io
import json
import re
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from clock import iso

from .conftest import Web, administer_day, seed_day, write_pipeline_output
from .helpers import snapshot


def _zip(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.writestr("out/" + path.name, path.read_bytes())
        for name, data in (extra or {}).items():
            archive.writestr("out/" + name, data)
    return buffer.getvalue()


def _output(tmp_path: Path, name: str, record: dict[str, Any], **changes: Any) -> Path:
    """A fabricated pipeline output stating the record's administration, with ``changes``."""
    when = datetime.fromisoformat(record["injection_time"].replace("Z", "+00:00"))
    values = {
        "patient": record["patient"],
        "cycle": record["cycle"],
        "activity_mbq": record["activity_mbq"],
        "injection_time": when,
        "radiopharmaceutical": record["radiopharmaceutical"],
    } | changes
    return write_pipeline_output(tmp_path / name, **values)


def _api_import(web: Web, patient: str, data: bytes, cycle: int | None = None) -> Any:
    from fastapi.testclient import TestClient

    form = {"patient": patient} | ({"cycle": str(cycle)} if cycle is not None else {})
    return TestClient(web.app).post(
        "/dosimetry/reviews",
        data=form,
        files={"file": ("out.zip", data, "application/zip")},
        headers=web.tokens["physicist"],
    )


def _reviews_on_disk(tmp_path: Path) -> list[str]:
    root = tmp_path / "files" / "reviews"
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []


def test_activity_three_percent_off_is_refused_and_0_9_percent_accepted(web: Web, tmp_path: Path) -> None:
    day = seed_day(web)
    record = administer_day(web, day)
    net = record["activity_mbq"]
    web.client("physicist")
    before = snapshot(web.app)

    # through the JSON API
    off = _zip(_output(tmp_path, "off", record, activity_mbq=net * 1.03))
    r = _api_import(web, day.pseudonym, off)
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "administration_mismatch" and error["field"] == "activity_mbq"
    assert f"{net * 1.03:g} MBq" in error["message"] and f"{net:g} MBq" in error["message"]
    assert "3.0 %" in error["message"]
    assert snapshot(web.app) == before and _reviews_on_disk(tmp_path) == []

    # through the page: the same message, next to the form, nothing written
    r = web.post(
        "physicist",
        "/ui/dosimetry",
        {"patient": day.pseudonym, "cycle": ""},
        files={"file": ("out.zip", off, "application/zip")},
    )
    assert r.status_code == 422
    shown = re.search(r'<p class="error" role="alert" id="e-_form">([^<]*)</p>', r.text)
    assert shown is not None and html.unescape(shown.group(1)) == error["message"]
    assert snapshot(web.app) == before and _reviews_on_disk(tmp_path) == []

    # 0.9 % apart (a value typed to the nearest 10 MBq would be), named by a registry alias: accepted
    close = _zip(_output(tmp_path, "close", record, activity_mbq=net * 1.009, radiopharmaceutical="Pluvicto"))
    r = _api_import(web, day.pseudonym, close)
    assert r.status_code == 201, r.text
    review = r.json()
    assert review["patient"] == day.pseudonym and review["cycle"] == 1 and review["approved"] is False
    assert _reviews_on_disk(tmp_path) == [review["review_id"]]


def test_every_field_is_reconciled(web: Web, tmp_path: Path) -> None:
    day = seed_day(web)
    record = administer_day(web, day)
    when = datetime.fromisoformat(record["injection_time"].replace("Z", "+00:00"))
    web.client("physicist")
    before = snapshot(web.app)
    cases = [
        ({"injection_time": when + timedelta(minutes=2)}, "injection_time", "2 min apart"),
        ({"injection_time": when - timedelta(days=700)}, "injection_time", iso(when - timedelta(days=700))),
        ({"radiopharmaceutical": "[177Lu]Lu-DOTA-TATE"}, "radiopharmaceutical", "[177Lu]Lu-DOTA-TATE"),
    ]
    for changes, field, text in cases:
        r = _api_import(
            web, day.pseudonym, _zip(_output(tmp_path, field + str(len(text)), record, **changes))
        )
        assert r.status_code == 409, (field, r.text)
        assert r.json()["error"]["field"] == field
        assert text in r.json()["error"]["message"], r.json()
        assert snapshot(web.app) == before
    # a cycle that was never given has no administration to reconcile with
    r = _api_import(web, day.pseudonym, _zip(_output(tmp_path, "cycle2", record, cycle=2)))
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_administration"
    assert r.json()["error"]["field"] == "cycle"
    # provenance naming another administration of the service
    provenance = json.dumps({"administration_record": {"source": "service", "administration_id": 999}})
    folder = _output(tmp_path, "prov", record)
    r = _api_import(web, day.pseudonym, _zip(folder, {"provenance.json": provenance.encode()}))
    assert r.status_code == 409 and "administration 999" in r.json()["error"]["message"]
    assert snapshot(web.app) == before and _reviews_on_disk(tmp_path) == []
    # within 1 min and the same product: accepted
    r = _api_import(
        web, day.pseudonym, _zip(_output(tmp_path, "ok", record, injection_time=when + timedelta(seconds=50)))
    )
    assert r.status_code == 201, r.text
