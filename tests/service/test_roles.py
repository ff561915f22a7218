"""Every endpoint names a permission; each role is refused what it may not do (table-driven)."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from theradose.service.permissions import PERMISSIONS, ROLES

PUBLIC = {("GET", "/health"), ("POST", "/auth/login")}


def _api_routes(routes):
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # routers included in the app
            yield from _api_routes(route.original_router.routes)


def _routes(app):
    out = []
    for route in _api_routes(app.routes):
        permissions = [getattr(dep.call, "permission", None) for dep in route.dependant.dependencies]
        permissions = [p for p in permissions if p]
        for method in route.methods:
            out.append((method, route.path, permissions))
    return out


def _fill(path: str) -> str:
    path = path.replace("{pseudonym}", "PT-0000000000").replace("{record_type}", "batch")
    path = path.replace("{camera}", "cam1").replace("{username}", "nobody")
    return re.sub(r"\{[a-z_]+\}", "1", path)


def test_every_endpoint_checks_a_role(sqlite_api) -> None:
    routes = _routes(sqlite_api.app)
    assert len(routes) >= 30
    for method, path, permissions in routes:
        if (method, path) in PUBLIC:
            assert permissions == []
            continue
        assert len(permissions) == 1, f"{method} {path} has no permission check"
        assert permissions[0] in PERMISSIONS


def test_no_token_is_401_everywhere(sqlite_api) -> None:
    for method, path, _ in _routes(sqlite_api.app):
        if (method, path) in PUBLIC:
            continue
        r = sqlite_api.client.request(method, _fill(path), json={})
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.json()["error"]["code"] == "unauthorized"
        r = sqlite_api.client.request(
            method, _fill(path), json={}, headers={"Authorization": "Bearer forged"}
        )
        assert r.status_code == 401


REFUSED = {role: sorted(p for p, allowed in PERMISSIONS.items() if role not in allowed) for role in ROLES}


def test_refusal_table_matches_the_roles() -> None:
    """Spot checks of the permission table against the roles' duties."""
    assert "dispense" in REFUSED["technologist"] and "dispense" not in REFUSED["pharmacist"]
    assert "administer" in REFUSED["pharmacist"] and "administer" not in REFUSED["technologist"]
    assert (
        "prescriptions:write" in REFUSED["pharmacist"] and "prescriptions:write" not in REFUSED["physician"]
    )
    assert "cameras:write" in REFUSED["physician"] and "cameras:write" not in REFUSED["physicist"]
    assert "users:manage" in REFUSED["physician"] and "batches:read" in REFUSED["admin"]
    assert "identity:read" in REFUSED["physicist"] and "identity:read" in REFUSED["admin"]


@pytest.mark.parametrize("role", ROLES)
def test_role_refused(sqlite_api, role: str) -> None:
    """Table-driven: every endpoint of every permission the role lacks answers 403."""
    routes = _routes(sqlite_api.app)
    checked = 0
    for permission in REFUSED[role]:
        targets = [(m, p) for m, p, perms in routes if perms == [permission]]
        assert targets, f"no endpoint uses {permission}"
        for method, path in targets:
            r = sqlite_api.client.request(method, _fill(path), json={}, headers=sqlite_api.as_(role))
            assert r.status_code == 403, (role, method, path, r.status_code, r.text)
            body = r.json()
            assert body["error"]["code"] == "forbidden" and permission in body["error"]["message"]
            checked += 1
    assert checked >= 5


def test_allowed_roles_pass_the_role_check(sqlite_api) -> None:
    """The allowed roles get past authorisation (then 2xx, 404 or 422 for the dummy request)."""
    for method, path, perms in _routes(sqlite_api.app):
        if not perms:
            continue
        for role in sorted(PERMISSIONS[perms[0]]):
            r = sqlite_api.client.request(method, _fill(path), json={}, headers=sqlite_api.as_(role))
            assert r.status_code != 403, (role, method, path, r.text)
            assert r.status_code < 500, (role, method, path, r.text)


def test_admin_manages_users_and_deactivation_locks_out(sqlite_api) -> None:
    api = sqlite_api
    r = api.post(
        "/users", "admin", {"username": "newtech", "role": "technologist", "password": "long-password-1"}
    )
    assert r.status_code == 201
    login = api.client.post("/auth/login", json={"username": "newtech", "password": "long-password-1"})
    token = {"Authorization": f"Bearer {login.json()['token']}"}
    assert api.client.get("/auth/me", headers=token).json()["role"] == "technologist"
    r = api.client.patch("/users/newtech", json={"active": False, "reason": "left"}, headers=api.as_("admin"))
    assert r.status_code == 200 and r.json()["active"] is False
    assert api.client.get("/auth/me", headers=token).status_code == 401
    bad = api.client.post("/auth/login", json={"username": "physician", "password": "wrong"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    failed = api.get("/audit", "admin", params={"entity": "user"}).json()[0]
    assert failed["action"] == "login_failed" and failed["actor"] == "physician"


def test_logout_revokes_token(sqlite_api) -> None:
    api = sqlite_api
    assert api.post("/auth/logout", "physicist").status_code == 200
    assert api.get("/auth/me", "physicist").status_code == 401
