"""Authentication under attack: equal work for unknown, known and deactivated accounts, throttling with
lockout, hashing outside the writers' lock, forced password change after an administrator set one,
revoked tokens, the last administrator, and audited, limited signature re-authentication."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from theradose.service.models import AuditEntryRow, AuthFailure

from .conftest import Api, login_all, make_app, password_of


class CountingHasher(PasswordHasher):
    """The real Argon2id hasher, counting verifications and noting whether the writers' lock was held."""

    def __init__(self, db: Any) -> None:
        super().__init__(time_cost=1, memory_cost=8192, parallelism=1)
        self.db = db
        self.verifications = 0
        self.hashes = 0
        self.under_lock = 0

    def _note(self) -> None:
        lock = getattr(self.db, "_writer_lock", None)
        if hasattr(lock, "locked") and lock.locked():
            self.under_lock += 1

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verifications += 1
        self._note()
        return super().verify(hash, password)

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.hashes += 1
        self._note()
        return super().hash(password, salt=salt)


@pytest.fixture
def guarded(db_url: str) -> Iterator[tuple[Api, CountingHasher]]:
    """The app with small limits (3 per account, 6 per client) and a counting hasher."""
    app = make_app(db_url, account_failure_limit=3, client_failure_limit=6)
    counting = CountingHasher(app.state.db)
    app.state.auth.ph = counting
    with TestClient(app) as client:
        api = Api(client=client, app=app)
        login_all(client, api.tokens)
        yield api, counting
    app.state.db.dispose()


def _count(api: Api, model: Any) -> int:
    with api.app.state.db.read() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def _login(api: Api, username: str, password: str) -> Any:
    return api.client.post("/auth/login", json={"username": username, "password": password})


def _actions(api: Api) -> list[str]:
    with api.app.state.db.read() as session:
        return list(session.execute(select(AuditEntryRow.action).order_by(AuditEntryRow.seq)).scalars())


def test_unknown_known_and_deactivated_accounts_cost_the_same_and_answer_the_same(guarded) -> None:
    api, counting = guarded
    api.client.patch(
        "/users/technologist", json={"active": False, "reason": "left"}, headers=api.as_("admin")
    ).raise_for_status()
    answers = []
    for username, password in (
        ("nobody", "whatever-pw"),  # unknown name
        ("physician", "wrong-password"),  # known name, wrong password
        ("technologist", password_of("technologist")),  # deactivated, right password
    ):
        before = (counting.verifications, _count(api, AuthFailure), _count(api, AuditEntryRow))
        r = _login(api, username, password)
        after = (counting.verifications, _count(api, AuthFailure), _count(api, AuditEntryRow))
        answers.append((r.status_code, r.json()))
        # one Argon2id verification, one failure row, one audit entry: the same work in all three cases
        assert tuple(a - b for a, b in zip(after, before, strict=True)) == (1, 1, 1), username
    assert answers == [answers[0]] * 3
    assert answers[0] == (
        401,
        {"error": {"code": "unauthorized", "message": "wrong user name or password", "field": None}},
    )
    assert counting.under_lock == 0  # never hashed while holding the writers' lock


def test_account_lockout_holds_for_unknown_names_too_and_is_audited(guarded) -> None:
    api, counting = guarded
    for username in ("physician", "ghost"):
        for _ in range(3):
            assert _login(api, username, "wrong-password").status_code == 401
        before = counting.verifications
        r = _login(api, username, password_of(username) if username == "physician" else "x-password")
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"
        assert int(r.headers["Retry-After"]) > 0
        assert "account" in r.json()["error"]["message"]
        assert counting.verifications == before  # a locked attempt is refused without hashing
    actions = _actions(api)
    assert actions.count("account_locked") == 2 and actions.count("login_throttled") == 2
    assert actions.count("login_failed") == 6


def test_client_throttle_stops_password_spraying(guarded) -> None:
    api, counting = guarded
    names = ["a1", "a2", "a3", "a4", "a5", "a6"]
    for name in names:  # one try per name: no account lock, but the client reaches its limit
        assert _login(api, name, "wrong-password").status_code == 401
    before = counting.verifications
    r = _login(api, "pharmacist", password_of("pharmacist"))
    assert r.status_code == 429 and "client" in r.json()["error"]["message"]
    assert counting.verifications == before


