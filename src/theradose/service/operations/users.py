"""Use cases of accounts: log in and out, change one's password, the current user, user management.

Password checks and hashing never run inside a write transaction (see :mod:`theradose.service.auth`):
:func:`login` runs its own phases, and the callers of :func:`change_own_password`, :func:`add_user` and
:func:`patch_user` hash the new password (``Authenticator.hash_new_password``) before they open the
transaction and pass the hash.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from argon2 import PasswordHasher
from pydantic import BaseModel, Field, StrictBool
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy.identifiers import identifier_key
from theradose.service import audit_store
from theradose.service.auth import Authenticator, Principal, create_user, revoke_token, revoke_tokens
from theradose.service.errors import ApiError, conflict, not_found
from theradose.service.models import User, row_to_dict
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
    must_change_password: bool = False


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
    active: StrictBool | None = None  # true or false, never "yes" or 1
    password: Annotated[str | None, Field(default=None, min_length=8, max_length=200)] = None
    full_name: opt_text(200) | None = None  # type: ignore[valid-type]
    reason: text(500)  # type: ignore[valid-type]


class PasswordChangeIn(Model):
    current_password: Password
    new_password: Annotated[str, Field(min_length=8, max_length=200)]


def user_out(user: User) -> UserOut:
    """The public view of a user."""
    return UserOut(
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        active=user.active,
        must_change_password=bool(user.must_change_password),
    )


def public_fields(user: User) -> dict[str, object]:
    """The user's columns without the password hash (for the audit trail)."""
    data = row_to_dict(user)
    data.pop("password_hash")
    return data


def login(auth: Authenticator, body: LoginIn, *, client: str) -> LoginOut:
    """Check the password and issue a token (401, or 429 while locked, or 503 when busy).

    Not run in a caller's transaction: the check reads, hashes outside any lock, then writes (the token,
    or the failure and its audit entry, committed before the refusal is raised).
    """
    user, token, expires = auth.login(body.username, body.password, client)
    return LoginOut(token=token, expires_at=expires, user=user_out(user))


def logout(session: Session, me: Principal, token: str) -> None:
    """Revoke the login token ``token`` of ``me``."""
    revoke_token(session, token)
    audit_store.append(
        session, actor=me.username, at=utcnow(), action="logout", entity="user", entity_id=me.user_id
    )


def check_password_change(auth: Authenticator, me: Principal, body: PasswordChangeIn, *, client: str) -> str:
    """Re-authenticate ``me`` with the current password (throttled, failures audited) and hash the new one;
    returns the new hash (run before the write transaction of :func:`change_own_password`)."""
    if body.new_password == body.current_password:
        raise ApiError(
            422, "validation_error", "new_password must differ from the current one", "new_password"
        )
    auth.reauthenticate(me, body.current_password, client, purpose="password")
    return auth.hash_new_password(body.new_password, field="new_password")


def change_own_password(session: Session, me: Principal, new_hash: str) -> UserOut:
    """Set the password ``me`` has chosen; clears the forced change and revokes ``me``'s other tokens."""
    user = session.get(User, me.user_id)
    if user is None or user.password_hash != me.password_hash:
        raise conflict("password_changed", "the password changed meanwhile: log in again")
    before = public_fields(user)
    user.password_hash = new_hash
    user.must_change_password = False
    revoke_tokens(session, user.id, keep_token_hash=me.token_hash)
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="update",
        entity="user",
        entity_id=user.id,
        before=before,
        after={**public_fields(user), "password_changed": True},
        reason="password changed by its owner",
    )
    return user_out(user)


def current_user(session: Session, me: Principal) -> UserOut:
    """The logged-in user."""
    user = session.get(User, me.user_id)
    assert user is not None
    return user_out(user)


def list_users(
    session: Session, me: Principal, *, limit: int | None = None, offset: int = 0
) -> list[UserOut]:
    """Users by name (one page of ``limit`` from ``offset``)."""
    stmt = select(User).order_by(User.username).limit(limit).offset(offset)
    return [user_out(u) for u in session.execute(stmt).scalars()]


def add_user(session: Session, me: Principal, body: UserIn, *, password_hash: str) -> UserOut:
    """Create a user; the password (hashed by the caller) must be changed at the first login, because an
    administrator chose it."""
    user = create_user(
        session,
        None,
        username=body.username,
        role=body.role,
        password_hash=password_hash,
        full_name=body.full_name,
        must_change_password=True,
        actor=me.username,
    )
    return user_out(user)


def patch_user(
    session: Session, me: Principal, username: str, body: UserPatch, *, password_hash: str | None = None
) -> UserOut:
    """Change a user's role, active flag, name or password (with a reason).

    A password set here (``password_hash``, hashed by the caller from ``body.password``) must be changed
    by its owner at the next login; setting it or deactivating the account revokes the account's
    tokens. The last active administrator keeps that role and stays active.
    """
    return _patch(session, me.username, username, body, password_hash=password_hash)


def reset_password(
    session: Session,
    actor: str,
    username: str,
    temporary_password: str,
    *,
    hasher: PasswordHasher,
    reason: str,
) -> UserOut:
    """Set a temporary password that must be changed at the next login; the user's sessions end
    (for tools such as ``theradose users reset-password``, which hash inside their own transaction)."""
    if len(temporary_password) < 8:
        raise ApiError(422, "validation_error", "password must have at least 8 characters", "password")
    body = UserPatch(password=temporary_password, reason=reason)
    return _patch(session, actor, username, body, password_hash=hasher.hash(temporary_password))


def set_active(session: Session, actor: str, username: str, active: bool, *, reason: str) -> UserOut:
    """Deactivate (or reactivate) a user; a deactivated user's sessions end; the last active administrator
    stays active."""
    return _patch(session, actor, username, UserPatch(active=active, reason=reason))


def _patch(
    session: Session, actor: str, username: str, body: UserPatch, *, password_hash: str | None = None
) -> UserOut:
    if (body.password is None) != (password_hash is None):
        raise ApiError(422, "validation_error", "password and its hash go together", "password")
    user = session.execute(
        select(User).where(User.username_key == identifier_key(username))
    ).scalar_one_or_none()
    if user is None:
        raise not_found("user", username)
    before = public_fields(user)
    stays_admin = (body.role is None or body.role == "admin") and body.active is not False
    if user.role == "admin" and user.active and not stays_admin:
        others = session.execute(
            select(User.id).where(User.role == "admin", User.active.is_(True), User.id != user.id)
        ).first()
        if others is None:
            raise conflict(
                "last_admin",
                f"{user.username} is the last active administrator: make another user admin first",
                "role" if body.role not in (None, "admin") else "active",
            )
    if body.role is not None:
        user.role = body.role
    if body.active is not None:
        user.active = body.active
        if not body.active:
            revoke_tokens(session, user.id)
    if body.full_name is not None:
        user.full_name = body.full_name
    if password_hash is not None:
        user.password_hash = password_hash
        user.must_change_password = True
        revoke_tokens(session, user.id)
    session.flush()
    after = public_fields(user)
    if body.password is not None:
        after["password_changed"] = True
    audit_store.append(
        session,
        actor=actor,
        at=utcnow(),
        action="update",
        entity="user",
        entity_id=user.id,
        before=before,
        after=after,
        reason=body.reason,
    )
    return user_out(user)
