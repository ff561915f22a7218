"""Login, logout, current user and user management."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from theradose.service import audit_store
from theradose.service.api._common import Model, opt_text, text, utcnow
from theradose.service.auth import (
    Principal,
    client_address,
    create_user,
    require,
    revoke_token,
    revoke_tokens,
)
from theradose.service.errors import ERROR_RESPONSES, ApiError, ErrorResponse, conflict, not_found
from theradose.service.models import User, row_to_dict

router = APIRouter(responses=ERROR_RESPONSES)

#: Extra answers of the password checks.
PASSWORD_CHECK_RESPONSES: dict[int | str, dict[str, object]] = {
    429: {"model": ErrorResponse, "description": "too many failed password checks: locked for a while"},
    503: {"model": ErrorResponse, "description": "too many password checks at once"},
}

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


def _user_out(user: User) -> UserOut:
    return UserOut(
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        active=user.active,
        must_change_password=bool(user.must_change_password),
    )


def _public(user: User) -> dict[str, object]:
    data = row_to_dict(user)
    data.pop("password_hash")
    return data


@router.post(
    "/auth/login",
    tags=["auth"],
    summary="Log in; returns a bearer token",
    responses=PASSWORD_CHECK_RESPONSES,
)
def login(body: LoginIn, request: Request) -> LoginOut:
    """Wrong name, wrong password and deactivated account get the same answer after the same work;
    repeated failures lock the name and the client address for a while (429)."""
    user, token, expires = request.app.state.auth.login(body.username, body.password, client_address(request))
    return LoginOut(token=token, expires_at=expires, user=_user_out(user))


@router.post("/auth/logout", tags=["auth"], summary="Revoke the current token")
def logout(request: Request, me: Annotated[Principal, require("self")]) -> dict[str, bool]:
    auth = request.headers.get("authorization", "")
    token = auth.split(" ", 1)[1].strip() if " " in auth else ""
    with request.app.state.db.write() as session:
        revoke_token(session, token)
        audit_store.append(
            session, actor=me.username, at=utcnow(), action="logout", entity="user", entity_id=me.user_id
        )
    return {"ok": True}


class PasswordChangeIn(Model):
    current_password: Password
    new_password: Annotated[str, Field(min_length=8, max_length=200)]


@router.post(
    "/auth/password",
    tags=["auth"],
    summary="Change your own password (required after an administrator set it)",
    responses=PASSWORD_CHECK_RESPONSES,
)
def change_password(
    body: PasswordChangeIn, request: Request, me: Annotated[Principal, require("self")]
) -> UserOut:
    """Re-enter the current password; the new one must differ. Your other tokens are revoked."""
    auth = request.app.state.auth
    if body.new_password == body.current_password:
        raise ApiError(
            422, "validation_error", "new_password must differ from the current one", "new_password"
        )
    auth.reauthenticate(me, body.current_password, client_address(request), purpose="password")
    new_hash = auth.hash_new_password(body.new_password, field="new_password")
    with request.app.state.db.write() as session:
        user = session.get(User, me.user_id)
        if user is None or user.password_hash != me.password_hash:
            raise conflict("password_changed", "the password changed meanwhile: log in again")
        before = _public(user)
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
            after={**_public(user), "password_changed": True},
            reason="password changed by its owner",
        )
        return _user_out(user)


@router.get("/auth/me", tags=["auth"], summary="The logged-in user")
def me(request: Request, me: Annotated[Principal, require("self")]) -> UserOut:
    with request.app.state.db.read() as session:
        user = session.get(User, me.user_id)
        assert user is not None
        return _user_out(user)


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


@router.get("/users", tags=["users"], summary="List users")
def list_users(request: Request, me: Annotated[Principal, require("users:manage")]) -> list[UserOut]:
    with request.app.state.db.read() as session:
        return [_user_out(u) for u in session.execute(select(User).order_by(User.username)).scalars()]


@router.post("/users", tags=["users"], status_code=201, summary="Create a user")
def add_user(body: UserIn, request: Request, me: Annotated[Principal, require("users:manage")]) -> UserOut:
    """The new user must change the password at the first login (an administrator chose it)."""
    password_hash = request.app.state.auth.hash_new_password(body.password)
    with request.app.state.db.write() as session:
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
        return _user_out(user)


@router.patch("/users/{username}", tags=["users"], summary="Change role, active flag, name or password")
def patch_user(
    username: Username, body: UserPatch, request: Request, me: Annotated[Principal, require("users:manage")]
) -> UserOut:
    """A password set here must be changed by its owner at the next login; setting it or deactivating the
    account revokes the account's tokens. The last active administrator keeps that role and stays active."""
    from theradose.pharmacy.identifiers import identifier_key

    password_hash = None
    if body.password is not None:
        password_hash = request.app.state.auth.hash_new_password(body.password)
    with request.app.state.db.write() as session:
        user = session.execute(
            select(User).where(User.username_key == identifier_key(username))
        ).scalar_one_or_none()
        if user is None:
            raise not_found("user", username)
        before = _public(user)
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
        after = _public(user)
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
        return _user_out(user)
