"""Passwords, logins, tokens and the role check used by every endpoint.

Password checks (logins, signature re-authentication, password changes) follow these rules:

* **Hashing outside any database lock, at low CPU priority.** Argon2id runs before the write
  transaction is opened, on one of ``Settings.password_hash_slots`` threads of its own (half the CPUs)
  that run at the lowest scheduling priority (nice 19, Linux), so hashing never holds the writers' lock
  and yields the CPU to request handling and the database: writes keep their latency while clients
  send wrong passwords. At most :data:`HASH_QUEUE_PER_SLOT` checks per thread wait; more are answered
  ``503 busy`` at once, so waiting checks cannot take all of the server's request threads.
* **Equal work for unknown, known and deactivated accounts.** Each check costs one user lookup, one
  Argon2id verification (against a dummy hash with the same parameters when the name is unknown) and,
  when it fails, one short write (the failure row and its audit entry); the answer is the same
  ``401 wrong user name or password`` in all three cases.
* **Refusals answered late.** A refused login is answered after ``Settings.failed_login_delay_s``
  (an ``await``, holding no thread), so each connection of an attacker makes about one attempt per
  delay instead of spinning on cheap refusals (:func:`answer_refusal_late`).
* **Throttling with lockout**, by account name (known or not, compared by its Unicode comparison key)
  and by client address: ``account_failure_limit`` (``client_failure_limit``) failures within
  ``failure_window_s`` lock the name (address) for ``lockout_s`` after the last failure; a locked attempt
  is answered ``429`` with ``Retry-After`` without hashing (NIST SP 800-63B §5.2.2 [1]_). Every failure
  is an audit entry; attempts refused while locked are counted into one ``login_throttled`` entry per
  minute and key, so a flood cannot flood the trail.
* **Nobody signs as another user.** A password set by an administrator (new account or reset) must be
  changed by its owner at the next login: until then the token allows only ``/auth/password``,
  ``/auth/me`` and ``/auth/logout`` and cannot sign. A reset or deactivation revokes the account's
  tokens. Failed signature re-authentications are audited and count towards the account's lockout;
  the lockout they trigger also revokes the account's tokens (someone at an open session is guessing).
  The last active administrator cannot be demoted or deactivated.
* **Tokens** are 256-bit random values; only their keyed hash (session-token sub-key) is stored, so a
  token row written into the database by anyone without the key opens nothing.

References
----------
.. [1] NIST Special Publication 800-63B, *Digital Identity Guidelines: Authentication and Lifecycle
   Management*, 2017 (updated 2020), §5.1.1.2 and §5.2.2.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from theradose.pharmacy.identifiers import identifier_key
from theradose.service.errors import ApiError
from theradose.service.keys import KeyRing, mac_hex
from theradose.service.models import AuthFailure, SessionToken, User
from theradose.service.permissions import PERMISSIONS, ROLES

if TYPE_CHECKING:
    from theradose.service.db import Database
    from theradose.service.settings import Settings

_T = TypeVar("_T")

_bearer = HTTPBearer(auto_error=False, description="token from POST /auth/login")

#: What a token issued by :func:`issue_token` looks like (URL-safe base64 of 32 random bytes).
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
#: Smallest password length accepted when a password is set (NIST SP 800-63B §5.1.1.2: at least 8).
MIN_PASSWORD_LENGTH = 8
#: Seconds a password check waits for its hash before the request is answered 503.
HASH_SLOT_TIMEOUT_S = 30.0
#: Password checks allowed to wait per hashing thread before further ones are answered 503 at once.
HASH_QUEUE_PER_SLOT = 4
#: Scheduling priority of the hashing threads (nice value; 19 is the lowest priority).
HASH_THREAD_NICE = 19
#: Seconds between two audit entries summing up attempts refused while locked (per key).
THROTTLED_AUDIT_INTERVAL_S = 60.0
#: Permissions a token may use while its account must change its password.
PASSWORD_CHANGE_PERMISSIONS = frozenset({"self"})


def hasher(time_cost: int = 3, memory_cost_kib: int = 65536) -> PasswordHasher:
    """An Argon2id hasher with the given cost."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=1)


def hash_token(token: str, ring: KeyRing) -> str:
    """The stored form of a login token: its HMAC under the session-token sub-key of the active key."""
    return mac_hex(ring.sub_key("session-token"), token)