def test_success_clears_the_account_failures(guarded) -> None:
    api, _ = guarded
    for _ in range(2):
        assert _login(api, "physicist", "wrong-password").status_code == 401
    assert _login(api, "physicist", password_of("physicist")).status_code == 200
    for _ in range(2):
        assert _login(api, "physicist", "wrong-password").status_code == 401
    assert _login(api, "physicist", password_of("physicist")).status_code == 200


def test_names_differing_only_in_case_are_one_account(guarded) -> None:
    api, _ = guarded
    r = _login(api, "PHYSICIAN", password_of("physician"))
    assert r.status_code == 200 and r.json()["user"]["username"] == "physician"
    r = api.post(
        "/users", "admin", {"username": "Physician", "role": "physician", "password": "another-pw-1"}
    )
    assert r.status_code == 409 and r.json()["error"]["field"] == "username"


def test_admin_reset_forces_a_change_revokes_tokens_and_cannot_be_used_to_sign(guarded) -> None:
    api, counting = guarded
    batch = api.released_batch()
    old_token = api.as_("physician")
    r = api.client.patch(
        "/users/physician",
        json={"password": "temporary-pw-1", "reason": "forgotten password"},
        headers=api.as_("admin"),
    )
    assert r.status_code == 200 and r.json()["must_change_password"] is True
    assert counting.under_lock == 0  # the new hash was computed before the write transaction
    assert api.client.get("/auth/me", headers=old_token).status_code == 401  # old tokens revoked

    # whoever knows the temporary password (the administrator too) can log in, but can do nothing else
    r = _login(api, "physician", "temporary-pw-1")
    assert r.status_code == 200 and r.json()["user"]["must_change_password"] is True
    temp = {"Authorization": f"Bearer {r.json()['token']}"}
    assert api.client.get("/auth/me", headers=temp).status_code == 200
    r = api.client.get("/prescriptions/1", headers=temp)
    assert r.status_code == 403 and r.json()["error"]["code"] == "password_change_required"
    sign = {"record_type": "batch", "record_id": batch, "meaning": "approved", "password": "temporary-pw-1"}
    r = api.client.post("/signatures", json=sign, headers=temp)
    assert r.status_code == 403 and r.json()["error"]["code"] == "password_change_required"

    # the owner sets a password of their own; then signing works
    bad = {"current_password": "wrong-pw-000", "new_password": "owners-own-pw-1"}
    assert api.client.post("/auth/password", json=bad, headers=temp).status_code == 401
    same = {"current_password": "temporary-pw-1", "new_password": "temporary-pw-1"}
    assert api.client.post("/auth/password", json=same, headers=temp).status_code == 422
    good = {"current_password": "temporary-pw-1", "new_password": "owners-own-pw-1"}
    r = api.client.post("/auth/password", json=good, headers=temp)
    assert r.status_code == 200 and r.json()["must_change_password"] is False
    r = api.client.post("/signatures", json={**sign, "password": "owners-own-pw-1"}, headers=temp)
    assert r.status_code == 201, r.text
    assert _login(api, "physician", "temporary-pw-1").status_code == 401
    actions = _actions(api)
    assert "password_failed" in actions


