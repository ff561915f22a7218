"""Property-based API fuzzing from the OpenAPI spec: no input produces a server error.

Every operation is called with a token of a role allowed to use it, so generated payloads reach
validation and the domain logic. Every 4xx/5xx answer must have the JSON error shape.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from clock import days_from_now, hours_from_now, iso
from theradose.service.permissions import PERMISSIONS

from .conftest import Api, login_all, make_app
from .test_roles import _routes

MAX_EXAMPLES = 6


@pytest.fixture(scope="module", autouse=True)
def _hypothesis_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep Hypothesis' cache files in a temporary directory, not in the working tree."""
    from hypothesis import configuration

    configuration.set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    configuration.set_hypothesis_home_dir(None)


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory, sqlite_template) -> Iterator[Api]:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    shutil.copyfile(sqlite_template, path)
    app = make_app(f"sqlite:///{path}")
    with TestClient(app) as client:
        api = Api(client=client, app=app)
        login_all(client, api.tokens)
        # Some real records so that ids 1 and 2 exist for path parameters.
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
                "password": "secret-pharmacist-pw",
            },
        )
        yield api
    app.state.db.dispose()


@pytest.fixture(scope="module")
def api_schema(fuzz_api: Api):
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_api.app)
    # Logout would revoke the token the other calls use; it is tested in test_roles.
    return schema.exclude(path="/auth/logout")


def _check(case, api: Api, statuses: list[int]) -> None:
    permission = next(
        (
            perms[0]
            for m, p, perms in _routes(api.app)
            if m == case.method.upper() and p == case.path and perms
        ),
        None,
    )
    headers = api.as_(sorted(PERMISSIONS[permission])[0]) if permission is not None else {}
    response = case.call(headers=headers)
    statuses.append(response.status_code)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body


def test_api_never_returns_server_error(api_schema, fuzz_api: Api) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    # User management last: it may change the admin's own role or deactivate it.
    operations.sort(key=lambda op: op.path.startswith("/users"))
    assert len(operations) >= 30
    statuses: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case) -> None:
            _check(case, fuzz_api, statuses)

        fuzz()
    # The run really exercised the API: many calls, and both accepted and refused inputs.
    assert len(statuses) >= 2 * len(operations)
    assert any(200 <= s < 300 for s in statuses) and statuses.count(422) > 0
