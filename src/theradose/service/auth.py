"""Password hashing (Argon2id), login tokens and the role check used by every endpoint."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.service.db import Database
from theradose.service.errors import ApiError
from theradose.service.models import SessionToken, User
from theradose.service.permissions import PERMISSIONS, ROLES

_bearer = HTTPBearer(auto_error=False, description="token from POST /auth/login")


def hasher(time_cost: int = 3, memory_cost_kib: int = 65536) -> PasswordHasher:
    """An Argon2id hasher with the given cost."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=1)


def hash_token(token: str) -> str:
    """SHA-256 of a bearer token (only the hash is stored)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def check_password(ph: PasswordHasher, password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``."""
    try:
        return bool(ph.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def create_user(
    session: Session, ph: PasswordHasher, *, username: str, role: str, password: str, full_name: str = ""
) -> User:
    """Add a user (caller commits and audits)."""
    if role not in ROLES:
        raise ApiError(
            422, "validation_error", f"role must be one of {', '.join(ROLES)}; got {role!r}", "role"
        )
    if len(password) < 8:
        raise ApiError(422, "validation_error", "password must have at least 8 characters", "password")
    if session.execute(select(User).where(User.username == username)).scalar_one_or_none() is not None:
        raise ApiError(409, "conflict", f"user {username!r} exists", "username")
    user = User(
        username=username,
        full_name=full_name,
        role=role,
        password_hash=ph.hash(password),
        active=True,
        created_at=datetime.now(UTC),
    )
    session.add(user)
    session.flush()
    return user


def issue_token(session: Session, user: User, ttl_h: float) -> tuple[str, datetime]:
    """Create a login token for ``user``; returns the token (shown once) and its expiry."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires = now + timedelta(hours=ttl_h)
    session.add(
        SessionToken(token_hash=hash_token(token), user_id=user.id, created_at=now, expires_at=expires)
    )
    return token, expires


@dataclass(frozen=True)
class Principal:
    """The authenticated user of a request."""

    user_id: int
    username: str
    full_name: str
    role: str
    password_hash: str


#: A token's last use is written at most this often (seconds), so that reads stay reads.
TOKEN_TOUCH_INTERVAL_S = 60.0


class SessionExpired(ApiError):
    """The login token was not used for longer than the idle timeout."""


def authenticate_token(db: Database, token: str, *, idle_timeout_min: float | None = None) -> Principal:
    """The user of a login token; 401 when it is unknown, expired, revoked, idle too long or its user
    deactivated. The token's last use is recorded (at most every :data:`TOKEN_TOUCH_INTERVAL_S`)."""
    now = datetime.now(UTC)
    with db.read() as session:
        row = session.execute(
            select(SessionToken, User)
            .join(User, User.id == SessionToken.user_id)
            .where(SessionToken.token_hash == hash_token(token))
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
        principal = Principal(user.id, user.username, user.full_name, user.role, user.password_hash)
        token_id = token_row.id
    if (now - last).total_seconds() > TOKEN_TOUCH_INTERVAL_S:
        with db.engine.begin() as conn:
            conn.execute(
                SessionToken.__table__.update().where(SessionToken.id == token_id).values(last_used_at=now)
            )
    return principal


def require(permission: str) -> Depends:  # type: ignore[valid-type]
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
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    return Depends(dependency)