def test_accounts_created_by_an_admin_must_change_the_password(guarded) -> None:
    api, _ = guarded
    r = api.post("/users", "admin", {"username": "newtech", "role": "technologist", "password": "first-pw-1"})
    assert r.status_code == 201 and r.json()["must_change_password"] is True
    token = _login(api, "newtech", "first-pw-1").json()["token"]
    r = api.client.get("/batches", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "password_change_required"


def test_deactivation_revokes_tokens(guarded) -> None:
    api, _ = guarded
    token = api.as_("physicist")
    r = api.client.patch(
        "/users/physicist", json={"active": False, "reason": "left"}, headers=api.as_("admin")
    )
    assert r.status_code == 200
    assert api.client.get("/auth/me", headers=token).status_code == 401


def test_last_active_admin_cannot_be_demoted_or_deactivated(guarded) -> None:
    api, _ = guarded
    admin = api.as_("admin")
    for change, field in (({"role": "physicist"}, "role"), ({"active": False}, "active")):
        r = api.client.patch("/users/admin", json={**change, "reason": "test"}, headers=admin)
        assert r.status_code == 409 and r.json()["error"]["code"] == "last_admin"
        assert r.json()["error"]["field"] == field
    # with a second active administrator, the first may step down
    r = api.post("/users", "admin", {"username": "admin2", "role": "admin", "password": "second-admin-pw"})
    assert r.status_code == 201
    r = api.client.patch("/users/admin", json={"role": "physicist", "reason": "handover"}, headers=admin)
    assert r.status_code == 200 and r.json()["role"] == "physicist"


def test_failed_signature_reauthentication_is_audited_limited_and_revokes_the_session(guarded) -> None:
    api, counting = guarded
    batch = api.released_batch()
    token = api.as_("pharmacist")
    sign = {"record_type": "batch", "record_id": batch, "meaning": "approved", "password": "guess-guess"}
    for _ in range(3):
        r = api.client.post("/signatures", json=sign, headers=token)
        assert r.status_code == 401 and r.json()["error"]["code"] == "reauthentication_failed"
    actions = _actions(api)
    assert actions.count("signature_failed") == 3 and actions.count("account_locked") == 1
    assert api.client.get("/auth/me", headers=token).status_code == 401  # the session was ended
    before = counting.verifications
    r = _login(api, "pharmacist", password_of("pharmacist"))
    assert r.status_code == 429  # and the account is locked for a while
    assert counting.verifications == before
    assert counting.under_lock == 0


@pytest.mark.parametrize(
    "header",
    [b"Bearer \xe9t\xe9", b"Bearer " + b"a" * 300, b"Bearer abc def", b"Basic Zm9vOmJhcg=="],
    ids=["latin1-byte", "too-long", "space", "basic"],
)
def test_malformed_bearer_tokens_are_401(api: Api, header: bytes) -> None:
    r = api.client.get("/batches", headers={"Authorization": header})
    assert r.status_code == 401
    assert set(r.json()["error"]) == {"code", "message", "field"}


def test_logins_keep_working_for_others_while_one_client_is_locked(guarded) -> None:
    api, _ = guarded
    for _ in range(3):
        assert _login(api, "physician", "wrong-password").status_code == 401
    assert _login(api, "physician", password_of("physician")).status_code == 429
    assert _login(api, "physicist", password_of("physicist")).status_code == 200


def test_signature_by_a_second_session_needs_the_own_password(sqlite_api: Api) -> None:
    """An administrator's password never signs as another user (roles and re-authentication)."""
    api = sqlite_api
    batch = api.released_batch()
    r = api.post(
        "/signatures",
        "admin",
        {"record_type": "batch", "record_id": batch, "meaning": "approved", "password": password_of("admin")},
    )
    assert r.status_code == 403
    r = api.post(
        "/signatures",
        "pharmacist",
        {"record_type": "batch", "record_id": batch, "meaning": "approved", "password": password_of("admin")},
    )
    assert r.status_code == 401


def test_hashing_runs_at_the_lowest_priority_and_a_full_queue_is_503(sqlite_url: str) -> None:
    import os
    import threading

    from theradose.service.auth import HASH_QUEUE_PER_SLOT, HASH_THREAD_NICE
    from theradose.service.errors import ApiError

    app = make_app(sqlite_url, with_users=False, password_hash_slots=1)
    auth = app.state.auth
    assert auth._hash_work(lambda: os.getpriority(os.PRIO_PROCESS, 0)) == HASH_THREAD_NICE
    release = threading.Event()
    waiting = [
        threading.Thread(target=auth._hash_work, args=(release.wait,)) for _ in range(1 + HASH_QUEUE_PER_SLOT)
    ]
    for t in waiting:
        t.start()
    try:
        while auth._queue._value:  # every place in the queue taken
            threading.Event().wait(0.01)
        try:
            auth._hash_work(lambda: None)
            raise AssertionError("a full queue must refuse")
        except ApiError as exc:
            assert exc.status == 503 and exc.code == "busy"
    finally:
        release.set()
        for t in waiting:
            t.join()
    app.state.db.dispose()


def test_refused_logins_are_answered_late(sqlite_url: str) -> None:
    import time

    app = make_app(sqlite_url, failed_login_delay_s=0.3)
    with TestClient(app) as client:
        t0 = time.monotonic()
        r = client.post("/auth/login", json={"username": "physician", "password": "wrong-password"})
        assert r.status_code == 401 and time.monotonic() - t0 >= 0.3
        r = client.post("/auth/login", json={"username": "physician", "password": password_of("physician")})
        assert r.status_code == 200
    app.state.db.dispose()
