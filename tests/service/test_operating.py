"""Operating the service: user commands (list, deactivate, reset-password forcing a change), the site's
zone and name from the environment, the idle session timeout, and /docs from local files."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from clock import now_utc

from .conftest import password_of
from .test_cli import _cli


def test_users_list_deactivate_and_reset_password(tmp_path: Path, capsys, monkeypatch) -> None:
    db = str(tmp_path / "site.db")
    assert _cli(capsys, monkeypatch, "db", "upgrade", "--db", db)[0] == 0
    pw = {"THERADOSE_PASSWORD": "correct horse battery"}
    for name in ("alice", "bob"):
        assert (
            _cli(capsys, monkeypatch, "users", "add", name, "--role", "physician", "--db", db, env=pw)[0] == 0
        )
    code, out, _ = _cli(capsys, monkeypatch, "users", "list", "--db", db, "--json")
    assert code == 0 and [u["username"] for u in json.loads(out)] == ["alice", "bob"]
    code, out, err = _cli(
        capsys,
        monkeypatch,
        "users",
        "reset-password",
        "alice",
        "--db",
        db,
        "--json",
        env={"THERADOSE_PASSWORD": "temporary-1"},
    )
    assert code == 0, err and json.loads(out)["must_change_password"] is True
    code, _, err = _cli(capsys, monkeypatch, "users", "deactivate", "nobody", "--db", db)
    assert code == 2 and "nobody not found" in err and "Traceback" not in err
    assert _cli(capsys, monkeypatch, "users", "deactivate", "bob", "--db", db)[0] == 0
    code, out, _ = _cli(capsys, monkeypatch, "users", "list", "--db", db, "--json")
    users = {u["username"]: u for u in json.loads(out)}
    assert users["alice"]["must_change_password"] is True and users["bob"]["active"] is False

    from fastapi.testclient import TestClient

    from theradose.service.app import create_app
    from theradose.service.settings import Settings

    monkeypatch.setenv("THERADOSE_TIMEZONE", "Europe/Vienna")
    monkeypatch.setenv("THERADOSE_SITE_NAME", "Klinikum Test")
    app = create_app(Settings(db_url=db))
    with TestClient(app) as client:
        r = client.post("/auth/login", json={"username": "alice", "password": "temporary-1"})
        assert r.status_code == 200 and r.json()["user"]["must_change_password"] is True
        temp = {"Authorization": f"Bearer {r.json()['token']}"}
        r = client.get("/patients", headers=temp)  # nothing but the password change until then
        assert r.status_code == 403 and r.json()["error"]["code"] == "password_change_required"
        same = {"current_password": "temporary-1", "new_password": "temporary-1"}
        assert client.post("/auth/password", json=same, headers=temp).status_code == 422
        new = {**same, "new_password": "a new long password"}
        assert client.post("/auth/password", json=new, headers=temp).status_code == 200
        r = client.post("/auth/login", json={"username": "alice", "password": "a new long password"})
        assert r.status_code == 200 and r.json()["user"]["must_change_password"] is False
        token = {"Authorization": f"Bearer {r.json()['token']}"}
        assert client.get("/site", headers=token).json() == {
            "site_name": "Klinikum Test",
            "site_timezone": "Europe/Vienna",
        }
        assert (
            client.post(
                "/auth/login", json={"username": "bob", "password": pw["THERADOSE_PASSWORD"]}
            ).status_code
            == 401
        )
        docs = client.get("/docs")
        assert (
            docs.status_code == 200
            and "/docs/assets/swagger-ui-bundle.js" in docs.text
            and "cdn" not in docs.text
        )
        js = client.get("/docs/assets/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        assert client.get("/docs/assets/../../etc/passwd").status_code == 404
    app.state.db.dispose()


def test_serve_refuses_an_unknown_time_zone(tmp_path: Path, capsys, monkeypatch) -> None:
    code, _, err = _cli(
        capsys, monkeypatch, "serve", "--db", str(tmp_path / "x.db"), "--timezone", "Mars/Olympus"
    )
    assert code == 2 and "Mars/Olympus" in err and "Traceback" not in err


def test_idle_session_ends_with_a_clear_message(sqlite_api) -> None:
    from theradose.service.models import SessionToken

    api = sqlite_api
    assert api.get("/auth/me", "physicist").status_code == 200
    with api.app.state.db.engine.begin() as conn:  # the last use was 31 minutes ago
        conn.execute(update(SessionToken).values(last_used_at=now_utc() - timedelta(minutes=31)))
    r = api.get("/auth/me", "physicist")
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired"
    assert "30 minutes without activity" in r.json()["error"]["message"]
    fresh = api.client.post(
        "/auth/login", json={"username": "physicist", "password": password_of("physicist")}
    )
    assert fresh.status_code == 200
