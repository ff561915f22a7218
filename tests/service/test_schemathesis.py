"""Property-based API fuzzing from the OpenAPI spec: no input produces a server error.

In the CI suite (the default) every operation is called with a token of one role allowed to use it, a few
examples each, on SQLite, so generated payloads reach validation and the domain logic.

``make fuzz-service`` runs the same test with every role (allowed or not) against every operation on
SQLite and PostgreSQL, ``THERADOSE_FUZZ_EXAMPLES`` examples per operation and role (at least 40,000 cases
in all), and prints the count of calls and answers per database. Every 4xx/5xx answer must have the JSON
error shape; no answer may be 5xx.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from clock import days_from_now, hours_from_now, iso
from theradose.service.permissions import PERMISSIONS

from .conftest import ROLES, Api, login_all, make_app, password_of
from .test_roles import _routes

#: Examples per operation (and role, when fuzzing with every role).
EXAMPLES = int(os.environ.get("THERADOSE_FUZZ_EXAMPLES", "6"))
#: Every role against every operation (``make fuzz-service``), else one allowed role per operation.
EVERY_ROLE = os.environ.get("THERADOSE_FUZZ_EVERY_ROLE", "") == "1"
#: Databases fuzzed: SQLite in CI, both with ``make fuzz-service``.
DATABASES = os.environ.get("THERADOSE_FUZZ_DATABASES", "sqlite").split(",")
#: Operations that change the fuzzing accounts themselves: run last, so that the others keep their tokens.
LAST = ("/users", "/auth/password", "/auth/login")


@pytest.fixture(scope="module", autouse=True)
def _hypothesis_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep Hypothesis' cache files in a temporary directory, not in the working tree."""
    from hypothesis import configuration

    configuration.set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    configuration.set_hypothesis_home_dir(None)


def _seed(api: Api) -> None:
    """Some real records so that ids 1 and 2 exist for path parameters."""
    planned = hours_from_now(-2)
    first = None
    for _ in range(2):
        patient = api.patient()
        first = first or patient
        rx = api.prescription(patient)
        batch = api.released_batch()
        api.post(
            f"/batches/{batch}/dispensings",
            "pharmacist",
            {
                "prescription_id": rx,
                "activity_mbq": 7400,
                "planned_time": iso(planned),
                "draw_time": iso(hours_from_now(-1, now=planned)),
                "calibrator_id": api.calibrator(),
            },
        )
    pseudonym = api.patient()
    api.post(
        "/referrals",
        "physician",
        {
            "patient": pseudonym,
            "referring_physician": "Dr R",
            "indication": "mCRPC",
            "pet_result": "positive",
        },
    )
    api.post(
        "/dispensings/1/administration",
        "technologist",
        {
            "syringe_activity_mbq": 7400,
            "syringe_measured_at": iso(hours_from_now(-5 / 60, now=planned)),
            "residual_activity_mbq": 50,
            "residual_measured_at": iso(hours_from_now(0.5, now=planned)),
            "injection_time": iso(planned),
            "calibrator_id": api.calibrator(),
            **api.confirm(first),
        },
    )
    api.post(
        "/deliveries",
        "pharmacist",
        {
            "nuclide": "Lu-177",
            "supplier": "S",
            "lot": "N1",
            "activity_mbq": 1000,
            "calibration_time": iso(days_from_now(1)),
        },
    )
    api.post(
        "/generators",
        "pharmacist",
        {
            "serial": "G1",
            "parent": "Ge-68",
            "daughter": "Ga-68",
            "parent_activity_mbq": 1850,
            "calibration_time": iso(days_from_now(-30)),
        },
    )
    api.post("/calibrators", "physicist", {"name": "cal-1"})
    api.post(
        "/signatures",
        "pharmacist",
        {
            "record_type": "batch",
            "record_id": 1,
            "meaning": "approved",
            "password": password_of("pharmacist"),
        },
    )


@pytest.fixture(scope="module", params=DATABASES)
def fuzz_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
        shutil.copyfile(template, path)
        url = f"sqlite:///{path}"
        drop = None
    else:
        cluster = request.getfixturevalue("pg_cluster")
        name = "fuzz_" + uuid.uuid4().hex[:10]
        url = cluster.create_database(name, template=request.getfixturevalue("pg_template"))
        drop = (cluster, name)
    app = make_app(url)
    with TestClient(app) as client:
        api = Api(client=client, app=app)
        login_all(client, api.tokens)
        _seed(api)
        api.database = request.param  # type: ignore[attr-defined]
        yield api
    app.state.db.dispose()
    if drop is not None:
        drop[0].drop_database(drop[1])


@pytest.fixture(scope="module")
def api_schema(fuzz_api: Api) -> Any:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_api.app)
    # Logout would revoke the token the other calls use; it is tested in test_roles.
    return schema.exclude(path="/auth/logout")


def _permission(api: Api, method: str, path: str) -> str | None:
    return next(
        (perms[0] for m, p, perms in _routes(api.app) if m == method.upper() and p == path and perms), None
    )


def _check(case: Any, headers: dict[str, str], statuses: Counter[int]) -> None:
    response = case.call(headers=headers)
    statuses[response.status_code] += 1
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body


def _fresh_tokens(api: Api) -> None:
    """Clear throttling left by earlier fuzzing (wrong passwords at signing lock an account and end its
    session) and log in again the roles whose token no longer works."""
    from sqlalchemy import text

    with api.app.state.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM auth_failures"))
    for role in ROLES:
        if api.client.get("/auth/me", headers=api.as_(role)).status_code != 200:
            r = api.client.post("/auth/login", json={"username": role, "password": password_of(role)})
            assert r.status_code == 200, r.text
            api.tokens[role] = {"Authorization": f"Bearer {r.json()['token']}"}


def test_api_never_returns_server_error(api_schema: Any, fuzz_api: Api) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    operations.sort(key=lambda op: op.path.startswith(LAST))
    assert len(operations) >= 30
    statuses: Counter[int] = Counter()
    current: dict[str, dict[str, str]] = {}
    runs = 0
    for operation in operations:
        permission = _permission(fuzz_api, operation.method, operation.path)
        if EVERY_ROLE:
            roles: list[str | None] = [*ROLES]
        else:
            roles = [sorted(PERMISSIONS[permission])[0] if permission is not None else None]
        for role in roles:
            if not operation.path.startswith(LAST):
                _fresh_tokens(fuzz_api)
            current["headers"] = fuzz_api.as_(role) if role is not None else {}

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case: Any) -> None:
                _check(case, current["headers"], statuses)

            fuzz()
            runs += 1
    total = sum(statuses.values())
    database = getattr(fuzz_api, "database", "?")
    print(
        f"\nschemathesis on {database}: {total} cases, {len(operations)} operations, "
        f"{runs} operation-role runs, answers {dict(sorted(statuses.items()))}"
    )
    # The run really exercised the API: many calls, and both accepted and refused inputs.
    assert total >= 2 * len(operations)
    assert any(200 <= s < 300 for s in statuses) and statuses[422] > 0
    assert not any(s >= 500 for s in statuses)
