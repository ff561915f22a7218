"""The closed loop on the service's records, on a real database (SQLite and PostgreSQL).

batch → dispense → administer (service) → ``theradose run`` on a virtual patient reading that
administration from the service → import (reconciled with the administration) → approve → next-cycle
plan → draft written directive for cycle 2 → sign → dispense cycle 2; and the kidney dose and BED are the
same on the report, the patient page, the review page, the registry export and ``doses.json``.

The virtual patient (``theradose.phantoms``, 32 × 32 matrix) is imaged 4, 24, 96 and 168 h after an
administration eight days ago, so every acquisition lies in the past; the service records that
administration with the same injection time.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cli_runner import run_in_process
from clock import iso, now_utc

from ..conftest import QP, Api, login_all, run_live_server
from .conftest import ROLES, Web, password_of

#: Net activity the service records (syringe 7450 MBq, residual 50 MBq, both read at the injection).
NET_MBQ = 7400.0


@dataclass(frozen=True)
class VirtualPatient:
    root: Path
    study: Path
    injected: datetime
    cache: Path


@pytest.fixture(scope="module")
def virtual_patient(tmp_path_factory: pytest.TempPathFactory) -> VirtualPatient:
    """A small virtual 177Lu-PSMA-617 patient with 4 SPECT/CT time points, its study file naming no patient,
    cycle or administration (they come from the service), and a step cache shared by the runs."""
    from theradose.io.phantoms import write_patient_study
    from theradose.phantoms.spect import default_system
    from theradose.phantoms.study import minimum_voxel_mm, simulate_patient_study
    from theradose.pipeline.demo import write_study_file

    base = tmp_path_factory.mktemp("loop")
    injected = now_utc().replace(second=0) - timedelta(days=8)
    study = simulate_patient_study(
        tracer="psma",
        seed=3,
        grid=32,
        voxel_mm=minimum_voxel_mm(32),
        timepoints_h=(4.0, 24.0, 96.0, 168.0),
        activity_mbq=NET_MBQ,
        tumours=2,
        system=default_system().with_(n_views=32),
        iterations=2,
        subsets=4,
        dose_engine="local",
    )
    write_patient_study(study, base / "patient", injection_datetime=injected)
    path = write_study_file(
        base / "patient",
        base / "study.toml",
        recovery_curve=None,
        engines=("local",),
        typed_administration=False,
    )
    path.write_text(path.read_text() + '\n[output]\nformats = ["json", "html"]\n', encoding="utf-8")
    return VirtualPatient(base / "patient", path, injected, base / "cache")


@dataclass
class Service:
    app: Any
    base_url: str
    web: Web
    api: Api
    runs: Path

    def call(self, method: str, path: str, role: str, body: Any = None, *, status: int = 0) -> Any:
        """A JSON API call as ``role``; asserts ``status`` (default: 200 or 201) and returns the answer."""
        r = self.api.client.request(method, path, json=body, headers=self.api.tokens[role])
        assert (r.status_code == status) if status else r.status_code in (200, 201), r.text
        return r.json()


@contextlib.contextmanager
def running_service(db_url: str, tmp_path: Path) -> Iterator[Service]:
    """The service with its pages on ``db_url``, served by uvicorn on 127.0.0.1 (for the command line)."""
    from fastapi.testclient import TestClient

    from theradose.service.auth import create_user
    from theradose.service.settings import Settings
    from theradose.service.web import create_web_app

    runs = tmp_path / "runs"
    runs.mkdir()
    app = create_web_app(
        Settings(
            db_url=db_url,
            secret_key="loop-test-secret",
            site_timezone="Europe/Berlin",
            argon2_time_cost=1,
            argon2_memory_cost_kib=1024,
            data_dir=tmp_path / "files",
            pipeline_roots=(runs,),
        )
    )
    with app.state.db.write() as session:
        for username, role in [*((r, r) for r in ROLES), (QP, "pharmacist")]:
            create_user(
                session,
                app.state.hasher,
                username=username,
                role=role,
                password=password_of(username),
                full_name=username,
            )
    server, thread, base_url = run_live_server(app)
    try:
        with TestClient(app) as client:
            api = Api(client=client, app=app)
            login_all(client, api.tokens)
            yield Service(app, base_url, Web(app, {}, api.tokens), api, runs)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        app.state.db.dispose()


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[Service]:
    """The service on SQLite and on PostgreSQL."""
    with running_service(db_url, tmp_path) as started:
        yield started


@pytest.fixture
def sqlite_service(sqlite_url: str, tmp_path: Path) -> Iterator[Service]:
    """The service on SQLite (for the command line's refusals)."""
    with running_service(sqlite_url, tmp_path) as started:
        yield started


def dispense(service: Service, prescription_id: int, planned: datetime, *, batch_reference: datetime) -> int:
    """A released batch and the dispensing of the (signed) directive for ``planned``; the dispensing id."""
    batch = service.api.released_batch(
        reference_time=batch_reference, expiry_time=now_utc() + timedelta(days=1)
    )
    return int(
        service.call(
            "POST",
            f"/batches/{batch}/dispensings",
            "pharmacist",
            {
                "prescription_id": prescription_id,
                "activity_mbq": NET_MBQ,
                "planned_time": iso(planned),
                "draw_time": iso(planned - timedelta(hours=1)),
                "calibrator_id": service.api.calibrator(),
            },
        )["id"]
    )


def administer_cycle(service: Service, injected: datetime) -> dict[str, Any]:
    """Patient, signed written directive of cycle 1, released batch, dispensing and the administration at
    ``injected`` (net 7400 MBq); returns the administration record the service publishes."""
    pseudonym = service.api.patient()
    rx = service.api.prescription(pseudonym, NET_MBQ, cycle=1)
    dispensing = dispense(service, rx, injected, batch_reference=injected - timedelta(days=1))
    administration = service.call(
        "POST",
        f"/dispensings/{dispensing}/administration",
        "technologist",
        {
            "syringe_activity_mbq": NET_MBQ + 50.0,
            "syringe_measured_at": iso(injected),
            "residual_activity_mbq": 50.0,
            "residual_measured_at": iso(injected),
            "injection_time": iso(injected),
            "calibrator_id": service.api.calibrator(),
            **service.api.confirm(pseudonym),
        },
    )
    return dict(service.call("GET", f"/administrations/{administration['id']}/record", "physicist"))


def _run(vp: VirtualPatient, out: Path, *args: str) -> Any:
    return run_in_process(
        "run", str(vp.study), "--out", str(out), "--cache-dir", str(vp.cache), "--json", *args
    )


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.writestr(path.name, path.read_bytes())
    return buffer.getvalue()


def _cells(page: str, row_start: str) -> list[str]:
    """The cell texts of the first table row of ``page`` that starts with ``row_start``."""
    match = re.search(re.escape(row_start) + r"(.*?)</tr>", page, re.S)
    assert match, row_start
    return [
        html.unescape(c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row_start + match.group(1))
    ]


def _printed(text: str, value: float) -> bool:
    """True when ``text`` is ``value`` rounded to the decimals ``text`` shows."""
    decimals = len(text.split(".", 1)[1]) if "." in text else 0
    return abs(float(text) - value) <= 0.5 * 10.0**-decimals + 1e-12


def test_the_loop_from_administration_to_the_next_cycle(
    service: Service, virtual_patient: VirtualPatient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from theradose.dosimetry.results import read_doses
    from theradose.population.registry import export_registry, read_registry

    vp = virtual_patient
    record = administer_cycle(service, vp.injected)
    pseudonym = record["patient"]

    # --- the physicist runs the pipeline on the administration the service recorded ----------------------
    out = service.runs / "batch" / "cycle1"
    monkeypatch.setenv("THERADOSE_TOKEN", service.web.tokens["physicist"]["Authorization"].split()[1])
    result = _run(
        vp, out, "--administration", str(record["administration_id"]), "--service", service.base_url
    )
    assert result.returncode == 0, result.stderr
    doses = read_doses(out / "doses.json")
    assert json.loads(result.stdout) == doses.to_dict()
    assert doses.patient.id == pseudonym and doses.cycle == 1
    assert doses.administration.activity_mbq == NET_MBQ
    assert doses.administration.datetime == vp.injected
    assert doses.administration.radiopharmaceutical == "[177Lu]Lu-PSMA-617"
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["administration_record"]["source"] == "service"
    assert provenance["administration_record"]["service"] == service.base_url
    assert provenance["administration_record"]["administration_id"] == record["administration_id"]
    assert provenance["administration_record"]["sha256"] == record["record_sha256"]
    token = service.web.tokens["physicist"]["Authorization"].split()[1]
    assert token not in (out / "provenance.json").read_text() and token not in result.stderr

    # --- import (reconciled with the administration) and approval ------------------------------------------
    from fastapi.testclient import TestClient

    r = TestClient(service.app).post(
        "/dosimetry/reviews",
        data={"patient": pseudonym},
        files={"file": ("cycle1.zip", _zip(out), "application/zip")},
        headers=service.web.tokens["physicist"],
    )
    assert r.status_code == 201, r.text
    review_id = r.json()["review_id"]
    for role, meaning in (("physicist", "checked"), ("physician", "approved")):
        service.call(
            "POST",
            f"/dosimetry/reviews/{review_id}/signatures",
            role,
            {"meaning": meaning, "password": password_of(role)},
        )
    review = service.call("GET", f"/dosimetry/reviews/{review_id}", "physician")
    assert review["approved"] is True

    # --- the same kidney dose and BED everywhere ----------------------------------------------------------
    kidneys = doses.row("kidneys")
    assert kidneys.dose_gy is not None and kidneys.bed_gy is not None
    dose, bed = kidneys.dose_gy, kidneys.bed_gy
    shown = (f"{dose:.3g}", f"{bed:.3g}")  # every page and the report show 3 significant digits
    api_row = next(row for row in review["regions"] if row["name"] == "kidneys")
    assert (api_row["dose_gy"], api_row["bed_gy"], api_row["dose_source"]) == (dose, bed, "local")
    # the report prints fixed decimals with the uncertainty: the same number, rounded as printed
    report = _cells((out / "report.html").read_text(), "<tr><td>kidneys</td>")
    assert _printed(report[3].split(" ± ")[0], dose) and _printed(report[6].split(" ± ")[0], bed)
    review_page = service.web.client("physician").get(f"/ui/dosimetry/{review_id}").text
    cells = _cells(review_page, "<tr><td>kidneys</td>")
    assert (cells[2], cells[6]) == shown
    patient_page = service.web.client("physician").get(f"/ui/patients/{pseudonym}").text
    assert _cells(patient_page, '<tr><th scope="row">kidneys</th>')[1:3] == list(shown)
    assert _cells(patient_page, "<tr><td>kidneys</td>")[1:3] == list(shown)  # the plan's delivered dose/BED
    plan = service.call("GET", f"/patients/{pseudonym}/next-cycle", "physician")
    assert plan["reviews"] == [review_id]
    projected = plan["plan"]["projected"]["kidneys"]
    assert (projected["delivered_dose_gy"], projected["delivered_bed_gy"]) == (dose, bed)
    export = export_registry(service.runs / "batch", tmp_path / "registry.parquet")
    frame = read_registry(export.path)
    row = frame[(frame["region"] == "kidneys")].iloc[0]
    assert (row["dose_gy"], row["bed_gy"], row["dose_source"]) == (dose, bed, "local")

    # --- the plan becomes the draft directive of cycle 2; only once signed can it be dispensed ------------
    service.call("POST", f"/patients/{pseudonym}/next-cycle/directive", "pharmacist", status=403)
    drafted = service.call("POST", f"/patients/{pseudonym}/next-cycle/directive", "physician", status=201)
    rx, basis = drafted["prescription"], drafted["plan"]
    recommended = plan["plan"]["recommended_activity_mbq"]
    assert (rx["cycle"], rx["status"], rx["prescribed_activity_mbq"]) == (2, "draft", round(recommended))
    # earliest date: the injection's date in the site's zone (Europe/Berlin) + 6 weeks (psma protocol)
    injected_local = vp.injected.astimezone(ZoneInfo("Europe/Berlin")).date()
    assert rx["planned_date"] == basis["earliest_date"] == (injected_local + timedelta(weeks=6)).isoformat()
    organ = plan["plan"]["limiting_organ"] or plan["plan"]["most_constrained_organ"]
    assert basis["organ"] == organ and basis["reviews"] == [review_id] and basis["confidence"] == 0.95
    assert basis["projected_bed_gy"] == plan["plan"]["projected"][organ]["cumulative_bed_gy"]
    assert basis["projected_bed_upper_gy"] == plan["plan"]["projected"][organ]["cumulative_bed_upper_gy"]
    again = service.call("POST", f"/patients/{pseudonym}/next-cycle/directive", "physician", status=409)
    assert again["error"]["code"] == "duplicate_cycle"
    now = now_utc()
    batch = service.api.released_batch(reference_time=now - timedelta(hours=2))
    dispensing = {
        "prescription_id": rx["id"],
        "activity_mbq": rx["prescribed_activity_mbq"],
        "planned_time": iso(now + timedelta(hours=1)),
        "calibrator_id": service.api.calibrator(),
    }
    refused = service.call("POST", f"/batches/{batch}/dispensings", "pharmacist", dispensing, status=409)
    assert refused["error"]["code"] == "prescription_not_signed"
    # the physician reviews it, changes the date, and signs it
    edited = service.call(
        "PATCH",
        f"/prescriptions/{rx['id']}",
        "physician",
        {
            "planned_date": (injected_local + timedelta(weeks=7)).isoformat(),
            "reason": "patient's availability",
        },
    )
    assert edited["status"] == "draft"
    service.api.sign_prescription(rx["id"])
    signed = service.call("GET", f"/prescriptions/{rx['id']}", "pharmacist")
    assert signed["status"] == "signed" and signed["signed_by"] == "physician"
    dispensed = service.call("POST", f"/batches/{batch}/dispensings", "pharmacist", dispensing, status=201)
    assert dispensed["prescription_id"] == rx["id"]
    page = html.unescape(service.web.client("physician").get(f"/ui/patients/{pseudonym}").text)
    assert f"Drafted from the next-cycle plan by physician: {basis['summary']}" in page


def _variant(vp: VirtualPatient, tmp_path: Path, *, head: str = "", tail: str = "") -> Path:
    """The virtual patient's study file with ``head`` before its first line and ``tail`` after its last."""
    path = tmp_path / f"study_{abs(hash((head, tail)))}.toml"
    path.write_text(head + vp.study.read_text() + tail, encoding="utf-8")
    return path


def test_run_refuses_what_disagrees_with_the_record_and_never_shows_the_token(
    sqlite_service: Service, virtual_patient: VirtualPatient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, vp = sqlite_service, virtual_patient
    record = administer_cycle(service, vp.injected)
    token = service.web.tokens["physicist"]["Authorization"].split()[1]
    options = ("--administration", str(record["administration_id"]), "--service", service.base_url)
    monkeypatch.setenv("THERADOSE_TOKEN", token)
    cases = [
        # the study file states 3 % more than the service recorded: refused, both values named
        (
            _variant(vp, tmp_path, tail="\n[administration]\nactivity_mbq = 7622.0\n"),
            "activity_mbq: the study file says 7622 MBq, administration "
            f"{record['administration_id']} of {service.base_url} records 7400 MBq (3.0 % apart",
        ),
        (_variant(vp, tmp_path, head="cycle = 2\n"), "cycle: the study file says cycle 2, administration"),
        (
            _variant(vp, tmp_path, tail='\n[patient]\nid = "PHANTOM-PSMA-3"\n'),
            f"patient: the study file says 'PHANTOM-PSMA-3', administration {record['administration_id']}",
        ),
        (
            _variant(vp, tmp_path, tail='\n[administration]\nradiopharmaceutical = "Lutathera"\n'),
            "radiopharmaceutical: the study file says 'Lutathera'",
        ),
    ]
    for study, message in cases:
        result = run_in_process("run", str(study), "--out", str(tmp_path / "never"), *options)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert not (tmp_path / "never").exists()
    # values that agree with the record (an alias of the product, 0.5 % off, the same instant in another
    # offset) pass the record check: the run goes on to the next check, here an --out that is a file
    agreeing = _variant(
        vp,
        tmp_path,
        head="cycle = 1\n",
        tail=f'\n[administration]\nradiopharmaceutical = "Pluvicto"\nactivity_mbq = 7437.0\n'
        f"datetime = {vp.injected.astimezone(timezone(timedelta(hours=-5))).isoformat()}\n",
    )
    (tmp_path / "a-file").write_text("x")
    result = run_in_process("run", str(agreeing), "--out", str(tmp_path / "a-file"), *options)
    assert result.returncode == 2 and "is a file: choose a folder" in result.stderr, result.stderr
    # the token: refused, unreachable service, missing — one line each, the token never shown
    monkeypatch.setenv("THERADOSE_TOKEN", "not-a-token")
    result = run_in_process("run", str(vp.study), "--out", str(tmp_path / "never"), *options)
    assert result.returncode == 2 and "refused the token (401)" in result.stderr
    result = run_in_process(
        "run", str(vp.study), "--out", str(tmp_path / "never"), *options[:2], "--service", "http://127.0.0.1:9",
        "--token", token,
    )  # fmt: skip
    assert result.returncode == 2 and "cannot reach the service" in result.stderr
    assert token not in result.stderr + result.stdout
    monkeypatch.delenv("THERADOSE_TOKEN")
    result = run_in_process("run", str(vp.study), "--out", str(tmp_path / "never"), *options)
    assert result.returncode == 2 and "THERADOSE_TOKEN" in result.stderr
    result = run_in_process(
        "run", str(vp.study), "--out", str(tmp_path / "never"), "--administration", "99999",
        "--service", service.base_url, "--token", token,
    )  # fmt: skip
    assert result.returncode == 2 and "has no administration 99999" in result.stderr
    # without a record the study file must state the administration itself
    result = run_in_process("run", str(vp.study), "--out", str(tmp_path / "never"))
    assert result.returncode == 2 and "[patient]" in result.stderr


def test_run_from_an_rrdsr_file(
    sqlite_service: Service, virtual_patient: VirtualPatient, tmp_path: Path
) -> None:
    import hashlib

    import pydicom
    from fastapi.testclient import TestClient

    from theradose.dosimetry.results import read_doses

    service, vp = sqlite_service, virtual_patient
    record = administer_cycle(service, vp.injected)
    answer = TestClient(service.app).get(
        f"/administrations/{record['administration_id']}/rrdsr", headers=service.web.tokens["physicist"]
    )
    assert answer.status_code == 200
    rrdsr = tmp_path / "rrdsr.dcm"
    rrdsr.write_bytes(answer.content)
    result = run_in_process("run", str(vp.study), "--out", str(tmp_path / "never"), "--rrdsr", str(rrdsr))
    assert result.returncode == 2 and "names no therapy cycle: add cycle = N" in result.stderr
    out = tmp_path / "from-rrdsr"
    study = _variant(vp, tmp_path, head="cycle = 1\n")
    result = run_in_process(
        "run", str(study), "--out", str(out), "--cache-dir", str(vp.cache), "--rrdsr", str(rrdsr)
    )
    assert result.returncode == 0, result.stderr
    doses = read_doses(out / "doses.json")
    assert doses.patient.id == record["patient"] and doses.cycle == 1
    assert doses.administration.activity_mbq == NET_MBQ and doses.administration.datetime == vp.injected
    named = json.loads((out / "provenance.json").read_text())["administration_record"]
    assert named["source"] == "rrdsr" and named["sha256"] == hashlib.sha256(answer.content).hexdigest()
    assert named["sop_instance_uid"] == pydicom.dcmread(rrdsr).SOPInstanceUID
    # the output of the RRDSR's administration imports: it is the administration the service recorded
    r = TestClient(service.app).post(
        "/dosimetry/reviews",
        data={"patient": record["patient"]},
        files={"file": ("out.zip", _zip(out), "application/zip")},
        headers=service.web.tokens["physicist"],
    )
    assert r.status_code == 201, r.text
