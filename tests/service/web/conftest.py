"""Fixtures for the browser UI: a migrated SQLite database, one user per role, the app with the pages,
page-level clients logged in per role, a seeded day (patient, prescription, batch, calibrator), and a
fabricated pipeline output folder."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

ROLES = ("admin", "physicist", "physician", "pharmacist", "technologist")
#: A second pharmacist who releases batches (four-eyes with the QC recorder).
QP = "qp"
BIRTH_DATE = "1950-03-14"
SITE_TZ = "Europe/Berlin"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
_LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')


def password_of(role: str) -> str:
    return f"secret-{role}-pw"


@pytest.fixture(scope="session")
def webui_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once, with one user per role (cheap Argon2 cost for tests)."""
    from theradose.service.auth import create_user, hasher
    from theradose.service.db import Database
    from theradose.service.migrate import upgrade

    path = tmp_path_factory.mktemp("webui-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}", keyring=make_settings(path).keyring())
    ph = hasher(1, 1024)
    with db.write() as session:
        for username, role in [*((r, r) for r in ROLES), (QP, "pharmacist")]:
            create_user(
                session,
                ph,
                username=username,
                role=role,
                password=password_of(username),
                full_name=f"{username.title()} A",
            )
    db.dispose()
    return path


def make_settings(db_path: Path) -> Any:
    from theradose.service.settings import Settings

    return Settings(
        db_url=f"sqlite:///{db_path}",
        secret_key="test-secret-key-for-webui",
        key_file=None,
        checkpoint_path=None,
        failed_login_delay_s=0.0,
        site_timezone=SITE_TZ,
        site_name="Test Centre",
        argon2_time_cost=1,
        argon2_memory_cost_kib=1024,
    )


@pytest.fixture
def db_path(tmp_path: Path, webui_template: Path) -> Path:
    path = tmp_path / "theradose.db"
    shutil.copyfile(webui_template, path)
    return path


@pytest.fixture
def pipeline_root(tmp_path: Path) -> Path:
    root = tmp_path / "pipeline-out"
    root.mkdir()
    return root


@pytest.fixture
def app(db_path: Path, tmp_path: Path, pipeline_root: Path) -> Any:
    from theradose.service.web import create_web_app

    return create_web_app(make_settings(db_path), data_dir=tmp_path / "files", pipeline_roots=[pipeline_root])


