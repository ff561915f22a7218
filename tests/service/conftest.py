"""Fixtures: a real PostgreSQL cluster (session), per-test databases on SQLite and PostgreSQL, the app with
one user per role, and a live uvicorn server on 127.0.0.1."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from clock import days_from_now, iso

from ._pg import PgCluster, free_port, start_cluster

ROLES = ("admin", "physicist", "physician", "pharmacist", "technologist")
#: A second pharmacist, the qualified person who releases batches (four-eyes with the QC recorder).
QP = "qp"
#: Birth date of the test patients (data only: the clock never compares it).
BIRTH_DATE = "1950-03-14"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL server for the whole test session (fails, never skips, when absent)."""
    try:
        cluster, root = start_cluster()
    except (FileNotFoundError, RuntimeError) as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; tests copy it."""
    from theradose.service.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgCluster) -> str:
    """A PostgreSQL database migrated once, used as CREATE DATABASE ... TEMPLATE."""
    from theradose.service.migrate import upgrade

    name = "theradose_template"
    upgrade(pg_cluster.create_database(name))
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database URL on each backend."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    template = request.getfixturevalue("pg_template")
    name = "t_" + uuid.uuid4().hex[:12]
    url = cluster.create_database(name, template=template)
    yield url
    cluster.drop_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh, migrated SQLite database URL."""
    path = tmp_path / "theradose.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def password_of(role: str) -> str:
    return f"secret-{role}-pw"


#: The master key of the test apps (given as text, as $THERADOSE_SECRET_KEY would give it).
TEST_KEY = "test-master-key-kept-outside-the-db"


