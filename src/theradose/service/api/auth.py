"""Login, logout, current user and user management."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from theradose.service import audit_store
from theradose.service.api._common import Model, opt_text, text, utcnow
from theradose.service.auth import Principal, check_password, create_user, issue_token, require
from theradose.service.errors import ERROR_RESPONSES, ApiError, not_found
from theradose.service.models import SessionToken, User, row_to_dict

router = APIRouter(responses=ERROR_RESPONSES)

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


def _user_out(user: User) -> UserOut:
    return UserOut(username=user.username, full_name=user.full_name, role=user.role, active=user.active)


def _public(user: User) -> dict[str, object]:
    data = row_to_dict(user)
    data.pop("password_hash")
    return data


@router.post("/auth/login", tags=["auth"], summary="Log in; returns a bearer token")
def login(body: LoginIn, request: Request) -> LoginOut:
    db = request.app.state.db
    with db.write() as session:
        user = session.execute(select(User).where(User.username == body.username)).scalar_one_or_none()
        ok = (
            user is not None
            and user.active
            and check_password(request.app.state.hasher, user.password_hash, body.password)
        )
        if not ok or user is None:
            # Failed attempts are kept in the audit trail too (committed, then refused).
            audit_store.append(
                session,
                actor=body.username,
                at=utcnow(),
                action="login_failed",
                entity="user",
                entity_id=user.id if user is not None else body.username,
            )
            result = None
        else:
            token, expires = issue_token(session, user, request.app.state.settings.session_ttl_h)
            audit_store.append(
                session, actor=user.username, at=utcnow(), action="login", entity="user", entity_id=user.id
            )
            result = LoginOut(token=token, expires_at=expires, user=_user_out(user))
    if result is None:
        raise ApiError(401, "unauthorized", "wrong user name or password")
    return result


@router.post("/auth/logout", tags=["auth"], summary="Revoke the current token")
def logout(request: Request, me: Annotated[Principal, require("self")]) -> dict[str, bool]:
    auth = request.headers.get("authorization", "")
    from theradose.service.auth import hash_token

    token = auth.split(" ", 1)[1] if " " in auth else ""
    with request.app.state.db.write() as session:
        row = session.execute(
            select(SessionToken).where(SessionToken.token_hash == hash_token(token))
        ).scalar_one()
        row.revoked = True
        audit_store.append(
            session, actor=me.username, at=utcnow(), action="logout", entity="user", entity_id=me.user_id
        )
    return {"ok": True}


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
    with request.app.state.db.write() as session:
        user = create_user(
            session,
            request.app.state.hasher,
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
            after=_public(user),
        )
        return _user_out(user)


@router.patch("/users/{username}", tags=["users"], summary="Change role, active flag, name or password")
def patch_user(
    username: Username, body: UserPatch, request: Request, me: Annotated[Principal, require("users:manage")]
) -> UserOut:
    with request.app.state.db.write() as session:
        user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if user is None:
            raise not_found("user", username)
        before = _public(user)
        if body.role is not None:
            user.role = body.role
        if body.active is not None:
            user.active = body.active
        if body.full_name is not None:
            user.full_name = body.full_name
        if body.password is not None:
            user.password_hash = request.app.state.hasher.hash(body.password)
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
