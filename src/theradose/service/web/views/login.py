"""Log in, log out, and the home page (the first page the user's role may see)."""

from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from theradose.service.auth import client_address
from theradose.service.operations import users
from theradose.service.permissions import allowed
from theradose.service.web import session as web_session
from theradose.service.web.navigation import NAV
from theradose.service.web.views import base


def home(request: Request) -> Response:
    """``GET /ui``: the first page of the user's role, or the login page."""
    me = web_session.current_user(request)
    if me is None:
        return RedirectResponse("/ui/login", status_code=303)
    first = next((p for p, _label, perm in NAV if allowed(me.role, perm)), "/ui/worklist")
    return RedirectResponse(first, status_code=303)


def login_page(request: Request, next: str = "/ui/") -> Response:
    """``GET /ui/login``: the form, with a fresh double-submit CSRF cookie."""
    value = web_session.new_login_csrf()
    response = base.render(
        request, "login.html", None, login_csrf=value, next=base.safe_next(next, "/ui/"), errors={}
    )
    response.set_cookie(
        web_session.LOGIN_CSRF_COOKIE,
        value,
        path=web_session.COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def login_submit(request: Request) -> Response:
    """``POST /ui/login``: check the password (:func:`theradose.service.operations.users.login`)."""
    form = await base.read_form(request)
    target = base.safe_next(form.get("next"), "/ui/")
    if not web_session.login_csrf_ok(request, form.get("login_csrf")):
        return base.render(
            request,
            "login.html",
            None,
            status=403,
            login_csrf=request.cookies.get(web_session.LOGIN_CSRF_COOKIE, ""),
            next=target,
            errors={"_form": "the form expired: reload the page and log in again"},
            username=base.form_text(form, "username"),
        )
    username, password = base.form_text(form, "username"), form.get("password")
    errors: dict[str, str] = {}
    if not username:
        errors["username"] = "enter your user name"
    if not isinstance(password, str) or not password:
        errors["password"] = "enter your password"
    result = None
    if not errors:
        result, errors = await run_in_threadpool(
            base.run_form,
            lambda: users.LoginIn.model_validate({"username": username, "password": password}),
            lambda body: users.login(request.app.state.auth, body, client=client_address(request)),
        )
        if errors or result is None:
            locked = next((m for m in errors.values() if m.startswith("too many")), None)
            errors = {"password": locked or "wrong user name or password"}
            delay = request.app.state.settings.failed_login_delay_s
            if delay > 0:  # as the API: a refusal comes late, without holding a thread
                await asyncio.sleep(delay)
    if errors:
        return base.render(
            request,
            "login.html",
            None,
            status=401 if "password" in errors and len(errors) == 1 and username else 422,
            login_csrf=request.cookies.get(web_session.LOGIN_CSRF_COOKIE, ""),
            next=target,
            errors=errors,
            username=username,
        )
    assert result is not None
    if result.user.must_change_password:  # an administrator set it: the owner chooses one first
        response = base.redirect(
            "/ui/password", "an administrator set your password: choose your own", kind="error"
        )
    else:
        response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        web_session.SESSION_COOKIE,
        result.token,
        path=web_session.COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=int(request.app.state.settings.session_ttl_h * 3600),
    )
    response.delete_cookie(web_session.LOGIN_CSRF_COOKIE, path=web_session.COOKIE_PATH)
    return response


async def logout(request: Request) -> Response:
    """``POST /ui/logout``: revoke the session's token."""
    me = base.require_user(request, None)
    await base.checked_form(request, me)
    token = web_session.session_token(request) or ""
    await run_in_threadpool(base.write, request, users.logout, me, token)
    response = base.redirect("/ui/login", "logged out")
    response.delete_cookie(web_session.SESSION_COOKIE, path=web_session.COOKIE_PATH)
    return response


def password_page(request: Request) -> Response:
    """``GET /ui/password``: change one's own password (required after an administrator set it)."""
    me = base.require_user(request, None)
    return base.render(request, "password.html", me, errors={})


async def password_submit(request: Request) -> Response:
    """``POST /ui/password``: re-enter the current password (throttled as a log-in) and choose a new one;
    the user's other sessions end (:func:`theradose.service.operations.users.change_own_password`)."""
    me = base.require_user(request, None)
    form = await base.checked_form(request, me)
    client = client_address(request)

    def change(body: users.PasswordChangeIn) -> users.UserOut:
        new_hash = users.check_password_change(request.app.state.auth, me, body, client=client)
        return base.write(request, users.change_own_password, me, new_hash)

    _, errors = await run_in_threadpool(
        base.run_form,
        lambda: users.PasswordChangeIn.model_validate(
            {"current_password": form.get("current_password"), "new_password": form.get("new_password")}
        ),
        change,
    )
    if errors:
        return base.render(request, "password.html", me, status=422, errors=errors)
    return base.redirect("/ui/", "password changed")