@dataclass
class Web:
    """A TestClient per role (each with its own cookies), plus API tokens for setting up data."""

    app: Any
    clients: dict[str, Any]
    tokens: dict[str, dict[str, str]]

    def login(self, role: str) -> Any:
        from fastapi.testclient import TestClient

        client = TestClient(self.app, base_url="http://testserver")
        page = client.get("/ui/login")
        token = _LOGIN_CSRF.search(page.text)
        assert token, page.text
        r = client.post(
            "/ui/login",
            data={"username": role, "password": password_of(role), "login_csrf": token.group(1)},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        self.clients[role] = client
        return client

    def client(self, role: str) -> Any:
        return self.clients.get(role) or self.login(role)

    def csrf(self, role: str, page: str = "/ui/batches") -> str:
        r = self.client(role).get(page)
        match = _CSRF.search(r.text)
        assert match, r.text[:500]
        return match.group(1)

    def post(self, role: str, url: str, data: dict[str, Any], **kw: Any) -> Any:
        data = {"csrf": self.csrf(role), **data}
        return self.client(role).post(url, data=data, follow_redirects=False, **kw)

    def api(self, method: str, path: str, role: str, json_body: Any = None) -> Any:
        from fastapi.testclient import TestClient

        client = TestClient(self.app)
        r = client.request(method, path, json=json_body, headers=self.tokens[role])
        assert r.status_code in (200, 201), r.text
        return r.json()


@pytest.fixture
def web(app: Any) -> Iterator[Web]:
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        tokens = {}
        for role in (*ROLES, QP):
            r = client.post("/auth/login", json={"username": role, "password": password_of(role)})
            assert r.status_code == 200, r.text
            tokens[role] = {"Authorization": f"Bearer {r.json()['token']}"}
        yield Web(app, {}, tokens)


@dataclass
class Day:
    pseudonym: str
    prescription_id: int
    batch_id: int | None
    calibrator_id: int
    mrn: str = ""


def seed_day(
    web: Web,
    *,
    released_batch: bool = True,
    prescribed_mbq: float = 7400.0,
    sign: bool = True,
    mrn: str | None = None,
) -> Day:
    """Patient + written directive (physician, signed unless ``sign`` is false), calibrator (physicist),
    optionally a released batch (QC by the pharmacist, release signed by the second pharmacist)."""
    mrn = mrn or uuid.uuid4().hex[:10]
    patient = web.api(
        "POST", "/patients", "physician", {"family_name": "Muster", "mrn": mrn, "birth_date": BIRTH_DATE}
    )
    rx = web.api(
        "POST",
        "/prescriptions",
        "physician",
        {
            "patient": patient["pseudonym"],
            "radiopharmaceutical": "[177Lu]Lu-PSMA-617",
            "prescribed_activity_mbq": prescribed_mbq,
            "plan_id": "PLAN-1",
            "cycle": 1,
            "range_reason": None if 5920 <= prescribed_mbq <= 8140 else "test directive outside the range",
        },
    )
    if sign:
        web.api(
            "POST",
            "/signatures",
            "physician",
            {
                "record_type": "prescription",
                "record_id": rx["id"],
                "meaning": "approved",
                "password": password_of("physician"),
            },
        )
    calibrator = web.api(
        "POST",
        "/calibrators",
        "physicist",
        {"name": "CRC-" + uuid.uuid4().hex[:6], "tolerance_fraction": 0.05},
    )
    batch_id = None
    if released_batch:
        now = datetime.now(UTC)
        batch = web.api(
            "POST",
            "/batches",
            "pharmacist",
            {
                "product": "[177Lu]Lu-PSMA-617",
                "carrier_added": False,
                "lot": "LOT-" + uuid.uuid4().hex[:6],
                "activity_mbq": 30000.0,
                "volume_ml": 30.0,
                "reference_time": (now - timedelta(hours=1)).isoformat(),
                "expiry_time": (now + timedelta(hours=48)).isoformat(),
            },
        )
        for test, value in (("radiochemical_purity", 98.0), ("ph", 5.0)):
            web.api("POST", f"/batches/{batch['id']}/qc", "pharmacist", {"test": test, "value": value})
        web.api("POST", f"/batches/{batch['id']}/release", QP, {"password": password_of(QP)})
        batch_id = batch["id"]
    return Day(patient["pseudonym"], rx["id"], batch_id, calibrator["id"], mrn)


def administer_day(
    web: Web, day: Day, *, syringe_mbq: float = 7450.0, residual_mbq: float = 50.0
) -> dict[str, Any]:
    """Dispense the seeded directive from the seeded batch and administer it half an hour ago, both
    syringe readings taken at the injection (net = syringe − residual exactly); returns the service's
    administration record (``GET /administrations/{id}/record``)."""
    assert day.batch_id is not None, "seed_day(web) with a released batch"
    injected = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    dispensing = web.api(
        "POST",
        f"/batches/{day.batch_id}/dispensings",
        "pharmacist",
        {
            "prescription_id": day.prescription_id,
            "activity_mbq": syringe_mbq - residual_mbq,
            "planned_time": injected.isoformat(),
            "draw_time": (injected - timedelta(minutes=15)).isoformat(),
            "calibrator_id": day.calibrator_id,
        },
    )
    administration = web.api(
        "POST",
        f"/dispensings/{dispensing['id']}/administration",
        "technologist",
        {
            "syringe_activity_mbq": syringe_mbq,
            "syringe_measured_at": injected.isoformat(),
            "residual_activity_mbq": residual_mbq,
            "residual_measured_at": injected.isoformat(),
            "injection_time": injected.isoformat(),
            "calibrator_id": day.calibrator_id,
            "confirm_mrn": day.mrn,
            "confirm_birth_date": BIRTH_DATE,
        },
    )
    return dict(web.api("GET", f"/administrations/{administration['id']}/record", "physicist"))


def write_pipeline_output(
    folder: Path,
    *,
    patient: str,
    cycle: int = 1,
    activity_mbq: float = 7400.0,
    injection_time: datetime | None = None,
    radiopharmaceutical: str = "[177Lu]Lu-PSMA-617",
    record: dict[str, Any] | None = None,
    gy_per_gbq: dict[str, float] | None = None,
) -> Path:
    """A small fabricated pipeline output folder (test fixture, not real dosimetry): ``doses.json``
    written through the dose record (:class:`theradose.dosimetry.results.StudyDoses`: a local-engine dose
    per region, the reference dose, with a DVH) and a one-page ``report.html``. The administration is
    ``activity_mbq`` of ``radiopharmaceutical`` at ``injection_time`` (default: a day ago), or that of the
    service's administration ``record`` (:func:`administer_day`). ``gy_per_gbq`` replaces the dose per GBq
    of the regions it names (kidneys 0.5, salivary_glands 0.6, lesion_1 4.0 Gy/GBq otherwise)."""
    if record is not None:
        cycle = int(record["cycle"])
        activity_mbq = float(record["activity_mbq"])
        radiopharmaceutical = str(record["radiopharmaceutical"])
        injection_time = datetime.fromisoformat(str(record["injection_time"]).replace("Z", "+00:00"))

    from theradose.dosimetry.dvh import Dvh
    from theradose.dosimetry.results import (
        Administration,
        EngineDose,
        Patient,
        RegionKind,
        RegionResult,
        StudyDoses,
    )

    folder.mkdir(parents=True, exist_ok=True)
    gbq = activity_mbq / 1000.0
    regions = []
    for name, kind, per_gbq, half_life in (
        ("kidneys", "organ", 0.5, 40.0),
        ("salivary_glands", "organ", 0.6, 30.0),
        ("lesion_1", "tumour", 4.0, 70.0),
    ):
        dose = (gy_per_gbq or {}).get(name, per_gbq) * gbq
        dvh = Dvh((0.0, 0.5 * dose, dose, 1.5 * dose, 2.0 * dose), (1.0, 0.9, 0.5, 0.1, 0.0))
        regions.append(
            RegionResult(
                name,
                RegionKind(kind),
                (EngineDose("local", dose, 0.1 * dose, "fixture", dvh),),
                effective_half_life_h=half_life,
            )
        )
    record = StudyDoses(
        patient=Patient(patient),
        cycle=cycle,
        administration=Administration(
            "Lu-177",
            radiopharmaceutical,
            activity_mbq,
            injection_time or datetime.now(UTC) - timedelta(days=1),
        ),
        reference_dose="local",
        engines=("local",),
        regions=tuple(regions),
    )
    (folder / "doses.json").write_text(record.to_json(), encoding="utf-8")
    (folder / "report.html").write_text(
        "<!doctype html><html><body><h1>Fixture dosimetry report</h1><script>alert(1)</script></body></html>",
        encoding="utf-8",
    )
    return folder
