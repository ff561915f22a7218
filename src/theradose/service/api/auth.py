"""Login, logout, current user and user management."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from theradose.service.auth import Principal, require
from theradose.service.errors import ERROR_RESPONSES, ApiError
from theradose.service.operations import users as ops
from theradose.service.operations.users import (
    LoginIn,
    LoginOut,
    PasswordChangeIn,
    UserIn,
    Username,
    UserOut,
    UserPatch,
)

router = APIRouter(responses=ERROR_RESPONSES)


@router.post("/auth/login", tags=["auth"], summary="Log in; returns a bearer token")
def login(body: LoginIn, request: Request) -> LoginOut:
    state = request.app.state
    with state.db.write() as session:
        result = ops.login(session, body, hasher=state.hasher, session_ttl_h=state.settings.session_ttl_h)
    if result is None:
        raise ApiError(401, "unauthorized", "wrong user name or password")
    return result


@router.post("/auth/password", tags=["auth"], summary="Change your password (needed after a reset)")
def change_password(body: PasswordChangeIn, request: Request) -> UserOut:
    with request.app.state.db.write() as session:
        return ops.change_password(session, body, hasher=request.app.state.hasher)


@router.post("/auth/logout", tags=["auth"], summary="Revoke the current token")
def logout(request: Request, me: Annotated[Principal, require("self")]) -> dict[str, bool]:
    auth = request.headers.get("authorization", "")
    token = auth.split(" ", 1)[1] if " " in auth else ""
    with request.app.state.db.write() as session:
        ops.logout(session, me, token)
    return {"ok": True}


@router.get("/auth/me", tags=["auth"], summary="The logged-in user")
def me(request: Request, me: Annotated[Principal, require("self")]) -> UserOut:
    with request.app.state.db.read() as session:
        return ops.current_user(session, me)


@router.get("/users", tags=["users"], summary="List users")
def list_users(request: Request, me: Annotated[Principal, require("users:manage")]) -> list[UserOut]:
    with request.app.state.db.read() as session:
        return ops.list_users(session, me)


@router.post("/users", tags=["users"], status_code=201, summary="Create a user")
def add_user(body: UserIn, request: Request, me: Annotated[Principal, require("users:manage")]) -> UserOut:
    with request.app.state.db.write() as session:
        return ops.add_user(session, me, body, hasher=request.app.state.hasher)


@router.patch("/users/{username}", tags=["users"], summary="Change role, active flag, name or password")
def patch_user(
    username: Username, body: UserPatch, request: Request, me: Annotated[Principal, require("users:manage")]
) -> UserOut:
    with request.app.state.db.write() as session:
        return ops.patch_user(session, me, username, body, hasher=request.app.state.hasher)