def check_password(ph: PasswordHasher, password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``."""
    try:
        return bool(ph.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def check_new_password(password: str, *, field: str = "password") -> None:
    """Refuse a password that is too short (422 naming the field)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ApiError(
            422, "validation_error", f"{field} must have at least {MIN_PASSWORD_LENGTH} characters", field
        )


def create_user(
    session: Session,
    ph: PasswordHasher | None,
    *,
    username: str,
    role: str,
    password: str | None = None,
    full_name: str = "",
    password_hash: str | None = None,
    must_change_password: bool = False,
    actor: str = "system",
    reason: str | None = None,
) -> User:
    """Add a user and its audit entry (the caller commits).

    Give ``password_hash`` (computed with :meth:`Authenticator.hash_new_password` before the write
    transaction) or ``password`` and ``ph`` (hashed here, inside the caller's transaction: for tools).
    ``actor`` is who creates the account (an administrator's name, ``cli``...).
    """
    from theradose.service import audit_store
    from theradose.service.models import row_to_dict

    if role not in ROLES:
        raise ApiError(
            422, "validation_error", f"role must be one of {', '.join(ROLES)}; got {role!r}", "role"
        )
    if password_hash is None:
        if password is None or ph is None:
            raise ApiError(422, "validation_error", "password is required", "password")
        check_new_password(password)
    key = identifier_key(username)
    existing = session.execute(select(User.username).where(User.username_key == key)).scalar_one_or_none()
    if existing is not None:
        raise ApiError(409, "conflict", f"user {username!r} exists (as {existing!r})", "username")
    if password_hash is None:
        assert ph is not None and password is not None
        password_hash = ph.hash(password)
    user = User(
        username=username,
        username_key=key,
        full_name=full_name,
        role=role,
        password_hash=password_hash,
        active=True,
        created_at=datetime.now(UTC),
        must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    after = row_to_dict(user)
    after.pop("password_hash")  # the trail keeps a keyed digest of it (audit_store.row_state)
    audit_store.append(
        session,
        actor=actor,
        at=user.created_at,
        action="create",
        entity="user",
        entity_id=user.id,
        after=after,
        reason=reason,
    )
    return user


def issue_token(session: Session, user: User, ttl_h: float) -> tuple[str, datetime]:
    """Create a login token for ``user``; returns the token (shown once) and its expiry."""
    from theradose.service.audit_store import keyring_of

    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires = now + timedelta(hours=ttl_h)
    session.add(
        SessionToken(
            token_hash=hash_token(token, keyring_of(session)),
            user_id=user.id,
            created_at=now,
            expires_at=expires,
        )
    )
    return token, expires


def revoke_tokens(session: Session, user_id: int, *, keep_token_hash: str | None = None) -> int:
    """Revoke every live token of ``user_id`` (except ``keep_token_hash``); returns how many."""
    stmt = update(SessionToken).where(SessionToken.user_id == user_id, SessionToken.revoked.is_(False))
    if keep_token_hash is not None:
        stmt = stmt.where(SessionToken.token_hash != keep_token_hash)
    result = session.execute(stmt.values(revoked=True))
    return int(getattr(result, "rowcount", 0) or 0)


def revoke_token(session: Session, token: str) -> bool:
    """Revoke one token (logout); False when it is unknown."""
    from theradose.service.audit_store import keyring_of

    result = session.execute(
        update(SessionToken)
        .where(SessionToken.token_hash == hash_token(token, keyring_of(session)))
        .values(revoked=True)
    )
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class Principal:
    """The authenticated user of a request."""

    user_id: int
    username: str
    full_name: str
    role: str
    password_hash: str
    must_change_password: bool = False
    token_hash: str | None = None


# --- throttled password checks ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lock:
    """A lockout in force: which key and for how many more seconds."""

    scope: str
    retry_after_s: float


class Authenticator:
    """Password checks with hashing slots, equal work per attempt, throttling and audited failures.

    One instance per app (``app.state.auth``); it holds the hashing slots, the dummy hash and the
    in-memory bookkeeping of checks in flight and of refused attempts not yet audited. The failures
    themselves are rows of ``auth_failures``, so a lockout holds across restarts and processes.
    """

    def __init__(self, settings: Settings, ph: PasswordHasher, db: Database) -> None:
        self.settings = settings
        self.ph = ph
        self.db = db
        slots = settings.password_hash_slots
        self._hashing = ThreadPoolExecutor(
            max_workers=slots, thread_name_prefix="theradose-hash", initializer=_lower_priority
        )
        self._queue = threading.BoundedSemaphore(slots * (1 + HASH_QUEUE_PER_SLOT))
        # A hash with the same parameters, checked for unknown names so that they cost the same time.
        self._dummy_hash = ph.hash(secrets.token_urlsafe(24))
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._refused: dict[str, tuple[int, float]] = {}  # key → (count not yet audited, last audit time)

    # -- hashing ---------------------------------------------------------------------------------------------
    def _hash_work(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` on a hashing thread (low priority, no lock held); 503 when too many wait."""
        if not self._queue.acquire(blocking=False):
            raise ApiError(503, "busy", "too many password checks at once: try again in a minute")
        try:
            future = self._hashing.submit(work)
            try:
                return future.result(timeout=HASH_SLOT_TIMEOUT_S)
            except FutureTimeout as exc:
                future.cancel()
                raise ApiError(503, "busy", "password check timed out: try again in a minute") from exc
        finally:
            self._queue.release()

    def hash_new_password(self, password: str, *, field: str = "password") -> str:
        """Argon2id hash of a new password (length checked), on a hashing thread, outside any lock."""
        check_new_password(password, field=field)
        return self._hash_work(lambda: self.ph.hash(password))

    def _verify(self, password_hash: str | None, password: str) -> bool:
        verified = self._hash_work(
            lambda: check_password(self.ph, password_hash or self._dummy_hash, password)
        )
        return verified and password_hash is not None

    # -- throttling ------------------------------------------------------------------------------------------
    def _keys(self, account: str | None, client: str) -> list[tuple[str, str, int]]:
        keys = [("client", "c:" + client[:62], self.settings.client_failure_limit)]
        if account is not None:
            keys.insert(0, ("account", "a:" + account[:62], self.settings.account_failure_limit))
        return keys

    def lock_for(self, account: str | None, client: str) -> Lock | None:
        """The lockout in force for this account key and client address, if any."""
        now = datetime.now(UTC)
        since = now - timedelta(seconds=self.settings.failure_window_s)
        with self.db.read() as session:
            for scope, key, limit in self._keys(account, client):
                column = AuthFailure.account_key if key.startswith("a:") else AuthFailure.client
                value = key[2:]
                count, last = session.execute(
                    select(func.count(AuthFailure.id), func.max(AuthFailure.failed_at)).where(
                        column == value, AuthFailure.failed_at >= since
                    )
                ).one()
                with self._lock:
                    count += self._in_flight.get(key, 0)
                if count >= limit:
                    last_at = _aware(last) if last is not None else now
                    remaining = (last_at + timedelta(seconds=self.settings.lockout_s) - now).total_seconds()
                    return Lock(scope, max(1.0, remaining))
        return None

    @contextmanager
    def _in_flight_for(self, keys: list[str]) -> Iterator[None]:
        with self._lock:
            for key in keys:
                self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                for key in keys:
                    self._in_flight[key] -= 1
                    if not self._in_flight[key]:
                        del self._in_flight[key]

    def _refuse_locked(
        self, lock: Lock, *, actor: str, account: str | None, client: str, action: str
    ) -> ApiError:
        """Count a refused attempt; audit the count at most once a minute per key; the error to raise."""
        from theradose.service import audit_store

        key = f"{action}:{lock.scope}:" + (account if lock.scope == "account" and account else client)
        now = time.monotonic()
        with self._lock:
            count, last = self._refused.get(key, (0, float("-inf")))
            count += 1
            due = now - last >= THROTTLED_AUDIT_INTERVAL_S
            self._refused[key] = (0, now) if due else (count, last)
        if due:
            with self.db.write() as session:
                audit_store.append(
                    session,
                    actor=actor[:64] or "-",
                    at=datetime.now(UTC),
                    action=f"{action}_throttled",
                    entity="login",
                    entity_id=(account or "-")[:64],
                    after={"client": client, "refused_attempts": count, "locked_by": lock.scope},
                    reason=f"{lock.scope} locked for {lock.retry_after_s:.0f} s more",
                )
        minutes = max(1, round(lock.retry_after_s / 60))
        return ApiError(
            429,
            "too_many_attempts",
            f"too many failed password checks for this {lock.scope}: try again in {minutes} min",
            None,
            headers={"Retry-After": str(int(lock.retry_after_s))},
        )

    def _record_failure(
        self,
        session: Session,
        *,
        account: str,
        client: str,
        kind: str,
        actor: str,
        entity_id: str,
        reason: str,
    ) -> bool:
        """Write a failure row and its audit entry; returns True when this failure locks the account."""
        from theradose.service import audit_store

        now = datetime.now(UTC)
        account_key = account[:64]
        session.add(AuthFailure(account_key=account_key, client=client[:64], kind=kind, failed_at=now))
        audit_store.append(
            session,
            actor=actor[:64] or "-",
            at=now,
            action=f"{kind}_failed",
            entity="user" if entity_id.isdigit() else "login",
            entity_id=entity_id[:64],
            after={"client": client},
            reason=reason,
        )
        since = now - timedelta(seconds=self.settings.failure_window_s)
        # forget failures long past (they no longer count)
        session.execute(
            delete(AuthFailure).where(
                AuthFailure.account_key == account_key,
                AuthFailure.failed_at < now - timedelta(seconds=2 * self.settings.failure_window_s),
            )
        )
        count = session.execute(
            select(func.count(AuthFailure.id)).where(
                AuthFailure.account_key == account_key, AuthFailure.failed_at >= since
            )
        ).scalar_one()
        locked = count == self.settings.account_failure_limit
        if locked:
            audit_store.append(
                session,
                actor="system",
                at=now,
                action="account_locked",
                entity="login",
                entity_id=account_key,
                after={"client": client, "failures": count, "lockout_s": self.settings.lockout_s},
                reason=f"{count} failed password checks within {self.settings.failure_window_s:.0f} s",
            )
        return locked

    # -- use cases -------------------------------------------------------------------------------------------
    def login(self, username: str, password: str, client: str) -> tuple[User, str, datetime]:
        """Check a login; returns the user, a new token and its expiry, or raises 401/429/503.

        The failure is committed (failure row + audit entry) before the 401 is raised.
        """
        from theradose.service import audit_store

        account = identifier_key(username)
        lock = self.lock_for(account, client)
        if lock is not None:
            raise self._refuse_locked(lock, actor=username, account=account, client=client, action="login")
        keys = [key for _scope, key, _limit in self._keys(account, client)]
        with self._in_flight_for(keys):
            with self.db.read() as session:
                user = _find_user(session, username)
                stored_hash = None if user is None else user.password_hash
                user_id = None if user is None else user.id
                active = user is not None and user.active
            verified = self._verify(stored_hash, password)
            with self.db.write() as session:
                current = None if user_id is None else session.get(User, user_id)
                ok = (
                    verified
                    and active
                    and current is not None
                    and current.active
                    and current.password_hash == stored_hash
                )
                if ok:
                    assert current is not None
                    token, expires = issue_token(session, current, self.settings.session_ttl_h)
                    session.execute(delete(AuthFailure).where(AuthFailure.account_key == account[:64]))
                    audit_store.append(
                        session,
                        actor=current.username,
                        at=datetime.now(UTC),
                        action="login",
                        entity="user",
                        entity_id=current.id,
                        after={"client": client, "must_change_password": current.must_change_password},
                    )
                    session.flush()
                    session.expunge(current)
                    return current, token, expires
                reason = (
                    "unknown user name"
                    if user_id is None
                    else ("account deactivated" if not active else "wrong password")
                )
                self._record_failure(
                    session,
                    account=account,
                    client=client,
                    kind="login",
                    actor=username,
                    entity_id=str(user_id) if user_id is not None else account,
                    reason=reason,
                )
        raise ApiError(401, "unauthorized", "wrong user name or password")

    def reauthenticate(
        self, me: Principal, password: str, client: str, *, purpose: str = "signature"
    ) -> None:
        """Check the password of the logged-in user ``me`` again (e-signatures, password change).

        Raises 403 while the account must change an administrator-set password (for signatures), 429
        while locked, 401 on a wrong password (audited; the lockout it may trigger revokes the tokens).
        """
        if me.must_change_password and purpose == "signature":
            raise ApiError(
                403,
                "password_change_required",
                "your password was set by an administrator: "
                "set your own (POST /auth/password) before signing",
            )
        account = identifier_key(me.username)
        lock = self.lock_for(account, client)
        if lock is not None:
            raise self._refuse_locked(lock, actor=me.username, account=account, client=client, action=purpose)
        keys = [key for _scope, key, _limit in self._keys(account, client)]
        with self._in_flight_for(keys):
            with self.db.read() as session:
                user = session.get(User, me.user_id)
                stored_hash = None if user is None or not user.active else user.password_hash
            if self._verify(stored_hash, password):
                return
            with self.db.write() as session:
                locked = self._record_failure(
                    session,
                    account=account,
                    client=client,
                    kind=purpose,
                    actor=me.username,
                    entity_id=str(me.user_id),
                    reason=f"wrong password at {purpose} re-authentication",
                )
                if locked:
                    revoke_tokens(session, me.user_id)
        raise ApiError(
            401,
            "reauthentication_failed",
            "password does not match: "
            + ("signing" if purpose == "signature" else "this")
            + " needs your own password",
            "password",
        )


async def answer_refusal_late(settings: Settings, call: Callable[[], _T]) -> _T:
    """Run the password check ``call`` in the thread pool; a refusal (401, 429, 503) is raised only after
    ``settings.failed_login_delay_s``, awaited without holding a thread."""
    import asyncio

    from starlette.concurrency import run_in_threadpool

    try:
        return await run_in_threadpool(call)
    except ApiError as exc:
        if exc.status in (401, 429, 503) and settings.failed_login_delay_s > 0:
            await asyncio.sleep(settings.failed_login_delay_s)
        raise


def _lower_priority() -> None:
    """Initializer of a hashing thread: the lowest CPU priority for this thread (Linux schedules threads
    separately; elsewhere this is a no-op)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICE)
    except (AttributeError, OSError):
        pass


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _find_user(session: Session, username: str) -> User | None:
    """The user whose name has the same comparison key as ``username`` (one indexed lookup)."""
    key = identifier_key(username)
    return session.execute(select(User).where(User.username_key == key)).scalar_one_or_none()


def client_address(request: Request) -> str:
    """The client address of a request (as the ASGI server reports it; behind a proxy, run uvicorn with
    ``--proxy-headers --forwarded-allow-ips`` so that this is the real client)."""
    return request.client.host if request.client is not None else "unknown"


#: A token's last use is written at most this often (seconds), so that reads stay reads.
TOKEN_TOUCH_INTERVAL_S = 60.0


class SessionExpired(ApiError):
    """The login token was not used for longer than the idle timeout."""


def authenticate_token(db: Database, token: str, *, idle_timeout_min: float | None = None) -> Principal:
    """The user of a login token; 401 when it is malformed, unknown, expired, revoked, idle too long or its
    user deactivated. The token's last use is recorded (at most every :data:`TOKEN_TOUCH_INTERVAL_S`)."""
    now = datetime.now(UTC)
    if not TOKEN_PATTERN.match(token):
        raise ApiError(401, "unauthorized", "invalid token: log in again")
    assert db.keyring is not None
    token_hash = hash_token(token, db.keyring)
    with db.read() as session:
        row = session.execute(
            select(SessionToken, User)
            .join(User, User.id == SessionToken.user_id)
            .where(SessionToken.token_hash == token_hash)
        ).first()
        if row is None:
            raise ApiError(401, "unauthorized", "invalid token: log in again")
        token_row, user = row
        if token_row.revoked or token_row.expires_at <= now or not user.active:
            raise ApiError(401, "unauthorized", "token expired or revoked: log in again")
        last = token_row.last_used_at or token_row.created_at
        if idle_timeout_min is not None and now - last > timedelta(minutes=idle_timeout_min):
            raise SessionExpired(
                401,
                "session_expired",
                f"session ended after {idle_timeout_min:g} minutes without activity: log in again",
            )
        principal = Principal(
            user.id,
            user.username,
            user.full_name,
            user.role,
            user.password_hash,
            bool(user.must_change_password),
            token_hash,
        )
        token_id = token_row.id
    if (now - last).total_seconds() > TOKEN_TOUCH_INTERVAL_S:
        with db.engine.begin() as conn:
            conn.execute(
                SessionToken.__table__.update().where(SessionToken.id == token_id).values(last_used_at=now)
            )
    return principal


def require(permission: str) -> Any:
    """FastAPI dependency: the request's user, who must hold ``permission``."""
    roles = PERMISSIONS[permission]

    def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
            raise ApiError(401, "unauthorized", "missing bearer token: log in at POST /auth/login")
        principal = authenticate_token(
            request.app.state.db,
            credentials.credentials,
            idle_timeout_min=request.app.state.settings.idle_timeout_min,
        )
        if principal.role not in roles:
            raise ApiError(
                403,
                "forbidden",
                f"role {principal.role!r} may not do {permission!r}; allowed: {sorted(roles)}",
            )
        if principal.must_change_password and permission not in PASSWORD_CHANGE_PERMISSIONS:
            raise ApiError(
                403,
                "password_change_required",
                "your password was set by an administrator: set your own with POST /auth/password first",
            )
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    return Depends(dependency)
