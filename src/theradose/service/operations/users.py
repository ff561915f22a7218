"""Use cases of accounts: log in and out, the current user, user management."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from argon2 import PasswordHasher
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.service import audit_store
from theradose.service.auth import Principal, check_password, create_user, hash_token, issue_token
from theradose.service.errors import ApiError, not_found
from theradose.service.models import SessionToken, User, row_to_dict
from theradose.service.operations.common import Model, opt_text, text, utcnow

RoleName = Literal["admin", "physicist", "physician", "pharmacist", "technologist"]
Username = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
Password = Annotated[str, Field(min_length=1, max_length=200)]


class LoginIn(Model):
    username: Username
    password: Password


class UserOut(BaseModel):
    username: str
    full_name: str
    role: str
    active: bool


class LoginOut(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: UserOut


class UserIn(Model):
    username: Username
    role: RoleName
    password: Annotated[str, Field(min_length=8, max_length=200)]
    full_name: opt_text(200) = ""  # type: ignore[valid-type]


class UserPatch(Model):
    role: RoleName | None = None
    active: bool | None = None
    password: Annotated[str | None, Field(default=None, min_length=8, max_length=200)] = None
    full_name: opt_text(200) | None = None  # type: ignore[valid-type]
    reason: text(500)  # type: ignore[valid-type]


def user_out(user: User) -> UserOut:
    """The public view of a user."""
    return UserOut(username=user.username, full_name=user.full_name, role=user.role, active=user.active)


def public_fields(user: User) -> dict[str, object]:
    """The user's columns without the password hash (for the audit trail)."""
    data = row_to_dict(user)
    data.pop("password_hash")
    return data


class PasswordChangeIn(Model):
    username: Username
    password: Password
    new_password: Annotated[str, Field(min_length=8, max_length=200)]


class PasswordChangeRequired(ApiError):
    """The password is right but was reset: the user must choose a new one before logging in."""


def login(
    session: Session, body: LoginIn, *, hasher: PasswordHasher, session_ttl_h: float
) -> LoginOut | None:
    """Check the password and issue a token; ``None`` when refused.

    A refused attempt is written to the audit trail too: the caller commits, then answers "refused".
    """
    user = session.execute(select(User).where(User.username == body.username)).scalar_one_or_none()
    ok = user is not None and user.active and check_password(hasher, user.password_hash, body.password)
    if not ok or user is None:
        audit_store.append(
            session,
            actor=body.username,
            at=utcnow(),
            action="login_failed",
            entity="user",
            entity_id=user.id if user is not None else body.username,
        )
        return None
    if user.must_change_password:
        raise PasswordChangeRequired(
            403,
            "password_change_required",
            "password: your password was reset; choose a new one (POST /auth/password)",
            "password",
        )
    token, expires = issue_token(session, user, session_ttl_h)
    audit_store.append(
        session, actor=user.username, at=utcnow(), action="login", entity="user", entity_id=user.id
    )
    return LoginOut(token=token, expires_at=expires, user=user_out(user))


def logout(session: Session, me: Principal, token: str) -> None:
    """Revoke the login token ``token`` of ``me``."""
    row = session.execute(
        select(SessionToken).where(SessionToken.token_hash == hash_token(token))
    ).scalar_one()
    row.revoked = True
    audit_store.append(
        session, actor=me.username, at=utcnow(), action="logout", entity="user", entity_id=me.user_id
    )


def current_user(session: Session, me: Principal) -> UserOut:
    """The logged-in user."""
    user = session.get(User, me.user_id)
    assert user is not None
    return user_out(user)


def list_users(session: Session, me: Principal) -> list[UserOut]:
    """All users by name."""
    return [user_out(u) for u in session.execute(select(User).order_by(User.username)).scalars()]


def add_user(session: Session, me: Principal, body: UserIn, *, hasher: PasswordHasher) -> UserOut:
    """Create a user."""
    user = create_user(
        session,
        hasher,
        username=body.username,
        role=body.role,
        password=body.password,
        full_name=body.full_name,
    )
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="create",
        entity="user",
        entity_id=user.id,
        after=public_fields(user),
    )
    return user_out(user)


def patch_user(
    session: Session, me: Principal, username: str, body: UserPatch, *, hasher: PasswordHasher
) -> UserOut:
    """Change a user's role, active flag, name or password (with a reason)."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise not_found("user", username)
    before = public_fields(user)
    if body.role is not None:
        user.role = body.role
    if body.active is not None:
        user.active = body.active
    if body.full_name is not None:
        user.full_name = body.full_name
    if body.password is not None:
        user.password_hash = hasher.hash(body.password)
    session.flush()
    after = public_fields(user)
    if body.password is not None:
        after["password_changed"] = True
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="update",
        entity="user",
        entity_id=user.id,
        before=before,
        after=after,
        reason=body.reason,
    )
    return user_out(user)


def change_password(session: Session, body: PasswordChangeIn, *, hasher: PasswordHasher) -> UserOut:
    """Change one's own password (with the current one); clears a reset and ends every other session."""
    user = session.execute(select(User).where(User.username == body.username)).scalar_one_or_none()
    if user is None or not user.active or not check_password(hasher, user.password_hash, body.password):
        raise ApiError(401, "unauthorized", "wrong user name or password", "password")
    if body.new_password == body.password:
        raise ApiError(
            422,
            "validation_error",
            "new_password: choose a password different from the old one",
            "new_password",
        )
    before = public_fields(user)
    user.password_hash = hasher.hash(body.new_password)
    user.must_change_password = False
    _revoke_tokens(session, user.id)
    session.flush()
    audit_store.append(
        session,
        actor=user.username,
        at=utcnow(),
        action="update",
        entity="user",
        entity_id=user.id,
        before=before,
        after={**public_fields(user), "password_changed": True},
        reason="password changed by the user",
    )
    return user_out(user)


def _revoke_tokens(session: Session, user_id: int) -> None:
    for token in session.execute(
        select(SessionToken).where(SessionToken.user_id == user_id, SessionToken.revoked.is_(False))
    ).scalars():
        token.revoked = True


def reset_password(
    session: Session,
    actor: str,
    username: str,
    temporary_password: str,
    *,
    hasher: PasswordHasher,
    reason: str,
) -> UserOut:
    """Set a temporary password that must be changed at the next login; the user's sessions end."""
    if len(temporary_password) < 8:
        raise ApiError(422, "validation_error", "password must have at least 8 characters", "password")
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise not_found("user", username)
    before = public_fields(user)
    user.password_hash = hasher.hash(temporary_password)
    user.must_change_password = True
    _revoke_tokens(session, user.id)
    session.flush()
    audit_store.append(
        session,
        actor=actor,
        at=utcnow(),
        action="update",
        entity="user",
        entity_id=user.id,
        before=before,
        after={**public_fields(user), "password_changed": True},
        reason=reason,
    )
    return user_out(user)


def set_active(session: Session, actor: str, username: str, active: bool, *, reason: str) -> UserOut:
    """Deactivate (or reactivate) a user; a deactivated user's sessions end."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise not_found("user", username)
    before = public_fields(user)
    user.active = active
    if not active:
        _revoke_tokens(session, user.id)
    session.flush()
    audit_store.append(
        session,
        actor=actor,
        at=utcnow(),
        action="update",
        entity="user",
        entity_id=user.id,
        before=before,
        after=public_fields(user),
        reason=reason,
    )
    return user_out(user)
