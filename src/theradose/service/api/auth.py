"""Login, logout, current user and user management."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from theradose.service.api.params import Limit, Offset
from theradose.service.auth import Principal, answer_refusal_late, client_address, require
from theradose.service.errors import ERROR_RESPONSES, ErrorResponse
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

#: Extra answers of the password checks.
PASSWORD_CHECK_RESPONSES: dict[int | str, dict[str, object]] = {
    429: {"model": ErrorResponse, "description": "too many failed password checks: locked for a while"},
    503: {"model": ErrorResponse, "description": "too many password checks at once"},
}


@router.post(
    "/auth/login",
    tags=["auth"],
    summary="Log in; returns a bearer token",
    responses=PASSWORD_CHECK_RESPONSES,
)
async def login(body: LoginIn, request: Request) -> LoginOut:
    """Wrong name, wrong password and deactivated account get the same answer after the same work;
    repeated failures lock the name and the client address for a while (429); refusals come late."""
    state = request.app.state
    client = client_address(request)
    return await answer_refusal_late(state.settings, lambda: ops.login(state.auth, body, client=client))


@router.post("/auth/logout", tags=["auth"], summary="Revoke the current token")
def logout(request: Request, me: Annotated[Principal, require("self")]) -> dict[str, bool]:
    auth = request.headers.get("authorization", "")
    token = auth.split(" ", 1)[1].strip() if " " in auth else ""
    with request.app.state.db.write() as session:
        ops.logout(session, me, token)
    return {"ok": True}


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
    new_hash = ops.check_password_change(request.app.state.auth, me, body, client=client_address(request))
    with request.app.state.db.write() as session:
        return ops.change_own_password(session, me, new_hash)


@router.get("/auth/me", tags=["auth"], summary="The logged-in user")
def me(request: Request, me: Annotated[Principal, require("self")]) -> UserOut:
    with request.app.state.db.read() as session:
        return ops.current_user(session, me)


@router.get("/users", tags=["users"], summary="List users")
def list_users(
    request: Request,
    me: Annotated[Principal, require("users:manage")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[UserOut]:
    with request.app.state.db.read() as session:
        return ops.list_users(session, me, limit=limit, offset=offset)


@router.post("/users", tags=["users"], status_code=201, summary="Create a user")
def add_user(body: UserIn, request: Request, me: Annotated[Principal, require("users:manage")]) -> UserOut:
    """The new user must change the password at the first login (an administrator chose it)."""
    password_hash = request.app.state.auth.hash_new_password(body.password)
    with request.app.state.db.write() as session:
        return ops.add_user(session, me, body, password_hash=password_hash)


@router.patch("/users/{username}", tags=["users"], summary="Change role, active flag, name or password")
def patch_user(
    username: Username, body: UserPatch, request: Request, me: Annotated[Principal, require("users:manage")]
) -> UserOut:
    """A password set here must be changed by its owner at the next login; setting it or deactivating the
    account revokes the account's tokens. The last active administrator keeps that role and stays active."""
    password_hash = None
    if body.password is not None:
        password_hash = request.app.state.auth.hash_new_password(body.password)
    with request.app.state.db.write() as session:
        return ops.patch_user(session, me, username, body, password_hash=password_hash)