def service_settings(url: str, **overrides: Any) -> Any:
    """Settings of a test app: a cheap Argon2id cost, a key given as text, no key file from the env."""
    from theradose.service.settings import Settings

    values: dict[str, Any] = {
        "db_url": url,
        "argon2_time_cost": 1,
        "argon2_memory_cost_kib": 8192,
        "site_name": "Test Site",
        "secret_key": TEST_KEY,
        "key_file": None,
        "checkpoint_path": None,
        "failed_login_delay_s": 0.0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Api:
    """A test client with a logged-in token per role and helpers building a typical workflow."""

    client: Any
    app: Any
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    identities: dict[str, dict[str, str]] = field(default_factory=dict)
    calibrator_id: int | None = None

    def as_(self, role: str) -> dict[str, str]:
        return self.tokens[role]

    def post(self, path: str, role: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=json, headers=self.tokens[role], **kw)

    def get(self, path: str, role: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.tokens[role], **kw)

    def patient(self) -> str:
        mrn = uuid.uuid4().hex[:10]
        r = self.post("/patients", "physician", {"family_name": "Test", "mrn": mrn, "birth_date": BIRTH_DATE})
        assert r.status_code == 201, r.text
        pseudonym = str(r.json()["pseudonym"])
        self.identities[pseudonym] = {"confirm_mrn": mrn, "confirm_birth_date": BIRTH_DATE}
        return pseudonym

    def confirm(self, pseudonym: str) -> dict[str, str]:
        """The two identifiers a technologist confirms at the bedside."""
        return self.identities[pseudonym]

    def prescription(
        self,
        pseudonym: str,
        activity_mbq: float = 7400.0,
        *,
        cycle: int = 1,
        product: str = "[177Lu]Lu-PSMA-617",
        sign: bool = True,
    ) -> int:
        """A written directive, signed by the physician unless ``sign`` is false."""
        r = self.post(
            "/prescriptions",
            "physician",
            {
                "patient": pseudonym,
                "radiopharmaceutical": product,
                "prescribed_activity_mbq": activity_mbq,
                "plan_id": "PLAN-1",
                "cycle": cycle,
            },
        )
        assert r.status_code == 201, r.text
        rx = int(r.json()["id"])
        if sign:
            self.sign_prescription(rx)
        return rx

    def sign_prescription(self, rx: int) -> None:
        r = self.post(
            "/signatures",
            "physician",
            {
                "record_type": "prescription",
                "record_id": rx,
                "meaning": "approved",
                "password": password_of("physician"),
            },
        )
        assert r.status_code == 201, r.text

    def calibrator(self) -> int:
        """A dose calibrator (registered once per test)."""
        if self.calibrator_id is None:
            r = self.post("/calibrators", "physicist", {"name": "CRC-" + uuid.uuid4().hex[:6]})
            assert r.status_code == 201, r.text
            self.calibrator_id = int(r.json()["id"])
        return self.calibrator_id

    def released_batch(
        self,
        activity_mbq: float = 30000.0,
        volume_ml: float = 30.0,
        lot: str | None = None,
        *,
        reference_time: datetime | None = None,
        expiry_time: datetime | None = None,
        product: str = "[177Lu]Lu-PSMA-617",
    ) -> int:
        """A released batch; by default referenced one day ago and expiring in two days (relative to the
        real clock, which the release and dispensing checks read)."""
        reference_time = reference_time or days_from_now(-1)
        expiry_time = expiry_time or days_from_now(2)
        r = self.post(
            "/batches",
            "pharmacist",
            {
                "product": product,
                "carrier_added": False,
                "lot": lot or uuid.uuid4().hex[:8],
                "activity_mbq": activity_mbq,
                "volume_ml": volume_ml,
                "reference_time": iso(reference_time),
                "expiry_time": iso(expiry_time),
            },
        )
        assert r.status_code == 201, r.text
        batch_id = int(r.json()["id"])
        for qc in ({"test": "radiochemical_purity", "value": 98.7}, {"test": "ph", "value": 5.5}):
            assert self.post(f"/batches/{batch_id}/qc", "pharmacist", qc).status_code == 201
        r = self.post(f"/batches/{batch_id}/release", QP, {"password": password_of(QP)})
        assert r.status_code == 200, r.text
        return batch_id


def make_app(url: str, *, with_users: bool = True, **overrides: Any) -> Any:
    """The app on ``url``; ``with_users`` adds one user per role (once per database)."""
    from theradose.service.app import create_app
    from theradose.service.auth import create_user

    app = create_app(service_settings(url, **overrides))
    if not with_users:
        return app
    with app.state.db.write() as session:
        for username, role in [*((r, r) for r in ROLES), (QP, "pharmacist")]:
            create_user(
                session,
                app.state.hasher,
                username=username,
                role=role,
                password=password_of(username),
                full_name=username.title(),
            )
    return app


def login_all(client: Any, tokens: dict[str, dict[str, str]]) -> None:
    for role in (*ROLES, QP):
        r = client.post("/auth/login", json={"username": role, "password": password_of(role)})
        assert r.status_code == 200, r.text
        tokens[role] = {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    """The app on SQLite and on PostgreSQL, with one logged-in user per role."""
    from fastapi.testclient import TestClient

    app = make_app(db_url)
    with TestClient(app) as client:
        result = Api(client=client, app=app)
        login_all(client, result.tokens)
        yield result
    app.state.db.dispose()


@pytest.fixture
def sqlite_api(sqlite_url: str) -> Iterator[Api]:
    """The app on SQLite only (for the large table-driven tests)."""
    from fastapi.testclient import TestClient

    app = make_app(sqlite_url)
    with TestClient(app) as client:
        result = Api(client=client, app=app)
        login_all(client, result.tokens)
        yield result
    app.state.db.dispose()


@dataclass
class LiveServer:
    base_url: str
    app: Any


def run_live_server(app: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def live_server(db_url: str) -> Iterator[LiveServer]:
    """A uvicorn server on 127.0.0.1 serving the app (SQLite and PostgreSQL)."""
    app = make_app(db_url)
    server, thread, base_url = run_live_server(app)
    try:
        yield LiveServer(base_url=base_url, app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        app.state.db.dispose()
